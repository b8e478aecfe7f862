"""ServiceConfig and its nested models: normalisation and strict validation."""

from __future__ import annotations

from typing import Any

import pytest
from iotistic_contracts import (
    Healthcheck,
    NetworkAttachment,
    PortMapping,
    Resources,
    ResourceValues,
    ServiceConfig,
    VolumeMount,
)
from pydantic import ValidationError


def config(**fields: Any) -> ServiceConfig:
    return ServiceConfig.model_validate(fields)


def rejected(fields: dict[str, Any]) -> str:
    """Validate ``fields`` as a config that must fail; return the error text."""
    with pytest.raises(ValidationError) as excinfo:
        ServiceConfig.model_validate(fields)
    return str(excinfo.value)


def test_empty_config_has_empty_defaults() -> None:
    empty = ServiceConfig()
    assert empty.environment == {}
    assert empty.labels == {}
    assert empty.ports == []
    assert empty.volumes == []
    assert empty.networks == []
    assert empty.tmpfs == []
    assert empty.depends_on == []
    assert empty.privileged is False
    assert empty.image is None
    assert empty.network_aliases == {}


def test_config_is_frozen() -> None:
    with pytest.raises(ValidationError):
        ServiceConfig().image = "x"


# --- environment -------------------------------------------------------------------------------


def test_environment_dict_values_become_strings() -> None:
    raw = {"S": "x", "I": 3, "F": 1.5, "T": True, "N": False, "E": None}
    env = config(environment=raw).environment
    assert env == {"S": "x", "I": "3", "F": "1.5", "T": "true", "N": "false", "E": ""}


def test_environment_list_form_splits_on_first_equals() -> None:
    env = config(environment=["A=1", "URL=http://x/?a=b", "EMPTY=", "BARE"]).environment
    assert env == {"A": "1", "URL": "http://x/?a=b", "EMPTY": "", "BARE": ""}


def test_environment_list_and_dict_forms_are_equal_configs() -> None:
    assert config(environment=["A=1", "B=true"]) == config(environment={"A": 1, "B": True})


@pytest.mark.parametrize(
    ("environment", "reason"),
    [
        (["A=1", "A=2"], "duplicate environment variable 'A'"),
        (["=value"], "environment variable name must not be empty"),
        ({"": "x"}, "environment variable name must not be empty"),
        ({"A=B": "x"}, "must not contain '='"),
        ([5], "must be a 'KEY=value' string"),
        ({"A": [1]}, "must be a string, number, boolean or null"),
        ({"A": {"x": 1}}, "must be a string, number, boolean or null"),
        ({"A": float("nan")}, "finite number"),
        ("A=1", "expected a mapping or a list"),
    ],
)
def test_environment_rejects_bad_entries(environment: object, reason: str) -> None:
    assert reason in rejected({"environment": environment})


# --- labels ------------------------------------------------------------------------------------


def test_labels_list_form_normalises_to_dict() -> None:
    labels = config(labels=["com.example.a=1", "com.example.flag"]).labels
    assert labels == {"com.example.a": "1", "com.example.flag": ""}


def test_labels_dict_values_must_be_strings() -> None:
    assert "must have a string value" in rejected({"labels": {"a": 1}})


def test_labels_duplicate_key_in_list_form_is_rejected() -> None:
    assert "duplicate label 'a'" in rejected({"labels": ["a=1", "a=2"]})


@pytest.mark.parametrize(
    "key", ["io.iotistic.app-id", "io.iotistic.managed", "io.iotistic.service-name"]
)
def test_reserved_agent_labels_are_rejected(key: str) -> None:
    assert "is reserved for the agent" in rejected({"labels": {key: "1"}})


def test_user_settable_iotistic_labels_are_accepted() -> None:
    labels = {"io.iotistic.update-strategy": "hand-over", "io.iotistic.handover-timeout": "30s"}
    assert config(labels=labels).labels == labels


def test_update_strategy_label_with_unknown_value_is_rejected() -> None:
    text = rejected({"labels": {"io.iotistic.update-strategy": "yolo"}})
    assert "unknown value 'yolo'" in text


