"""The one "runs while provisioned" component behind cloud sync, MQTT and log shipping."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from iotistic_agent.while_provisioned import WhileProvisioned

from tests.integration.waiting import wait_for_async


@dataclass(eq=False)
class Run:
    credentials: str
    events: list[str]
    fail: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        self.events.append(f"start {self.credentials}")
        self.started.set()
        try:
            if self.fail:
                raise RuntimeError("broken run")
            await asyncio.Event().wait()
        finally:
            self.events.append(f"stop {self.credentials}")

    def status(self) -> dict[str, Any]:
        return {"state": "running", "credentials": self.credentials}


def component(events: list[str], fail: bool = False) -> WhileProvisioned[str, Run]:
    return WhileProvisioned(
        "thing", lambda creds: Run(creds, events, fail), lambda: {"state": "idle"}
    )


async def test_it_runs_from_the_credentials_and_shows_the_runs_status() -> None:
    events: list[str] = []
    thing = component(events)
    assert thing.status() == {"state": "idle"} and thing.current is None
    thing.start("a")
    assert thing.current is not None
    await asyncio.wait_for(thing.current.started.wait(), 10)
    assert thing.status() == {"state": "running", "credentials": "a"}
    await thing.stop()
    assert events == ["start a", "stop a"] and thing.status() == {"state": "idle"}


async def test_the_same_credentials_again_change_nothing() -> None:
    events: list[str] = []
    thing = component(events)
    thing.start("a")
    first = thing.current
    thing.start("a")
    assert thing.current is first and first is not None
    await asyncio.wait_for(first.started.wait(), 10)
    await thing.stop()
    assert events == ["start a", "stop a"]


async def test_new_credentials_replace_the_run_never_two_at_once() -> None:
    events: list[str] = []
    thing = component(events)
    thing.start("a")
    assert thing.current is not None
    await asyncio.wait_for(thing.current.started.wait(), 10)
    thing.start("b")
    assert thing.current is not None
    await asyncio.wait_for(thing.current.started.wait(), 10)
    await thing.stop()
    assert events == ["start a", "stop a", "start b", "stop b"]


async def test_deprovisioning_stops_it_from_synchronous_code() -> None:
    events: list[str] = []
    thing = component(events)
    thing.start("a")
    assert thing.current is not None
    await asyncio.wait_for(thing.current.started.wait(), 10)
    thing.stop_soon()
    assert thing.current is None and thing.status() == {"state": "idle"}
    await wait_for_async(lambda: events == ["start a", "stop a"], 10, 0.01)
    thing.start("a")  # provisioned again with the same credentials: a fresh run
    assert thing.current is not None
    await asyncio.wait_for(thing.current.started.wait(), 10)
    await thing.stop()
    assert events == ["start a", "stop a", "start a", "stop a"]


async def test_a_run_that_fails_is_logged_and_stopping_it_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    thing = component(events, fail=True)
    with caplog.at_level(logging.ERROR, "iotistic.agent"):
        thing.start("a")
        await wait_for_async(lambda: "thing failed" in caplog.text, 10, 0.01)
    assert "broken run" in caplog.text
    await thing.stop()
    assert events == ["start a", "stop a"]


def test_mqtt_and_cloud_sync_no_longer_borrow_provisioning_for_their_backoff() -> None:
    code = (
        "import sys, iotistic_agent.mqtt.manager, iotistic_agent.cloud.retry;"
        "print(sorted(m for m in sys.modules if m.startswith('iotistic_agent.provisioning')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
