"""The device policy: what a target may ask of the device's host (docs/agent.md, "Device
policy"). `check_target` is the pure decision, `host_paths` the one look at the host it
needs; `store.target_store.TargetStore` applies both to every target, local or cloud."""

from .check import Refusal, TargetRefused, check_target
from .model import DevicePolicy, device_policy
from .paths import host_paths

__all__ = [
    "DevicePolicy",
    "Refusal",
    "TargetRefused",
    "check_target",
    "device_policy",
    "host_paths",
]