def test_handover_timeout_label_must_be_a_duration() -> None:
    text = rejected({"labels": ["io.iotistic.handover-timeout=soon"]})
    assert "io.iotistic.handover-timeout" in text
    assert "invalid duration 'soon'" in text


def test_label_named_like_the_prefix_but_outside_it_is_allowed() -> None:
    assert config(labels={"io.iotisticx": "1"}).labels == {"io.iotisticx": "1"}


# --- ports and volumes -------------------------------------------------------------------------


def test_ports_keep_their_spec_and_expose_parsed_mappings() -> None:
    cfg = config(ports=["80", 443, "127.0.0.1:53:53/udp"])
    assert cfg.ports == ["80", 443, "127.0.0.1:53:53/udp"]
    assert cfg.port_mappings == (
        PortMapping(None, None, 80, "tcp"),
        PortMapping(None, None, 443, "tcp"),
        PortMapping("127.0.0.1", 53, 53, "udp"),
    )


def test_invalid_port_is_reported_at_its_index() -> None:
    with pytest.raises(ValidationError) as excinfo:
        config(ports=["80", "http"])
    [error] = excinfo.value.errors()
    assert error["loc"] == ("ports", 1)
    assert "invalid port 'http'" in error["msg"]


@pytest.mark.parametrize("port", [True, 80.0, None, ["80"]])
def test_port_of_wrong_type_gives_one_clear_error(port: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        config(ports=[port])
    [error] = excinfo.value.errors()
    assert "expected a string or an integer" in error["msg"]


@pytest.mark.parametrize(
    "ports",
    [
        ["80:80", "80:81"],
        ["8080:80", "127.0.0.1:8080:81"],
        ["8000-8002:8000-8002", "8001:9000"],
    ],
)
def test_same_host_port_published_twice_is_rejected(ports: list[str]) -> None:
    assert "is already published by" in rejected({"ports": ports})


@pytest.mark.parametrize(
    "ports",
    [
        ["53:53/tcp", "53:53/udp"],
        ["127.0.0.1:80:80", "127.0.0.2:80:81"],
        ["80", "80"],
        ["127.0.0.1::80", "127.0.0.1::80"],
        ["8080:80", "8081:80"],
    ],
)
def test_non_clashing_port_publications_are_accepted(ports: list[str]) -> None:
    assert config(ports=ports).ports == ports


def test_volumes_expose_parsed_mounts() -> None:
    cfg = config(volumes=["data:/data:ro", "/srv:/srv", "/cache"])
    assert cfg.volume_mounts == (
        VolumeMount("volume", "data", "/data", True),
        VolumeMount("bind", "/srv", "/srv", False),
        VolumeMount("anonymous", None, "/cache", False),
    )


def test_invalid_volume_is_reported_at_its_index() -> None:
    with pytest.raises(ValidationError) as excinfo:
        config(volumes=["data:/data", "./rel:/x"])
    [error] = excinfo.value.errors()
    assert error["loc"] == ("volumes", 1)
    assert "relative bind path" in error["msg"]


def test_two_volumes_on_the_same_target_are_rejected() -> None:
    assert "is already mounted by" in rejected({"volumes": ["a:/data", "/host:/data/"]})


# --- networks ----------------------------------------------------------------------------------


def test_network_list_is_sorted() -> None:
    assert config(networks=["frontend", "backend"]).networks == ["backend", "frontend"]


def test_network_mapping_normalises_to_names_and_keeps_aliases() -> None:
    cfg = config(networks={"front": {"aliases": ["web", "www"]}, "back": None, "mid": {}})
    assert cfg.networks == ["back", "front", "mid"]
    assert cfg.network_aliases == {"front": ("web", "www")}


def test_network_mapping_without_aliases_equals_list_form() -> None:
    assert config(networks={"b": None, "a": {}}) == config(networks=["a", "b"])


def test_network_aliases_survive_a_dump_and_reparse() -> None:
    cfg = config(networks={"front": {"aliases": ["web"]}, "back": None})
    again = ServiceConfig.model_validate(cfg.model_dump(mode="json"))
    assert again == cfg
    assert again.network_aliases == {"front": ("web",)}


def test_configs_differing_only_in_aliases_are_not_equal() -> None:
    first = config(networks={"front": {"aliases": ["a"]}})
    second = config(networks={"front": {"aliases": ["b"]}})
    assert first != second
    assert first.model_dump(mode="json") != second.model_dump(mode="json")


@pytest.mark.parametrize(
    ("networks", "reason"),
    [
        (["a", "a"], "duplicate network 'a'"),
        (["-bad"], "invalid name '-bad'"),
        ({"front": {"aliases": ["x", "x"]}}, "duplicate alias 'x'"),
        ({"front": {"aliases": ["not valid"]}}, "invalid hostname"),
        ({"front": {"alias": ["x"]}}, "Extra inputs are not permitted"),
        ({"front": ["x"]}, "valid dictionary"),
        ("front", "valid list"),
    ],
)
def test_networks_reject_bad_input(networks: object, reason: str) -> None:
    assert reason in rejected({"networks": networks})


def test_network_attachment_defaults_to_no_aliases() -> None:
    assert NetworkAttachment().aliases == []


@pytest.mark.parametrize(
    "mode", ["bridge", "host", "none", "service:db", "container:abc123", "container:my_box.1"]
)
def test_network_mode_accepts_known_modes(mode: str) -> None:
    assert config(network_mode=mode).network_mode == mode


@pytest.mark.parametrize("mode", ["default", "service:", "container:", "other:x", "HOST", ""])
def test_network_mode_rejects_unknown_modes(mode: str) -> None:
    assert "invalid network_mode" in rejected({"network_mode": mode})


def test_network_mode_together_with_networks_is_rejected() -> None:
    text = rejected({"network_mode": "host", "networks": ["front"]})
    assert "cannot be combined with networks" in text


def test_network_mode_with_empty_networks_is_accepted() -> None:
    assert config(network_mode="host", networks=[]).network_mode == "host"


# --- scalar fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy", ["no", "always", "unless-stopped", "on-failure", "on-failure:5", "on-failure:0"]
)
def test_restart_accepts_compose_policies(policy: str) -> None:
    assert config(restart=policy).restart == policy


