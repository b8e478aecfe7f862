"""Parsers for the docker-compose short syntax used inside a service ``config``.

Pure functions with frozen results. Every parser raises ``ValueError`` with a message that
names the offending value, so the pydantic models can surface it unchanged.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final, Literal

Protocol = Literal["tcp", "udp", "sctp"]
VolumeKind = Literal["volume", "bind", "anonymous"]

PROTOCOLS: Final[tuple[Protocol, ...]] = ("tcp", "udp", "sctp")
MIN_PORT: Final = 1
MAX_PORT: Final = 65535

# Bounded digit counts keep int() away from Python's huge-number guard, whose error is unclear.
_PORT_RANGE_RE: Final = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")
_VOLUME_NAME_RE: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_DECIMAL_RE: Final = re.compile(r"[0-9]{1,18}(?:\.[0-9]{0,9})?|\.[0-9]{1,9}")
_MEMORY_RE: Final = re.compile(r"([0-9]{1,19})([a-zA-Z]{0,2})")
_DURATION_PART: Final = (
    r"([0-9]{1,12}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})(h|ms|m|s|us|\u00b5s|\u03bcs|ns)"
)
_DURATION_RE: Final = re.compile(f"(?:{_DURATION_PART})+")
_DURATION_PART_RE: Final = re.compile(_DURATION_PART)

_NANO_PER_CPU: Final = Decimal(1_000_000_000)
_NANO_PER_MILLICPU: Final = Decimal(1_000_000)
# Compose follows Docker here: "512M" and "512MB" are binary units, the same as "512Mi".
_MEMORY_UNITS: Final[dict[str, int]] = {
    "": 1,
    "b": 1,
    "k": 1024,
    "ki": 1024,
    "kb": 1024,
    "m": 1024**2,
    "mi": 1024**2,
    "mb": 1024**2,
    "g": 1024**3,
    "gi": 1024**3,
    "gb": 1024**3,
}
# Docker stores memory limits as signed 64-bit integers.
MAX_MEMORY_BYTES: Final = 2**63 - 1
_DURATION_UNITS: Final[dict[str, Decimal]] = {
    "h": Decimal(3600),
    "m": Decimal(60),
    "s": Decimal(1),
    "ms": Decimal("0.001"),
    "us": Decimal("0.000001"),
    "\u00b5s": Decimal("0.000001"),
    "\u03bcs": Decimal("0.000001"),
    "ns": Decimal("0.000000001"),
}


@dataclass(frozen=True)
class PortMapping:
    """One published container port; ``None`` host fields mean "any interface"/"any port"."""

    host_ip: str | None
    host_port: int | None
    container_port: int
    protocol: Protocol


@dataclass(frozen=True)
class VolumeMount:
    """One entry of ``volumes``; ``source`` is ``None`` only for anonymous volumes."""

    kind: VolumeKind
    source: str | None
    target: str
    read_only: bool


def parse_port(spec: str | int) -> list[PortMapping]:
    """Parse ``[[ip:]host:]container[/protocol]`` (ranges expanded) into port mappings."""
    if isinstance(spec, bool) or not isinstance(spec, str | int):
        raise ValueError(f"invalid port {spec!r}: expected a string or an integer")
    if isinstance(spec, int):
        if not MIN_PORT <= spec <= MAX_PORT:
            raise ValueError(f"invalid port {spec!r}: must be between {MIN_PORT} and {MAX_PORT}")
        return [PortMapping(host_ip=None, host_port=None, container_port=spec, protocol="tcp")]

    body, protocol = _split_protocol(spec)
    host_ip, host_part, container_part = _split_host(spec, body)
    container_ports = _parse_port_range(spec, container_part, "container port")
    host_ports: list[int | None]
    if host_part == "":
        # An empty host port asks Docker for an ephemeral one, for each container port.
        host_ports = [None] * len(container_ports)
    else:
        host_ports = list(_parse_port_range(spec, host_part, "host port"))
        if len(host_ports) != len(container_ports):
            raise ValueError(
                f"invalid port {spec!r}: host range has {len(host_ports)} ports but container "
                f"range has {len(container_ports)}; they must be the same length"
            )
    return [
        PortMapping(host_ip=host_ip, host_port=host, container_port=container, protocol=protocol)
        for host, container in zip(host_ports, container_ports, strict=True)
    ]


def _split_protocol(spec: str) -> tuple[str, Protocol]:
    body, slash, protocol = spec.partition("/")
    if not slash:
        return body, "tcp"
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"invalid port {spec!r}: unknown protocol {protocol!r} (expected tcp, udp or sctp)"
        )
    return body, protocol


def _split_host(spec: str, body: str) -> tuple[str | None, str, str]:
    """Split ``body`` into (host ip, host port text, container port text)."""
    if body.startswith("["):
        address, bracket, rest = body[1:].partition("]")
        if not bracket:
            raise ValueError(f"invalid port {spec!r}: missing ']' after the IPv6 address")
        host_ip = _parse_ip(spec, address, ipaddress.IPv6Address)
        parts = rest.split(":")
        if len(parts) != 3 or parts[0] != "":
            raise ValueError(
                f"invalid port {spec!r}: expected '[ipv6]:host:container' or '[ipv6]::container'"
            )
        return host_ip, parts[1], parts[2]

    parts = body.split(":")
    if len(parts) == 1:
        return None, "", parts[0]
    if len(parts) == 2:
        return None, parts[0], parts[1]
    if len(parts) == 3:
        return _parse_ip(spec, parts[0], ipaddress.IPv4Address), parts[1], parts[2]
    raise ValueError(
        f"invalid port {spec!r}: too many ':' (write an IPv6 host address in brackets)"
    )


def _parse_ip(
    spec: str, text: str, kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]
) -> str:
    if text == "":
        raise ValueError(f"invalid port {spec!r}: the host IP is empty")
    try:
        return str(kind(text))
    except ValueError:
        family = "IPv4" if kind is ipaddress.IPv4Address else "IPv6"
        raise ValueError(f"invalid port {spec!r}: {text!r} is not an {family} address") from None


def _parse_port_range(spec: str, text: str, what: str) -> list[int]:
    match = _PORT_RANGE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid port {spec!r}: {what} {text!r} is not a number or a range")
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) is not None else start
    for number in (start, end):
        if not MIN_PORT <= number <= MAX_PORT:
            raise ValueError(
                f"invalid port {spec!r}: {what} {number} is not between {MIN_PORT} and {MAX_PORT}"
            )
    if start > end:
        raise ValueError(f"invalid port {spec!r}: {what} range {text!r} ends before it starts")
    return list(range(start, end + 1))


def parse_volume(spec: str) -> VolumeMount:
    """Parse ``name:/target[:ro|rw]``, ``/host:/target[:ro|rw]`` or ``/target`` (anonymous)."""
    if not isinstance(spec, str):
        raise ValueError(f"invalid volume {spec!r}: expected a string")
    parts = spec.split(":")
    if len(parts) > 3:
        raise ValueError(f"invalid volume {spec!r}: expected 'source:target[:mode]'")
    if len(parts) == 1:
        return VolumeMount(
            kind="anonymous", source=None, target=_volume_target(spec, spec), read_only=False
        )

    source, target = parts[0], _volume_target(spec, parts[1])
    read_only = False
    if len(parts) == 3:
        mode = parts[2]
        # Only ro/rw: SELinux relabelling (z/Z) and the like change the host and are refused.
        if mode not in ("ro", "rw"):
            raise ValueError(f"invalid volume {spec!r}: unknown mode {mode!r} (use 'ro' or 'rw')")
        read_only = mode == "ro"

    if source == "":
        raise ValueError(f"invalid volume {spec!r}: the source is empty")
    if source.startswith("/"):
        return VolumeMount(kind="bind", source=source, target=target, read_only=read_only)
    if source.startswith((".", "~")):
        # There is no compose project directory on a device to resolve it against.
        raise ValueError(
            f"invalid volume {spec!r}: relative bind path {source!r} is not supported; "
            "use an absolute host path or a named volume"
        )
    if _VOLUME_NAME_RE.fullmatch(source) is None:
        raise ValueError(
            f"invalid volume {spec!r}: {source!r} is not a valid volume name "
            "(letters, digits, '_', '.', '-', starting with a letter or digit)"
        )
    return VolumeMount(kind="volume", source=source, target=target, read_only=read_only)


def _volume_target(spec: str, target: str) -> str:
    if not target.startswith("/"):
        raise ValueError(f"invalid volume {spec!r}: target {target!r} must be an absolute path")
    if target == "/":
        raise ValueError(f"invalid volume {spec!r}: cannot mount over the container's root '/'")
    return target


def parse_cpu(value: str | int | float) -> int:
    """Return nano-CPUs for ``"500m"`` (millicores), ``"1.5"``, ``2`` or ``0.5``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"invalid cpu value {value!r}: expected a string or a number")
    scale = _NANO_PER_CPU
    if isinstance(value, str):
        text = value
        if text.endswith("m"):
            text, scale = text[:-1], _NANO_PER_MILLICPU
        if _DECIMAL_RE.fullmatch(text) is None:
            raise ValueError(
                f"invalid cpu value {value!r}: expected a number of CPUs like '1.5' "
                "or millicores like '500m'"
            )
        amount = Decimal(text)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"invalid cpu value {value!r}: must be a finite number")
        amount = Decimal(repr(value))
    else:
        amount = Decimal(value)
    nano = int((amount * scale).to_integral_value(rounding=ROUND_HALF_EVEN))
    if nano <= 0:
        raise ValueError(f"invalid cpu value {value!r}: must be greater than 0")
    return nano


