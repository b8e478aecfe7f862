"""End to end with real processes: a container prints known lines, the agent follows them and
ships them, the cloud stores them and returns them in order with the right tags; the cloud
goes away and the agent restarts in the middle, and nothing is lost or repeated; a container
printing far more than 10,000 lines a second does not take the agent over its memory bound.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.integration.agent_process import AgentProcess, app, svc, target
from tests.integration.dockerkit import ImageSet
from tests.integration.waiting import wait_for
from tests.support.cloud_process import CloudProcess

FAST = {
    "POLL_INTERVAL_MS": "500",
    "REPORT_INTERVAL_MS": "1000",
    "CLOUD_BACKOFF_BASE_MS": "200",
    "CLOUD_BACKOFF_MAX_MS": "1000",
    "CLOUD_LOG_UPLOAD_INTERVAL": "300",
}
# The documented memory bound of the agent under a flood of container output (docs/agent.md).
MEMORY_BOUND_MB = 110

TALKER = (
    'trap \'exit 0\' TERM; i=0; while [ $i -lt 50 ]; do echo "out $i"; echo "err $i" >&2; '
    'i=$((i+1)); done; n=0; while true; do echo "tick $n"; n=$((n+1)); sleep 0.02; done'
)
FLOOD_LINES = 200_000
FLOOD = f"trap 'exit 0' TERM; seq 1 {FLOOD_LINES}; while true; do sleep 3600 & wait $!; done"


def cloud_logs(cloud: CloudProcess, device: str, **params: Any) -> list[dict[str, Any]]:
    """Every stored record matching ``params``, oldest first (paged by sequence)."""
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        response = httpx.get(
            f"{cloud.url}/api/admin/v1/devices/{device}/logs",
            params={**params, "after_seq": after, "limit": 10_000},
            headers=cloud.admin_headers,
            timeout=30,
        )
        response.raise_for_status()
        page: list[dict[str, Any]] = response.json()["logs"]
        if not page:
            return out
        out += page
        after = page[-1]["seq"]


def provisioned_agent(cloud: CloudProcess, data_dir: Path, **env: str) -> tuple[AgentProcess, str]:
    key = cloud.cli("keys", "create", "--quiet").stdout.strip()
    agent = AgentProcess(
        data_dir, PROVISIONING_API_KEY=key, CLOUD_API_ENDPOINT=cloud.url, **{**FAST, **env}
    ).start()
    device = wait_for(
        lambda: (s := agent.get("/v1/provision").json())["provisioned"] and s["uuid"],
        30,
        message=f"agent did not provision; log:\n{agent.log()[-3000:]}",
    )
    return agent, str(device)


def set_target(cloud: CloudProcess, device: str, tmp_path: Path, wanted: dict[str, Any]) -> None:
    path = tmp_path / "target.json"
    path.write_text(json.dumps({**wanted, "config": {}}))
    result = cloud.cli("devices", "set-target", device, str(path))
    assert result.returncode == 0, result.stderr


def numbered(records: list[dict[str, Any]], prefix: str) -> list[int]:
    pattern = re.compile(rf"{prefix} (\d+)")
    return [int(m[1]) for r in records if (m := pattern.fullmatch(r["message"]))]


def test_container_lines_reach_the_cloud_in_order_through_an_outage_and_a_restart(
    tmp_path: Path, images: ImageSet, docker_clean: None
) -> None:
    cloud = CloudProcess(tmp_path / "cloud").start()
    agent, device = provisioned_agent(cloud, tmp_path / "agent")
    try:
        talker = svc(1, "talker", images.v1, config={"command": ["sh", "-c", TALKER]})
        set_target(cloud, device, tmp_path, target(app(1001, talker, name="shop")))

        # 1. The first lines arrive tagged, each stream in the order printed.
        def first_lines() -> list[dict[str, Any]] | None:
            records = cloud_logs(cloud, device, source="container")
            outs = [r for r in records if r["stream"] == "stdout" and r["message"][:4] == "out "]
            errs = [r for r in records if r["stream"] == "stderr"]
            return records if len(outs) == 50 and len(errs) == 50 else None

        records = wait_for(first_lines, 60, 0.3, f"lines never arrived:\n{agent.log()[-3000:]}")
        assert numbered(records, "out") == list(range(50))
        assert numbered(records, "err") == list(range(50))
        assert {(r["app"], r["service"], r["source"]) for r in records} == {
            ("shop", "talker", "container")
        }
        assert all(r["stream"] == "stderr" for r in records if r["message"].startswith("err"))
        # The operator's view: `iotistic-cloud logs` filtered by service and stream text.
        shown = cloud.cli("logs", device, "--service", "talker", "--grep", "err 4", "--json")
        assert shown.returncode == 0, shown.stderr
        listed = [json.loads(line) for line in shown.stdout.splitlines() if line.strip()]
        assert [r["message"] for r in listed] == ["err 4"] + [f"err {i}" for i in range(40, 50)]

        # 2. The cloud goes away while the container keeps printing; the agent restarts.
        port = urlsplit(cloud.url).port
        assert port is not None
        before_outage = max(numbered(cloud_logs(cloud, device, q="tick"), "tick"), default=-1)
        cloud.stop()
        wait_for(lambda: agent.get("/v1/device").json()["logShipping"]["errors"] >= 1, 20)
        assert agent.terminate() == 0
        agent.start()
        wait_for(lambda: agent.get("/v1/device").json()["logShipping"]["pending"] > 50, 20)

        # 3. Back: every tick arrives exactly once, in order, with no gap.
        cloud.start("--port", str(port))
        target_tick = before_outage + 300

        def all_ticks() -> list[int] | None:
            ticks = numbered(cloud_logs(cloud, device, q="tick"), "tick")
            return ticks if ticks and ticks[-1] >= target_tick else None

        ticks = wait_for(all_ticks, 60, 0.5, f"ticks stopped:\n{agent.log()[-3000:]}")
        assert ticks == list(range(len(ticks))), "a container line was lost or repeated"
        # The records' sequence numbers are the device's: strictly increasing.
        seqs = [r["seq"] for r in cloud_logs(cloud, device)]
        assert seqs == sorted(set(seqs))
        # The agent's own records are there too, with their components.
        agent_records = cloud_logs(cloud, device, source="agent", level="warn")
        assert any(r["component"] for r in agent_records)
    finally:
        agent.stop()
        cloud.stop()


LAST_WORDS = 30_000
# On SIGTERM it prints a burst and exits, and the agent then removes it (which deletes its
# log): the burst must still reach the cloud whole. (An attached reader keeps reading a
# removed container's log; a container no follower saw yet is read before its removal.)
GOODBYE = (
    f"trap 'seq 1 {LAST_WORDS}; exit 0' TERM; echo started; "
    "while true; do sleep 3600 & wait $!; done"
)


def test_the_last_output_of_a_removed_container_is_not_lost(
    tmp_path: Path, images: ImageSet, docker_clean: None
) -> None:
    cloud = CloudProcess(tmp_path / "cloud").start()
    agent, device = provisioned_agent(cloud, tmp_path / "agent", CLOUD_LOG_UPLOAD_INTERVAL="200")
    try:
        ender = svc(1, "ender", images.v1, config={"command": ["sh", "-c", GOODBYE]})
        set_target(cloud, device, tmp_path, target(app(1001, ender, name="shop")))
        wait_for(
            lambda: any(r["message"] == "started" for r in cloud_logs(cloud, device, q="started")),
            60,
            0.3,
            f"never started:\n{agent.log()[-3000:]}",
        )
        set_target(cloud, device, tmp_path, target())  # the app goes: stop, then remove
        wait_for(lambda: agent.apps_state().get("1001") is None, 60, 0.3)

        def all_words() -> list[int] | None:
            records = cloud_logs(cloud, device, service="ender")
            words = [int(r["message"]) for r in records if r["message"].isdigit()]
            return words if len(words) >= LAST_WORDS else None

        words = wait_for(all_words, 60, 0.5, f"last words lost:\n{agent.log()[-3000:]}")
        assert words == list(range(1, LAST_WORDS + 1))
    finally:
        agent.stop()
        cloud.stop()


@contextmanager
def peak_rss_mb(pid: int) -> Iterator[list[float]]:
    """Samples the process's RSS every 20 ms while the block runs; yields [peak]."""
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        status = Path(f"/proc/{pid}/status")
        while not done.wait(0.02):
            try:
                text = status.read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    peak[0] = max(peak[0], int(line.split()[1]) / 1024)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join()