@pytest.mark.parametrize("policy", ["never", "on-failure:", "on-failure:x", "Always", ""])
def test_restart_rejects_unknown_policies(policy: str) -> None:
    assert "invalid restart policy" in rejected({"restart": policy})


@pytest.mark.parametrize("value", ["/dev/ttyUSB0", "/dev/x:/dev/y", "/dev/x:/dev/y:rwm", "/a:/b:r"])
def test_devices_accept_compose_forms(value: str) -> None:
    assert config(devices=[value]).devices == [value]


@pytest.mark.parametrize(
    "value",
    ["ttyUSB0", "/dev/x:dev/y", "/dev/x:/dev/y:", "/dev/x:/dev/y:rwx", "/dev/x:/y:rr", "/a:/b:r:w"],
)
def test_devices_reject_bad_forms(value: str) -> None:
    assert "invalid device" in rejected({"devices": [value]})


def test_capabilities_are_validated_and_unique() -> None:
    assert config(cap_add=["NET_ADMIN", "SYS_TIME"], cap_drop=["ALL"]).cap_add == [
        "NET_ADMIN",
        "SYS_TIME",
    ]
    assert "invalid capability 'NET ADMIN'" in rejected({"cap_add": ["NET ADMIN"]})
    assert "duplicate entry 'ALL'" in rejected({"cap_drop": ["ALL", "ALL"]})


def test_tmpfs_string_becomes_a_list() -> None:
    assert config(tmpfs="/run").tmpfs == ["/run"]
    assert config(tmpfs=["/run", "/tmp:size=64m,mode=1777"]).tmpfs == [
        "/run",
        "/tmp:size=64m,mode=1777",
    ]


