"""Two-phase provisioning wire models of iotistic_contracts.provisioning."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from iotistic_contracts.provisioning import (
    BrokerConfig,
    DeviceSecrets,
    KeyExchangeRequest,
    KeyExchangeResponse,
    RegisterRequest,
    RegisterResponse,
    RegistrationData,
    open_json,
    register_aad,
    seal_json,
    secrets_aad,
)
from iotistic_contracts.sealed import (
    SealedBoxError,
    generate_private_key,
    public_key_pem,
    seal,
)
from pydantic import ValidationError

UUID = "3f1c2b6e-9a4d-4e2f-8b7a-0c1d2e3f4a5b"
PROVISIONING_KEY = "prov-key-0123456789abcdef"
API_KEY_SECRET = "device-api-key-SECRET-c0ffee-1234567890"
MQTT_PASSWORD_SECRET = "mqtt-password-SECRET-deadbeef"


@pytest.fixture(scope="module")
def cloud_key() -> rsa.RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def device_key() -> rsa.RSAPrivateKey:
    return generate_private_key()


def _registration(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "deviceUuid": UUID,
        "provisioningApiKey": PROVISIONING_KEY,
        "deviceName": "pi-kitchen",
        "deviceType": "raspberrypi4-64",
        "macAddress": "DC:A6:32:01:02:0F",
        "osVersion": "Debian 12",
        "agentVersion": "0.1.0",
    }
    return data | changes


def _error_locs(info: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
    return [error["loc"] for error in info.value.errors()]


def test_aad_helpers_normalize_the_uuid() -> None:
    assert register_aad(UUID, "k-1") == f"iotistic-register:{UUID}:k-1".encode()
    assert register_aad(UUID.upper(), "k-1") == register_aad(UUID, "k-1")
    assert secrets_aad(UUID) == f"iotistic-secrets:{UUID}".encode()
    with pytest.raises(ValueError):
        register_aad(UUID, "a:b")
    with pytest.raises(ValueError):
        secrets_aad("not-a-uuid")


def test_key_exchange_models(device_key: rsa.RSAPrivateKey) -> None:
    request = KeyExchangeRequest(deviceUuid=UUID.upper(), provisioningApiKey=PROVISIONING_KEY)
    assert request.deviceUuid == UUID
    assert request.devicePublicKey is None
    with_key = KeyExchangeRequest.model_validate(
        {**request.model_dump(), "devicePublicKey": public_key_pem(device_key)}
    )
    assert with_key.devicePublicKey == public_key_pem(device_key)
    response = KeyExchangeResponse(
        apiPublicKey=public_key_pem(device_key), keyId="k-1", expiresAt="2026-01-01T00:10:00Z"
    )
    assert KeyExchangeResponse.model_validate_json(response.model_dump_json()) == response
    assert PROVISIONING_KEY not in repr(request)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"deviceUuid": "not-a-uuid"}, "deviceUuid"),
        ({"deviceUuid": "3f1c2b6e9a4d4e2f8b7a0c1d2e3f4a5b"}, "deviceUuid"),
        ({"provisioningApiKey": "short"}, "provisioningApiKey"),
        ({"provisioningApiKey": "x" * 257}, "provisioningApiKey"),
        ({"devicePublicKey": "garbage"}, "devicePublicKey"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_key_exchange_request_validation(changes: dict[str, Any], field: str) -> None:
    data = {"deviceUuid": UUID, "provisioningApiKey": PROVISIONING_KEY} | changes
    with pytest.raises(ValidationError) as info:
        KeyExchangeRequest.model_validate(data)
    assert _error_locs(info) == [(field,)]


def test_key_exchange_response_validation(device_key: rsa.RSAPrivateKey) -> None:
    good = {"apiPublicKey": public_key_pem(device_key), "keyId": "k-1", "expiresAt": "2026-01-01"}
    with pytest.raises(ValidationError) as info:
        KeyExchangeResponse.model_validate(good | {"keyId": "a:b"})
    assert ("expiresAt",) in _error_locs(info)  # no time zone
    assert ("keyId",) in _error_locs(info)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"deviceUuid": "xyz"}, "deviceUuid"),
        ({"provisioningApiKey": "123"}, "provisioningApiKey"),
        ({"macAddress": "dc:a6:32:01:02"}, "macAddress"),
        ({"macAddress": "dc-a6-32-01-02-0f"}, "macAddress"),
        ({"macAddress": "gg:a6:32:01:02:0f"}, "macAddress"),
        ({"deviceName": ""}, "deviceName"),
        ({"serial": "123"}, "serial"),
    ],
)
def test_registration_data_validation(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RegistrationData.model_validate(_registration(**changes))
    assert _error_locs(info) == [(field,)]


def test_registration_optional_fields_and_mac_case() -> None:
    data = RegistrationData.model_validate(_registration())
    assert data.macAddress == "dc:a6:32:01:02:0f"
    minimal = RegistrationData(deviceUuid=UUID, provisioningApiKey=PROVISIONING_KEY)
    assert minimal.deviceName is None and minimal.macAddress is None


def test_register_round_trip(cloud_key: rsa.RSAPrivateKey) -> None:
    data = RegistrationData.model_validate(_registration())
    aad = register_aad(UUID, "k-1")
    request = RegisterRequest(
        deviceUuid=UUID, keyId="k-1", sealed=seal_json(cloud_key.public_key(), data, aad)
    )
    wire = RegisterRequest.model_validate_json(request.model_dump_json())
    opened = open_json(
        cloud_key, wire.sealed, register_aad(wire.deviceUuid, wire.keyId), RegistrationData
    )
    assert opened == data
    assert PROVISIONING_KEY not in request.model_dump_json()


def test_register_box_is_bound_to_the_key_id(cloud_key: rsa.RSAPrivateKey) -> None:
    data = RegistrationData.model_validate(_registration())
    box = seal_json(cloud_key.public_key(), data, register_aad(UUID, "k-1"))
    with pytest.raises(SealedBoxError, match=r"^cannot decrypt: "):
        open_json(cloud_key, box, register_aad(UUID, "k-2"), RegistrationData)


def _response(secrets_box: Any) -> dict[str, Any]:
    return {
        "device": {"deviceId": "42", "uuid": UUID, "deviceName": "pi-kitchen"},
        "mqtt": {
            "brokerUrl": "mqtts://mosquitto:8883",
            "username": f"device_{UUID}",
            "brokerConfig": {
                "protocol": "mqtts",
                "host": "mosquitto",
                "port": 8883,
                "useTls": True,
                "caCert": None,
            },
        },
        "api": {"endpoint": "https://cloud.example", "tlsConfig": None},
        "secrets": secrets_box,
    }


def test_register_response_round_trip(device_key: rsa.RSAPrivateKey) -> None:
    secrets = DeviceSecrets(deviceApiKey=API_KEY_SECRET, mqttPassword=MQTT_PASSWORD_SECRET)
    box = seal_json(device_key.public_key(), secrets, secrets_aad(UUID))
    response = RegisterResponse.model_validate(_response(box.model_dump()))
    wire = RegisterResponse.model_validate_json(response.model_dump_json())
    assert wire == response
    assert wire.mqtt.brokerConfig.verifyCertificate is True
    body = wire.model_dump_json()
    assert API_KEY_SECRET not in body and MQTT_PASSWORD_SECRET not in body
    opened = open_json(device_key, wire.secrets, secrets_aad(wire.device.uuid), DeviceSecrets)
    assert opened == secrets
    assert API_KEY_SECRET not in repr(opened) and MQTT_PASSWORD_SECRET not in repr(opened)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"protocol": "http"}, "protocol"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"host": ""}, "host"),
        ({"tls": True}, "tls"),
    ],
)
def test_broker_config_validation(changes: dict[str, Any], field: str) -> None:
    data = {"protocol": "mqtt", "host": "broker", "port": 1883, "useTls": False} | changes
    with pytest.raises(ValidationError) as info:
        BrokerConfig.model_validate(data)
    assert _error_locs(info) == [(field,)]


def test_secrets_sealed_to_another_device_do_not_open(
    cloud_key: rsa.RSAPrivateKey, device_key: rsa.RSAPrivateKey
) -> None:
    secrets = DeviceSecrets(deviceApiKey=API_KEY_SECRET, mqttPassword=MQTT_PASSWORD_SECRET)
    box = seal_json(device_key.public_key(), secrets, secrets_aad(UUID))
    with pytest.raises(SealedBoxError) as info:
        open_json(cloud_key, box, secrets_aad(UUID), DeviceSecrets)
    other = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(SealedBoxError):
        open_json(device_key, box, secrets_aad(other), DeviceSecrets)
    assert API_KEY_SECRET not in str(info.value)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not json at all " + API_KEY_SECRET.encode(),
        b"\xff\xfe" + API_KEY_SECRET.encode(),
        json.dumps({"deviceApiKey": API_KEY_SECRET}).encode(),
        json.dumps({"deviceApiKey": API_KEY_SECRET, "mqttPassword": 7}).encode(),
        json.dumps(
            {
                "deviceApiKey": API_KEY_SECRET,
                "mqttPassword": MQTT_PASSWORD_SECRET,
                "x": API_KEY_SECRET,
            }
        ).encode(),
        json.dumps([API_KEY_SECRET]).encode(),
    ],
)
def test_open_json_of_invalid_content_fails_cleanly(
    device_key: rsa.RSAPrivateKey, plaintext: bytes
) -> None:
    box = seal(device_key.public_key(), plaintext, secrets_aad(UUID))
    with pytest.raises(SealedBoxError, match=r"^sealed DeviceSecrets is invalid: ") as info:
        open_json(device_key, box, secrets_aad(UUID), DeviceSecrets)
    message = str(info.value)
    assert API_KEY_SECRET not in message and MQTT_PASSWORD_SECRET not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_open_json_names_the_bad_field(device_key: rsa.RSAPrivateKey) -> None:
    plaintext = json.dumps({"deviceApiKey": API_KEY_SECRET, "mqttPassword": ""}).encode()
    box = seal(device_key.public_key(), plaintext, secrets_aad(UUID))
    with pytest.raises(SealedBoxError, match="mqttPassword") as info:
        open_json(device_key, box, secrets_aad(UUID), DeviceSecrets)
    assert API_KEY_SECRET not in str(info.value)