def test_a_flood_of_container_output_stays_within_the_memory_bound(
    tmp_path: Path, images: ImageSet, docker_clean: None
) -> None:
    cloud = CloudProcess(tmp_path / "cloud").start()
    agent, device = provisioned_agent(cloud, tmp_path / "agent")
    try:
        flood = svc(1, "flood", images.v1, config={"command": ["sh", "-c", FLOOD]})
        with peak_rss_mb(agent.proc.pid) as peak:
            set_target(cloud, device, tmp_path, target(app(1001, flood, name="noisy")))

            def shipped() -> int | None:
                status = agent.get("/v1/device").json()["logShipping"]
                done = status.get("shipped", 0) >= FLOOD_LINES and status["pending"] == 0
                return status["shipped"] if done else None

            wait_for(shipped, 180, 0.5, f"flood not shipped:\n{agent.log()[-3000:]}")
        records = cloud_logs(cloud, device, source="container")
        numbers = [int(r["message"]) for r in records]
        assert numbers == list(range(1, FLOOD_LINES + 1))
        first = datetime.fromisoformat(records[0]["timestamp"][:26])
        last = datetime.fromisoformat(records[-1]["timestamp"][:26])
        rate = FLOOD_LINES / max((last - first).total_seconds(), 1e-3)
        assert rate > 10_000, f"the container printed only {rate:.0f} lines/s"
        assert peak[0] < MEMORY_BOUND_MB, f"agent peaked at {peak[0]:.1f} MB"
        print(f"\n[flood] {rate:,.0f} lines/s printed; agent peak RSS {peak[0]:.1f} MB")
    finally:
        agent.stop()
        cloud.stop()
