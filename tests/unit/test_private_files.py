"""The agent's data and log folders are 0700 and its log files 0600, new or left by an older
release (0755 and 0644), while folders that are not the agent's own are left alone."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from iotistic_agent.private_files import private_dir

from tests.integration.waiting import wait_for
from tests.support.net import free_port

AGENT = Path(sys.executable).with_name("iotistic-agent")
BEFORE = '{"message": "written by an older release"}'


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_agent_until_logs_rotate(data_dir: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_PATH": str(data_dir / "device.sqlite"),
        "DEVICE_API_PORT": str(port),
        "DOCKER_HOST": f"unix://{data_dir.parent}/no-docker.sock",
        "RECONCILIATION_INTERVAL_MS": "100",
        "LOG_LEVEL": "debug",
        "LOG_FILE_MAX_BYTES": "4096",
    }
    proc = subprocess.Popen(
        [str(AGENT)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # The usual umask: what the agent creates is private because it says so.
        preexec_fn=lambda: os.umask(0o022),
    )
    try:

        def answers() -> bool:
            assert proc.poll() is None, f"agent exited with {proc.returncode}"
            return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=10).text == "OK"

        def rotated() -> bool:
            first_backup = data_dir / "logs" / "agent.log.1"
            return first_backup.exists() and BEFORE not in first_backup.read_text()

        wait_for(answers, 60, 0.1, "the agent never answered", ignore=(httpx.HTTPError,))
        # An unreachable engine is logged on every pass: the file soon rotates.
        wait_for(rotated, 60, 0.1, "agent.log never rotated")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_a_new_agent_creates_owner_only_folders_and_log_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "device"
    run_agent_until_logs_rotate(data_dir)
    logs = data_dir / "logs"
    assert (mode(data_dir), mode(logs)) == (0o700, 0o700)
    files = sorted(p.name for p in logs.iterdir())
    assert files[:2] == ["agent.log", "agent.log.1"]
    assert {p.name: mode(p) for p in logs.iterdir()} == dict.fromkeys(files, 0o600)
    assert mode(data_dir / "device.sqlite") == 0o600


def test_folders_and_files_of_an_older_release_are_tightened_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "device"
    logs = data_dir / "logs"
    logs.mkdir(parents=True)
    for older in ("agent.log", "agent.log.1", "agent.log.2"):
        (logs / older).write_text(BEFORE + "\n")
        (logs / older).chmod(0o644)
    data_dir.chmod(0o755)
    logs.chmod(0o755)
    run_agent_until_logs_rotate(data_dir)
    assert (mode(data_dir), mode(logs)) == (0o700, 0o700)
    assert {mode(p) for p in logs.iterdir()} == {0o600}


def test_a_shared_folder_is_left_alone_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: tightening it would break everyone else
    with caplog.at_level(logging.WARNING, "iotistic.agent"):
        private_dir(shared)
    assert mode(shared) == 0o1777
    assert "shared (sticky bit): left at mode 1777" in caplog.text


def test_a_folder_of_its_own_is_tightened_and_a_new_one_created_private(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir(mode=0o755)
    private_dir(own)
    private_dir(tmp_path / "new" / "deeper")
    assert (mode(own), mode(tmp_path / "new" / "deeper")) == (0o700, 0o700)