@pytest.mark.parametrize(
    ("tmpfs", "reason"),
    [
        ("run", "must be an absolute path"),
        (["/run:"], "empty options"),
        (["/run", "/run:size=1m"], "duplicate tmpfs path '/run'"),
    ],
)
def test_tmpfs_rejects_bad_entries(tmpfs: object, reason: str) -> None:
    assert reason in rejected({"tmpfs": tmpfs})


def test_working_dir_must_be_absolute() -> None:
    assert config(working_dir="/app").working_dir == "/app"
    assert "must be absolute" in rejected({"working_dir": "app"})


@pytest.mark.parametrize("name", ["web", "web-1", "edge.example.com"])
def test_hostname_accepts_dns_names(name: str) -> None:
    assert config(hostname=name).hostname == name


@pytest.mark.parametrize("name", ["-web", "web_1", "a" * 64, "a..b", ""])
def test_hostname_rejects_non_dns_names(name: str) -> None:
    assert "invalid hostname" in rejected({"hostname": name})


@pytest.mark.parametrize("signal", ["SIGTERM", "TERM", "SIGRTMIN+3", "9"])
def test_stop_signal_accepts_names_and_numbers(signal: str) -> None:
    assert config(stop_signal=signal).stop_signal == signal


def test_stop_signal_rejects_garbage() -> None:
    assert "invalid stop signal" in rejected({"stop_signal": "sig term"})


def test_stop_grace_period_accepts_durations_and_exposes_seconds() -> None:
    assert config(stop_grace_period="1m30s").stop_grace_period_seconds == 90.0
    assert config(stop_grace_period=10).stop_grace_period_seconds == 10.0
    assert ServiceConfig().stop_grace_period_seconds is None
    assert "invalid duration" in rejected({"stop_grace_period": "soon"})


def test_command_and_entrypoint_accept_string_or_list() -> None:
    cfg = config(command=["nginx", "-g", "daemon off;"], entrypoint="/bin/sh -c")
    assert cfg.command == ["nginx", "-g", "daemon off;"]
    assert cfg.entrypoint == "/bin/sh -c"


@pytest.mark.parametrize("value", [5, ["a", 1], {"a": "b"}])
def test_command_of_wrong_type_gives_one_clear_error(value: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        config(command=value)
    [error] = excinfo.value.errors()
    assert "expected a string or a list of strings" in error["msg"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("privileged", "yes"),
        ("privileged", 1),
        ("user", 1000),
        ("image", 5),
        ("cap_add", "NET_ADMIN"),
        ("depends_on", "db"),
    ],
)
def test_wrong_types_are_not_coerced(field: str, value: object) -> None:
    rejected({field: value})


@pytest.mark.parametrize("image", ["", "nginx latest", "nginx\t"])
def test_image_must_be_a_reference_without_spaces(image: str) -> None:
    assert "invalid image reference" in rejected({"image": image})


def test_depends_on_rejects_duplicates_and_bad_names() -> None:
    assert "duplicate entry 'db'" in rejected({"depends_on": ["db", "db"]})
    assert "invalid name" in rejected({"depends_on": ["not valid"]})


# --- healthcheck -------------------------------------------------------------------------------


def test_healthcheck_string_test_means_cmd_shell() -> None:
    check = Healthcheck.model_validate({"test": "curl -f http://localhost/"})
    assert check.test == ["CMD-SHELL", "curl -f http://localhost/"]


@pytest.mark.parametrize(
    "test", [["CMD", "curl", "-f", "http://x/"], ["CMD-SHELL", "exit 0"], ["NONE"]]
)
def test_healthcheck_list_test_keeps_its_form(test: list[str]) -> None:
    assert Healthcheck.model_validate({"test": test}).test == test


