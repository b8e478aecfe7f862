"""Agent settings come from the environment with the spec's names and defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from iotistic_agent.settings import AgentSettings
from pydantic import ValidationError


def test_defaults_follow_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = AgentSettings.from_env({})
    assert s.DEVICE_API_PORT == 48484
    assert s.DEVICE_API_HOST == "127.0.0.1"
    assert s.RECONCILIATION_INTERVAL_MS == 30000
    assert s.LOG_LEVEL == "info"
    assert tmp_path / "data" / "device.sqlite" == s.DATABASE_PATH


def test_values_are_read_from_the_environment() -> None:
    env = {"DEVICE_API_PORT": "5000", "LOG_LEVEL": "DEBUG", "DATABASE_PATH": "/x/db.sqlite"}
    s = AgentSettings.from_env(env)
    assert (s.DEVICE_API_PORT, s.LOG_LEVEL, s.data_dir) == (5000, "debug", Path("/x"))


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(ValidationError, match="DEVICE_API_PORT"):
        AgentSettings.from_env({"DEVICE_API_PORT": "lots"})


def test_the_agent_refuses_to_start_with_a_bad_setting() -> None:
    agent = Path(sys.executable).with_name("iotistic-agent")
    proc = subprocess.run(
        [str(agent)],
        env={"RECONCILIATION_INTERVAL_MS": "5", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "RECONCILIATION_INTERVAL_MS" in proc.stderr
