"""scripts/dockerd.sh, which scripts/bootstrap.sh uses to start the engine: whether an engine runs
is decided by its socket, not by any dockerd process being alive, and a pid file left behind by
a crash does not stop a new engine from starting (issue 12, item 20)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "dockerd.sh"
RUN_DIR = Path("/run/iotistic-dockerd")


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=180, check=False
    )


def _free_bridge_index() -> int:
    """An index whose bridge no other private engine (a parallel suite's) uses."""
    for index in range(100, 151):
        if not Path(f"/sys/class/net/iotd{index}").exists():
            return index
    raise AssertionError("no free private-engine bridge index between 100 and 150")


def _dockerd_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True, check=False)
    return {int(pid) for pid in out.stdout.split()}


@pytest.fixture
def engine_name(docker_engine: None) -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("starting a Docker engine needs root (CI runs the suite as root)")
    name = f"test-{os.getpid()}"
    yield name
    _script("--stop-private", name)


def test_starts_beside_another_engine_despite_a_stale_pid_file(engine_name: str) -> None:
    # The machine's engine (the suite's) is a dockerd that runs: the old check, "is any dockerd
    # running", took it for this engine and never started one.
    others = _dockerd_pids()
    assert others, "the suite's own engine should be running"
    pidfile = RUN_DIR / engine_name / "dockerd.pid"
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    # After a crash the pid in the file may belong to another program by now: this test's.
    pidfile.write_text(f"{os.getpid()}\n")

    index = str(_free_bridge_index())
    started = _script("--private", engine_name, index)

    assert started.returncode == 0, started.stderr
    host = started.stdout.strip()
    assert host == f"unix://{RUN_DIR / engine_name / 'docker.sock'}"
    assert "removing stale pid file" in started.stderr
    info = subprocess.run(
        ["docker", "--host", host, "info", "--format", "{{.DockerRootDir}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert info.stdout.strip().endswith(f"{engine_name}/data")
    pid = int(pidfile.read_text())
    assert pid not in others and pid in _dockerd_pids()

    # Asked again, the script sees the engine answer and starts nothing.
    again = _script("--private", engine_name, index)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == host
    assert int(pidfile.read_text()) == pid

    stopped = _script("--stop-private", engine_name)
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: pid not in _dockerd_pids(), 60, message="the private engine did not stop")
    # The machine's engine was left alone.
    assert others <= _dockerd_pids()


def test_refuses_bad_arguments() -> None:
    for args in (("--private", "bad name", "3"), ("--private", "ok", "0"), ("--bogus",)):
        result = _script(*args)
        assert result.returncode != 0
        assert "dockerd.sh: ERROR:" in result.stderr
