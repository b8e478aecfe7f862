"""Fuzz the running cloud from its own OpenAPI document: no input may cause a 5xx, and every
answer is one the document describes.

schemathesis generates valid and invalid requests for every operation (with the admin token
or a real device's key, as each route needs); every answer must be below 500, every 4xx
must be the JSON error shape, and each answer's status, content type, headers and body must
match the document (schemathesis's conformance checks). The document itself is validated by
the loader.
Reproduce a run with CLOUD_FUZZ_SEED=<the seed printed on failure>.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Err

from tests.cloud.device_kit import provision
from tests.support.cloud_process import CloudProcess

EXAMPLES = 10
# Every answer is one the document describes: its status, content type, headers and body.
CONFORMANCE = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def mismatch(failure: BaseException) -> str:
    """Schemathesis's titles of what does not match (one line each)."""
    leaves = failure.exceptions if isinstance(failure, BaseExceptionGroup) else [failure]
    titles = sorted({str(getattr(leaf, "title", leaf)) for leaf in leaves})
    return "does not match the document: " + "; ".join(titles)


class Fuzzer:
    def __init__(self, cloud: CloudProcess, device_auth: dict[str, str], fuzz_seed: int) -> None:
        self.cloud = cloud
        self.device_auth = device_auth
        self.seed = fuzz_seed
        self.session = requests.Session()
        self.problems: list[str] = []
        self.statuses: dict[int, int] = {}

    def headers_for(self, path: str) -> dict[str, str]:
        if path.startswith("/api/admin/"):
            return self.cloud.admin_headers
        if path.startswith("/api/v1/"):
            return self.device_auth
        return {}

    def run(self, operation: Any, mode: GenerationMode) -> None:
        name = f"{operation.method.upper()} {operation.path} [{mode.value}]"

        @seed(self.seed)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking against a live server
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            response = case.call(
                base_url=self.cloud.url,
                session=self.session,
                headers=self.headers_for(operation.path),
                timeout=10,
            )
            status = response.status_code
            self.statuses[status] = self.statuses.get(status, 0) + 1
            problem = None
            if status >= 500 or (status >= 400 and "error" not in response.json()):
                problem = response.text[:300]
            else:
                try:
                    case.validate_response(response, checks=CONFORMANCE)
                except (AssertionError, BaseExceptionGroup) as failure:
                    problem = mismatch(failure)
            if problem is not None:
                curl = case.as_curl_command(base_url=self.cloud.url)
                self.problems.append(f"{name} {status}: {problem}\n  {curl}")

        with contextlib.suppress(Unsatisfiable):  # nothing to negate
            one()


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[CloudProcess]:
    """The defaults: no DATABASE_URL and no ADMIN_TOKEN (SQLite and a generated token)."""
    process = CloudProcess(tmp_path / "cloud", admin_token="").start()
    try:
        yield process
    finally:
        process.stop()


async def test_no_input_causes_a_server_error(cloud: CloudProcess) -> None:
    token_file = cloud.data_dir / "admin.token"
    cloud.admin_token = token_file.read_text().strip()
    assert cloud.cli("admin-token").stdout.strip() == cloud.admin_token
    assert (cloud.data_dir / "cloud.sqlite").exists()
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    async with httpx.AsyncClient(base_url=cloud.url) as client:
        device = await provision(client, key)
        document = (await client.get("/openapi.json")).json()
    fuzzer = Fuzzer(
        cloud, device.auth, int(os.environ.get("CLOUD_FUZZ_SEED", random.randrange(2**32)))
    )
    for result in schemathesis.openapi.from_dict(document).get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"the OpenAPI document is invalid: {result.err()}")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzzer.run(result.ok(), mode)
    assert not fuzzer.problems, f"seed {fuzzer.seed}:\n" + "\n".join(fuzzer.problems[:10])
    assert sum(fuzzer.statuses.values()) > 80
    assert {200, 400, 401, 404} <= set(fuzzer.statuses), fuzzer.statuses
    assert "Traceback" not in cloud.log()
    assert cloud.admin_token not in cloud.log()
