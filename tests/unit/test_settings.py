"""Agent settings come from the environment with the spec's names and defaults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from iotistic_agent.settings import AgentSettings
from iotistic_device_paths import database_path
from pydantic import ValidationError

from tests.integration.waiting import wait_for
from tests.support.net import free_port

AGENT = Path(sys.executable).with_name("iotistic-agent")
IOTCTL = Path(sys.executable).with_name("iotctl")


def test_defaults_follow_the_spec() -> None:
    s = AgentSettings.from_env({})
    assert s.DEVICE_API_PORT == 48484
    assert s.DEVICE_API_HOST == "127.0.0.1"
    assert s.RECONCILIATION_INTERVAL_MS == 30000
    assert s.LOG_LEVEL == "info"
    # Not the spec's <cwd>/data: /var/lib/iotistic or the XDG data directory (test_device_paths).
    assert database_path({}) == s.DATABASE_PATH


def test_values_are_read_from_the_environment() -> None:
    env = {"DEVICE_API_PORT": "5000", "LOG_LEVEL": "DEBUG", "DATABASE_PATH": "/x/db.sqlite"}
    s = AgentSettings.from_env(env)
    assert (s.DEVICE_API_PORT, s.LOG_LEVEL, s.data_dir) == (5000, "debug", Path("/x"))


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(ValidationError, match="DEVICE_API_PORT"):
        AgentSettings.from_env({"DEVICE_API_PORT": "lots"})


def test_the_agent_refuses_to_start_with_a_bad_setting() -> None:
    proc = subprocess.run(
        [str(AGENT)],
        env={"RECONCILIATION_INTERVAL_MS": "5", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "RECONCILIATION_INTERVAL_MS" in proc.stderr


def as_user(*argv: str) -> list[str]:
    """Run as uid 1000 in a user namespace: the agent sees a normal user (not root) while
    the files it reaches stay ours (the interpreter lives in root's home here)."""
    return ["unshare", "--user", "--map-user=1000", "--map-group=1000", *argv]


def start_agent(cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        as_user(str(AGENT)), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def device_uuid(port: int, data_dir: Path, proc: subprocess.Popen[bytes]) -> str:
    def answer() -> str | None:
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"agent exited with {proc.returncode}: {stderr}")
        try:
            key = (data_dir / "device-api.key").read_text().strip()
            response = httpx.get(
                f"http://127.0.0.1:{port}/v1/device",
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
        except (OSError, httpx.HTTPError):
            return None
        return str(response.json()["uuid"]) if response.status_code == 200 else None

    return wait_for(answer, 30, 0.1, "the agent did not answer /v1/device")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


@pytest.mark.parametrize("xdg", [False, True])
def test_a_user_agent_keeps_one_identity_in_its_xdg_folder_wherever_it_starts(
    tmp_path: Path, xdg: bool
) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "DEVICE_API_PORT": str(port),
        # No engine: this is about the data folder, and nothing must touch a real engine.
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
    }
    data_dir = tmp_path / "home" / ".local" / "share" / "iotistic"
    if xdg:
        env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
        data_dir = tmp_path / "xdg" / "iotistic"
    uuids = []
    for folder in ("first", "second"):
        proc = start_agent(tmp_path / folder, env)
        try:
            uuids.append(device_uuid(port, data_dir, proc))
            # iotctl, as the same user and from yet another folder, finds the agent's key.
            status = subprocess.run(
                as_user(str(IOTCTL), "status", "--json"),
                env={**env, "DEVICE_API_PORT": str(port)},
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert status.returncode == 0, status.stderr
            assert uuids[-1] in status.stdout
        finally:
            stop(proc)
        assert list((tmp_path / folder).iterdir()) == []  # nothing in the working folder
    assert uuids[0] == uuids[1]
    assert (data_dir / "device.sqlite").is_file()
