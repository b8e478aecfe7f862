"""Wire models for two-phase provisioning (``/api/provisioning/v2/...``).

Phase 1 (key exchange): the device sends its uuid and the provisioning key (and later its own
public key); the cloud answers with its RSA public key and a key id.
Phase 2 (register): the registration data is sealed to the cloud's key; the response's secrets
are sealed to the device's key. Field names are camelCase because they are the wire names.

Imports ``cryptography`` through ``sealed``; import this module directly, not via the package.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Final, Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from .sealed import SealedBox, SealedBoxError, load_public_key, open_sealed, seal
from .timestamps import Timestamp

_MAC_RE: Final = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}", re.IGNORECASE)
_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
_UUID_TEXT_RE: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
MAX_PUBLIC_KEY_PEM_CHARS: Final = 8192
MAX_ERRORS_IN_MESSAGE: Final = 5

_Model = TypeVar("_Model", bound=BaseModel)


def normalize_uuid(value: str) -> str:
    """The canonical lowercase hyphenated form; it is what the aad strings are built from."""
    if _UUID_TEXT_RE.fullmatch(value) is None:
        raise ValueError("must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
    return str(uuid.UUID(value))


def _check_mac(value: str) -> str:
    # The value is not echoed: messages may end up in responses and logs.
    if _MAC_RE.fullmatch(value) is None:
        raise ValueError("must be a MAC address in the form aa:bb:cc:dd:ee:ff")
    return value.lower()


def _check_key_id(value: str) -> str:
    # Restricted so that it cannot contain ':' and make two aad strings collide.
    if _KEY_ID_RE.fullmatch(value) is None:
        raise ValueError("must be 1..128 characters of letters, digits, '.', '_' or '-'")
    return value


def _check_public_key(value: str) -> str:
    load_public_key(value)  # SealedBoxError is a ValueError: pydantic reports it per field
    return value


DeviceUuid = Annotated[str, AfterValidator(normalize_uuid)]
KeyId = Annotated[str, AfterValidator(_check_key_id)]
PublicKeyPem = Annotated[
    str, Field(max_length=MAX_PUBLIC_KEY_PEM_CHARS), AfterValidator(_check_public_key)
]
ProvisioningApiKey = Annotated[str, Field(min_length=16, max_length=256, repr=False)]
MacAddress = Annotated[str, AfterValidator(_check_mac)]
ShortText = Annotated[str, Field(min_length=1, max_length=255)]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def register_aad(device_uuid: str, key_id: str) -> bytes:
    """Binds the registration box to one device and one key exchange."""
    return f"iotistic-register:{normalize_uuid(device_uuid)}:{_check_key_id(key_id)}".encode()


def secrets_aad(device_uuid: str) -> bytes:
    """Binds the secrets box to the device they were issued for."""
    return f"iotistic-secrets:{normalize_uuid(device_uuid)}".encode()


class KeyExchangeRequest(_Wire):
    deviceUuid: DeviceUuid
    provisioningApiKey: ProvisioningApiKey
    devicePublicKey: PublicKeyPem | None = None


class KeyExchangeResponse(_Wire):
    apiPublicKey: PublicKeyPem
    keyId: KeyId
    expiresAt: Timestamp


class RegistrationData(_Wire):
    """The plaintext sealed inside ``RegisterRequest.sealed``."""

    deviceUuid: DeviceUuid
    provisioningApiKey: ProvisioningApiKey
    deviceName: ShortText | None = None
    deviceType: ShortText | None = None
    macAddress: MacAddress | None = None
    osVersion: ShortText | None = None
    agentVersion: ShortText | None = None


class RegisterRequest(_Wire):
    deviceUuid: DeviceUuid
    keyId: KeyId
    sealed: SealedBox


class BrokerConfig(_Wire):
    protocol: Literal["mqtt", "mqtts"]
    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)]
    useTls: bool
    caCert: str | None = None
    verifyCertificate: bool = True


class RegisteredDevice(_Wire):
    deviceId: Annotated[str, Field(min_length=1, max_length=255)]
    uuid: DeviceUuid
    deviceName: str | None = None


class MqttSettings(_Wire):
    brokerUrl: Annotated[str, Field(min_length=1, max_length=2048)]
    username: Annotated[str, Field(min_length=1, max_length=255)]
    brokerConfig: BrokerConfig


class ApiTlsConfig(_Wire):
    caCert: str | None = None
    verifyCertificate: bool = True


class ApiSettings(_Wire):
    endpoint: Annotated[str, Field(min_length=1, max_length=2048)]
    tlsConfig: ApiTlsConfig | None = None


class DeviceSecrets(_Wire):
    """The plaintext sealed inside ``RegisterResponse.secrets``; repr hides the values."""

    deviceApiKey: Annotated[str, Field(min_length=1, max_length=1024, repr=False)]
    mqttPassword: Annotated[str, Field(min_length=1, max_length=1024, repr=False)]


class RegisterResponse(_Wire):
    device: RegisteredDevice
    mqtt: MqttSettings
    api: ApiSettings
    secrets: SealedBox


def seal_json(public_key: rsa.RSAPublicKey, model: BaseModel, aad: bytes) -> SealedBox:
    return seal(public_key, model.model_dump_json().encode("utf-8"), aad)


def _describe(exc: ValidationError) -> str:
    # Field paths and pydantic's messages only: the input values may be secrets.
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:MAX_ERRORS_IN_MESSAGE]:
        where = ".".join(str(part) for part in error["loc"]) or "payload"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        if error["type"] == "json_invalid":
            message = "not valid JSON"
        parts.append(f"{where}: {message}")
    more = exc.error_count() - MAX_ERRORS_IN_MESSAGE
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def open_json(
    private_key: rsa.RSAPrivateKey, box: SealedBox, aad: bytes, model_type: type[_Model]
) -> _Model:
    """Decrypt ``box`` and validate its JSON as ``model_type``; every failure is SealedBoxError."""
    plaintext = open_sealed(private_key, box, aad)
    try:
        return model_type.model_validate_json(plaintext)
    except ValidationError as exc:
        raise SealedBoxError(f"sealed {model_type.__name__} is invalid: {_describe(exc)}") from None
