"""MQTT: the agent's publishing rate and round trip through the broker, and the time from a
change on the cloud to the device's poll over the update trigger.

Run (after scripts/bootstrap.sh): .venv/bin/python bench/bench_mqtt.py [--messages 5000]
    [--changes 20]

Real Mosquitto 2.0 (dynamic security) on 127.0.0.1 started for the run. Baselines in the
same run: a bare aiomqtt client with the same device credentials.
- publish rate: `--messages` state-report-sized messages (about 300 B) at QoS 0 and QoS 1,
  through the agent's `MqttManager.publish` and through a bare client;
- round trip: one message at a time from the device to the cloud's user subscribed to
  `iot/device/+/state` (p50/p99 of 500), agent vs bare client;
- trigger: the real cloud with broker management and a real agent process polling every
  60 s; `--changes` target changes through the admin API, each timed until the agent holds
  the new version (p50/p99), against the bare MQTT round trip; then the agent's RSS with
  MQTT connected against an agent in local mode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iotistic_agent.mqtt.credentials import BrokerSettings, MqttCredentials  # noqa: E402
from iotistic_agent.mqtt.manager import MqttManager  # noqa: E402
from iotistic_contracts.mqtt import STATE_TOPIC_FILTER, state_topic  # noqa: E402

from bench.bench_device_api import settled_rss  # noqa: E402
from tests.integration.agent_process import AgentProcess  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402
from tests.support.cloud_process import CloudProcess  # noqa: E402
from tests.support.mosquitto import MosquittoBroker  # noqa: E402

PAYLOAD = b'{"' + b"x" * 300 + b'": 1}'
ROUND_TRIPS = 500


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values_ms: list[float]) -> str:
    return f"p50 {statistics.median(values_ms):7.2f} ms  p99 {pct(values_ms, 0.99):7.2f} ms"


@contextlib.asynccontextmanager
async def agent_manager(creds: MqttCredentials) -> AsyncIterator[MqttManager]:
    manager = MqttManager(creds, outbox_max=100_000)
    task = asyncio.create_task(manager.run())
    try:
        async with asyncio.timeout(10):
            while manager.status()["state"] != "connected":  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        yield manager
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def bare(broker: MosquittoBroker, username: str, password: str) -> aiomqtt.Client:
    # MQTT 5, as the agent speaks it: the same protocol on both sides of the ratio.
    return aiomqtt.Client(
        broker.host,
        broker.plain_port,
        username=username,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V5,
    )


async def rate(name: str, publish: Callable[[], Awaitable[None]], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await publish()
    per_s = count / (time.perf_counter() - started)
    print(f"  {name:<34} {per_s:10,.0f} msg/s")
    return per_s


async def publishing(broker: MosquittoBroker, creds: MqttCredentials, count: int) -> None:
    topic = state_topic(creds.uuid)
    print(f"publish rate ({count} messages of {len(PAYLOAD)} B):")
    async with bare(broker, creds.username, creds.password) as client:
        base0 = await rate(
            "bare aiomqtt, QoS 0 (baseline)", lambda: client.publish(topic, PAYLOAD, 0), count
        )
        base1 = await rate(
            "bare aiomqtt, QoS 1 (baseline)", lambda: client.publish(topic, PAYLOAD, 1), count
        )
    async with agent_manager(creds) as manager:
        agent0 = await rate(
            "agent MqttManager, QoS 0", lambda: manager.publish(topic, PAYLOAD, 0), count
        )
        agent1 = await rate(
            "agent MqttManager, QoS 1", lambda: manager.publish(topic, PAYLOAD, 1), count
        )
    print(f"  agent / bare: QoS 0 {agent0 / base0:.2f}x, QoS 1 {agent1 / base1:.2f}x")


async def round_trips(broker: MosquittoBroker, creds: MqttCredentials) -> float:
    """Device -> broker -> the cloud's user; returns the bare p50 in ms."""
    results: dict[str, list[float]] = {}
    async with bare(broker, broker.admin_username, broker.admin_password) as cloud_side:
        await cloud_side.subscribe(STATE_TOPIC_FILTER, qos=1)
        messages = aiter(cloud_side.messages)

        async def measure(publish: Callable[[bytes], Awaitable[Any]]) -> list[float]:
            times = []
            for index in range(ROUND_TRIPS):
                payload = f"{index}".encode() + PAYLOAD
                started = time.perf_counter()
                await publish(payload)
                while (await anext(messages)).payload != payload:
                    pass
                times.append((time.perf_counter() - started) * 1000)
            return times

        topic = state_topic(creds.uuid)
        async with bare(broker, creds.username, creds.password) as client:
            results["bare aiomqtt (baseline)"] = await measure(
                lambda p: client.publish(topic, p, 1)
            )
        async with agent_manager(creds) as manager:
            results["agent MqttManager"] = await measure(
                lambda p: manager.publish_confirmed(topic, p, 1)
            )
    print(f"round trip device -> broker -> cloud subscriber (QoS 1, {ROUND_TRIPS} messages):")
    for name, times in results.items():
        print(f"  {name:<34} {summary(times)}")
    base = statistics.median(results["bare aiomqtt (baseline)"])
    print(f"  agent / bare p50: {statistics.median(results['agent MqttManager']) / base:.2f}x")
    return base


