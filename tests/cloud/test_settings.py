"""Settings from the environment, and the admin token file."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from iotistic_cloud.admin_token import admin_token, token_file
from iotistic_cloud.settings import CloudEnvironment, Settings, SettingsError

from tests.support.cloud_process import CloudProcess


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({}, cwd=tmp_path)
    assert settings.data_dir == tmp_path / "data" / "cloud"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/data/cloud/cloud.sqlite"
    assert settings.admin_token is None
    assert settings.public_url is None
    assert (settings.mqtt.url, settings.mqtt.protocol) == ("mqtt://127.0.0.1:1883", "mqtt")
    assert settings.mqtt.ca_cert is None
    assert (settings.offline_after_s, settings.key_exchange_ttl_s) == (60, 600)
    assert (settings.database_pool_size, settings.database_wait_timeout_s) == (20, 5)
    assert (settings.device_rate_limit_per_min, settings.provisioning_rate_limit_per_min) == (
        300,
        120,
    )
    assert (settings.max_concurrent_requests, settings.overload_retry_after_s) == (64, 10)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/cloud", "postgresql+asyncpg://u:p@db:5432/cloud"),
        ("postgres://db/cloud", "postgresql+asyncpg://db/cloud"),
        ("postgresql+asyncpg://db/cloud", "postgresql+asyncpg://db/cloud"),
        ("postgresql://db/cloud?sslmode=require", "postgresql+asyncpg://db/cloud?ssl=require"),
        ("sqlite:////srv/cloud.sqlite", "sqlite+aiosqlite:////srv/cloud.sqlite"),
        ("sqlite+aiosqlite:///rel.sqlite", "sqlite+aiosqlite:///rel.sqlite"),
    ],
)
def test_database_urls_map_to_async_drivers(given: str, expected: str) -> None:
    assert Settings.from_env({"DATABASE_URL": given}).database_url == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL: unsupported scheme 'mysql'"),
        ({"DATABASE_URL": "sqlite://"}, "in-memory SQLite"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL must look like"),
        ({"ADMIN_TOKEN": "short"}, "ADMIN_TOKEN must be at least 16 characters"),
        ({"MQTT_BROKER_URL": "http://broker"}, "MQTT_BROKER_URL must start with mqtt://"),
        ({"MQTT_BROKER_URL": "mqtt://broker:99999"}, "MQTT_BROKER_URL has an invalid port"),
        ({"MQTT_CA_CERT_FILE": "/nonexistent/ca.pem"}, "MQTT_CA_CERT_FILE cannot be read"),
        ({"CLOUD_PUBLIC_URL": "ftp://x"}, "CLOUD_PUBLIC_URL must be an http"),
        ({"DEVICE_OFFLINE_AFTER_S": "soon"}, "DEVICE_OFFLINE_AFTER_S must be a whole number"),
        ({"KEY_EXCHANGE_TTL_S": "0"}, "KEY_EXCHANGE_TTL_S must be between 1 and"),
        ({"DATABASE_POOL_SIZE": "0"}, "DATABASE_POOL_SIZE must be between 1 and 1000, got 0"),
        (
            {"DATABASE_WAIT_TIMEOUT_S": "1.5s"},
            "DATABASE_WAIT_TIMEOUT_S must be a whole number of seconds, got '1.5s'",
        ),
        ({"MQTT_VERIFY_CERTIFICATE": "perhaps"}, "MQTT_VERIFY_CERTIFICATE must be true or false"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")) as caught:
        Settings.from_env(env)
    assert "p@ss" not in str(caught.value)


def test_mqtts_with_a_ca_certificate(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings = Settings.from_env(
        {
            "MQTT_BROKER_URL": "mqtts://mosquitto",
            "MQTT_CA_CERT_FILE": str(ca),
            "CLOUD_PUBLIC_URL": "https://api.example.com/",
        }
    )
    assert settings.mqtt.url == "mqtts://mosquitto:8883"
    assert (settings.mqtt.host, settings.mqtt.port) == ("mosquitto", 8883)
    assert settings.mqtt.ca_cert == ca.read_text()
    assert settings.public_url == "https://api.example.com"


def test_admin_token_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings.from_env({"CLOUD_DATA_DIR": str(tmp_path / "cloud")})
    token = admin_token(settings)
    assert len(token) >= 40
    path = token_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert admin_token(settings) == token
    assert path.read_text().strip() == token
    # Loosened permissions are tightened again: the file holds a secret.
    os.chmod(path, 0o644)
    assert admin_token(settings) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]


def test_admin_token_from_the_environment_wins(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"CLOUD_DATA_DIR": str(tmp_path), "ADMIN_TOKEN": "from-the-environment-1234"}
    )
    assert admin_token(settings) == "from-the-environment-1234"
    assert not token_file(settings).exists()


def test_a_broken_token_file_is_an_error(tmp_path: Path) -> None:
    settings = Settings.from_env({"CLOUD_DATA_DIR": str(tmp_path)})
    token_file(settings).write_text("\n")
    with pytest.raises(SettingsError, match="empty or too short"):
        admin_token(settings)


def test_an_unwritable_data_dir_asks_for_admin_token(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    settings = Settings.from_env({"CLOUD_DATA_DIR": str(blocker / "cloud")})
    with pytest.raises(SettingsError, match="set ADMIN_TOKEN or make CLOUD_DATA_DIR writable"):
        admin_token(settings)


def test_postgresql_without_its_extra_is_a_clear_error(tmp_path: Path) -> None:
    """The driver (asyncpg) is the iotistic-cloud[postgres] extra. Without it installed
    (here: hidden by a package of the same name that cannot be imported, ahead on the path),
    every command says what to install instead of failing on an import deep down."""
    hidden = tmp_path / "hide" / "asyncpg"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ModuleNotFoundError('asyncpg')\n")
    cli = CloudProcess(
        tmp_path / "cloud",
        database_url="postgresql://cloud:p4ssw0rd@127.0.0.1:1/cloud",
        PYTHONPATH=str(hidden.parent),
    )
    for args in (["devices", "list"], ["serve"]):
        result = cli.cli(*args)
        assert (result.returncode, result.stdout) == (2, ""), result
        assert result.stderr == (
            "error: DATABASE_URL names a PostgreSQL database, but its driver (asyncpg) is not "
            "installed: install iotistic-cloud[postgres] "
            "(pip install 'iotistic-cloud[postgres]')\n"
        )
    # SQLite needs nothing more.
    sqlite = CloudProcess(tmp_path / "sqlite", PYTHONPATH=str(hidden.parent))
    assert sqlite.cli("devices", "list").returncode == 0


def test_the_docs_list_every_variable() -> None:
    """docs/cloud.md's settings table names exactly the variables the model reads."""
    docs = (Path(__file__).parents[2] / "docs" / "cloud.md").read_text()
    table = docs.split("### Settings", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    assert documented == set(CloudEnvironment.model_fields)


def test_empty_values_count_as_unset(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"DEVICE_OFFLINE_AFTER_S": "", "ADMIN_TOKEN": " ", "MQTT_PASSWORD": ""}, cwd=tmp_path
    )
    assert (settings.offline_after_s, settings.admin_token, settings.mqtt_admin) == (60, None, None)
