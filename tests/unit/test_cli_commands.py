"""The command tree itself: every command has --help, bad usage exits 2, imports stay lazy."""

from __future__ import annotations

import subprocess
import sys

import pytest
from iotctl.main import build_app
from typer.testing import CliRunner

COMMANDS = [
    [],
    ["provision"],
    ["deprovision"],
    ["factory-reset"],
    ["config"],
    *(["config", c] for c in ("show", "get", "set", "reset", "set-api", "get-api")),
    ["status"],
    ["diagnostics"],
    ["diag"],
    ["restart"],
    ["logs"],
    ["apps"],
    *(["apps", c] for c in ("list", "info", "start", "stop", "restart", "purge")),
    ["services"],
    *(["services", c] for c in ("list", "info", "start", "stop", "restart", "logs")),
    ["anomalies"],
    ["simulation"],
    *(["simulation", c] for c in ("list", "start", "stop")),
    ["help"],
    ["version"],
]
JSON_COMMANDS = [
    ["status"],
    ["apps", "list"],
    ["apps", "info"],
    ["services", "list"],
    ["services", "info"],
    ["config", "show"],
    ["config", "get"],
    ["diagnostics"],
    ["provision"],
    ["simulation", "list"],
    ["anomalies"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "iotctl")
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(build_app(), [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=" ".join)
def test_listing_and_info_commands_offer_json(command: list[str]) -> None:
    result = CliRunner().invoke(build_app(), [*command, "--help"])
    assert "--json" in result.output


@pytest.mark.parametrize(
    "args",
    [["no-such-command"], ["apps", "stop", "not-a-number"], ["logs", "-n", "-1"], ["apps", "info"]],
)
def test_bad_usage_exits_2(args: list[str]) -> None:
    assert CliRunner().invoke(build_app(), args).exit_code == 2


def test_help_command_lists_every_top_level_command() -> None:
    result = CliRunner().invoke(build_app(), ["help"])
    assert result.exit_code == 0
    for name in ("provision", "factory-reset", "config", "status", "diag", "apps", "services"):
        assert name in result.output


def test_shell_completion_is_offered() -> None:
    result = CliRunner().invoke(build_app(), ["--help"])
    assert "--install-completion" in result.output
    assert "--show-completion" in result.output


def test_a_command_that_needs_no_agent_imports_no_http_stack_rich_or_pydantic() -> None:
    # Start-up time is mostly imports: keep the heavy ones out of commands that do not use them.
    probe = (
        "import sys\n"
        "sys.argv = ['iotctl', 'version']\n"
        "from iotctl.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('httpx', 'rich', 'pydantic') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == ["iotctl 0.1.0", "[]"]
