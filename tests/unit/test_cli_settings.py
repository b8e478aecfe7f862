"""iotctl finds the Device API and its key from the same settings as the agent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from iotctl import settings
from iotctl.errors import EXIT_USAGE, CliError
from iotistic_agent.device_api.auth import key_path
from iotistic_agent.settings import AgentSettings


def test_default_url_is_loopback_on_the_agents_default_port() -> None:
    assert settings.api_url({}) == "http://127.0.0.1:48484"


def test_device_api_port_changes_the_default_url() -> None:
    assert settings.api_url({"DEVICE_API_PORT": "5000"}) == "http://127.0.0.1:5000"


def test_device_api_url_wins_and_loses_its_trailing_slash() -> None:
    env = {"DEVICE_API_URL": "http://10.0.0.2:9000/", "DEVICE_API_PORT": "5000"}
    assert settings.api_url(env) == "http://10.0.0.2:9000"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_an_agent_bound_to_every_interface_is_reached_on_loopback(host: str) -> None:
    assert settings.api_url({"DEVICE_API_HOST": host}) == "http://127.0.0.1:48484"


def test_an_agent_bound_to_one_address_is_reached_there() -> None:
    assert settings.api_url({"DEVICE_API_HOST": "192.168.1.5"}) == "http://192.168.1.5:48484"
    assert settings.api_url({"DEVICE_API_HOST": "::1"}) == "http://[::1]:48484"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"DEVICE_API_PORT": "lots"}, "DEVICE_API_PORT"),
        ({"DEVICE_API_PORT": "70000"}, "DEVICE_API_PORT"),
        ({"DEVICE_API_URL": "127.0.0.1:48484"}, "DEVICE_API_URL"),
    ],
)
def test_a_bad_setting_is_a_usage_error_naming_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(CliError, match=name) as caught:
        settings.api_url(env)
    assert caught.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    "env",
    [{}, {"DATABASE_PATH": "/srv/iot/device.sqlite"}, {"DATABASE_PATH": "rel/dir/db.sqlite"}],
)
def test_key_file_is_where_the_agent_writes_it(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    agent_key = key_path(AgentSettings.from_env(env).data_dir)
    assert settings.key_file(env) == Path(os.path.abspath(agent_key))


def test_explicit_key_wins_over_the_file(tmp_path: Path) -> None:
    env = {"IOTCTL_API_KEY": " secret-from-env \n", "DATABASE_PATH": str(tmp_path / "db")}
    assert settings.api_key(env) == "secret-from-env"


def test_key_is_read_from_the_data_directory(tmp_path: Path) -> None:
    (tmp_path / "device-api.key").write_text("k" * 43 + "\n")
    assert settings.api_key({"DATABASE_PATH": str(tmp_path / "device.sqlite")}) == "k" * 43


def test_missing_key_file_says_where_it_looked_and_what_to_do(tmp_path: Path) -> None:
    env = {"DATABASE_PATH": str(tmp_path / "device.sqlite")}
    with pytest.raises(CliError) as caught:
        settings.api_key(env)
    message = caught.value.message
    assert f"cannot read the device API key from {tmp_path / 'device-api.key'}" in message
    assert "run as the agent's user or set IOTCTL_API_KEY" in message
    assert caught.value.exit_code == 1


def test_unreadable_or_empty_key_file_gets_the_same_advice(tmp_path: Path) -> None:
    key = tmp_path / "device-api.key"
    key.write_text("   \n")
    env = {"DATABASE_PATH": str(tmp_path / "device.sqlite")}
    with pytest.raises(CliError, match="IOTCTL_API_KEY"):
        settings.api_key(env)
    key.unlink()
    key.mkdir()  # a directory cannot be read as a file, whoever runs the test
    with pytest.raises(CliError, match="cannot read the device API key"):
        settings.api_key(env)


def test_a_key_file_with_odd_bytes_is_not_quoted_in_the_message(tmp_path: Path) -> None:
    (tmp_path / "device-api.key").write_bytes(b"s\xc3\xa9cret")
    with pytest.raises(CliError) as caught:
        settings.api_key({"DATABASE_PATH": str(tmp_path / "device.sqlite")})
    assert "cret" not in caught.value.message
