"""What provisioning keeps on the device: the device table, secret files, settings, helpers."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from iotistic_agent.engine.memory import MemoryEngine
from iotistic_agent.factory_reset import wipe_device
from iotistic_agent.provisioning.files import device_key_path, write_private_file
from iotistic_agent.provisioning.host_info import mac_address, os_version
from iotistic_agent.provisioning.http import CloudError, error_text, tls_setting
from iotistic_agent.settings import AgentSettings
from iotistic_agent.store import db
from iotistic_agent.store.db import migrate, migrations, open_database
from iotistic_agent.store.device import DeviceRegistration, DeviceStore

API_KEY = "dak_SECRET_device_api_key"
MQTT_PASSWORD = "mqtt_SECRET_password"


def registration(**changes: Any) -> DeviceRegistration:
    values: dict[str, Any] = {
        "device_id": "dev-1",
        "device_name": "pi-7",
        "device_type": "edge-gateway",
        "api_key": API_KEY,
        "api_endpoint": "https://cloud.example",
        "registered_at": 1_764_000_000,
        "mqtt_broker_url": "mqtts://broker:8883",
        "mqtt_username": "device_x",
        "mqtt_password": MQTT_PASSWORD,
        "mqtt_broker_config": {"protocol": "mqtts", "host": "broker", "port": 8883},
        "api_tls_config": {"caCert": "CA", "verifyCertificate": True},
        **changes,
    }
    return DeviceRegistration(**values)


@pytest.fixture
def store(tmp_path: Path) -> DeviceStore:
    devices = DeviceStore(open_database(tmp_path / "device.sqlite"))
    devices.ensure_identity("pi")
    return devices


def device_row(store: DeviceStore) -> dict[str, Any]:
    return dict(store._conn.execute("SELECT * FROM device").fetchone())


# --- the device table ------------------------------------------------------------------------


def test_credentials_exist_only_while_provisioned(store: DeviceStore) -> None:
    assert store.cloud_credentials() is None
    store.save_registration(registration())
    credentials = store.cloud_credentials()
    assert credentials is not None
    uuid = store.identity().uuid
    assert (credentials.uuid, credentials.endpoint, credentials.api_key) == (
        uuid,
        "https://cloud.example",
        API_KEY,
    )
    assert (credentials.ca_cert, credentials.verify_tls) == ("CA", True)
    assert API_KEY not in repr(credentials)
    store.mark_deprovisioned(1_764_000_100)
    assert store.cloud_credentials() is None


@pytest.mark.parametrize(
    ("tls", "verify", "ca"),
    [
        (None, True, None),
        ({}, True, None),
        ({"verifyCertificate": False}, False, None),
        ({"verifyCertificate": "no"}, True, None),  # only an explicit false disables it
        ({"caCert": "  "}, True, None),
    ],
)
def test_tls_verification_is_on_unless_explicitly_off(
    store: DeviceStore, tls: dict[str, Any] | None, verify: bool, ca: str | None
) -> None:
    store.save_registration(registration(api_tls_config=tls))
    credentials = store.cloud_credentials()
    assert credentials is not None and (credentials.verify_tls, credentials.ca_cert) == (verify, ca)


def test_corrupt_tls_config_falls_back_to_verification(store: DeviceStore) -> None:
    store.save_registration(registration())
    store._conn.execute("UPDATE device SET apiTlsConfig = '{broken'")
    credentials = store.cloud_credentials()
    assert credentials is not None and credentials.verify_tls is True


def test_registration_is_stored_with_every_column(store: DeviceStore) -> None:
    store.save_registration(registration())
    row = device_row(store)
    assert row["provisioned"] == 1 and row["deviceId"] == "dev-1"
    assert (row["apiKey"], row["mqttPassword"]) == (API_KEY, MQTT_PASSWORD)
    assert row["mqttBrokerConfig"] == '{"protocol": "mqtts", "host": "broker", "port": 8883}'
    assert row["registeredAt"] == 1_764_000_000
    identity = store.identity()
    assert (identity.device_id, identity.device_type, identity.endpoint) == (
        "dev-1",
        "edge-gateway",
        "https://cloud.example",
    )
    assert identity.registered_at == 1_764_000_000 and identity.deprovisioned_at is None
    assert API_KEY not in repr(registration()) and MQTT_PASSWORD not in repr(registration())


def test_a_registration_that_fails_to_store_stores_nothing(store: DeviceStore) -> None:
    before = device_row(store)
    # The database refuses the write half-way (as a full disk would).
    store._conn.execute(
        "CREATE TRIGGER full_disk BEFORE UPDATE OF apiKey ON device "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="disk is full"):
        store.save_registration(registration())
    assert device_row(store) == before
    assert not store._conn.in_transaction
    store._conn.execute("DROP TRIGGER full_disk")
    # A value that cannot be serialised is refused before anything is written.
    with pytest.raises(TypeError):
        store.save_registration(registration(mqtt_broker_config={"x": object()}))
    assert device_row(store) == before


def test_deprovision_keeps_uuid_and_api_key(store: DeviceStore) -> None:
    store.save_registration(registration())
    uuid = store.identity().uuid
    store.mark_deprovisioned(1_764_000_100)
    row = device_row(store)
    assert (row["uuid"], row["apiKey"], row["provisioned"]) == (uuid, API_KEY, 0)
    assert store.identity().deprovisioned_at == 1_764_000_100
    store.save_registration(registration(device_id="dev-2"))  # provisioning again clears it
    assert store.identity().deprovisioned_at is None and store.identity().provisioned


def test_identity_before_ensure_identity_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="no identity"):
        DeviceStore(open_database(tmp_path / "d.sqlite")).identity()


# --- migration 003 on existing databases -----------------------------------------------------


@pytest.mark.parametrize("existing", [1, 2])
def test_migration_003_upgrades_a_database_of_an_older_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: int
) -> None:
    path = tmp_path / "device.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    every = migrations()
    monkeypatch.setattr(db, "migrations", lambda: every[:existing])
    assert migrate(conn) == existing
    conn.execute(
        "INSERT INTO device (id, uuid, deviceName, provisioned, apiKey) "
        "VALUES (1, 'u-1', 'old', 1, 'k')"
    )
    monkeypatch.setattr(db, "migrations", lambda: every)

    latest = every[-1][0]
    assert migrate(conn) == latest
    assert migrate(conn) == latest  # applied once: a second start changes nothing
    store = DeviceStore(conn)
    identity = store.identity()
    assert (identity.uuid, identity.name, identity.provisioned) == ("u-1", "old", True)
    assert identity.deprovisioned_at is None
    columns = {r["name"] for r in conn.execute("PRAGMA table_info(device)")}
    assert "deprovisionedAt" in columns
    assert [n for n, name, _ in every if name.startswith("003_")] == [3]


# --- secret files and factory reset ----------------------------------------------------------


def test_private_files_are_0600_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secret.pem"
    write_private_file(path, b"one")
    path.chmod(0o644)
    write_private_file(path, b"two")
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.pem"]  # no temporary left


async def test_factory_reset_removes_the_device_key_pair(tmp_path: Path) -> None:
    database = tmp_path / "device.sqlite"
    open_database(database).close()
    write_private_file(device_key_path(tmp_path), b"key")
    await wipe_device(MemoryEngine(), database, tmp_path)
    assert not device_key_path(tmp_path).exists() and not database.exists()


# --- settings --------------------------------------------------------------------------------


def test_provisioning_settings() -> None:
    s = AgentSettings.from_env(
        {
            "PROVISIONING_API_KEY": " pk_test_0123456789abcdef ",
            "REQUIRE_PROVISIONING": "true",
            "DEVICE_TYPE": "edge-gateway",
        }
    )
    assert s.PROVISIONING_API_KEY is not None
    assert s.PROVISIONING_API_KEY.get_secret_value() == "pk_test_0123456789abcdef"
    assert (s.REQUIRE_PROVISIONING, s.DEVICE_TYPE) == (True, "edge-gateway")
    for text in (repr(s), str(s), s.model_dump_json()):
        assert "pk_test_0123456789abcdef" not in text


def test_empty_provisioning_settings_mean_unset() -> None:
    s = AgentSettings.from_env(
        {"PROVISIONING_API_KEY": "  ", "REQUIRE_PROVISIONING": "", "DEVICE_TYPE": ""}
    )
    assert (s.PROVISIONING_API_KEY, s.REQUIRE_PROVISIONING, s.DEVICE_TYPE) == (None, False, None)


@pytest.mark.parametrize(
    "env", [{"REQUIRE_PROVISIONING": "maybe"}, {"DEVICE_TYPE": "a\tb"}, {"DEVICE_TYPE": "x" * 256}]
)
def test_bad_provisioning_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=next(iter(env))):
        AgentSettings.from_env(env)


# --- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, b'{"error": "provisioning key has expired"}', "provisioning key has expired"),
        (422, b'{"detail": "bad uuid"}', "bad uuid"),
        (502, b"<html>Bad Gateway</html>", "cloud answered HTTP 502: <html>Bad Gateway</html>"),
        (500, b"", "cloud answered HTTP 500"),
        (400, b'{"error": "line\\nbreak"}', "line break"),
        (400, b'{"error": "' + b"x" * 400 + b'"}', "x" * 300 + "..."),
    ],
)
def test_the_clouds_error_text(status: int, body: bytes, expected: str) -> None:
    assert error_text(status, body) == expected


@pytest.mark.parametrize(
    ("status", "refused"),
    [
        (None, False),
        (400, True),
        (401, True),
        (403, True),
        (429, False),
        (408, False),
        (503, False),
    ],
)
def test_which_errors_repeating_cannot_fix(status: int | None, refused: bool) -> None:
    assert CloudError("x", status).refused is refused


def test_tls_setting() -> None:
    assert tls_setting(None, True) is True
    assert tls_setting("anything", False) is False
    with pytest.raises(CloudError, match="CA certificate cannot be used"):
        tls_setting("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", True)


def _iface(root: Path, name: str, address: str, kind: str = "1", physical: bool = True) -> None:
    folder = root / name
    folder.mkdir()
    (folder / "address").write_text(address + "\n")
    (folder / "type").write_text(kind + "\n")
    if physical:
        (folder / "device").mkdir()


def test_mac_address_prefers_physical_ethernet(tmp_path: Path) -> None:
    _iface(tmp_path, "lo", "00:00:00:00:00:00", kind="772")
    _iface(tmp_path, "br0", "02:42:00:00:00:01", physical=False)
    _iface(tmp_path, "wlan0", "B8:27:EB:00:00:02")
    _iface(tmp_path, "eth0", "b8:27:eb:00:00:01")
    assert mac_address(tmp_path) == "b8:27:eb:00:00:01"
    assert mac_address(tmp_path / "missing") is None


def test_os_version_from_os_release(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    assert os_version(release) == "Debian GNU/Linux 12 (bookworm)"
    assert os_version(tmp_path / "none")  # falls back to the platform's description
