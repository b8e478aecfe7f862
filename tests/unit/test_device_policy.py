"""The device policy's decision (issue 12, item 10): properties over generated targets and
policies, and the cases a reviewer would try by hand."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iotistic_agent.policy import DevicePolicy, TargetRefused, check_target, device_policy
from iotistic_agent.policy.model import DEFAULT_ENGINE_SOCKETS
from iotistic_agent.settings import AgentSettings
from iotistic_contracts import TargetState, parse_target_state

PATHS = [
    "/",
    "/data",
    "/data/app",
    "/data2",
    "/var/run",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/srv/x/../../etc",
    "/home/pi/data",
    "/dev/ttyUSB0",
]
CAPABILITIES = ["NET_ADMIN", "SYS_TIME", "cap_sys_admin", "ALL", "CAP_NET_RAW"]
DEVICES = ["/dev/ttyUSB0", "/dev/ttyUSB1:/dev/ttyS0", "/dev/i2c-1", "/dev/sda", "/dev/../dev/sda"]
DEVICE_PATTERNS = ["/dev/ttyUSB*", "/dev/i2c-1", "/dev/*"]
NETWORK_MODES = [None, "bridge", "none", "host", "container:other"]


def service_config(draw: st.DrawFn) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if draw(st.booleans()):
        config["privileged"] = True
    caps = draw(st.lists(st.sampled_from(CAPABILITIES), unique=True, max_size=3))
    if caps:
        config["cap_add"] = caps
    devices = draw(st.lists(st.sampled_from(DEVICES), unique=True, max_size=2))
    if devices:
        config["devices"] = devices
    mode = draw(st.sampled_from(NETWORK_MODES))
    if mode is not None:
        config["network_mode"] = mode
    sources = draw(st.lists(st.sampled_from([*PATHS, "named", "data-vol"]), max_size=3))
    if sources:
        config["volumes"] = [f"{source}:/mnt/{i}" for i, source in enumerate(sources)]
    return config


@st.composite
def targets(draw: st.DrawFn) -> TargetState:
    apps: dict[str, Any] = {}
    for app_id in draw(st.lists(st.integers(1, 9), unique=True, max_size=4)):
        count = draw(st.integers(0, 4))
        services = [
            {
                "serviceId": i + 1,
                "serviceName": f"s{i}",
                "imageName": "reg/img:v1",
                "config": service_config(draw),
            }
            for i in range(count)
        ]
        apps[str(app_id)] = {"appId": app_id, "appName": f"app-{app_id}", "services": services}
    return parse_target_state({"apps": apps})


policies = st.builds(
    DevicePolicy,
    allowed_bind_prefixes=st.lists(st.sampled_from(PATHS[:5]), unique=True).map(tuple),
    allow_engine_socket=st.booleans(),
    allow_privileged=st.booleans(),
    allowed_capabilities=st.frozensets(st.sampled_from(["NET_ADMIN", "SYS_ADMIN", "ALL"])),
    allowed_devices=st.lists(st.sampled_from(DEVICE_PATTERNS), unique=True).map(tuple),
    allow_host_network=st.booleans(),
    max_apps=st.integers(0, 5),
    max_services_per_app=st.integers(0, 5),
    max_services=st.integers(0, 20),
)

EVERYTHING = DevicePolicy(
    allowed_bind_prefixes=("/",),
    allow_engine_socket=True,
    allow_privileged=True,
    allowed_capabilities=frozenset({"ALL"}),
    allowed_devices=("*",),
    allow_host_network=True,
    max_apps=10**6,
    max_services_per_app=10**6,
    max_services=10**6,
)


def widen(narrow: DevicePolicy, other: DevicePolicy) -> DevicePolicy:
    """`narrow` with everything `other` allows as well."""
    return DevicePolicy(
        allowed_bind_prefixes=narrow.allowed_bind_prefixes + other.allowed_bind_prefixes,
        allow_engine_socket=narrow.allow_engine_socket or other.allow_engine_socket,
        allow_privileged=narrow.allow_privileged or other.allow_privileged,
        allowed_capabilities=narrow.allowed_capabilities | other.allowed_capabilities,
        allowed_devices=narrow.allowed_devices + other.allowed_devices,
        allow_host_network=narrow.allow_host_network or other.allow_host_network,
        max_apps=max(narrow.max_apps, other.max_apps),
        max_services_per_app=max(narrow.max_services_per_app, other.max_services_per_app),
        max_services=max(narrow.max_services, other.max_services),
    )


def resolve(document: Any, field: str) -> Any:
    """Follow a refusal's field path (`apps.1.services[0].config.volumes[1]`) in the JSON."""
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field):
        document = document[int(index)] if index else document[name]
    return document


