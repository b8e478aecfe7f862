"""The spec's log component names (`LogComponents`) and which logger feeds which component.

Agent code keeps using stdlib loggers (`logging.getLogger("iotistic.mqtt")`); the component a
record belongs to is derived from its logger's name here, so no call site has to change.
A caller may still name the component of one record explicitly with
`extra={"component": LogComponents.cloudSync}`.

Structured context goes with a record as `extra={"context": {...}}`: a mapping of JSON-able
values (anything else is written with `str()`), shown as `context` in JSON lines, the ring
(`iotctl logs`) and as `key=value` pairs in the text format. Secret-looking keys and values
in it are redacted like the message (see `redaction.py`).
"""

from __future__ import annotations

from enum import StrEnum


class LogComponents(StrEnum):
    agent = "agent"
    containerManager = "containerManager"
    stateReconciler = "stateReconciler"
    cloudSync = "cloudSync"
    mqtt = "mqtt"
    provisioning = "provisioning"
    anomalyDetection = "anomalyDetection"
    database = "database"
    deviceApi = "deviceApi"
    metrics = "metrics"
    simulation = "simulation"
    logs = "logs"


# Logger name (or dotted prefix) -> component. The longest matching prefix wins.
LOGGER_COMPONENTS: dict[str, LogComponents] = {
    "iotistic.agent": LogComponents.agent,
    "iotistic.reconciler": LogComponents.stateReconciler,
    "iotistic_agent.orchestrator.reconciler": LogComponents.stateReconciler,
    "iotistic_agent.orchestrator": LogComponents.containerManager,
    "iotistic_agent.engine": LogComponents.containerManager,
    "iotistic.cloud": LogComponents.cloudSync,
    "iotistic_agent.cloud": LogComponents.cloudSync,
    "iotistic.mqtt": LogComponents.mqtt,
    "iotistic_agent.mqtt": LogComponents.mqtt,
    "iotistic.provisioning": LogComponents.provisioning,
    "iotistic_agent.provisioning": LogComponents.provisioning,
    "iotistic.anomaly": LogComponents.anomalyDetection,
    "iotistic_agent.anomaly": LogComponents.anomalyDetection,
    "iotistic.store": LogComponents.database,
    "iotistic_agent.store": LogComponents.database,
    "iotistic.device_api": LogComponents.deviceApi,
    "iotistic_agent.device_api": LogComponents.deviceApi,
    "aiohttp": LogComponents.deviceApi,
    "iotistic.telemetry": LogComponents.metrics,
    "iotistic_agent.telemetry": LogComponents.metrics,
    "iotistic.simulation": LogComponents.simulation,
    "iotistic_agent.simulation": LogComponents.simulation,
    "iotistic.logs": LogComponents.logs,
    "iotistic_agent.logs": LogComponents.logs,
}


def component_for(logger_name: str) -> str:
    """The spec's component for a logger; an unknown logger gives the last part of its name
    (`"asyncio"`, `"urllib3.connectionpool"` -> `"connectionpool"`), the root gives `agent`."""
    name = logger_name
    while name:
        found = LOGGER_COMPONENTS.get(name)
        if found is not None:
            return found.value
        name = name.rpartition(".")[0]
    if logger_name in ("", "root", "iotistic", "iotistic_agent"):
        return LogComponents.agent.value
    return logger_name.rpartition(".")[2] or LogComponents.agent.value
