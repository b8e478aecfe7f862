"""Service, App and TargetState, and parse_target_state's error reporting."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest
from iotistic_contracts import (
    App,
    Service,
    TargetState,
    TargetStateError,
    parse_target_state,
)


def service(name: str = "web", service_id: object = 1, **extra: Any) -> dict[str, Any]:
    return {"serviceId": service_id, "serviceName": name, "imageName": "nginx:1.25", **extra}


def target(*services: dict[str, Any], app_id: object = 1001, key: str = "1001") -> dict[str, Any]:
    return {"apps": {key: {"appId": app_id, "appName": "demo", "services": list(services)}}}


def error_of(data: object) -> TargetStateError:
    with pytest.raises(TargetStateError) as excinfo:
        parse_target_state(data)
    return excinfo.value


FULL_EXAMPLE: dict[str, Any] = {
    "apps": {
        "1001": {
            "appId": 1001,
            "appName": "web-server",
            "services": [
                {
                    "serviceId": "1",
                    "serviceName": "nginx",
                    "imageName": "nginx:latest",
                    "state": "paused",
                    "config": {
                        "image": "nginx:latest",
                        "ports": ["80:80", "127.0.0.1:8443:443", "[::1]:8080:8080"],
                        "volumes": ["nginx-data:/usr/share/nginx/html:ro", "/etc/ssl:/etc/ssl:ro"],
                        "networks": {"frontend": {"aliases": ["www"]}, "backend": None},
                        "environment": ["TZ=UTC", "DEBUG"],
                        "labels": {
                            "com.example.team": "edge",
                            "io.iotistic.update-strategy": "hand-over",
                            "io.iotistic.handover-timeout": "30s",
                        },
                        "restart": "unless-stopped",
                        "depends_on": ["api"],
                        "healthcheck": {
                            "test": ["CMD", "curl", "-f", "http://localhost/"],
                            "interval": "30s",
                            "timeout": "5s",
                            "start_period": "1m",
                            "retries": 3,
                        },
                        "resources": {
                            "limits": {"cpus": "0.5", "memory": "256M"},
                            "requests": {"cpu": "250m", "memory": "128Mi"},
                        },
                        "stop_grace_period": "20s",
                        "stop_signal": "SIGQUIT",
                    },
                },
                {
                    "serviceId": 2,
                    "serviceName": "api",
                    "imageName": "registry.local:5000/acme/api@sha256:" + "a" * 64,
                    "updateStrategy": "kill-then-download",
                    "config": {
                        "command": ["serve", "--port", "8000"],
                        "entrypoint": "/entrypoint.sh",
                        "environment": {"PORT": 8000, "VERBOSE": True, "TOKEN": None},
                        "networks": ["backend"],
                        "user": "1000:1000",
                        "working_dir": "/app",
                        "tmpfs": "/run",
                        "cap_drop": ["ALL"],
                        "cap_add": ["NET_BIND_SERVICE"],
                        "depends_on": ["sensor"],
                        "hostname": "api",
                        "restart": "on-failure:5",
                    },
                },
                {
                    "serviceId": "3",
                    "serviceName": "sensor",
                    "imageName": "acme/sensor:2",
                    "state": "stopped",
                    "config": {
                        "network_mode": "host",
                        "privileged": True,
                        "devices": ["/dev/ttyUSB0:/dev/ttyUSB0:rwm", "/dev/i2c-1"],
                        "volumes": ["/sys:/sys:ro", "/var/cache/sensor"],
                        "healthcheck": {"test": "test -e /tmp/ok", "retries": 0},
                        "resources": {"limits": {"memory": "64m", "cpus": 0.25}},
                    },
                },
            ],
        }
    },
    "config": {"logging": {"level": "info"}, "RECONCILIATION_INTERVAL_MS": 30000},
}


# --- the full example ------------------------------------------------------------------------


def test_full_example_with_three_services_validates() -> None:
    state = parse_target_state(FULL_EXAMPLE)

    app = state.apps["1001"]
    nginx, api, sensor = app.services
    assert app.appId == 1001
    assert [s.serviceId for s in app.services] == [1, 2, 3]
    assert nginx.state == "paused"
    assert nginx.update_strategy == "hand-over"
    assert nginx.config.networks == ["backend", "frontend"]
    assert nginx.config.network_aliases == {"frontend": ("www",)}
    assert nginx.config.environment == {"TZ": "UTC", "DEBUG": ""}
    assert nginx.config.resources is not None
    assert nginx.config.resources.limits is not None
    assert nginx.config.resources.limits.memory_bytes == 256 * 1024**2
    assert nginx.config.healthcheck is not None
    assert nginx.config.healthcheck.start_period_seconds == 60.0
    assert api.update_strategy == "kill-then-download"
    assert api.config.environment == {"PORT": "8000", "VERBOSE": "true", "TOKEN": ""}
    assert api.config.tmpfs == ["/run"]
    assert sensor.state == "stopped"
    assert sensor.update_strategy == "download-then-kill"
    assert sensor.config.healthcheck is not None
    assert sensor.config.healthcheck.test == ["CMD-SHELL", "test -e /tmp/ok"]
    assert state.config["RECONCILIATION_INTERVAL_MS"] == 30000


def test_full_example_parses_from_json_text_and_bytes() -> None:
    text = json.dumps(FULL_EXAMPLE)
    assert (
        parse_target_state(text)
        == parse_target_state(text.encode())
        == parse_target_state(FULL_EXAMPLE)
    )


def test_dump_of_a_parsed_state_reparses_to_an_equal_state() -> None:
    state = parse_target_state(FULL_EXAMPLE)
    again = parse_target_state(state.canonical_json())
    assert again == state
    assert again.state_hash() == state.state_hash()


def test_spec_example_with_string_ids_validates() -> None:
    state = parse_target_state(
        {
            "apps": {
                "1001": {
                    "appId": "1001",
                    "appName": "test-app",
                    "services": [
                        {
                            "serviceId": "2",
                            "serviceName": "nodered",
                            "imageName": "nodered/node-red:latest",
                            "state": "paused",
                            "config": {"ports": ["1880:1880"], "volumes": ["nodered-data:/data"]},
                        }
                    ],
                }
            }
        }
    )
    assert state.apps["1001"].appId == 1001
    assert state.apps["1001"].services[0].serviceId == 2


def test_empty_target_state_is_valid() -> None:
    state = parse_target_state({})
    assert state.apps == {}
    assert state.config == {}


# --- unknown fields ----------------------------------------------------------------------------


def _with_extra(path: list[str | int]) -> dict[str, Any]:
    data = copy.deepcopy(FULL_EXAMPLE)
    node: Any = data
    for part in path:
        node = node[part]
    node["bogus"] = 1
    return data


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ([], "bogus"),
        (["apps", "1001"], "apps.1001.bogus"),
        (["apps", "1001", "services", 0], "apps.1001.services[0].bogus"),
        (["apps", "1001", "services", 0, "config"], "apps.1001.services[0].config.bogus"),
        (
            ["apps", "1001", "services", 0, "config", "healthcheck"],
            "apps.1001.services[0].config.healthcheck.bogus",
        ),
        (
            ["apps", "1001", "services", 0, "config", "resources"],
            "apps.1001.services[0].config.resources.bogus",
        ),
        (
            ["apps", "1001", "services", 0, "config", "resources", "limits"],
            "apps.1001.services[0].config.resources.limits.bogus",
        ),
        (
            ["apps", "1001", "services", 0, "config", "networks", "frontend"],
            "apps.1001.services[0].config.networks.frontend.bogus",
        ),
        (
            ["apps", "1001", "services", 2, "config", "healthcheck"],
            "apps.1001.services[2].config.healthcheck.bogus",
        ),
    ],
)
def test_unknown_field_is_rejected_at_every_level_with_its_dotted_path(
    path: list[str | int], field: str
) -> None:
    error = error_of(_with_extra(path))
    assert error.message == f"invalid target state: {field}: unknown field"
    assert error.errors == [{"field": field, "message": "unknown field"}]


def test_misspelt_config_field_reads_as_unknown_field() -> None:
    error = error_of(target(service(config={"ports": ["80"], "portz": ["81"]})))
    assert str(error) == "invalid target state: apps.1001.services[0].config.portz: unknown field"


def test_error_path_points_at_the_bad_list_item() -> None:
    error = error_of(target(service(config={"ports": ["80", "x:80"]})))
    assert error.errors[0]["field"] == "apps.1001.services[0].config.ports[1]"
    assert "invalid port 'x:80'" in error.message


def test_missing_required_field_is_named() -> None:
    data = target({"serviceId": 1, "serviceName": "web"})
    error = error_of(data)
    assert error.message == (
        "invalid target state: apps.1001.services[0].imageName: required field is missing"
    )


def test_message_lists_at_most_five_errors_and_keeps_all_in_errors() -> None:
    bad = {f"bogus{i}": i for i in range(7)}
    error = error_of(target(service(config=bad)))
    assert len(error.errors) == 7
    assert error.message.count("unknown field") == 5
    assert error.message.count("; ") == 4
    assert error.message.endswith("(and 2 more)")


def test_keys_that_contain_dots_are_quoted_in_the_path() -> None:
    data: dict[str, Any] = {"apps": {"1001": {"appId": 1001, "appName": "a", "services": []}}}
    data["apps"]["not.a.number"] = {"appId": 1, "appName": "b"}
    error = error_of(data)
    assert error.errors[0]["field"] == 'apps["not.a.number"]'


def test_target_state_error_is_a_value_error_and_pickles() -> None:
    error = error_of(target(service(config={"portz": 1})))
    assert isinstance(error, ValueError)
    restored = pickle.loads(pickle.dumps(error))
    assert restored.message == error.message
    assert restored.errors == error.errors


# --- input forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [[], "[]", "5", b'"x"', 5, None])
def test_top_level_must_be_an_object(data: object) -> None:
    error = error_of(data)
    assert error.message.startswith("invalid target state: top level must be an object")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "Expecting property name"),
        (b"\xff\xfe\x00", "not valid JSON"),
        ('{"apps": {}, "apps": {}}', "duplicate key 'apps'"),
        ('{"config": {"x": NaN}}', "NaN is not allowed"),
        ("", "Expecting value"),
    ],
)
def test_invalid_json_is_reported_as_such(text: str | bytes, reason: str) -> None:
    error = error_of(text)
    assert error.message.startswith("invalid target state: not valid JSON: ")
    assert reason in error.message


# --- ids and names -----------------------------------------------------------------------------


@pytest.mark.parametrize("service_id", ["1", 1, "0042"])
def test_service_id_accepts_integers_and_digit_strings(service_id: int | str) -> None:
    parsed = Service.model_validate(service(service_id=service_id))
    assert parsed.serviceId == int(service_id)


@pytest.mark.parametrize("service_id", ["x", "-1", "1.0", "", " 1", True, 1.0, -1, 2**63])
def test_service_id_rejects_non_integers(service_id: object) -> None:
    error = error_of(target(service(service_id=service_id)))
    assert error.errors[0]["field"] == "apps.1001.services[0].serviceId"


@pytest.mark.parametrize("app_id", ["x", True, -5])
def test_app_id_rejects_non_integers(app_id: object) -> None:
    error = error_of(target(app_id=app_id))
    assert error.errors[0]["field"] == "apps.1001.appId"


@pytest.mark.parametrize("name", ["web", "web-1", "Web_2.a", "a" * 63])
def test_service_name_accepts_dns_label_like_names(name: str) -> None:
    assert Service.model_validate(service(name=name)).serviceName == name


@pytest.mark.parametrize("name", ["", "-web", "web server", "_x", "a" * 64, "wéb"])
def test_service_name_rejects_other_names(name: str) -> None:
    error = error_of(target(service(name=name)))
    assert error.errors[0]["field"] == "apps.1001.services[0].serviceName"


def test_app_name_must_not_be_empty() -> None:
    with pytest.raises(TargetStateError, match=r"apps\.1001\.appName"):
        parse_target_state({"apps": {"1001": {"appId": 1001, "appName": ""}}})


@pytest.mark.parametrize("state", ["running", "stopped", "paused"])
def test_service_state_accepts_known_states(state: str) -> None:
    assert Service.model_validate(service(state=state)).state == state


def test_service_state_defaults_to_running_and_rejects_others() -> None:
    assert Service.model_validate(service()).state == "running"
    error = error_of(target(service(state="exited")))
    assert error.errors[0]["field"] == "apps.1001.services[0].state"


def test_app_key_must_equal_app_id() -> None:
    error = error_of(target(app_id=1002, key="1001"))
    assert error.message == (
        "invalid target state: apps.1001: key '1001' must equal its app's appId (1002)"
    )


def test_app_key_with_leading_zero_does_not_match() -> None:
    error = error_of(target(app_id=1001, key="01001"))
    assert error.errors[0]["field"] == "apps.01001"


def test_duplicate_service_names_and_ids_are_rejected() -> None:
    error = error_of(target(service("web", 1), service("web", 2), service("db", 1)))
    assert error.errors == [
        {
            "field": "apps.1001.services[1].serviceName",
            "message": "duplicate serviceName 'web' (also services[0])",
        },
        {
            "field": "apps.1001.services[2].serviceId",
            "message": "duplicate serviceId 1 (also services[0])",
        },
    ]


# --- image -------------------------------------------------------------------------------------


def test_config_image_different_from_image_name_is_rejected_naming_both() -> None:
    error = error_of(target(service(config={"image": "nginx:1.24"})))
    assert error.errors == [
        {
            "field": "apps.1001.services[0].config.image",
            "message": "config.image 'nginx:1.24' differs from imageName 'nginx:1.25'",
        }
    ]


@pytest.mark.parametrize(
    ("image_name", "config_image"),
    [
        ("nginx", "nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        ("acme/app:1", "index.docker.io/acme/app:1"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
    ],
)
def test_config_image_naming_the_same_image_is_accepted(image_name: str, config_image: str) -> None:
    data = {"serviceId": 1, "serviceName": "s", "imageName": image_name}
    parsed = Service.model_validate({**data, "config": {"image": config_image}})
    assert parsed.image == image_name


def test_registry_port_is_not_mistaken_for_a_tag() -> None:
    error = error_of(
        target(
            {
                "serviceId": 1,
                "serviceName": "s",
                "imageName": "reg:5000/app",
                "config": {"image": "reg:5000/app:2"},
            }
        )
    )
    assert "differs from imageName" in error.message


# --- update strategy ---------------------------------------------------------------------------


def test_update_strategy_defaults_to_download_then_kill() -> None:
    assert Service.model_validate(service()).update_strategy == "download-then-kill"


def test_update_strategy_comes_from_the_label_when_the_field_is_absent() -> None:
    labels = {"io.iotistic.update-strategy": "delete-then-download"}
    parsed = Service.model_validate(service(config={"labels": labels}))
    assert parsed.update_strategy == "delete-then-download"


def test_update_strategy_field_wins_over_the_label() -> None:
    labels = {"io.iotistic.update-strategy": "delete-then-download"}
    parsed = Service.model_validate(service(updateStrategy="hand-over", config={"labels": labels}))
    assert parsed.update_strategy == "hand-over"


def test_update_strategy_field_rejects_unknown_values() -> None:
    error = error_of(target(service(updateStrategy="rolling")))
    assert error.errors[0]["field"] == "apps.1001.services[0].updateStrategy"


def test_update_strategy_label_with_unknown_value_is_rejected_at_parse_time() -> None:
    error = error_of(target(service(config={"labels": ["io.iotistic.update-strategy=rolling"]})))
    assert error.errors[0]["field"] == "apps.1001.services[0].config.labels"
    assert "unknown value 'rolling'" in error.message


def test_reserved_label_error_names_the_label_and_its_path() -> None:
    error = error_of(target(service(config={"labels": {"io.iotistic.app-id": "1"}})))
    assert error.errors[0]["field"] == "apps.1001.services[0].config.labels"
    assert "'io.iotistic.app-id' is reserved for the agent" in error.message


# --- dependencies ------------------------------------------------------------------------------


def test_depends_on_another_service_of_the_app_is_accepted() -> None:
    state = parse_target_state(
        target(service("web", 1, config={"depends_on": ["db"]}), service("db", 2))
    )
    assert state.apps["1001"].services[0].config.depends_on == ["db"]


def test_depends_on_unknown_service_is_rejected_at_the_entry() -> None:
    error = error_of(target(service("web", 1, config={"depends_on": ["db"]})))
    assert error.errors == [
        {
            "field": "apps.1001.services[0].config.depends_on[0]",
            "message": "depends on 'db', which is not a service of this app",
        }
    ]


def test_depends_on_itself_is_rejected() -> None:
    error = error_of(target(service("web", 1, config={"depends_on": ["web"]})))
    assert error.errors[0]["message"] == "service 'web' depends on itself"


def test_dependency_cycle_is_rejected_showing_the_cycle() -> None:
    error = error_of(
        target(
            service("a", 1, config={"depends_on": ["b"]}),
            service("b", 2, config={"depends_on": ["c"]}),
            service("c", 3, config={"depends_on": ["a"]}),
        )
    )
    assert error.errors == [
        {
            "field": "apps.1001.services[0].config.depends_on",
            "message": "dependency cycle: a -> b -> c -> a",
        }
    ]


def test_diamond_dependencies_are_not_a_cycle() -> None:
    parse_target_state(
        target(
            service("top", 1, config={"depends_on": ["left", "right"]}),
            service("left", 2, config={"depends_on": ["base"]}),
            service("right", 3, config={"depends_on": ["base"]}),
            service("base", 4),
        )
    )


def test_dependencies_do_not_cross_apps() -> None:
    data = target(service("web", 1, config={"depends_on": ["db"]}))
    data["apps"]["1002"] = {"appId": 1002, "appName": "other", "services": [service("db", 1)]}
    error = error_of(data)
    assert error.errors[0]["field"] == "apps.1001.services[0].config.depends_on[0]"


def test_network_mode_service_must_name_another_service_of_the_app() -> None:
    error = error_of(target(service("web", 1, config={"network_mode": "service:vpn"})))
    assert error.errors[0]["field"] == "apps.1001.services[0].config.network_mode"
    assert "'vpn'" in error.message
    self_ref = error_of(target(service("web", 1, config={"network_mode": "service:web"})))
    assert "not another service" in self_ref.message


def test_network_mode_service_counts_as_a_dependency_for_cycles() -> None:
    error = error_of(
        target(
            service("web", 1, config={"network_mode": "service:vpn"}),
            service("vpn", 2, config={"depends_on": ["web"]}),
        )
    )
    assert "dependency cycle" in error.message


def test_network_mode_service_naming_an_app_service_is_accepted() -> None:
    state = parse_target_state(
        target(service("web", 1, config={"network_mode": "service:vpn"}), service("vpn", 2))
    )
    assert state.apps["1001"].services[0].config.network_mode == "service:vpn"


def test_app_service_lookup_by_name() -> None:
    app = App.model_validate({"appId": 1, "appName": "a", "services": [service("web")]})
    found = app.service("web")
    assert found is not None and found.serviceId == 1
    assert app.service("db") is None


# --- canonical JSON and hash -------------------------------------------------------------------


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reverse_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(item) for item in value]
    return value


def test_state_hash_is_equal_for_reordered_json_keys() -> None:
    reordered = json.dumps(_reverse_keys(FULL_EXAMPLE))
    assert reordered != json.dumps(FULL_EXAMPLE)
    first = parse_target_state(json.dumps(FULL_EXAMPLE))
    second = parse_target_state(reordered)
    assert first.canonical_json() == second.canonical_json()
    assert first.state_hash() == second.state_hash()


def test_state_hash_is_equal_for_equivalent_normalised_forms() -> None:
    as_lists = target(service(config={"environment": ["A=1"], "labels": ["x=y"], "tmpfs": "/t"}))
    as_dicts = target(
        service(config={"environment": {"A": 1}, "labels": {"x": "y"}, "tmpfs": ["/t"]})
    )
    assert parse_target_state(as_lists).state_hash() == parse_target_state(as_dicts).state_hash()


def test_state_hash_changes_when_a_value_changes() -> None:
    changed = copy.deepcopy(FULL_EXAMPLE)
    changed["apps"]["1001"]["services"][1]["config"]["environment"]["PORT"] = 8001
    assert parse_target_state(FULL_EXAMPLE).state_hash() != parse_target_state(changed).state_hash()


def test_state_hash_changes_when_a_network_alias_changes() -> None:
    changed = copy.deepcopy(FULL_EXAMPLE)
    changed["apps"]["1001"]["services"][0]["config"]["networks"]["frontend"]["aliases"] = ["w3"]
    assert parse_target_state(FULL_EXAMPLE).state_hash() != parse_target_state(changed).state_hash()


def test_state_hash_is_a_sha256_hex_digest() -> None:
    digest = TargetState().state_hash()
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_canonical_json_is_compact_sorted_and_complete() -> None:
    text = parse_target_state(target(service())).canonical_json()
    assert ", " not in text and ": " not in text
    assert text.startswith('{"apps":{"1001":{"appId":1001,"appName":"demo","services":[{"config":')
    # exclude_none=False: unset optional fields are present, so the shape is fixed.
    assert '"updateStrategy":null' in text
    assert json.loads(text) == parse_target_state(target(service())).model_dump(mode="json")
