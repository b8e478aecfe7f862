"""The docker-compose short-syntax parsers of iotistic_contracts.compose."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iotistic_contracts.compose import (
    PortMapping,
    VolumeMount,
    parse_cpu,
    parse_duration,
    parse_memory,
    parse_port,
    parse_volume,
)

MiB = 1024**2
GiB = 1024**3


# --- ports -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortMapping(None, None, 80, "tcp")]),
        (80, [PortMapping(None, None, 80, "tcp")]),
        ("8080:80", [PortMapping(None, 8080, 80, "tcp")]),
        ("127.0.0.1:8080:80", [PortMapping("127.0.0.1", 8080, 80, "tcp")]),
        ("127.0.0.1::80", [PortMapping("127.0.0.1", None, 80, "tcp")]),
        ("53:53/udp", [PortMapping(None, 53, 53, "udp")]),
        ("127.0.0.1:53:53/udp", [PortMapping("127.0.0.1", 53, 53, "udp")]),
        ("9:9/sctp", [PortMapping(None, 9, 9, "sctp")]),
        ("80/tcp", [PortMapping(None, None, 80, "tcp")]),
        ("[::1]:8080:80", [PortMapping("::1", 8080, 80, "tcp")]),
        ("[::1]::80", [PortMapping("::1", None, 80, "tcp")]),
        ("[0:0::1]:53:53/udp", [PortMapping("::1", 53, 53, "udp")]),
        (":80", [PortMapping(None, None, 80, "tcp")]),
        ("65535", [PortMapping(None, None, 65535, "tcp")]),
    ],
)
def test_parse_port_accepts_short_syntax_forms(
    spec: str | int, expected: list[PortMapping]
) -> None:
    assert parse_port(spec) == expected


def test_parse_port_expands_matching_ranges_pairwise() -> None:
    assert parse_port("8000-8002:9000-9002/udp") == [
        PortMapping(None, 8000, 9000, "udp"),
        PortMapping(None, 8001, 9001, "udp"),
        PortMapping(None, 8002, 9002, "udp"),
    ]


def test_parse_port_expands_container_range_without_host_ports() -> None:
    assert parse_port("8000-8001") == [
        PortMapping(None, None, 8000, "tcp"),
        PortMapping(None, None, 8001, "tcp"),
    ]


def test_parse_port_expands_range_with_ephemeral_host_ports() -> None:
    assert parse_port("127.0.0.1::8000-8001") == [
        PortMapping("127.0.0.1", None, 8000, "tcp"),
        PortMapping("127.0.0.1", None, 8001, "tcp"),
    ]


def test_parse_port_single_port_range_is_one_mapping() -> None:
    assert parse_port("80-80:80-80") == [PortMapping(None, 80, 80, "tcp")]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("0", "not between 1 and 65535"),
        (0, "between 1 and 65535"),
        (65536, "between 1 and 65535"),
        ("65536:80", "host port 65536 is not between"),
        ("8080:0", "container port 0 is not between"),
        ("", "container port '' is not a number"),
        ("http", "is not a number"),
        ("a:80", "host port 'a'"),
        ("80:b", "container port 'b'"),
        ("-1", "is not a number"),
        ("+80", "is not a number"),
        (" 80", "is not a number"),
        ("123456", "is not a number"),
        ("80/xyz", "unknown protocol 'xyz'"),
        ("80/TCP", "unknown protocol 'TCP'"),
        ("80/", "unknown protocol ''"),
        ("8000-8002:8000-8001", "host range has 3 ports but container range has 2"),
        ("8000-8002:80", "host range has 3 ports but container range has 1"),
        ("80:8000-8002", "host range has 1 ports but container range has 3"),
        ("8002-8000:8002-8000", "ends before it starts"),
        ("999.0.0.1:80:80", "is not an IPv4 address"),
        ("::80", "the host IP is empty"),
        ("::1:8080:80", "too many ':'"),
        ("1:2:3:4", "too many ':'"),
        ("[::1:8080:80", "missing ']'"),
        ("[::1]:80", "expected '[ipv6]:host:container'"),
        ("[::1]8080:80", "expected '[ipv6]:host:container'"),
        ("[127.0.0.1]:8080:80", "is not an IPv6 address"),
    ],
)
def test_parse_port_rejects_invalid_specs_naming_the_value(spec: str | int, reason: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_port(spec)
    assert repr(spec) in str(excinfo.value)
    assert reason in str(excinfo.value)


@pytest.mark.parametrize("spec", [True, 80.0, None, ["80"]])
def test_parse_port_rejects_non_string_non_integer_input(spec: object) -> None:
    with pytest.raises(ValueError, match="expected a string or an integer"):
        parse_port(spec)  # type: ignore[arg-type]


ports = st.integers(min_value=1, max_value=65535)
ipv4s = st.ip_addresses(v=4).map(str)
ipv6s = st.ip_addresses(v=6).map(str)
protocols = st.sampled_from(["tcp", "udp", "sctp"])


@st.composite
def port_components(
    draw: st.DrawFn,
) -> tuple[str | None, int | None, int, str, bool]:
    """(host_ip, host_port, container_port, protocol, write_protocol) for one valid spec."""
    host_ip = draw(st.none() | ipv4s | ipv6s)
    host_port = draw(st.none() | ports)
    return host_ip, host_port, draw(ports), draw(protocols), draw(st.booleans())


def _build_spec(
    host_ip: str | None, host_port: int | None, container: int, protocol: str, explicit: bool
) -> str:
    host = "" if host_port is None else str(host_port)
    if host_ip is None:
        spec = f"{host}:{container}" if host else str(container)
    elif ":" in host_ip:
        spec = f"[{host_ip}]:{host}:{container}"
    else:
        spec = f"{host_ip}:{host}:{container}"
    if explicit or protocol != "tcp":
        spec += f"/{protocol}"
    return spec


@given(port_components())
def test_parse_port_round_trips_components_of_random_valid_specs(
    components: tuple[str | None, int | None, int, str, bool],
) -> None:
    host_ip, host_port, container, protocol, explicit = components
    spec = _build_spec(host_ip, host_port, container, protocol, explicit)

    [mapping] = parse_port(spec)

    expected_ip = None if host_ip is None else str(ipaddress.ip_address(host_ip))
    assert mapping == PortMapping(expected_ip, host_port, container, protocol)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=65535 - 20), st.integers(0, 20), ports, protocols)
def test_parse_port_range_round_trips_every_pair(
    host_start: int, extra: int, container_base: int, protocol: str
) -> None:
    container_start = min(container_base, 65535 - extra)
    spec = (
        f"{host_start}-{host_start + extra}:{container_start}-{container_start + extra}/{protocol}"
    )

    mappings = parse_port(spec)

    assert [(m.host_port, m.container_port) for m in mappings] == [
        (host_start + i, container_start + i) for i in range(extra + 1)
    ]
    assert {m.protocol for m in mappings} == {protocol}


# --- volumes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("data:/var/lib/data", VolumeMount("volume", "data", "/var/lib/data", False)),
        ("data:/x:ro", VolumeMount("volume", "data", "/x", True)),
        ("data:/x:rw", VolumeMount("volume", "data", "/x", False)),
        ("my_vol.1-a:/x", VolumeMount("volume", "my_vol.1-a", "/x", False)),
        ("/host/path:/x", VolumeMount("bind", "/host/path", "/x", False)),
        ("/host/path:/x:ro", VolumeMount("bind", "/host/path", "/x", True)),
        ("/:/host-root:ro", VolumeMount("bind", "/", "/host-root", True)),
        ("/x", VolumeMount("anonymous", None, "/x", False)),
    ],
)
def test_parse_volume_accepts_named_bind_and_anonymous(spec: str, expected: VolumeMount) -> None:
    assert parse_volume(spec) == expected


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("./rel:/x", "relative bind path './rel' is not supported"),
        ("../up:/x", "relative bind path"),
        ("~/home:/x", "relative bind path"),
        ("data:relative", "target 'relative' must be an absolute path"),
        ("relative", "target 'relative' must be an absolute path"),
        ("", "target '' must be an absolute path"),
        ("data:", "target '' must be an absolute path"),
        (":/x", "the source is empty"),
        ("data:/", "cannot mount over"),
        ("/", "cannot mount over"),
        ("data:/x:z", "unknown mode 'z'"),
        ("data:/x:Z", "unknown mode 'Z'"),
        ("data:/x:ro,z", "unknown mode 'ro,z'"),
        ("data:/x:nocopy", "unknown mode 'nocopy'"),
        ("data:/x:", "unknown mode ''"),
        ("data:/x:ro:extra", "expected 'source:target[:mode]'"),
        ("_data:/x", "is not a valid volume name"),
        ("da ta:/x", "is not a valid volume name"),
    ],
)
def test_parse_volume_rejects_invalid_specs_naming_the_value(spec: str, reason: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_volume(spec)
    assert repr(spec) in str(excinfo.value)
    assert reason in str(excinfo.value)


def test_parse_volume_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="expected a string"):
        parse_volume(5)  # type: ignore[arg-type]


# --- cpu ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "nano"),
    [
        ("500m", 500_000_000),
        ("1m", 1_000_000),
        ("2", 2_000_000_000),
        (2, 2_000_000_000),
        ("0.5", 500_000_000),
        (0.5, 500_000_000),
        (".25", 250_000_000),
        ("1.5", 1_500_000_000),
        (0.1, 100_000_000),
        ("2500m", 2_500_000_000),
    ],
)
def test_parse_cpu_returns_nano_cpus(value: str | int | float, nano: int) -> None:
    assert parse_cpu(value) == nano


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "greater than 0"),
        (0, "greater than 0"),
        (0.0, "greater than 0"),
        (-1, "greater than 0"),
        ("0m", "greater than 0"),
        ("-1", "expected a number of CPUs"),
        ("", "expected a number of CPUs"),
        ("m", "expected a number of CPUs"),
        ("1e3", "expected a number of CPUs"),
        ("two", "expected a number of CPUs"),
        ("1 ", "expected a number of CPUs"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (True, "expected a string or a number"),
        (None, "expected a string or a number"),
    ],
)
def test_parse_cpu_rejects_invalid_values(value: object, reason: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_cpu(value)  # type: ignore[arg-type]
    assert reason in str(excinfo.value)
    assert repr(value) in str(excinfo.value)


# --- memory ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512M", 512 * MiB),
        ("512m", 512 * MiB),
        ("512MB", 512 * MiB),
        ("512mb", 512 * MiB),
        ("256Mi", 256 * MiB),
        ("256mi", 256 * MiB),
        ("1G", GiB),
        ("1Gi", GiB),
        ("1g", GiB),
        ("2GB", 2 * GiB),
        ("100k", 100 * 1024),
        ("100Ki", 100 * 1024),
        ("100KB", 100 * 1024),
        ("1024", 1024),
        ("1024b", 1024),
        ("1024B", 1024),
        (1024, 1024),
    ],
)
def test_parse_memory_returns_bytes(value: str | int, size: int) -> None:
    assert parse_memory(value) == size


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "greater than 0"),
        (0, "greater than 0"),
        (-5, "greater than 0"),
        ("0M", "greater than 0"),
        ("1.5G", "expected an integer with an optional unit"),
        ("1e9", "expected an integer with an optional unit"),
        ("512T", "expected an integer with an optional unit"),
        ("512MiB", "expected an integer with an optional unit"),
        ("M", "expected an integer with an optional unit"),
        ("", "expected an integer with an optional unit"),
        ("512 M", "expected an integer with an optional unit"),
        ("-1M", "expected an integer with an optional unit"),
        ("99999999999G", "too large"),
        (2**63, "too large"),
        (1.5, "expected a string or an integer"),
        (True, "expected a string or an integer"),
    ],
)
def test_parse_memory_rejects_invalid_values(value: object, reason: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_memory(value)  # type: ignore[arg-type]
    assert reason in str(excinfo.value)
    assert repr(value) in str(excinfo.value)


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("1h2m3s", 3723.0),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        ("1000ns", 0.000001),
        ("0s", 0.0),
        ("10", 10.0),
        ("2.5", 2.5),
        (30, 30.0),
        (1.5, 1.5),
        (0, 0.0),
    ],
)
def test_parse_duration_returns_seconds(value: str | int | float, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "expected seconds or a duration"),
        ("30 s", "expected seconds or a duration"),
        ("30sec", "expected seconds or a duration"),
        ("1d", "expected seconds or a duration"),
        ("s", "expected seconds or a duration"),
        ("-5s", "expected seconds or a duration"),
        ("1m30", "expected seconds or a duration"),
        (-1, "finite number >= 0"),
        (float("inf"), "finite number >= 0"),
        (True, "expected a string or a number"),
        (None, "expected a string or a number"),
    ],
)
def test_parse_duration_rejects_invalid_values(value: object, reason: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_duration(value)  # type: ignore[arg-type]
    assert reason in str(excinfo.value)
    assert repr(value) in str(excinfo.value)


def test_parsed_results_are_frozen() -> None:
    [mapping] = parse_port("80")
    mount = parse_volume("/x")
    with pytest.raises(AttributeError):
        mapping.container_port = 81  # type: ignore[misc]
    with pytest.raises(AttributeError):
        mount.target = "/y"  # type: ignore[misc]
