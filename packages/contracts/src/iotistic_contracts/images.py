"""Compare image references the way Docker resolves them."""

from __future__ import annotations

from typing import Final

_DEFAULT_DOMAIN: Final = "docker.io"
_DOMAIN_ALIASES: Final = frozenset({"docker.io", "index.docker.io"})


def normalise_image_ref(reference: str) -> str:
    """Return the fully qualified form: ``nginx`` -> ``docker.io/library/nginx:latest``."""
    name, at, digest = reference.partition("@")
    last_slash = name.rfind("/")
    tag = ""
    # A ':' after the last '/' is a tag; before it, it belongs to a registry's port.
    if ":" in name[last_slash + 1 :]:
        name, _, tag = name.rpartition(":")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = _DEFAULT_DOMAIN, name
    if domain in _DOMAIN_ALIASES:
        domain = _DEFAULT_DOMAIN
        if "/" not in path:
            path = f"library/{path}"
    if not tag and not at:
        tag = "latest"
    result = f"{domain}/{path}"
    if tag:
        result += f":{tag}"
    if at:
        result += f"@{digest}"
    return result


def same_image(first: str, second: str) -> bool:
    return normalise_image_ref(first) == normalise_image_ref(second)