def requested(config: dict[str, Any]) -> list[str]:
    """The host access a service config asks for, as field names (relative to config)."""
    fields = ["privileged"] if config.get("privileged") else []
    fields += [f"cap_add[{i}]" for i in range(len(config.get("cap_add", [])))]
    fields += [f"devices[{i}]" for i in range(len(config.get("devices", [])))]
    if config.get("network_mode") in ("host", "container:other"):
        fields.append("network_mode")
    fields += [f"volumes[{i}]" for i, v in enumerate(config.get("volumes", [])) if v[0] == "/"]
    return fields


@settings(max_examples=300)
@given(target=targets(), policy=policies, other=policies)
def test_allowing_more_never_refuses_more(
    target: TargetState, policy: DevicePolicy, other: DevicePolicy
) -> None:
    narrow = {r.text() for r in check_target(target, policy)}
    wide = {r.text() for r in check_target(target, widen(policy, other))}
    assert {r.split(":")[0] for r in wide} <= {r.split(":")[0] for r in narrow}


@settings(max_examples=300)
@given(target=targets(), policy=policies)
def test_every_refusal_names_a_field_of_the_target_and_a_setting(
    target: TargetState, policy: DevicePolicy
) -> None:
    document = target.model_dump(mode="json")
    for refusal in check_target(target, policy):
        resolve(document, refusal.field)  # raises when the path leads nowhere
        assert refusal.setting is not None and refusal.setting.startswith("DEVICE_POLICY_")
        assert refusal.setting in refusal.text() and refusal.field in refusal.text()


@settings(max_examples=300)
@given(target=targets())
def test_the_default_policy_refuses_every_host_access_and_allowing_all_refuses_none(
    target: TargetState,
) -> None:
    document = target.model_dump(mode="json")
    asked = {
        f"apps.{key}.services[{i}].config.{field}"
        for key, app in document["apps"].items()
        for i, service in enumerate(app["services"])
        for field in requested(service["config"])
    }
    refused = {r.field for r in check_target(target, replace(EVERYTHING, **_no_access()))}
    assert refused == asked
    assert check_target(target, EVERYTHING) == []


def _no_access() -> dict[str, Any]:
    default = DevicePolicy()
    return {
        name: getattr(default, name)
        for name in (
            "allowed_bind_prefixes",
            "allow_engine_socket",
            "allow_privileged",
            "allowed_capabilities",
            "allowed_devices",
            "allow_host_network",
        )
    }


@given(target=targets(), policy=policies)
def test_the_decision_depends_on_its_inputs_only(target: TargetState, policy: DevicePolicy) -> None:
    assert check_target(target, policy) == check_target(target, policy)


def one_service(app_name: str = "demo", **config: Any) -> TargetState:
    service = {"serviceId": 1, "serviceName": "web", "imageName": "reg/img:v1", "config": config}
    return parse_target_state(
        {"apps": {"1001": {"appId": 1001, "appName": app_name, "services": [service]}}}
    )


def texts(target: TargetState, policy: DevicePolicy, real: dict[str, str] | None = None) -> str:
    return "\n".join(r.text() for r in check_target(target, policy, real))


def test_named_volumes_and_plain_services_are_always_fine() -> None:
    target = one_service(volumes=["data:/data", "/scratch"], environment={"A": "1"})
    assert check_target(target, DevicePolicy()) == []


