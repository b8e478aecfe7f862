"""Fuzz the running agent's Device API with schemathesis, driven by docs/device-api.openapi.json.

Every operation gets generated requests, valid (positive) and invalid (negative, which includes
requests without the key) ones, in three passes: inputs drawn from the document alone (mostly
unknown apps and services); the same with path parameters and small body fields pinned to the
apps, services and config keys that exist, so that the success paths run too; last, new
target states (a valid one must be a 200, an invalid one a 400). Each response must not be a
5xx and must match the document (status code, content type, headers, body schema). Then the
original target and configuration are restored and both services must run again. The run is
bounded (examples per operation, a wall-clock budget).

Left out: `POST /v1/factory-reset` and `POST /v1/agent/restart` (they end the agent under
test), `POST /v1/provision` (it would contact made-up cloud endpoints) and `follow=true` on
the log routes (a stream that never ends). For safety the fuzzer gets a narrowed copy of the
document: generated target states use only the local registry's test image and no container
options (nothing pulled from the internet, no host mounts or commands), and
`CLOUD_API_ENDPOINT` is never set (diagnostics would contact it).

Reproduce a run with DEVICE_API_FUZZ_SEED=<the seed printed on failure>.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, seed, settings
from hypothesis.errors import Unsatisfiable
from iotistic_contracts import TargetStateError, parse_target_state
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.integration.agent_process import AgentProcess, app, svc, target
from tests.integration.dockerkit import ImageSet

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "device-api.openapi.json"
# Provisioning contacts whatever endpoint the fuzzer makes up (15 s timeouts each); its
# inputs and answers are covered by tests/unit/test_provisioning_api.py against a fake cloud.
EXCLUDED = {
    ("POST", "/v1/factory-reset"),
    ("POST", "/v1/agent/restart"),
    ("POST", "/v1/provision"),
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Per operation and generation mode; operations that act on containers get fewer.
EXAMPLES = 25
SLOW_EXAMPLES = 6
TARGET_EXAMPLES = 60
SET_TARGET = "POST /v2/local/target-state"
SLOW = ("restart", "purge")
# About 3,400 requests: 65-75 s on a two-core machine running other suites, so the bound
# leaves room for a busier one while still catching a run that hangs.
BUDGET_S = 180.0
REQUEST_TIMEOUT_S = 15.0
SAFE_CONFIG_KEYS = ["LOG_LEVEL", "RECONCILIATION_INTERVAL_MS", "DEVICE_NAME"]
CONFIG_VALUES = ["debug", "INFO", "warn", "error", "loud", "100", "99", "2000", "1e3", "", "pi-7"]


def two_services(images: ImageSet) -> dict[str, Any]:
    # The same service name in two apps: a bare "web" is ambiguous (409), the others are not.
    return target(
        app(1001, svc(1, "web", images.http), name="front"),
        app(1002, svc(2, "web", images.v1), name="back"),
    )


# --- the narrowed document the fuzzer gets ----------------------------------------------------


def fuzz_document(images: ImageSet) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    for path, item in list(doc["paths"].items()):
        for method in list(item):
            if (method.upper(), path) in EXCLUDED:
                del item[method]
            elif "parameters" in item[method]:
                # follow=true streams until the client leaves: fuzz the one-shot form only.
                item[method]["parameters"] = [
                    p for p in item[method]["parameters"] if p["name"] != "follow"
                ]
        if not any(m in item for m in ("get", "put", "post", "delete")):
            del doc["paths"][path]
    schemas = doc["components"]["schemas"]
    # Generated targets: local test images only, at most two apps of two services, and no
    # container options beyond a small environment (no host mounts, devices or commands).
    schemas["Service"]["properties"]["imageName"] = {"type": "string", "enum": [images.v1]}
    schemas["ServiceConfig"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "environment": {
                "type": "object",
                "maxProperties": 2,
                "additionalProperties": {"type": "string", "maxLength": 20},
            }
        },
    }
    schemas["App"]["properties"]["services"]["maxItems"] = 2
    apps = schemas["TargetState"]["properties"]["apps"]
    # Keyed by the app's id (otherwise nearly every generated target is refused): app 1003.
    apps["properties"] = {"1003": app_with_id(schemas, 1003)}
    apps["maxProperties"] = 2
    schemas["TargetState"]["properties"]["config"]["maxProperties"] = 2
    return doc


def unsafe(case: Any, images: ImageSet) -> bool:
    """A request the fuzzer must not send, whatever the document allowed: negative cases
    break the narrowed schema on purpose, and a few of those are still valid requests."""
    key = (case.path_parameters or {}).get("key")
    if isinstance(key, str) and key.strip().upper() == "CLOUD_API_ENDPOINT":
        return True  # GET /v1/diagnostics would then call whatever URL was set
    if case.method.upper() != "POST" or case.operation.path != "/v2/local/target-state":
        return False
    body = case.body
    if not isinstance(body, dict | str | bytes):
        return False
    try:
        target_state = parse_target_state(body)
    except TargetStateError:
        return False  # refused before anything runs
    # Accepted: it must not pull from elsewhere than the local registry or set container
    # options (commands, mounts, devices).
    raw = body if isinstance(body, dict) else json.loads(body)
    for app_id, app_spec in target_state.apps.items():
        for index, service in enumerate(app_spec.services):
            config = raw["apps"][app_id]["services"][index].get("config") or {}
            if service.imageName != images.v1 or set(config) - {"environment"}:
                return True
    return False


def app_with_id(schemas: dict[str, Any], app_id: int) -> dict[str, Any]:
    pinned = copy.deepcopy(schemas["App"])
    pinned["properties"]["appId"] = {"type": "integer", "enum": [app_id]}
    return pinned


def pin_to_existing(document: dict[str, Any], values: dict[str, list[Any]]) -> dict[str, Any]:
    """The same document with path parameters and the fields of small request bodies limited
    to the given values (mostly apps, services and keys that exist)."""
    doc = copy.deepcopy(document)
    for item in doc["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in values:
                    parameter["schema"] = {"enum": values[parameter["name"]]}
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            properties = (body or {}).get("schema", {}).get("properties", {})
            for name in properties:
                if name in values:
                    properties[name] = {"enum": values[name]}
    return doc


# --- running the operations -------------------------------------------------------------------


class Fuzzer:
    def __init__(self, agent: AgentProcess, images: ImageSet, seed_value: int) -> None:
        self.agent = agent
        self.images = images
        self.seed = seed_value
        self.session = requests.Session()
        self.headers = agent.headers
        self.failures: dict[tuple[str, ...], str] = {}  # one report per kind of failure
        self.calls = 0
        self.statuses: dict[str, dict[int, int]] = {}  # per operation
        self.deadline = time.monotonic() + BUDGET_S

    def run(
        self, document: dict[str, Any], label: str, select: Callable[[str], bool], examples: int
    ) -> None:
        schema = schemathesis.openapi.from_dict(document)
        for result in schema.get_all_operations():
            operation = result.ok()
            if not select(f"{operation.method.upper()} {operation.path}"):
                continue
            slow = any(word in operation.path for word in SLOW)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if time.monotonic() > self.deadline:
                    self.failures[("budget",)] = f"time budget of {BUDGET_S:.0f} s exhausted"
                    return
                self.run_operation(operation, mode, SLOW_EXAMPLES if slow else examples, label)

    def run_operation(
        self, operation: Any, mode: GenerationMode, examples: int, label: str
    ) -> None:
        name = f"{operation.method.upper()} {operation.path}"
        statuses = self.statuses.setdefault(name, {})

        @seed(self.seed)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking against a live server
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            if unsafe(case, self.images):
                reject()
            self.calls += 1
            log_size = len(self.agent.log())
            response = case.call(
                base_url=self.agent.url,
                session=self.session,
                headers=self.headers,
                timeout=REQUEST_TIMEOUT_S,
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            try:
                case.validate_response(response, checks=CHECKS, headers=self.headers)
            except FailureGroup as exc:
                kinds = tuple(sorted({type(e).__name__ for e in exc.exceptions}))
                key = (name, str(response.status_code), *kinds)
                if key not in self.failures:
                    body = response.content[:500].decode("utf-8", "replace")
                    curl = case.as_curl_command(base_url=self.agent.url)
                    self.failures[key] = (
                        f"{name} [{label}, {mode.value}]: {exc}\n"
                        f"  response {response.status_code}: {body}\n"
                        f"  reproduce: {curl} -H 'Authorization: Bearer <device-api.key>'"
                    )
                    if response.status_code >= 500:
                        logged = self.agent.log()[log_size:]
                        self.failures[key] += f"\n  agent log:\n{logged[-2500:]}"

        try:
            one()
        except Unsatisfiable:
            pass  # nothing to negate: no parameters, no body
        except Exception as exc:  # generation or connection errors: a failure too
            self.failures[(name, type(exc).__name__)] = (
                f"{name} [{label}, {mode.value}]: {type(exc).__name__}: {exc}"
            )

    def coverage(self) -> str:
        return "\n".join(
            f"  {name}: {dict(sorted(counts.items()))}" for name, counts in self.statuses.items()
        )


def wait_converged(agent: AgentProcess, expected: dict[str, Any], timeout: float = 60) -> None:
    for app_id, spec in expected["apps"].items():
        for service in spec["services"]:
            agent.wait_status(int(app_id), service["serviceName"], "Running", timeout)


def test_device_api_fuzz(agent: AgentProcess, images: ImageSet) -> None:
    original = two_services(images)
    started = time.monotonic()
    agent.set_target(original)
    wait_converged(agent, original)
    converged_s = time.monotonic() - started
    services = agent.get("/v1/services").json()["services"]
    container_names = [s["containerName"] for s in services]
    refs = ["web", "web-1", "web-2", "1001/web", "1002/web", "nope", *container_names]
    document = fuzz_document(images)
    pinned = pin_to_existing(
        document,
        {
            "appId": [1001, 1002, 4242],
            "ref": refs,
            "serviceName": ["web", "nope"],
            "key": [*SAFE_CONFIG_KEYS, "NOPE"],
            "value": CONFIG_VALUES,
        },
    )

    seed_value = int(os.environ.get("DEVICE_API_FUZZ_SEED") or random.randrange(2**32))
    fuzzer = Fuzzer(agent, images, seed_value)
    started = time.monotonic()
    fuzzed_s = 0.0
    restore_error: AssertionError | None = None
    try:
        # A new target changes what exists, so it comes last, once the others have run.
        fuzzer.run(document, "document", lambda op: op != SET_TARGET, EXAMPLES)
        fuzzer.run(pinned, "existing resources", lambda op: op != SET_TARGET, EXAMPLES)
        fuzzer.run(document, "target state", lambda op: op == SET_TARGET, TARGET_EXAMPLES)
    finally:
        fuzzed_s = time.monotonic() - started
        try:
            restore(agent, original)
        except AssertionError as exc:
            restore_error = exc
        print(
            f"\n[device API fuzz] seed {seed_value}: target converged in {converged_s:.1f} s, "
            f"{fuzzer.calls} requests in {fuzzed_s:.1f} s, restored in "
            f"{time.monotonic() - started - fuzzed_s:.1f} s; statuses per operation:\n"
            f"{fuzzer.coverage()}"
        )

    assert not fuzzer.failures, (
        f"{len(fuzzer.failures)} kinds of failure (DEVICE_API_FUZZ_SEED={seed_value}):\n\n"
        + "\n\n".join(fuzzer.failures.values())
    )
    if restore_error is not None:
        raise restore_error


def restore(agent: AgentProcess, original: dict[str, Any]) -> None:
    """Put back the target and the configuration, then check that the agent converges."""
    assert agent.proc is not None and agent.proc.poll() is None, (
        f"the agent died during the fuzz run; log tail:\n{agent.log()[-3000:]}"
    )
    reset = httpx.delete(f"{agent.url}/v1/config", headers=agent.headers, timeout=10)
    assert reset.status_code == 200, reset.text
    agent.set_target(original)
    for app_id in original["apps"]:
        assert agent.post(f"/v1/apps/{app_id}/start").status_code == 200
    wait_converged(agent, original)
    stored = agent.get("/v2/local/target-state").json()
    assert {k: a["appName"] for k, a in stored["apps"].items()} == {"1001": "front", "1002": "back"}


def test_an_interval_too_large_to_apply_is_refused_and_not_persisted(agent: AgentProcess) -> None:
    """10**400 ms is a valid integer >= 100 but not a float: the agent must refuse it, not
    answer 500 after persisting a value it then cannot start with."""
    key = f"{agent.url}/v1/config/RECONCILIATION_INTERVAL_MS"
    response = httpx.put(key, json={"value": "1" + "0" * 400}, headers=agent.headers, timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_config_value"
    entry = httpx.get(key, headers=agent.headers, timeout=10).json()
    assert (entry["value"], entry["source"]) == ("1000", "environment")
    assert agent.terminate() == 0
    agent.start()  # the same data directory: starts with what was persisted
    assert httpx.get(key, headers=agent.headers, timeout=10).json()["value"] == "1000"