def trigger(broker: MosquittoBroker, work: Path, changes: int, bare_ms: float) -> None:
    cloud = CloudProcess(
        work / "cloud",
        MQTT_BROKER_URL=broker.url(tls=True),
        MQTT_CA_CERT_FILE=str(broker.ca_cert_path),
        MQTT_ADMIN_URL=broker.url(),
        MQTT_PASSWORD=broker.admin_password,
    ).start()
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    agent = AgentProcess(
        work / "agent",
        PROVISIONING_API_KEY=key,
        CLOUD_API_ENDPOINT=cloud.url,
        POLL_INTERVAL_MS="60000",
    ).start()
    try:
        device = wait_for(
            lambda: (s := agent.get("/v1/provision").json())["provisioned"] and s["uuid"], 30
        )
        wait_for(lambda: agent.get("/v1/device").json()["mqtt"]["state"] == "connected", 30)
        times = []
        for change in range(changes):
            started = time.perf_counter()
            put = httpx.put(
                f"{cloud.url}/api/admin/v1/devices/{device}/target",
                json={"apps": {}, "config": {"CHANGE": str(change)}},
                headers=cloud.admin_headers,
                timeout=10,
            )
            version = put.json()["version"]
            wait_for(
                lambda v=version: agent.get("/v1/device").json()["targetVersion"] == v, 10, 0.005
            )
            times.append((time.perf_counter() - started) * 1000)
        print(f"cloud change -> device holds it (poll interval 60 s, {changes} changes):")
        print(f"  trigger + poll                     {summary(times)}")
        ratio = statistics.median(times) / bare_ms
        print(f"  vs the bare MQTT round trip ({bare_ms:.2f} ms): {ratio:.0f}x")
        # Memory: the same agent restarted (provisioned: no cryptography), MQTT connected,
        # against an agent in local mode.
        agent.terminate()
        agent.start()
        wait_for(lambda: agent.get("/v1/device").json()["mqtt"]["state"] == "connected", 30)
        assert agent.proc is not None
        connected_rss = settled_rss(agent.proc.pid)
        local = AgentProcess(work / "local").start()
        try:
            assert local.proc is not None
            local_rss = settled_rss(local.proc.pid)
        finally:
            local.stop()
        print(
            f"agent RSS: local mode {local_rss:.1f} MB; provisioned, syncing and MQTT "
            f"connected {connected_rss:.1f} MB ({connected_rss / local_rss:.2f}x)"
        )
    finally:
        agent.stop()
        cloud.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-mqtt-") as work,
        MosquittoBroker(Path(work) / "broker") as broker,
    ):
        device_uuid = str(uuid.uuid4())
        creds = MqttCredentials(
            uuid=device_uuid,
            username=f"device_{device_uuid}",
            password=broker.add_device(device_uuid),
            broker=BrokerSettings(broker.host, broker.plain_port, False),
        )
        asyncio.run(publishing(broker, creds, args.messages))
        bare_ms = asyncio.run(round_trips(broker, creds))
        trigger(broker, Path(work), args.changes, bare_ms)


if __name__ == "__main__":
    main()
