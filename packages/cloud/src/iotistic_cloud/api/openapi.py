"""The OpenAPI document (``/openapi.json``) as the API really behaves.

FastAPI generates most of it; this adds what it cannot know: the poll route (a plain
Starlette endpoint), the raw bodies of the report and target routes, bearer security,
400 ``{"error", "errors"}`` where FastAPI would document its own 422, and every other error
answer of each operation (ERRORS, with Retry-After on 429 and 503). The fuzz test
(tests/cloud/test_api_fuzz.py) checks each answer of the server against this document.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from iotistic_contracts.sync import StateReport
from iotistic_contracts.target_state import TargetState
from pydantic import BaseModel

from .device_routes import POLL_PATH

_REF: Final = "#/components/schemas/{model}"
_ERROR: Final = {"$ref": "#/components/schemas/Error"}
_BEARER: Final[list[dict[str, list[str]]]] = [{"bearer": []}]
_RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer"},
    }
}
ERROR_DESCRIPTIONS: Final = {
    400: "Invalid input, with field paths",
    401: "Missing or invalid key or token",
    403: "Authenticated, but not allowed (another device's data, a used-up key)",
    404: "No such device or key",
    409: "Conflicts with the current state",
    410: "The key exchange is unknown, expired or already used",
    412: "If-Match does not name the current target",
    413: "Request body too large",
    415: "Unsupported Content-Type or Content-Encoding",
    429: "Too many requests; retry after Retry-After seconds",
    503: "Database or broker unavailable, or overloaded; retry after Retry-After seconds",
}
# Error answers of each operation besides 400 (every operation but health) and 503 (every
# operation); 401 for every route under /api/v1/ and /api/admin/ is added too.
ERRORS: Final[dict[tuple[str, str], tuple[int, ...]]] = {
    ("post", "/api/provisioning/v2/key-exchange"): (401, 403, 409, 413, 429),
    ("post", "/api/provisioning/v2/register"): (401, 403, 409, 410, 413),
    ("get", POLL_PATH): (403, 429),
    ("patch", "/api/v1/device/state"): (403, 404, 409, 413, 415, 429),
    ("delete", "/api/v1/device/{uuid}"): (403, 404, 429),
    ("post", "/api/v1/device/{uuid}/logs"): (403, 413, 415, 429),
    ("post", "/api/admin/v1/keys"): (413,),
    ("delete", "/api/admin/v1/keys/{key_id}"): (404,),
    ("get", "/api/admin/v1/devices/{uuid}"): (404,),
    ("delete", "/api/admin/v1/devices/{uuid}"): (404,),
    ("put", "/api/admin/v1/devices/{uuid}/target"): (404, 409, 412, 413, 415),
    ("get", "/api/admin/v1/devices/{uuid}/anomalies"): (404,),
    ("get", "/api/admin/v1/devices/{uuid}/reports"): (404,),
    ("get", "/api/admin/v1/devices/{uuid}/logs"): (404,),
}
HEALTH_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["status", "database"],
    "properties": {"status": {"type": "string"}, "database": {"type": "string"}},
}

ERROR_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

POLL_OPERATION: Final[dict[str, Any]] = {
    "tags": ["device"],
    "summary": "Poll Target",
    "operationId": "poll_target",
    "description": "The device's target state; 304 when If-None-Match matches the ETag.",
    "parameters": [
        {"name": "uuid", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
    ],
    "responses": {
        "200": {
            "description": "The target, {uuid: {apps, config, version}}, with an ETag header.",
            "headers": {"ETag": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "304": {
            "description": "Unchanged since the ETag given in If-None-Match.",
            "headers": {"ETag": {"schema": {"type": "string"}}},
        },
    },
}


def _json_body(schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"required": True, "content": {"application/json": {"schema": ref}}}


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template=_REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema


def _complete(schema: dict[str, Any]) -> None:
    paths: dict[str, Any] = schema["paths"]
    paths[POLL_PATH] = {"get": POLL_OPERATION}
    paths["/api/v1/device/state"]["patch"]["requestBody"] = _json_body("StateReport")
    paths["/api/admin/v1/devices/{uuid}/target"]["put"]["requestBody"] = _json_body("TargetState")
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (StateReport, TargetState):
        _add_model(schemas, model)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    schemas["Health"] = HEALTH_SCHEMA
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in _error_statuses(method, path, operation):
                responses[str(status)] = error_response(status)
    health = paths["/health"]["get"]["responses"]
    health["200"]["content"] = {
        "application/json": {"schema": {"$ref": _REF.format(model="Health")}}
    }
    health["503"]["content"] = {
        "application/json": {"schema": {"$ref": _REF.format(model="Health")}}
    }


def _error_statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    statuses = [503, *ERRORS.get((method, path), ())]
    if path != "/health":
        statuses.append(400)
    if path.startswith(("/api/v1/", "/api/admin/")):
        operation["security"] = _BEARER
        statuses.append(401)
    return sorted(set(statuses))


def error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": _ERROR}},
    }
    if status in (429, 503):
        response["headers"] = _RETRY_AFTER
    return response


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _complete(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
