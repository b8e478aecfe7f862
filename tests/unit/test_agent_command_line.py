"""`iotistic-agent`'s command line: --help, --version and a refusal of anything else, none
of which starts an agent, creates its data or touches the engine; importing
`iotistic_agent.__main__` starts nothing either."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from iotistic_agent import __version__

AGENT = Path(sys.executable).with_name("iotistic-agent")


@dataclass
class Sandbox:
    """A data folder that must stay absent and a Docker socket that must stay untouched."""

    env: dict[str, str]
    data_dir: Path
    engine: socket.socket

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, timeout=60, check=False
        )

    def assert_untouched(self) -> None:
        assert not self.data_dir.exists(), "the agent created its data folder"
        self.engine.setblocking(False)
        with pytest.raises(BlockingIOError):
            self.engine.accept()  # nobody connected to the engine


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    engine_path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as engine:
        engine.bind(str(engine_path))
        engine.listen(16)
        env = {
            **os.environ,
            "DOCKER_HOST": f"unix://{engine_path}",
            "DATABASE_PATH": str(tmp_path / "data" / "device.sqlite"),
        }
        yield Sandbox(env, tmp_path / "data", engine)


def test_help_says_how_to_configure_the_agent_and_starts_nothing(sandbox: Sandbox) -> None:
    proc = sandbox.run(str(AGENT), "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: iotistic-agent")
    for variable in ("DATABASE_PATH", "DOCKER_HOST", "DEVICE_API_PORT", "/var/lib/iotistic"):
        assert variable in proc.stdout
    sandbox.assert_untouched()


def test_version_prints_the_version_and_starts_nothing(sandbox: Sandbox) -> None:
    proc = sandbox.run(str(AGENT), "--version")
    assert (proc.returncode, proc.stdout.strip()) == (0, f"iotistic-agent {__version__}")
    sandbox.assert_untouched()


@pytest.mark.parametrize("argv", [["--frobnicate"], ["start"], ["-v"], ["--database", "/x"]])
def test_an_unknown_argument_is_refused_and_starts_nothing(
    sandbox: Sandbox, argv: list[str]
) -> None:
    proc = sandbox.run(str(AGENT), *argv)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: iotistic-agent")
    assert f"iotistic-agent: error: unrecognized arguments: {' '.join(argv)}" in proc.stderr
    sandbox.assert_untouched()


def test_importing_main_starts_nothing(sandbox: Sandbox) -> None:
    proc = sandbox.run(sys.executable, "-c", "import iotistic_agent.__main__")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    sandbox.assert_untouched()


def test_python_dash_m_has_the_same_command_line(sandbox: Sandbox) -> None:
    # The restart path re-executes `python -m iotistic_agent` with the same arguments.
    proc = sandbox.run(sys.executable, "-m", "iotistic_agent", "--version")
    assert (proc.returncode, proc.stdout.strip()) == (0, f"iotistic-agent {__version__}")
    refused = sandbox.run(sys.executable, "-m", "iotistic_agent", "now")
    assert refused.returncode == 2 and "unrecognized arguments: now" in refused.stderr
    sandbox.assert_untouched()
