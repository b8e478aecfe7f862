"""The integration fixtures themselves work against the real engine and registry."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.integration import dockerkit
from tests.integration.dockerkit import MANAGED_LABEL, ImageSet, LocalRegistry, docker
from tests.integration.waiting import wait_for, wait_for_async


def test_registry_answers_v2(registry: LocalRegistry) -> None:
    status, _ = dockerkit.http_get(f"{registry.url}/v2/")
    assert status == 200
    assert registry.host.startswith("127.0.0.1:")


def test_registry_catalog_lists_the_pushed_repository(images: ImageSet) -> None:
    with urllib.request.urlopen(f"{images.registry.url}/v2/_catalog", timeout=5) as resp:
        catalog = json.load(resp)
    assert dockerkit.TEST_REPOSITORY in catalog["repositories"]
    with urllib.request.urlopen(
        f"{images.registry.url}/v2/{dockerkit.TEST_REPOSITORY}/tags/list", timeout=5
    ) as resp:
        tags = json.load(resp)["tags"]
    assert sorted(tags) == ["crash", "http", "v1", "v2"]


@pytest.mark.parametrize("tag", ["v1", "v2", "http", "crash"])
def test_each_image_is_pulled_from_the_registry(images: ImageSet, tag: str) -> None:
    ref: str = getattr(images, tag)
    dockerkit.remove_local_image(ref)
    assert not dockerkit.image_present(ref), "the fixture must leave no local copy"
    out = docker("pull", ref).stdout
    assert "Pull complete" in out or "Already exists" in out or "Downloaded" in out
    assert dockerkit.image_present(ref)


def test_v1_and_v2_differ_in_content(images: ImageSet) -> None:
    versions = {
        ref: docker(
            "run", "--rm", "--label", MANAGED_LABEL, ref, "cat", "/etc/image-version"
        ).stdout.strip()
        for ref in (images.v1, images.v2)
    }
    assert versions == {images.v1: "v1", images.v2: "v2"}
    ids = {docker("image", "inspect", "--format", "{{.Id}}", ref).stdout for ref in versions}
    assert len(ids) == 2


def test_v1_stops_promptly_on_sigterm(images: ImageSet, docker_clean: None) -> None:
    cid = docker("run", "-d", "--label", MANAGED_LABEL, images.v1).stdout.strip()
    started = time.monotonic()
    docker("stop", "--time", "10", cid)
    # Well under the 10 s grace period: the CMD traps SIGTERM instead of ignoring it as PID 1.
    assert time.monotonic() - started < 5
    state = json.loads(docker("inspect", "--format", "{{json .State}}", cid).stdout)
    assert state["ExitCode"] == 0


def test_http_image_serves_its_index_page(images: ImageSet, docker_clean: None) -> None:
    port = dockerkit.free_port()
    docker("run", "-d", "--label", MANAGED_LABEL, "-p", f"127.0.0.1:{port}:80", images.http)

    def index_page() -> str | None:
        status, body = dockerkit.http_get(f"http://127.0.0.1:{port}/index.html", timeout=1)
        return body if status == 200 else None

    body = wait_for(index_page, timeout=20, message="httpd did not serve", ignore=(OSError,))
    assert body == images.index_html


def test_crash_image_exits_with_code_3(images: ImageSet) -> None:
    proc = docker("run", "--rm", "--label", MANAGED_LABEL, images.crash, check=False)
    assert proc.returncode == 3
    assert proc.stdout.strip() == "boom"


def test_missing_tag_fails_to_pull_with_manifest_unknown(images: ImageSet) -> None:
    proc = docker("pull", images.missing, check=False)
    assert proc.returncode != 0
    # Engine 20.10 with registry 2.8 says:
    # "Error response from daemon: manifest for <ref> not found: manifest unknown: ..."
    assert f"manifest for {images.missing} not found" in proc.stderr
    assert "manifest unknown" in proc.stderr


def test_docker_clean_removes_labelled_objects(docker_engine: None, docker_clean: None) -> None:
    name = f"iotistic-test-{dockerkit.free_port()}"
    docker("network", "create", "--label", MANAGED_LABEL, name)
    docker("volume", "create", "--label", MANAGED_LABEL, name)
    dockerkit.remove_managed_objects()
    assert docker("network", "ls", "-q", "--filter", f"name=^{name}$").stdout.strip() == ""
    assert docker("volume", "ls", "-q", "--filter", f"name=^{name}$").stdout.strip() == ""


def test_wait_for_times_out_with_the_message() -> None:
    with pytest.raises(AssertionError, match="never true"):
        wait_for(lambda: False, timeout=0.2, interval=0.05, message="never true")
    assert wait_for(lambda: 42, timeout=1) == 42


async def test_wait_for_async_accepts_sync_and_async_predicates() -> None:
    calls = 0

    async def third_time() -> bool:
        nonlocal calls
        calls += 1
        return calls >= 3

    assert await wait_for_async(third_time, timeout=2, interval=0.01) is True
    assert await wait_for_async(lambda: "ok", timeout=1) == "ok"
    with pytest.raises(AssertionError, match="still false"):
        await wait_for_async(lambda: 0, timeout=0.1, interval=0.02, message="still false")
