"""What the registration tells the cloud about the host: MAC address and OS version."""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import Final

_MAC: Final = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
_ZERO_MAC: Final = "00:00:00:00:00:00"
_ARPHRD_ETHER: Final = "1"
MAX_TEXT: Final = 255


def mac_address(sys_class_net: Path = Path("/sys/class/net")) -> str | None:
    """The MAC of the first Ethernet-like interface by name, physical ones first; None when
    there is none (a container without a network, a non-Linux host)."""
    found: list[tuple[bool, str, str]] = []
    try:
        interfaces = list(sys_class_net.iterdir())
    except OSError:
        return None
    for iface in interfaces:
        try:
            kind = (iface / "type").read_text().strip()
            address = (iface / "address").read_text().strip().lower()
        except OSError:
            continue
        if kind != _ARPHRD_ETHER or address == _ZERO_MAC or not _MAC.fullmatch(address):
            continue
        # Virtual interfaces (bridges, veths) have no `device` link; they change between boots.
        virtual = not (iface / "device").exists()
        found.append((virtual, iface.name, address))
    return min(found)[2] if found else None


def os_version(os_release: Path = Path("/etc/os-release")) -> str | None:
    """PRETTY_NAME of os-release, else what the platform module says."""
    try:
        lines = os_release.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "PRETTY_NAME":
            return _short(value.strip().strip("\"'"))
    return _short(platform.platform())


def _short(text: str) -> str | None:
    cleaned = "".join(c for c in text if c.isprintable()).strip()
    return cleaned[:MAX_TEXT] or None
