"""The OpenAPI document (``/openapi.json``) as the API really behaves.

FastAPI generates most of it; this adds what it cannot know: the poll route (a plain
Starlette endpoint), the raw bodies of the report and target routes, bearer security, and
400 ``{"error", "errors"}`` where FastAPI would document its own 422.
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
        "304": {"description": "Unchanged since the ETag given in If-None-Match."},
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
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, item in paths.items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if path != "/health":
                responses["400"] = {
                    "description": "Invalid input, with field paths",
                    "content": {"application/json": {"schema": _ERROR}},
                }
            if path.startswith(("/api/v1/", "/api/admin/")):
                operation["security"] = _BEARER
                responses["401"] = {
                    "description": "Missing or invalid bearer key",
                    "content": {"application/json": {"schema": _ERROR}},
                }


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _complete(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
