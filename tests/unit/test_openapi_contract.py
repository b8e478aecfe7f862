"""The Device API's OpenAPI document (docs/device-api.openapi.json) against the real app.

- the document is valid OpenAPI 3.0 (schemathesis' meta-schema check, plus what the meta-schema
  cannot see: dangling `$ref`s, path parameters, unique operation ids);
- the (method, path template) routes the aiohttp app registers equal the document's
  operations, and the routes table of docs/device-api.md lists the same;
- security: only the public probes of `auth.PUBLIC_ROUTES` are open; every other operation
  documents its 401 and answers a missing or wrong key with it, and its 403, which an app's
  scoped key gets outside the two routes it may use;
- edge inputs the document allows (the largest appId) or clearly refuses (non-ASCII digits,
  JSON nested too deeply, bodies over 1 MiB), a service that cannot start being restarted and
  an unreachable engine all get a documented status whose body matches the document: never a
  500. Responses are checked with schemathesis against the document (the in-memory engine;
  tests/integration/test_device_api_fuzz.py fuzzes the real agent).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from aiohttp.test_utils import TestServer
from api_support import KEY, api_context
from iotistic_agent.device_api.app import create_app
from iotistic_agent.device_api.app_access import app_key
from iotistic_agent.device_api.auth import PUBLIC_ROUTES
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.engine.protocol import EngineUnavailable
from iotistic_agent.orchestrator.model import EngineSnapshot
from jsonschema_rs import ValidationError
from schemathesis.core.failures import FailureGroup

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "device-api.openapi.json"
MARKDOWN = ROOT / "docs" / "device-api.md"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# aiohttp's default placeholder pattern; anything else must be a list of literal choices.
DEFAULT_PLACEHOLDER = "[^{}/]+"
LITERAL_CHOICES = re.compile(r"[A-Za-z0-9_-]+(?:\|[A-Za-z0-9_-]+)*")
IMAGE = "reg/img:v1"
UNSTARTABLE = "reg/broken:v1"  # pulls, but its containers fail to start
MAX_ID = 2**63 - 1

Route = tuple[str, str]


def load_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return document


def documented_operations(document: dict[str, Any]) -> set[Route]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def expand(formatter: str, pattern: str) -> list[str]:
    """`/v1/services/{ref}/{action}` with `(?P<action>stop|start|restart)` -> three templates."""
    templates = [formatter]
    for name in re.findall(r"\{(\w+)\}", formatter):
        group = re.search(rf"\(\?P<{name}>(.*?)\)(?:/|$)", pattern)
        assert group is not None, f"no group {name!r} in {pattern!r}"
        regex = group.group(1)
        if regex == DEFAULT_PLACEHOLDER:
            continue
        assert LITERAL_CHOICES.fullmatch(regex), (
            f"placeholder {{{name}:{regex}}} of {formatter} is neither a plain {{{name}}} nor a "
            "list of literal choices: the document cannot describe it as one path"
        )
        templates = [
            t.replace(f"{{{name}}}", choice) for t in templates for choice in regex.split("|")
        ]
    return templates


def registered_routes(app: Any) -> set[Route]:
    """(method, template) of every route, regex placeholders expanded.

    aiohttp adds a HEAD route beside every GET (`allow_head`): HTTP's HEAD of the same
    resource, not an operation of its own, so those are left out."""
    routes: set[Route] = set()
    for route in app.router.routes():
        info = route.resource.get_info()
        if "path" in info:
            templates = [info["path"]]
        elif "formatter" in info:
            templates = expand(info["formatter"], info["pattern"].pattern)
        else:  # static files, sub-apps: nothing the document could describe
            raise AssertionError(f"unexpected resource {route.resource!r}")
        assert route.method != "*", f"{templates} accepts every method"
        routes |= {(route.method, t) for t in templates}
    gets = {path for method, path in routes if method == "GET"}
    return {(m, p) for m, p in routes if not (m == "HEAD" and p in gets)}


# --- the document itself ------------------------------------------------------------------


def test_document_is_valid_openapi_3_0() -> None:
    document = load_document()
    assert document["openapi"] == "3.0.3"
    schemathesis.openapi.from_dict(copy.deepcopy(document)).validate()


def test_the_validator_is_not_a_no_op() -> None:
    broken = load_document()
    del broken["paths"]["/ping"]["get"]["responses"]["200"]["description"]
    with pytest.raises(ValidationError):
        schemathesis.openapi.from_dict(broken).validate()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_ref_resolves() -> None:
    document = load_document()
    for reference in set(_refs(document)):
        assert reference.startswith("#/"), f"external $ref {reference}"
        node: Any = document
        for part in reference[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"dangling $ref {reference}"
            node = node[part]


def test_path_parameters_match_the_templates() -> None:
    document = load_document()
    for path, item in document["paths"].items():
        in_template = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            if method not in METHODS:
                continue
            declared = {
                p["name"]
                for p in [*item.get("parameters", []), *operation.get("parameters", [])]
                if p["in"] == "path"
            }
            assert declared == in_template, f"{method.upper()} {path}: path parameters {declared}"


def test_operation_ids_are_unique() -> None:
    document = load_document()
    ids = [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


# --- the document against the app and docs/device-api.md ------------------------------------


def test_registered_routes_equal_documented_operations(tmp_path: Path) -> None:
    app_routes = registered_routes(create_app(api_context(tmp_path, MemoryEngine()), api_key=KEY))
    documented = documented_operations(load_document())
    missing = sorted(documented - app_routes)
    undocumented = sorted(app_routes - documented)
    assert not missing and not undocumented, (
        f"documented but not registered in the app: {missing}; "
        f"registered but not in docs/device-api.openapi.json: {undocumented}"
    )


def markdown_routes() -> set[Route]:
    """The routes table of docs/device-api.md: "`POST /v1/services/{ref}/stop`, `/start`"."""
    routes: set[Route] = set()
    for line in MARKDOWN.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `(GET|PUT|POST|DELETE|PATCH) (/[^`]*)`((?:, `/[^`]*`)*) \|", line)
        if match is None:
            continue
        method, path, siblings = match.groups()
        routes.add((method, path))
        parent = path.rsplit("/", 1)[0]
        for sibling in re.findall(r"`(/[^`]*)`", siblings):
            routes.add((method, parent + sibling))
    return routes


def test_markdown_routes_table_lists_the_documented_operations() -> None:
    listed = markdown_routes()
    assert len(listed) > 20, "the routes table of docs/device-api.md was not found"
    documented = documented_operations(load_document())
    assert listed == documented, (
        f"only in docs/device-api.md: {sorted(listed - documented)}; "
        f"only in the OpenAPI document: {sorted(documented - listed)}"
    )


def test_security_matches_the_public_routes() -> None:
    document = load_document()
    assert document["security"] == [{"bearerAuth": []}]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    public = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS and op.get("security", document["security"]) == []
    }
    assert public == {("GET", "/ping"), ("GET", "/v1/healthy")}
    assert public == {route for route in PUBLIC_ROUTES if route[0] != "HEAD"}
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                has_401 = "401" in op["responses"]
                assert has_401 == ((method.upper(), path) not in public), (method, path)
                # An app's scoped key may be refused wherever a key is needed.
                assert ("403" in op["responses"]) == has_401, (method, path)


# --- edge inputs get documented answers ---------------------------------------------------


class SwitchableEngine(MemoryEngine):
    """The in-memory engine, which can be made unreachable like a stopped Docker daemon."""

    reachable: bool = True

    async def ping(self) -> bool:
        return self.reachable

    async def snapshot(self) -> EngineSnapshot:
        if not self.reachable:
            raise EngineUnavailable("Cannot connect to the Docker daemon")
        return await super().snapshot()


def _service(service_id: int, name: str, image: str = IMAGE) -> dict[str, Any]:
    return {"serviceId": service_id, "serviceName": name, "imageName": image}


EDGE_TARGET = {
    "apps": {
        "1001": {
            "appId": 1001,
            "appName": "one",
            "services": [_service(1, "web"), _service(3, "broken", UNSTARTABLE)],
        },
        # The largest appId a target may carry must be addressable by every route.
        str(MAX_ID): {"appId": MAX_ID, "appName": "big", "services": [_service(2, "big")]},
    }
}


class Api:
    def __init__(self, client: httpx.AsyncClient, engine: SwitchableEngine) -> None:
        self.client = client
        self.engine = engine
        self.schema = schemathesis.openapi.from_dict(load_document())

    async def check(
        self, method: str, path: str, template: str, status: int, **kwargs: Any
    ) -> httpx.Response:
        """Send the request; assert the status and that the body is the documented one."""
        response = await self.client.request(method, path, **kwargs)
        assert response.status_code == status, (
            f"{method} {path}: expected {status}, got {response.status_code} {response.text[:300]}"
        )
        operation = self.schema[template][method]
        try:
            operation.validate_response(response)
        except FailureGroup as exc:
            pytest.fail(f"{method} {path}: response does not match the document: {exc}")
        return response


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    engine = SwitchableEngine(registry={IMAGE, UNSTARTABLE}, unstartable={UNSTARTABLE})
    context = api_context(tmp_path, engine)
    # No shared snapshot: these tests switch the engine off and expect the next answer to say so.
    app = create_app(context, api_key=KEY, snapshot_max_age_s=0)
    async with TestServer(app, host="127.0.0.1") as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        base = str(server.make_url(""))
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            posted = await client.post("/v2/local/target-state", json=EDGE_TARGET)
            assert posted.status_code == 200, posted.text
            await context.reconciler.reconcile()
            yield Api(client, engine)


NESTED = "[" * 100_000  # valid JSON prefix nested beyond Python's recursion limit
TOO_LARGE = '{"value": "' + "x" * (1024 * 1024) + '"}'  # over the 1 MiB body limit

# (method, path, operation's template, body or None, documented status)
EDGE_CASES = [
    # controls: these already behave
    ("GET", "/v1/apps/1001", "/v1/apps/{appId}", None, 200),
    ("GET", "/v1/apps/abc", "/v1/apps/{appId}", None, 400),
    ("GET", "/v1/apps/7", "/v1/apps/{appId}", None, 404),
    ("GET", "/v1/services/1001%2Fweb", "/v1/services/{ref}", None, 200),
    ("GET", "/v1/services/nope", "/v1/services/{ref}", None, 404),
    ("PUT", "/v1/config/NOPE", "/v1/config/{key}", {"value": "x"}, 400),
    ("PUT", "/v1/config/RECONCILIATION_INTERVAL_MS", "/v1/config/{key}", {"value": "5"}, 400),
    ("POST", "/v2/local/target-state", "/v2/local/target-state", NESTED, 400),
    ("POST", "/v1/factory-reset", "/v1/factory-reset", {"confirm": "yes"}, 400),
    ("PUT", "/v1/config/DEVICE_NAME", "/v1/config/{key}", TOO_LARGE, 413),
    ("POST", "/v2/local/target-state", "/v2/local/target-state", TOO_LARGE, 413),
    # the largest appId (2**63 - 1) is valid in a target: it must be addressable
    ("GET", f"/v1/apps/{MAX_ID}", "/v1/apps/{appId}", None, 200),
    ("GET", f"/v1/services?appId={MAX_ID}", "/v1/services", None, 200),
    ("POST", "/v1/restart", "/v1/restart", {"appId": str(MAX_ID)}, 200),
    ("POST", f"/v2/applications/{MAX_ID}/restart", "/v2/applications/{appId}/restart", None, 200),
    # non-ASCII digits ("²".isdigit() is True, int("²") raises) are bad input, not a crash
    ("GET", "/v1/apps/%C2%B2", "/v1/apps/{appId}", None, 400),
    ("POST", "/v1/apps/%C2%B2/stop", "/v1/apps/{appId}/stop", None, 400),
    ("GET", "/v1/services?appId=%C2%B2", "/v1/services", None, 400),
    ("GET", "/v1/services/%C2%B2%2Fweb", "/v1/services/{ref}", None, 404),
    ("POST", "/v1/restart", "/v1/restart", {"appId": "²"}, 400),
    # a body nested too deeply to decode is bad input on every JSON route
    ("POST", "/v1/restart", "/v1/restart", NESTED, 400),
    ("PUT", "/v1/config/DEVICE_NAME", "/v1/config/{key}", NESTED, 400),
    (
        "POST",
        "/v2/applications/1001/stop-service",
        "/v2/applications/{appId}/stop-service",
        NESTED,
        400,
    ),
    ("POST", "/v1/factory-reset", "/v1/factory-reset", NESTED, 400),
    # a container that fails to start again is the service's StartFailure, not a crash
    ("POST", "/v1/services/broken/restart", "/v1/services/{ref}/restart", None, 200),
    (
        "POST",
        "/v2/applications/1001/restart-service",
        "/v2/applications/{appId}/restart-service",
        {"serviceName": "broken"},
        200,
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "template", "body", "status"),
    EDGE_CASES,
    ids=[
        f"{m} {p[:50]} {'nested' if b is NESTED else 'too large' if b is TOO_LARGE else b or ''}"
        for m, p, _, b, _ in EDGE_CASES
    ],
)
async def test_edge_input_gets_a_documented_answer(
    api: Api, method: str, path: str, template: str, body: Any, status: int
) -> None:
    kwargs: dict[str, Any] = {}
    if isinstance(body, str):
        kwargs["content"] = body.encode()
    elif body is not None:
        kwargs["json"] = body
    await api.check(method, path, template, status, **kwargs)


def concrete(template: str) -> str:
    return template.format(
        appId=1001, ref="web", key="LOG_LEVEL", metric="temperature", scenario="sensor_data"
    )


SECURED = sorted(
    (method, path)
    for method, path in documented_operations(load_document())
    if (method, path) not in {("GET", "/ping"), ("GET", "/v1/healthy")}
)


@pytest.mark.parametrize(("method", "template"), SECURED)
async def test_every_secured_operation_refuses_a_missing_or_wrong_key(
    api: Api, method: str, template: str
) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": f"Bearer {KEY}x"}):
        response = await api.check(method, concrete(template), template, 401, headers=headers)
        assert response.json()["error"] == "unauthorized"


# Every secured operation but the sensor route (which a scoped key may use: see
# tests/unit/test_device_api_app_access.py); /v1/apps/{appId} is asked for another app.
OUTSIDE_SCOPE = [op for op in SECURED if op != ("POST", "/v1/sensors/{metric}")]


@pytest.mark.parametrize(("method", "template"), OUTSIDE_SCOPE)
async def test_an_apps_scoped_key_gets_the_documented_403_outside_its_routes(
    api: Api, method: str, template: str
) -> None:
    headers = {"Authorization": f"Bearer {app_key(KEY, 1001)}"}
    path = concrete(template) if template != "/v1/apps/{appId}" else f"/v1/apps/{MAX_ID}"
    response = await api.check(method, path, template, 403, headers=headers)
    assert response.json()["error"] == "forbidden"


ENGINE_ROUTES = [
    ("GET", "/v1/apps/1001", "/v1/apps/{appId}"),
    ("GET", "/v1/services", "/v1/services"),
    ("GET", "/v1/services/web", "/v1/services/{ref}"),
    ("POST", "/v1/services/web/restart", "/v1/services/{ref}/restart"),
    ("GET", "/v2/state/status", "/v2/state/status"),
    ("GET", "/v2/containerId", "/v2/containerId"),
    ("POST", "/v2/applications/1001/restart", "/v2/applications/{appId}/restart"),
    ("POST", "/v2/applications/1001/purge", "/v2/applications/{appId}/purge"),
]


@pytest.mark.parametrize(("method", "path", "template"), ENGINE_ROUTES)
async def test_unreachable_engine_is_a_503(api: Api, method: str, path: str, template: str) -> None:
    """docs/device-api.md: 503 `engine_unavailable` when the Docker engine cannot be reached."""
    api.engine.reachable = False
    response = await api.check(method, path, template, 503)
    assert response.json()["error"] == "engine_unavailable"


async def test_routes_that_do_not_need_the_engine_still_answer_without_it(api: Api) -> None:
    api.engine.reachable = False
    device = await api.check("GET", "/v1/device", "/v1/device", 200)
    assert device.json()["engine"] == {"reachable": False}
    diagnostics = await api.check("GET", "/v1/diagnostics", "/v1/diagnostics", 200)
    assert diagnostics.json()["ok"] is False
    await api.check("GET", "/v2/applications/state", "/v2/applications/state", 200)


def test_the_documented_config_keys_are_the_runtime_config_keys() -> None:
    from iotistic_agent.runtime_config import DESCRIPTIONS

    document = json.loads(DOCUMENT.read_text())
    documented = document["components"]["schemas"]["ConfigEntry"]["properties"]["key"]["enum"]
    assert sorted(documented) == sorted(DESCRIPTIONS)
