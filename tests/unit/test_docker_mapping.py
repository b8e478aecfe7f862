"""The pure ServiceSpec <-> Docker Engine API mapping (no engine needed)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from iotistic_agent.engine.docker_mapping import (
    container_create_body,
    container_info,
    image_names,
    labelled_app_ids,
    limits_not_cleared,
    parse_device,
    parse_docker_time,
    restart_from_policy,
    restart_policy,
    split_image_ref,
    update_body,
)
from iotistic_agent.engine.ownership import Ownership
from iotistic_agent.orchestrator.model import (
    LABEL_APP_ID,
    LABEL_APP_NAME,
    LABEL_CONFIG_HASH,
    LABEL_DEPENDS_ON,
    LABEL_DEVICE_UUID,
    LABEL_MANAGED,
    LABEL_SERVICE_ID,
    LABEL_SERVICE_NAME,
    Healthcheck,
    Mount,
    PortBinding,
    ServiceSpec,
)

BASE = ServiceSpec(
    app_id=1001,
    app_name="demo",
    service_id=3,
    service_name="web",
    image="127.0.0.1:5000/demo/web:v1",
    config_hash="abc123",
)


OWNER = Ownership("dev-1")


def body(resolved: str | None = None, **fields: Any) -> dict[str, Any]:
    return container_create_body(replace(BASE, **fields), resolved, OWNER)


# -- image references ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("busybox:latest", ("busybox", "latest")),
        ("busybox", ("busybox", None)),
        ("library/busybox:1.36", ("library/busybox", "1.36")),
        ("127.0.0.1:5000/a/b:v1", ("127.0.0.1:5000/a/b", "v1")),
        ("127.0.0.1:5000/a/b", ("127.0.0.1:5000/a/b", None)),
        ("registry:5000/b@sha256:" + "a" * 64, ("registry:5000/b@sha256:" + "a" * 64, None)),
    ],
)
def test_split_image_ref_only_splits_a_tag_in_the_last_segment(
    ref: str, expected: tuple[str, str | None]
) -> None:
    assert split_image_ref(ref) == expected


# -- restart policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "policy"),
    [
        ("always", {"Name": "always", "MaximumRetryCount": 0}),
        ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
        ("no", {"Name": "no", "MaximumRetryCount": 0}),
        ("", {"Name": "no", "MaximumRetryCount": 0}),
        ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
        ("on-failure:5", {"Name": "on-failure", "MaximumRetryCount": 5}),
    ],
)
def test_restart_policy_maps_compose_values(restart: str, policy: dict[str, Any]) -> None:
    assert restart_policy(restart) == policy


@pytest.mark.parametrize(
    ("policy", "restart"),
    [
        ({"Name": "on-failure", "MaximumRetryCount": 3}, "on-failure:3"),
        ({"Name": "on-failure", "MaximumRetryCount": 0}, "on-failure"),
        ({"Name": "", "MaximumRetryCount": 0}, "no"),
        (None, "no"),
        ({"Name": "always", "MaximumRetryCount": 0}, "always"),
    ],
)
def test_restart_from_policy_round_trips_to_compose_values(
    policy: dict[str, Any] | None, restart: str
) -> None:
    assert restart_from_policy(policy) == restart


# -- devices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "mapping"),
    [
        ("/dev/ttyUSB0", ("/dev/ttyUSB0", "/dev/ttyUSB0", "rwm")),
        ("/dev/ttyUSB0:/dev/serial", ("/dev/ttyUSB0", "/dev/serial", "rwm")),
        ("/dev/ttyUSB0:r", ("/dev/ttyUSB0", "/dev/ttyUSB0", "r")),
        ("/dev/sda:/dev/xvda:rw", ("/dev/sda", "/dev/xvda", "rw")),
    ],
)
def test_parse_device_reads_like_the_docker_cli(device: str, mapping: tuple[str, str, str]) -> None:
    assert parse_device(device) == dict(
        zip(("PathOnHost", "PathInContainer", "CgroupPermissions"), mapping, strict=True)
    )


# -- create body --------------------------------------------------------------------------


def test_minimal_spec_gets_image_labels_restart_and_no_optional_keys() -> None:
    b = body()
    assert b["Image"] == "127.0.0.1:5000/demo/web:v1"
    assert b["Env"] == []
    assert b["Labels"] == {
        LABEL_MANAGED: "true",
        LABEL_DEVICE_UUID: "dev-1",
        LABEL_APP_ID: "1001",
        LABEL_APP_NAME: "demo",
        LABEL_SERVICE_ID: "3",
        LABEL_SERVICE_NAME: "web",
        LABEL_CONFIG_HASH: "abc123",
    }
    assert b["StopTimeout"] == 10
    assert b["HostConfig"] == {
        "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
        "Privileged": False,
    }
    for key in ("Cmd", "Entrypoint", "User", "WorkingDir", "Hostname", "StopSignal"):
        assert key not in b, "unset fields keep the image's defaults"
    assert "Healthcheck" not in b
    assert "NetworkingConfig" not in b


def test_every_service_field_is_mapped() -> None:
    b = body(
        command=("sh", "-c", "echo hi"),
        entrypoint=("/bin/tini", "--"),
        environment=(("A", "1"), ("B", "x=y")),
        labels=(("com.example", "v"), (LABEL_MANAGED, "false")),
        user="1000:1000",
        working_dir="/app",
        privileged=True,
        devices=("/dev/i2c-1",),
        cap_add=("NET_ADMIN", "SYS_TIME"),
        cap_drop=("MKNOD",),
        tmpfs=(("/run", ""), ("/tmp", "size=64m")),
        hostname="web-1",
        stop_signal="SIGINT",
        stop_grace_s=2.5,
        restart="on-failure:4",
        nano_cpus=1_500_000_000,
        memory_bytes=128 * 2**20,
        memory_reservation_bytes=64 * 2**20,
        healthcheck=Healthcheck(("CMD-SHELL", "wget -q -O- localhost"), 30 * 10**9, 10**9, None, 3),
    )
    host = b["HostConfig"]
    assert b["Cmd"] == ["sh", "-c", "echo hi"]
    assert b["Entrypoint"] == ["/bin/tini", "--"]
    assert b["Env"] == ["A=1", "B=x=y"]
    assert b["Labels"]["com.example"] == "v"
    assert b["Labels"][LABEL_MANAGED] == "true", "the agent's labels win over the user's"
    assert (b["User"], b["WorkingDir"], b["Hostname"]) == ("1000:1000", "/app", "web-1")
    assert (b["StopSignal"], b["StopTimeout"]) == ("SIGINT", 3)
    assert b["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q -O- localhost"],
        "Interval": 30_000_000_000,
        "Timeout": 1_000_000_000,
        "Retries": 3,
    }
    assert host["Privileged"] is True
    assert host["Devices"] == [
        {"PathOnHost": "/dev/i2c-1", "PathInContainer": "/dev/i2c-1", "CgroupPermissions": "rwm"}
    ]
    assert (host["CapAdd"], host["CapDrop"]) == (["NET_ADMIN", "SYS_TIME"], ["MKNOD"])
    assert host["Tmpfs"] == {"/run": "", "/tmp": "size=64m"}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 4}
    assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"]) == (
        1_500_000_000,
        128 * 2**20,
        64 * 2**20,
    )
    assert host["MemorySwap"] == -1


def test_depends_on_is_labelled_so_a_removed_service_still_stops_in_order() -> None:
    assert body(depends_on=("cache", "db"))["Labels"][LABEL_DEPENDS_ON] == "cache,db"
    user_label = body(labels=((LABEL_DEPENDS_ON, "forged"),))["Labels"]
    assert LABEL_DEPENDS_ON not in user_label, "only the agent writes its own labels"


def test_a_grace_period_of_zero_is_kept() -> None:
    assert body(stop_grace_s=0.0)["StopTimeout"] == 0


def test_empty_entrypoint_clears_the_image_entrypoint() -> None:
    assert body(entrypoint=())["Entrypoint"] == []


def test_disabled_healthcheck_is_test_none() -> None:
    hc = Healthcheck(("NONE",), None, None, None, None)
    assert body(healthcheck=hc)["Healthcheck"] == {"Test": ["NONE"]}


def test_ports_are_exposed_and_published_with_host_ip_and_protocol() -> None:
    b = body(
        ports=(
            PortBinding(53, "udp", "", 5353),
            PortBinding(80, "tcp", "127.0.0.1", 8080),
            PortBinding(80, "tcp", "", 8081),
            PortBinding(9000, "tcp", "", None),
        )
    )
    assert b["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}, "9000/tcp": {}}
    assert b["HostConfig"]["PortBindings"] == {
        "53/udp": [{"HostIp": "", "HostPort": "5353"}],
        "80/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": "8080"},
            {"HostIp": "", "HostPort": "8081"},
        ],
        "9000/tcp": [{"HostIp": "", "HostPort": ""}],
    }


def test_volumes_are_mounts_and_binds_are_binds() -> None:
    b = body(
        mounts=(
            Mount("anonymous", "", "/cache", False),
            Mount("volume", "1001_data", "/data", False),
            Mount("bind", "/etc/ssl", "/certs", True),
            Mount("bind", "/srv/app", "/srv", False),
        )
    )
    assert b["HostConfig"]["Mounts"] == [
        {"Type": "volume", "Target": "/cache", "ReadOnly": False},
        {"Type": "volume", "Source": "1001_data", "Target": "/data", "ReadOnly": False},
    ]
    # Binds, so that a missing host directory is created as compose does.
    assert b["HostConfig"]["Binds"] == ["/etc/ssl:/certs:ro", "/srv/app:/srv"]


def test_unknown_mount_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mount kind"):
        body(mounts=(Mount("npipe", "x", "/x", False),))


def test_only_the_first_network_is_given_at_create_with_service_name_aliases() -> None:
    b = body(networks=(("1001_back", ("api", "web")), ("1001_front", ())))
    assert b["HostConfig"]["NetworkMode"] == "1001_back"
    assert b["NetworkingConfig"] == {
        "EndpointsConfig": {"1001_back": {"Aliases": ["web", "api"]}},
    }


@pytest.mark.parametrize("mode", ["host", "none", "bridge", "container:abc"])
def test_network_mode_passes_through(mode: str) -> None:
    b = body(network_mode=mode)
    assert b["HostConfig"]["NetworkMode"] == mode
    assert "NetworkingConfig" not in b


def test_service_network_mode_uses_the_resolved_container() -> None:
    b = body("container:0123", network_mode="service:db")
    assert b["HostConfig"]["NetworkMode"] == "container:0123"
    with pytest.raises(ValueError, match="must be resolved"):
        body(network_mode="service:db")


# -- update body --------------------------------------------------------------------------


def test_update_body_sets_limits_and_unlimited_swap() -> None:
    spec = replace(BASE, restart="no", memory_bytes=32 * 2**20)
    assert update_body(spec) == {
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "NanoCpus": 0,
        "Memory": 32 * 2**20,
        "MemorySwap": -1,
        "MemoryReservation": 0,
    }


def test_update_body_without_memory_sends_no_swap() -> None:
    assert "MemorySwap" not in update_body(replace(BASE, nano_cpus=10**9))


def test_limits_not_cleared_lists_set_limits_the_spec_removes() -> None:
    host = {"NanoCpus": 10**9, "Memory": 2**26, "MemoryReservation": 0}
    assert limits_not_cleared(BASE, host) == ["NanoCpus", "Memory"]
    assert limits_not_cleared(replace(BASE, nano_cpus=1, memory_bytes=2), host) == []


# -- reading the engine -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0001-01-01T00:00:00Z", 0.0),
        ("", 0.0),
        (None, 0.0),
        ("1970-01-01T00:00:10Z", 10.0),
        ("1970-01-01T00:00:10.123456789Z", 10.123456),
        ("1970-01-01T01:00:10+01:00", 10.0),
        ("garbage", 0.0),
    ],
)
def test_parse_docker_time(value: str | None, expected: float) -> None:
    assert parse_docker_time(value) == pytest.approx(expected)


def inspect_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "Id": "c0ffee",
        "Name": "/web_1001_abc123",
        "Created": "2024-01-01T00:00:00.5Z",
        "RestartCount": 2,
        "Config": {
            "Image": "reg/web:v1",
            "Labels": {
                LABEL_MANAGED: "true",
                LABEL_DEVICE_UUID: "dev-1",
                LABEL_APP_ID: "1001",
                LABEL_APP_NAME: "demo",
                LABEL_SERVICE_ID: "3",
                LABEL_SERVICE_NAME: "web",
                LABEL_CONFIG_HASH: "abc123",
            },
        },
        "State": {
            "Status": "running",
            "StartedAt": "2024-01-01T00:00:01Z",
            "ExitCode": 0,
            "Health": {"Status": "healthy"},
        },
        "HostConfig": {
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5},
            "NanoCpus": 0,
            "Memory": 64 * 2**20,
            "MemoryReservation": 0,
        },
    }
    data.update(overrides)
    return data


def test_container_info_reads_state_labels_and_limits() -> None:
    info = container_info(inspect_data(), OWNER)
    assert info is not None
    assert (info.id, info.name, info.image) == ("c0ffee", "web_1001_abc123", "reg/web:v1")
    assert (info.app_id, info.service_id, info.service_name) == (1001, 3, "web")
    assert info.config_hash == "abc123"
    assert (info.status, info.health, info.restart_count) == ("running", "healthy", 2)
    assert info.restart == "on-failure:5"
    assert (info.nano_cpus, info.memory_bytes, info.memory_reservation_bytes) == (
        None,
        64 * 2**20,
        None,
    )
    assert info.started_at - info.created_at == pytest.approx(0.5)


def test_container_info_reads_back_the_grace_period_and_dependencies_set_at_create() -> None:
    data = inspect_data()
    data["Config"]["StopTimeout"] = 3
    data["Config"]["Labels"][LABEL_DEPENDS_ON] = "cache,db"
    info = container_info(data, OWNER)
    assert info is not None
    assert (info.stop_grace_s, info.depends_on) == (3.0, ("cache", "db"))


@pytest.mark.parametrize("stop_timeout", [None, "x", -1])
def test_container_info_without_a_readable_stop_timeout_has_the_engine_default(
    stop_timeout: object,
) -> None:
    data = inspect_data()
    if stop_timeout is not None:
        data["Config"]["StopTimeout"] = stop_timeout
    info = container_info(data, OWNER)
    assert info is not None
    assert (info.stop_grace_s, info.depends_on) == (10.0, ())


def test_container_info_of_a_never_started_container_has_zero_start_time() -> None:
    state = {"Status": "created", "StartedAt": "0001-01-01T00:00:00Z", "ExitCode": 0}
    info = container_info(inspect_data(State=state), OWNER)
    assert info is not None
    assert (info.status, info.started_at, info.health) == ("created", 0.0, None)


@pytest.mark.parametrize(
    "drop", [LABEL_MANAGED, LABEL_APP_ID, LABEL_SERVICE_ID, LABEL_SERVICE_NAME, LABEL_CONFIG_HASH]
)
def test_container_info_ignores_a_container_missing_a_required_label(drop: str) -> None:
    data = inspect_data()
    del data["Config"]["Labels"][drop]
    assert container_info(data, OWNER) is None


def test_container_info_ignores_an_unreadable_app_id() -> None:
    data = inspect_data()
    data["Config"]["Labels"][LABEL_APP_ID] = "not-a-number"
    assert container_info(data, OWNER) is None


def test_image_names_collects_tags_and_digests_without_placeholders() -> None:
    listed = [
        {"RepoTags": ["a:1", "a:latest"], "RepoDigests": ["a@sha256:1"]},
        {"RepoTags": ["<none>:<none>"], "RepoDigests": ["<none>@<none>"]},
        {"RepoTags": None, "RepoDigests": None},
    ]
    assert image_names(listed) == {"a:1", "a:latest", "a@sha256:1"}


def test_labelled_app_ids_maps_this_devices_objects_to_their_app() -> None:
    mine = {LABEL_MANAGED: "true", LABEL_DEVICE_UUID: "dev-1"}
    objects = [
        {"Name": "1001_default", "Labels": {**mine, LABEL_APP_ID: "1001"}},
        {"Name": "bridge", "Labels": {}},
        {"Name": "foreign", "Labels": None},
        {"Name": "broken", "Labels": {**mine, LABEL_APP_ID: "x"}},
        {"Name": "theirs", "Labels": {**mine, LABEL_DEVICE_UUID: "dev-2", LABEL_APP_ID: "7"}},
        {"Name": "1002_old", "Labels": {LABEL_MANAGED: "true", LABEL_APP_ID: "1002"}},
    ]
    assert labelled_app_ids(objects, OWNER) == {"1001_default": 1001}
    adopting = Ownership("dev-1", adopt_unlabelled=True)
    assert labelled_app_ids(objects, adopting) == {"1001_default": 1001, "1002_old": 1002}


def test_a_container_of_another_device_is_not_this_agents() -> None:
    theirs = inspect_data()
    theirs["Config"]["Labels"][LABEL_DEVICE_UUID] = "dev-2"
    assert container_info(theirs, OWNER) is None
    assert container_info(theirs, Ownership("dev-1", adopt_unlabelled=True)) is None


def test_a_container_of_an_earlier_release_is_adopted_only_by_the_agent_that_made_it() -> None:
    legacy = inspect_data()
    del legacy["Config"]["Labels"][LABEL_DEVICE_UUID]
    assert container_info(legacy, OWNER) is None
    adopted = container_info(legacy, Ownership("dev-1", adopt_unlabelled=True))
    assert adopted is not None and adopted.id == "c0ffee"


@pytest.mark.parametrize(
    ("labels", "refusal"),
    [
        ({LABEL_MANAGED: "true", LABEL_DEVICE_UUID: "dev-1"}, None),
        ({LABEL_MANAGED: "true", LABEL_DEVICE_UUID: "dev-2"}, "belongs to another device (dev-2)"),
        ({LABEL_MANAGED: "true"}, "was made by an earlier release of another agent"),
        ({LABEL_DEVICE_UUID: "dev-1"}, "is not managed by the agent"),
        (None, "is not managed by the agent"),
    ],
)
def test_ownership_says_why_an_object_is_not_this_agents(
    labels: dict[str, str] | None, refusal: str | None
) -> None:
    found = OWNER.refusal(labels)
    assert (found is None) == (refusal is None)
    if refusal is not None:
        assert found is not None and found.startswith(refusal)
