"""Where a target's bind sources lead on this host: the one fact the policy cannot decide
from the target alone. A container given a host folder can plant a symlink in it, and a later
target binding that link would reach wherever it points; the policy checks both paths."""

from __future__ import annotations

import os

from iotistic_contracts import TargetState


def host_paths(target: TargetState) -> dict[str, str]:
    """Each bind source whose real path (symlinks followed, as far as they exist) differs."""
    found: dict[str, str] = {}
    for app in target.apps.values():
        for service in app.services:
            for mount in service.config.volume_mounts:
                if mount.kind == "bind" and mount.source is not None:
                    real = os.path.realpath(mount.source)
                    if real != os.path.normpath(mount.source):
                        found[mount.source] = real
    return found
