"""A service on its app's bridge network uses the Device API (issue 12, item 6b), end to end
from inside a real container: it asked for it with the label, got the address and a scoped
key in its environment, publishes a reading and reads its app, and is refused the rest. The
agent listens on that network's gateway and on 127.0.0.1, nowhere else; a service that did
not ask gets nothing.
"""

from __future__ import annotations

import json
import subprocess

import psutil

from tests.integration import dockerkit
from tests.integration.agent_process import AgentProcess, app, service_containers, svc, target
from tests.integration.dockerkit import ImageSet
from tests.integration.waiting import wait_for

LABEL = {"io.iotistic.features.device-api": "1"}
READING = {"timestamp": "2026-01-01T00:00:00Z", "value": 21.5, "unit": "C", "sensor_id": "t1"}


def in_container(container_id: str, script: str) -> subprocess.CompletedProcess[str]:
    """Run a shell script inside the container (busybox sh and wget)."""
    return dockerkit.docker("exec", container_id, "sh", "-c", script, check=False)


def environment(container_id: str) -> dict[str, str]:
    inspected = json.loads(dockerkit.docker("inspect", container_id).stdout)[0]
    return dict(item.split("=", 1) for item in inspected["Config"]["Env"])


def listening(pid: int) -> set[tuple[str, int]]:
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    }


def test_a_service_reaches_the_device_api_from_its_app_network_with_a_scoped_key(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(
        target(
            app(1001, svc(1, "sensor", images.v1, config={"labels": LABEL}), name="iot"),
            app(1002, svc(2, "plain", images.v1), name="other"),
        )
    )
    agent.wait_status(1001, "sensor", "Running", 60)
    agent.wait_status(1002, "plain", "Running", 60)
    (sensor,) = service_containers(1001, "sensor")
    (plain,) = service_containers(1002, "plain")
    env = environment(sensor["Id"])
    gateway = sensor["NetworkSettings"]["Networks"]["1001_default"]["Gateway"]
    assert env["IOTISTIC_DEVICE_API_ADDRESS"] == f"http://{gateway}:{agent.port}"
    assert env["IOTISTIC_DEVICE_API_KEY"].startswith("app-1001-")
    assert env["IOTISTIC_DEVICE_API_KEY"] != agent.api_key
    assert not any(k.startswith("IOTISTIC_DEVICE_API") for k in environment(plain["Id"]))

    # The agent listens on the gateway of the network that asked, and on loopback only.
    assert agent.proc is not None
    wait_for(
        lambda: (gateway, agent.port) in listening(agent.proc.pid),
        30,
        0.2,
        f"the agent never listened on {gateway}; log:\n{agent.log()[-3000:]}",
    )
    other_gateway = plain["NetworkSettings"]["Networks"]["1002_default"]["Gateway"]
    assert {ip for ip, port in listening(agent.proc.pid) if port == agent.port} == {
        "127.0.0.1",
        gateway,
    }, f"not only loopback and {gateway} (the other app's gateway is {other_gateway})"

    auth = '--header "Authorization: Bearer $IOTISTIC_DEVICE_API_KEY"'
    body = json.dumps(READING).replace('"', '\\"')
    published = in_container(
        sensor["Id"],
        f'wget -q -O - {auth} --header "Content-Type: application/json" '
        f'--post-data "{body}" "$IOTISTIC_DEVICE_API_ADDRESS/v1/sensors/temperature"',
    )
    assert published.returncode == 0, published.stderr
    # Not provisioned: no broker, the reading goes to the device's own anomaly detection.
    assert json.loads(published.stdout) == {"status": "local", "topic": None}
    own = in_container(
        sensor["Id"], f'wget -q -O - {auth} "$IOTISTIC_DEVICE_API_ADDRESS/v1/apps/1001"'
    )
    assert own.returncode == 0, own.stderr
    assert json.loads(own.stdout)["appName"] == "iot"
    for path in ("/v1/apps/1002", "/v1/device", "/v2/local/target-state"):
        refused = in_container(
            sensor["Id"], f'wget -q -O - {auth} "$IOTISTIC_DEVICE_API_ADDRESS{path}"'
        )
        assert refused.returncode != 0 and "403" in refused.stderr, (path, refused.stderr)
    # Without a key, or with the other app's key, nothing at all.
    anonymous = in_container(
        sensor["Id"], 'wget -q -O - "$IOTISTIC_DEVICE_API_ADDRESS/v1/apps/1001"'
    )
    assert anonymous.returncode != 0 and "401" in anonymous.stderr