def parse_memory(value: str | int) -> int:
    """Return bytes for ``"512M"``, ``"256Mi"``, ``"1g"``, ``"100k"``, ``"1024"`` or ``1024``."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"invalid memory value {value!r}: expected a string or an integer")
    if isinstance(value, int):
        amount = value
    else:
        match = _MEMORY_RE.fullmatch(value)
        unit = match.group(2).lower() if match is not None else None
        if match is None or unit not in _MEMORY_UNITS:
            raise ValueError(
                f"invalid memory value {value!r}: expected an integer with an optional unit "
                "b, k, ki, kb, m, mi, mb, g, gi or gb"
            )
        amount = int(match.group(1)) * _MEMORY_UNITS[unit]
    if amount <= 0:
        raise ValueError(f"invalid memory value {value!r}: must be greater than 0")
    if amount > MAX_MEMORY_BYTES:
        raise ValueError(f"invalid memory value {value!r}: too large")
    return amount


def parse_duration(value: str | int | float) -> float:
    """Return seconds for ``"30s"``, ``"1m30s"``, ``"500ms"``, ``"1h"`` or a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"invalid duration {value!r}: expected a string or a number")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"invalid duration {value!r}: must be a finite number >= 0")
        return float(value)
    if _DECIMAL_RE.fullmatch(value) is not None:
        return float(Decimal(value))
    if _DURATION_RE.fullmatch(value) is None:
        raise ValueError(
            f"invalid duration {value!r}: expected seconds or a duration like '30s', "
            "'1m30s', '500ms' or '1h'"
        )
    total = sum(
        (
            Decimal(number) * _DURATION_UNITS[unit]
            for number, unit in _DURATION_PART_RE.findall(value)
        ),
        start=Decimal(0),
    )
    return float(total)