@pytest.mark.parametrize(
    ("config", "field", "setting"),
    [
        ({"privileged": True}, "config.privileged", "DEVICE_POLICY_ALLOW_PRIVILEGED"),
        ({"cap_add": ["ALL"]}, "config.cap_add[0]", "DEVICE_POLICY_ALLOWED_CAPABILITIES"),
        ({"devices": ["/dev/sda"]}, "config.devices[0]", "DEVICE_POLICY_ALLOWED_DEVICES"),
        ({"network_mode": "host"}, "config.network_mode", "DEVICE_POLICY_ALLOW_HOST_NETWORK"),
        ({"volumes": ["/:/host"]}, "config.volumes[0]", "DEVICE_POLICY_ALLOWED_BIND_PREFIXES"),
        (
            {"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]},
            "config.volumes[0]",
            "DEVICE_POLICY_ALLOW_DOCKER_SOCKET",
        ),
    ],
)
def test_each_kind_of_host_access_is_refused_by_default_naming_field_and_setting(
    config: dict[str, Any], field: str, setting: str
) -> None:
    (refusal,) = check_target(one_service(**config), DevicePolicy())
    assert refusal.field == f"apps.1001.services[0].{field}"
    assert refusal.setting == setting
    assert setting in str(TargetRefused([refusal]))


def test_bind_prefixes_match_whole_path_components_after_normalising() -> None:
    policy = DevicePolicy(allowed_bind_prefixes=("/data",))
    assert texts(one_service(volumes=["/data/app:/a", "/data:/b"]), policy) == ""
    refused = texts(one_service(volumes=["/data2:/a", "/data/../etc:/b"]), policy)
    assert "host path /data2 is not under an allowed prefix (allowed: /data)" in refused
    assert "/data/../etc" in refused


def test_a_symlink_under_an_allowed_prefix_does_not_lead_out_of_it() -> None:
    policy = DevicePolicy(allowed_bind_prefixes=("/data",))
    target = one_service(volumes=["/data/app/link:/host"])
    assert texts(target, policy, {"/data/app/link": "/data/app/real"}) == ""
    refused = texts(target, policy, {"/data/app/link": "/"})
    assert "/data/app/link (which leads to /) is not under an allowed prefix" in refused


def test_the_engine_socket_needs_its_own_permission_even_under_an_allowed_prefix() -> None:
    wide = DevicePolicy(allowed_bind_prefixes=("/",))
    for volume in ("/var/run:/run", "/run/docker.sock:/s", "/:/host"):
        refused = texts(one_service(volumes=[volume]), wide)
        assert "DEVICE_POLICY_ALLOW_DOCKER_SOCKET" in refused, volume
    link = texts(one_service(volumes=["/tmp/s:/s"]), wide, {"/tmp/s": "/run/docker.sock"})
    assert "leads to /run/docker.sock" in link and "engine's socket" in link
    allowed = replace(wide, allow_engine_socket=True)
    assert texts(one_service(volumes=["/var/run/docker.sock:/var/run/docker.sock"]), allowed) == ""
    # The socket alone, without any bind prefix, once allowed.
    socket_only = DevicePolicy(allow_engine_socket=True)
    assert texts(one_service(volumes=["/run/docker.sock:/s"]), socket_only) == ""


def test_the_agents_own_engine_socket_counts_too() -> None:
    settings = AgentSettings.from_env({"DOCKER_HOST": "unix:///run/balena-engine.sock"})
    policy = replace(device_policy(settings), allowed_bind_prefixes=("/",))
    assert "/run/balena-engine.sock" in policy.engine_sockets
    assert set(DEFAULT_ENGINE_SOCKETS) <= set(policy.engine_sockets)
    assert "engine's socket" in texts(one_service(volumes=["/run/balena-engine.sock:/s"]), policy)


def test_capabilities_are_compared_without_prefix_or_case_and_all_needs_all() -> None:
    policy = DevicePolicy(allowed_capabilities=frozenset({"NET_ADMIN"}))
    assert texts(one_service(cap_add=["cap_net_admin", "NET_ADMIN"][:1]), policy) == ""
    assert "'ALL' is not allowed" in texts(one_service(cap_add=["ALL"]), policy)
    everything = DevicePolicy(allowed_capabilities=frozenset({"ALL"}))
    assert texts(one_service(cap_add=["ALL", "SYS_ADMIN"]), everything) == ""


def test_devices_match_patterns_on_the_normalised_host_path() -> None:
    policy = DevicePolicy(allowed_devices=("/dev/ttyUSB*",))
    assert texts(one_service(devices=["/dev/ttyUSB0:/dev/ttyS0:rw"]), policy) == ""
    assert "device /dev/sda is not allowed" in texts(
        one_service(devices=["/dev/ttyUSB0/../sda"]), policy
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../etc", "path separator"),
        ("a\\b", "path separator"),
        ("bell\x07", "non-printable"),
        ("line\nbreak", "non-printable"),
        ("..", "'.' or '..'"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_app_names_that_could_act_as_paths_or_carry_control_characters_are_refused(
    name: str, problem: str
) -> None:
    (refusal,) = check_target(one_service(app_name=name), EVERYTHING)
    assert refusal.field == "apps.1001.appName" and problem in refusal.message
    assert refusal.setting is None


def test_size_bounds_count_apps_services_per_app_and_services_in_all() -> None:
    def target(apps: int, services: int) -> TargetState:
        return parse_target_state(
            {
                "apps": {
                    str(a): {
                        "appId": a,
                        "appName": f"a{a}",
                        "services": [
                            {"serviceId": s, "serviceName": f"s{s}", "imageName": "r/i:1"}
                            for s in range(1, services + 1)
                        ],
                    }
                    for a in range(1, apps + 1)
                }
            }
        )

    policy = DevicePolicy(max_apps=2, max_services_per_app=3, max_services=5)
    assert check_target(target(2, 2), policy) == []
    refused = texts(target(3, 4), policy)
    assert (
        "apps: 3 apps, more than the 2 a device may run (device policy: DEVICE_POLICY_MAX_APPS)"
        in refused
    )
    assert "apps.1.services: 4 services, more than the 3" in refused
    assert "12 services in all, more than the 5" in refused


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEVICE_POLICY_ALLOWED_BIND_PREFIXES": "data"}, "not an absolute path"),
        ({"DEVICE_POLICY_ALLOWED_CAPABILITIES": "NET ADMIN"}, "not a capability name"),
        ({"DEVICE_POLICY_ALLOWED_DEVICES": "ttyUSB*"}, "not an absolute path"),
        ({"DEVICE_POLICY_MAX_APPS": "0"}, "DEVICE_POLICY_MAX_APPS"),
    ],
)
def test_a_wrong_policy_setting_stops_the_agent_naming_it(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AgentSettings.from_env(env)


def test_settings_give_the_policy() -> None:
    settings = AgentSettings.from_env(
        {
            "DEVICE_POLICY_ALLOWED_BIND_PREFIXES": " /data/ , /srv//apps,",
            "DEVICE_POLICY_ALLOWED_CAPABILITIES": "cap_net_admin,SYS_TIME",
            "DEVICE_POLICY_ALLOWED_DEVICES": "/dev/ttyUSB*",
            "DEVICE_POLICY_ALLOW_PRIVILEGED": "true",
            "DEVICE_POLICY_MAX_APPS": "7",
        }
    )
    policy = device_policy(settings)
    assert policy.allowed_bind_prefixes == ("/data", "/srv/apps")
    assert policy.allowed_capabilities == {"NET_ADMIN", "SYS_TIME"}
    assert policy.allowed_devices == ("/dev/ttyUSB*",)
    assert (policy.allow_privileged, policy.allow_host_network, policy.max_apps) == (True, False, 7)
    assert device_policy(AgentSettings.from_env({})) == DevicePolicy()
