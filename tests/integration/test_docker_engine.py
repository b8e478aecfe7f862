"""DockerEngine against the real Docker engine and the local registry.

Each test names the behaviour it proves. The engine is checked through the `docker` CLI
(dockerkit), never through DockerEngine itself, so a bug in the adapter cannot hide itself.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from iotistic_agent.engine.docker import DockerEngine
from iotistic_agent.engine.protocol import (
    EngineError,
    EngineUnavailable,
    ImagePullError,
    StartError,
)
from iotistic_agent.orchestrator.model import (
    LABEL_APP_ID,
    LABEL_APP_NAME,
    LABEL_CONFIG_HASH,
    LABEL_DEVICE_UUID,
    LABEL_MANAGED,
    LABEL_SERVICE_ID,
    LABEL_SERVICE_NAME,
    Mount,
    PortBinding,
    ServiceSpec,
    config_hash,
)

from tests.integration import dockerkit
from tests.integration.dockerkit import MANAGED_LABEL, ImageSet, docker
from tests.integration.waiting import wait_for, wait_for_async

APP = 4242
DEVICE = "3f2b8c1e-0000-4000-8000-00000000beef"
MiB = 1024 * 1024


def service(name: str, image: str, app_id: int = APP, **fields: Any) -> ServiceSpec:
    spec = ServiceSpec(
        app_id=app_id,
        app_name=f"app{app_id}",
        service_id=7,
        service_name=name,
        image=image,
        **fields,
    )
    return replace(spec, config_hash=config_hash(spec))


def inspect(ref: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(docker("inspect", ref).stdout)[0]
    return data


def manifest_layers(url: str) -> list[str]:
    request = urllib.request.Request(
        url, headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return [layer["digest"] for layer in json.load(resp)["layers"]]


def sh(container: str, script: str, check: bool = True) -> str:
    return docker("exec", container, "sh", "-c", script, check=check).stdout


@pytest.fixture
async def engine(docker_clean: None) -> AsyncIterator[DockerEngine]:
    async with DockerEngine(device_uuid=DEVICE) as eng:
        yield eng


async def pulled(engine: DockerEngine, *refs: str) -> None:
    for ref in refs:
        await engine.pull_image(ref)


# -- connection ---------------------------------------------------------------------------


async def test_unreachable_daemon_raises_engine_unavailable_and_ping_is_false(
    tmp_path: Path,
) -> None:
    async with DockerEngine(f"unix://{tmp_path}/no-docker.sock", device_uuid=DEVICE) as eng:
        assert await eng.ping() is False
        with pytest.raises(EngineUnavailable):
            await eng.snapshot()
        with pytest.raises(EngineUnavailable):
            await eng.pull_image("busybox:latest")


async def test_ping_is_true_for_the_real_daemon(engine: DockerEngine) -> None:
    assert await engine.ping() is True


# -- images -------------------------------------------------------------------------------


async def test_pull_fetches_a_registry_image_with_port_in_host(
    engine: DockerEngine, images: ImageSet
) -> None:
    dockerkit.remove_local_image(images.v2)
    await engine.pull_image(images.v2)  # "127.0.0.1:<port>/repo:v2": the host has a colon
    assert dockerkit.image_present(images.v2)
    assert images.v2 in (await engine.snapshot()).images


async def test_pull_of_a_missing_tag_raises_image_pull_error_manifest_unknown(
    engine: DockerEngine, images: ImageSet
) -> None:
    with pytest.raises(ImagePullError, match="manifest unknown"):
        await engine.pull_image(images.missing)


async def test_pull_detects_an_error_reported_inside_the_progress_stream(
    engine: DockerEngine, images: ImageSet
) -> None:
    # A manifest whose layer blob is gone: the engine answers 200 and fails mid-stream.
    await pulled(engine, images.v1)
    builder = docker("create", "--label", MANAGED_LABEL, images.v1).stdout.strip()
    docker("cp", "/etc/hostname", f"{builder}:/etc/extra-layer")
    broken = f"{images.registry.host}/iotistic-test/broken:v1"
    docker("commit", builder, broken)
    dockerkit.push_image(broken)
    dockerkit.remove_local_image(broken)
    top_layer = manifest_layers(f"{images.registry.url}/v2/iotistic-test/broken/manifests/v1")[-1]
    blob_dir = images.registry.workdir / "storage/docker/registry/v2/blobs/sha256"
    blobs = list(blob_dir.glob(f"*/{top_layer.removeprefix('sha256:')}/data"))
    assert len(blobs) == 1, "the committed layer's blob is in the registry storage"
    blobs[0].unlink()

    with pytest.raises(ImagePullError) as caught:
        await engine.pull_image(broken)
    assert "unknown blob" in str(caught.value)
    # Reported in the 200 stream (status 0), not as an HTTP error status.
    assert getattr(caught.value.__cause__, "status", 0) == 0
    assert not dockerkit.image_present(broken)


async def test_remove_image_ignores_a_missing_image_and_refuses_one_in_use(
    engine: DockerEngine, images: ImageSet
) -> None:
    await engine.remove_image(images.missing)  # never pulled: fine
    await pulled(engine, images.v1)
    await engine.start_service(service("inuse", images.v1))
    with pytest.raises(EngineError, match="conflict"):
        await engine.remove_image(images.v1)
    assert dockerkit.image_present(images.v1)


# -- networks and volumes -----------------------------------------------------------------


async def test_networks_and_volumes_are_labelled_idempotent_and_listed(
    engine: DockerEngine,
) -> None:
    for _ in range(2):
        await engine.create_network(f"{APP}_front", APP)
        await engine.create_volume(f"{APP}_data", APP)
    assert len(docker("network", "ls", "-q", "--filter", f"name=^{APP}_front$").stdout.split()) == 1
    labels = inspect(f"{APP}_front")["Labels"]
    mine = {LABEL_MANAGED: "true", LABEL_DEVICE_UUID: DEVICE, LABEL_APP_ID: str(APP)}
    assert labels == mine
    assert inspect(f"{APP}_front")["Driver"] == "bridge"
    volume = json.loads(docker("volume", "inspect", f"{APP}_data").stdout)[0]
    assert volume["Labels"] == mine

    snap = await engine.snapshot()
    assert snap.networks.get(f"{APP}_front") == APP
    assert snap.volumes.get(f"{APP}_data") == APP
    assert "bridge" not in snap.networks  # unmanaged networks are not the agent's

    for _ in range(2):
        await engine.remove_network(f"{APP}_front")
        await engine.remove_volume(f"{APP}_data")
    snap = await engine.snapshot()
    assert f"{APP}_front" not in snap.networks
    assert f"{APP}_data" not in snap.volumes


async def test_an_unmanaged_volume_or_network_with_the_name_is_not_adopted(
    engine: DockerEngine,
) -> None:
    docker("volume", "create", f"{APP}_foreign")
    docker("network", "create", f"{APP}_foreign")
    try:
        with pytest.raises(EngineError, match="not managed"):
            await engine.create_volume(f"{APP}_foreign", APP)
        with pytest.raises(EngineError, match="not managed"):
            await engine.create_network(f"{APP}_foreign", APP)
    finally:
        docker("volume", "rm", f"{APP}_foreign", check=False)
        docker("network", "rm", f"{APP}_foreign", check=False)


async def test_another_devices_volume_and_network_are_neither_listed_nor_taken(
    engine: DockerEngine,
) -> None:
    async with DockerEngine(device_uuid="another-device") as other:
        await other.create_volume(f"{APP}_data", APP)
        await other.create_network(f"{APP}_front", APP)
    snap = await engine.snapshot()
    assert f"{APP}_data" not in snap.volumes and f"{APP}_front" not in snap.networks
    with pytest.raises(EngineError, match="belongs to another device"):
        await engine.create_volume(f"{APP}_data", APP)
    with pytest.raises(EngineError, match="belongs to another device"):
        await engine.create_network(f"{APP}_front", APP)


# -- start_service ------------------------------------------------------------------------


async def test_start_service_creates_a_labelled_container_and_is_idempotent(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.v1)
    spec = service(
        "worker",
        images.v1,
        environment=(("GREETING", "hello world"), ("MODE", "test")),
        labels=(("com.example.team", "edge"),),
        restart="on-failure:3",
        nano_cpus=500_000_000,
        memory_bytes=64 * MiB,
        memory_reservation_bytes=32 * MiB,
        working_dir="/tmp",
        hostname="worker-host",
        cap_add=("NET_ADMIN",),
        tmpfs=(("/scratch", "size=1m"),),
        stop_grace_s=3.0,
    )
    first = await engine.start_service(spec)
    second = await engine.start_service(spec)
    assert first == second
    ids = docker(
        "ps", "-aq", "--no-trunc", "--filter", f"name={spec.container_name}"
    ).stdout.split()
    assert ids == [first]

    data = inspect(first)
    assert data["Name"] == f"/{spec.container_name}"
    assert data["State"]["Running"] is True
    assert data["Config"]["Labels"] == {
        "com.example.team": "edge",
        LABEL_MANAGED: "true",
        LABEL_DEVICE_UUID: DEVICE,
        LABEL_APP_ID: str(APP),
        LABEL_APP_NAME: f"app{APP}",
        LABEL_SERVICE_ID: "7",
        LABEL_SERVICE_NAME: "worker",
        LABEL_CONFIG_HASH: spec.config_hash,
    }
    assert {"GREETING=hello world", "MODE=test"} <= set(data["Config"]["Env"])
    assert data["Config"]["WorkingDir"] == "/tmp"
    assert data["Config"]["Hostname"] == "worker-host"
    assert data["Config"]["StopTimeout"] == 3
    host = data["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"]) == (
        500_000_000,
        64 * MiB,
        32 * MiB,
    )
    assert host["CapAdd"] == ["NET_ADMIN"]
    assert host["Tmpfs"] == {"/scratch": "size=1m"}
    assert "tmpfs /scratch" in sh(first, "cat /proc/mounts")
    assert sh(first, 'echo "$GREETING"').strip() == "hello world"


async def test_snapshot_reflects_the_running_container(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.v1)
    spec = service("worker", images.v1, restart="unless-stopped", memory_bytes=48 * MiB)
    cid = await engine.start_service(spec)
    # A container with the managed label but without the agent's other labels is ignored.
    docker("run", "-d", "--label", MANAGED_LABEL, images.v1)

    snap = await engine.snapshot()
    assert [c.id for c in snap.containers] == [cid]
    info = snap.containers[0]
    assert info.name == spec.container_name
    assert (info.app_id, info.service_id, info.service_name) == (APP, 7, "worker")
    assert info.config_hash == spec.config_hash
    assert info.image == images.v1
    assert info.status == "running"
    assert info.restart == "unless-stopped"
    assert (info.nano_cpus, info.memory_bytes, info.memory_reservation_bytes) == (
        None,
        48 * MiB,
        None,
    )
    assert info.health is None
    assert 0 < info.created_at <= info.started_at
    assert images.v1 in snap.images

    await engine.stop_container(cid, 5)
    stopped = (await engine.snapshot()).containers[0]
    assert stopped.status == "exited"
    assert stopped.exit_code == 0


async def test_snapshot_reports_zero_start_time_for_a_never_started_container(
    engine: DockerEngine, images: ImageSet
) -> None:
    # Port 0 is refused at start, after create: the container stays "created".
    await pulled(engine, images.http)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        spec = service("web", images.http, ports=(PortBinding(80, "tcp", "127.0.0.1", port),))
        with pytest.raises(StartError):
            await engine.start_service(spec)
    finally:
        holder.close()
    info = (await engine.snapshot()).containers[0]
    assert info.status == "created"
    assert info.started_at == 0.0
    assert info.created_at > 0


async def test_published_port_serves_the_http_image_page(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.http)
    port = dockerkit.free_port()
    spec = service("web", images.http, ports=(PortBinding(80, "tcp", "127.0.0.1", port),))
    cid = await engine.start_service(spec)
    status, body = wait_for(
        lambda: dockerkit.http_get(f"http://127.0.0.1:{port}/"),
        timeout=15,
        message="httpd answers on the published port",
        ignore=(OSError,),
    )
    assert (status, body) == (200, images.index_html)
    bindings = inspect(cid)["HostConfig"]["PortBindings"]
    assert bindings == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}


async def test_start_with_a_port_already_allocated_raises_start_error_and_can_be_retried(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.http)
    port = dockerkit.free_port()
    taken = (PortBinding(80, "tcp", "127.0.0.1", port),)
    await engine.start_service(service("first", images.http, ports=taken))
    second = service("second", images.http, ports=taken)
    with pytest.raises(StartError, match="port is already allocated") as caught:
        await engine.start_service(second)
    assert "was created but failed to start" in str(caught.value)
    left = docker("ps", "-aq", "--no-trunc", "--filter", f"name={second.container_name}")
    assert len(left.stdout.split()) == 1, "the created container is kept for the retry"

    # The retry reuses the kept container once the port is free again.
    first_id = (await engine.snapshot()).containers_of((APP, "first"))[0].id
    await engine.stop_container(first_id, 5)
    await engine.remove_container(first_id)
    assert await engine.start_service(second) == left.stdout.strip()


async def test_start_without_the_image_raises_start_error_instead_of_pulling(
    engine: DockerEngine, images: ImageSet
) -> None:
    dockerkit.remove_local_image(images.crash)
    with pytest.raises(StartError, match="not present"):
        await engine.start_service(service("absent", images.crash))
    assert not dockerkit.image_present(images.crash)


async def test_a_foreign_container_with_the_name_is_not_reused(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.v1)
    spec = service("squat", images.v1)
    docker("create", "--name", spec.container_name, images.v1)
    try:
        with pytest.raises(StartError, match="is not managed by the agent"):
            await engine.start_service(spec)
    finally:
        docker("rm", "-f", spec.container_name)


async def test_another_devices_container_with_the_name_is_not_reused(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.v1)
    spec = service("shared", images.v1)
    async with DockerEngine(device_uuid="another-device") as other:
        theirs = await other.start_service(spec)  # the same target on another agent
    with pytest.raises(StartError, match=r"belongs to another device \(another-device\)"):
        await engine.start_service(spec)
    assert [c.id for c in (await engine.snapshot()).containers] == []
    assert inspect(theirs)["State"]["Running"] is True


# -- mounts -------------------------------------------------------------------------------


async def test_named_volume_data_survives_remove_and_recreate(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.v1)
    volume = f"{APP}_data"
    await engine.create_volume(volume, APP)
    spec = service(
        "db",
        images.v1,
        mounts=(Mount("volume", volume, "/data", False), Mount("anonymous", "", "/cache", False)),
    )
    cid = await engine.start_service(spec)
    sh(cid, "echo persisted > /data/file")
    anonymous = [m["Name"] for m in inspect(cid)["Mounts"] if m["Destination"] == "/cache"]

    await engine.stop_container(cid, 5)
    await engine.remove_container(cid)
    await engine.remove_container(cid)  # already gone: fine
    # The anonymous volume went with its container; the named one stays.
    assert docker("volume", "inspect", anonymous[0], check=False).returncode != 0
    assert volume in (await engine.snapshot()).volumes

    again = await engine.start_service(spec)
    assert again != cid
    assert sh(again, "cat /data/file").strip() == "persisted"


async def test_bind_mounts_are_created_if_missing_and_read_only_is_enforced(
    engine: DockerEngine, images: ImageSet, tmp_path: Path
) -> None:
    await pulled(engine, images.v1)
    host_dir = tmp_path / "not-yet"
    spec = service(
        "binder",
        images.v1,
        mounts=(
            Mount("bind", str(host_dir), "/host", False),
            Mount("bind", str(tmp_path), "/ro", True),
        ),
    )
    cid = await engine.start_service(spec)
    assert host_dir.is_dir()
    sh(cid, "echo hi > /host/f")
    assert (host_dir / "f").read_text() == "hi\n"
    out = docker("exec", cid, "sh", "-c", "echo x > /ro/g", check=False)
    assert out.returncode != 0
    assert "Read-only" in out.stderr


# -- networks -----------------------------------------------------------------------------


async def test_two_networks_with_service_name_aliases_resolve_between_containers(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.http, images.v1)
    front, back = f"{APP}_front", f"{APP}_back"
    await engine.create_network(front, APP)
    await engine.create_network(back, APP)
    web = service("web", images.http, networks=((back, ("api",)), (front, ("www",))))
    client = service("client", images.v1, networks=((front, ()),))
    web_id = await engine.start_service(web)
    client_id = await engine.start_service(client)

    attached = inspect(web_id)["NetworkSettings"]["Networks"]
    assert set(attached) == {front, back}
    assert {"web", "api"} <= set(attached[back]["Aliases"])
    assert {"web", "www"} <= set(attached[front]["Aliases"])

    # Busybox-static wget crashes with -T: bound it with the timeout applet instead.
    def fetch(host: str) -> str:
        return sh(client_id, f"timeout 5 wget -q -O- http://{host}/", check=False)

    for host in ("web", "www"):
        body = wait_for(lambda h=host: fetch(h), timeout=15, message=f"client reaches {host}")
        assert body == images.index_html
    # "api" is an alias on the other network only: the client cannot resolve it.
    assert fetch("api") == ""


async def test_network_mode_service_shares_the_namespace_of_the_running_service(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.http, images.v1)
    sidecar = service("sidecar", images.v1, network_mode="service:web")
    with pytest.raises(StartError, match="not running"):
        await engine.start_service(sidecar)

    web_id = await engine.start_service(service("web", images.http))
    sidecar_id = await engine.start_service(sidecar)
    assert inspect(sidecar_id)["HostConfig"]["NetworkMode"] == f"container:{web_id}"
    body = wait_for(
        lambda: sh(sidecar_id, "timeout 5 wget -q -O- http://127.0.0.1/", check=False),
        timeout=15,
        message="the sidecar reaches httpd on localhost",
    )
    assert body == images.index_html

    # The shared service is replaced: a stopped sidecar is recreated on the new namespace.
    await engine.stop_container(sidecar_id, 5)
    await engine.remove_container(web_id)
    new_web_id = await engine.start_service(service("web", images.http))
    new_sidecar_id = await engine.start_service(sidecar)
    assert new_sidecar_id != sidecar_id
    assert inspect(new_sidecar_id)["HostConfig"]["NetworkMode"] == f"container:{new_web_id}"
    assert inspect(new_sidecar_id)["State"]["Running"] is True


# -- pause, stop, update ------------------------------------------------------------------


async def test_pause_and_unpause_keep_the_container_and_are_idempotent(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.v1)
    cid = await engine.start_service(service("worker", images.v1))
    await engine.pause_container(cid)
    await engine.pause_container(cid)
    assert (await engine.snapshot()).containers[0].status == "paused"
    assert await engine.start_service(service("worker", images.v1)) == cid  # no unpause
    await engine.unpause_container(cid)
    await engine.unpause_container(cid)
    info = (await engine.snapshot()).containers[0]
    assert (info.id, info.status) == (cid, "running")


async def test_stop_of_a_paused_container_stops_it(engine: DockerEngine, images: ImageSet) -> None:
    await pulled(engine, images.v1)
    cid = await engine.start_service(service("worker", images.v1))
    await engine.pause_container(cid)
    await engine.stop_container(cid, 0.2)  # rounded up to a whole second (0 s stays 0)
    await engine.stop_container(cid, 5)  # already stopped: fine
    state = inspect(cid)["State"]
    assert (state["Status"], state["Paused"]) == ("exited", False)
    await engine.stop_container("0" * 64, 1)  # unknown: fine
    await engine.remove_container("0" * 64)


async def test_update_changes_restart_policy_and_memory_in_place(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.v1)
    spec = service("worker", images.v1, restart="always", memory_bytes=64 * MiB)
    cid = await engine.start_service(spec)

    for memory in (32 * MiB, 128 * MiB):  # lower, then raise above the old swap limit
        await engine.update_container(
            cid, replace(spec, restart="on-failure:2", memory_bytes=memory, nano_cpus=250_000_000)
        )
        info = (await engine.snapshot()).containers[0]
        assert (info.id, info.restart, info.memory_bytes, info.nano_cpus) == (
            cid,
            "on-failure:2",
            memory,
            250_000_000,
        )
        assert info.status == "running"

    # Docker 20.10 ignores 0 in an update: removing a limit needs a new container.
    with pytest.raises(EngineError, match="cannot remove the NanoCpus, Memory limit"):
        await engine.update_container(cid, replace(spec, restart="no", memory_bytes=None))
    info = (await engine.snapshot()).containers[0]
    assert (info.restart, info.memory_bytes) == ("no", 128 * MiB)


async def test_a_crashing_container_is_reported_exited_with_its_exit_code(
    engine: DockerEngine, images: ImageSet
) -> None:
    await pulled(engine, images.crash)
    cid = await engine.start_service(service("crash", images.crash, restart="no"))

    async def exited() -> bool:
        info = (await engine.snapshot()).containers[0]
        return info.status == "exited" and info.exit_code == 3

    await wait_for_async(exited, timeout=15, message="the crash image exits with 3")
    assert (await engine.snapshot()).containers[0].id == cid
