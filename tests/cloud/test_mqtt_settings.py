"""The broker management settings (MQTT_PASSWORD and friends) and brokerConfig's TLS flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from iotistic_cloud.settings import Settings, SettingsError

from tests.support.certs import CertificateAuthority


def test_broker_management_is_off_without_a_password(tmp_path: Path) -> None:
    settings = Settings.from_env({"MQTT_ADMIN_URL": "mqtt://broker:1883"}, cwd=tmp_path)
    assert settings.mqtt_admin is None
    assert settings.mqtt.verify_certificate is True


def test_admin_connection_defaults_to_the_device_broker(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(CertificateAuthority.create().cert_pem)
    env = {
        "MQTT_BROKER_URL": "mqtts://broker.example.com",
        "MQTT_CA_CERT_FILE": str(ca),
        "MQTT_PASSWORD": "s3cret-password",
    }
    admin = Settings.from_env(env, cwd=tmp_path).mqtt_admin
    assert admin is not None
    assert (admin.url, admin.host, admin.port) == (
        "mqtts://broker.example.com:8883",
        "broker.example.com",
        8883,
    )
    assert (admin.username, admin.use_tls, admin.ca_cert_file) == ("iotistic-cloud", True, str(ca))
    assert "s3cret-password" not in repr(admin)


def test_admin_connection_settings(tmp_path: Path) -> None:
    env = {
        "MQTT_BROKER_URL": "mqtts://broker.example.com:8883",
        "MQTT_ADMIN_URL": "mqtt://127.0.0.1",
        "MQTT_USERNAME": "cloud-admin",
        "MQTT_PASSWORD": "pw",
        "MQTT_VERIFY_CERTIFICATE": "false",
    }
    settings = Settings.from_env(env, cwd=tmp_path)
    assert settings.mqtt_admin is not None
    assert (settings.mqtt_admin.url, settings.mqtt_admin.username) == (
        "mqtt://127.0.0.1:1883",
        "cloud-admin",
    )
    assert settings.mqtt_admin.use_tls is False
    assert settings.mqtt.verify_certificate is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"MQTT_PASSWORD": "pw-Zq9", "MQTT_ADMIN_URL": "http://x"},
            "MQTT_ADMIN_URL must start with",
        ),
        (
            {"MQTT_PASSWORD": "pw-Zq9", "MQTT_ADMIN_URL": "mqtt://x:99999"},
            "MQTT_ADMIN_URL has an invalid port",
        ),
        (
            {"MQTT_PASSWORD": "pw-Zq9", "MQTT_ADMIN_CA_CERT_FILE": "/nonexistent/ca.pem"},
            "MQTT_ADMIN_CA_CERT_FILE cannot be read",
        ),
        ({"MQTT_VERIFY_CERTIFICATE": "maybe"}, "MQTT_VERIFY_CERTIFICATE must be true or false"),
    ],
)
def test_invalid_mqtt_settings_name_the_variable(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env(env, cwd=tmp_path)
    assert "pw-Zq9" not in str(caught.value)