@pytest.mark.parametrize(
    ("test", "reason"),
    [
        (["curl", "-f"], "must start with NONE, CMD or CMD-SHELL"),
        ([], "must start with NONE, CMD or CMD-SHELL"),
        (["CMD"], "needs a command"),
        (["CMD-SHELL"], "exactly one command string"),
        (["CMD-SHELL", "a", "b"], "exactly one command string"),
        (["NONE", "x"], "takes no arguments"),
        ("", "must not be empty"),
        (5, "must be a string or a list of strings"),
        (["CMD", 5], "must be a string or a list of strings"),
    ],
)
def test_healthcheck_rejects_bad_tests(test: object, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Healthcheck.model_validate({"test": test})


def test_healthcheck_durations_are_validated_and_converted() -> None:
    check = Healthcheck.model_validate(
        {"test": "true", "interval": "1m30s", "timeout": 5, "start_period": "500ms", "retries": 3}
    )
    assert check.interval_seconds == 90.0
    assert check.timeout_seconds == 5.0
    assert check.start_period_seconds == 0.5
    assert Healthcheck.model_validate({"test": "true"}).interval_seconds is None
    with pytest.raises(ValidationError, match="invalid duration 'often'"):
        Healthcheck.model_validate({"test": "true", "interval": "often"})


def test_healthcheck_retries_must_not_be_negative() -> None:
    with pytest.raises(ValidationError, match="retries"):
        Healthcheck.model_validate({"test": "true", "retries": -1})


def test_healthcheck_test_is_required_unless_disabled() -> None:
    with pytest.raises(ValidationError, match="test"):
        Healthcheck.model_validate({"interval": "10s"})


def test_healthcheck_disable_alone_means_test_none() -> None:
    check = Healthcheck.model_validate({"disable": True})
    assert check.test == ["NONE"]
    assert check.disabled


def test_healthcheck_disable_cannot_be_combined_with_a_test() -> None:
    with pytest.raises(ValidationError, match="cannot be combined with a test"):
        Healthcheck.model_validate({"disable": True, "test": ["CMD", "true"]})


def test_healthcheck_disabled_by_flag_or_by_none_test() -> None:
    assert Healthcheck.model_validate({"disable": True, "test": ["NONE"]}).disabled
    assert Healthcheck.model_validate({"test": ["NONE"]}).disabled
    assert not Healthcheck.model_validate({"test": "true"}).disabled


# --- resources ---------------------------------------------------------------------------------


def test_resource_values_convert_to_engine_units() -> None:
    values = ResourceValues.model_validate({"cpus": "500m", "memory": "256Mi"})
    assert values.nano_cpus == 500_000_000
    assert values.memory_bytes == 256 * 1024**2
    assert ResourceValues().nano_cpus is None
    assert ResourceValues().memory_bytes is None


def test_resource_values_accept_cpu_as_alias_of_cpus() -> None:
    values = ResourceValues.model_validate({"cpu": 2})
    assert values.cpus == 2
    assert values.nano_cpus == 2_000_000_000
    assert values.model_dump(by_alias=True) == {"cpus": 2, "memory": None}


def test_resource_values_reject_both_cpu_keys() -> None:
    with pytest.raises(ValidationError, match="either 'cpus' or 'cpu'"):
        ResourceValues.model_validate({"cpu": 1, "cpus": 1})


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"cpus": "0"}, "greater than 0"),
        ({"cpus": "lots"}, "invalid cpu value"),
        ({"cpus": True}, "expected a string or a number"),
        ({"memory": "1.5G"}, "invalid memory value"),
        ({"memory": 0}, "greater than 0"),
        ({"memory": 1.5}, "expected a string or an integer"),
        ({"memory": "512M", "swap": "1G"}, "Extra inputs are not permitted"),
    ],
)
def test_resource_values_reject_bad_values(values: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        ResourceValues.model_validate(values)


def test_resource_requests_above_limits_are_rejected() -> None:
    with pytest.raises(ValidationError, match="requested memory '1G' exceeds the limit"):
        Resources.model_validate({"limits": {"memory": "512M"}, "requests": {"memory": "1G"}})
    with pytest.raises(ValidationError, match="requested cpus 2 exceeds the limit"):
        Resources.model_validate({"limits": {"cpus": "500m"}, "requests": {"cpus": 2}})


def test_resource_requests_within_limits_are_accepted() -> None:
    resources = Resources.model_validate(
        {"limits": {"cpus": 1, "memory": "1G"}, "requests": {"cpu": "250m", "memory": "1024M"}}
    )
    assert resources.requests is not None
    assert resources.requests.nano_cpus == 250_000_000
