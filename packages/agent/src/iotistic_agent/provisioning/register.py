"""One registration, start to finish: key exchange twice, sealed register, open the secrets.

Imports ``cryptography`` (through the contracts); loaded only when a registration runs.
Nothing is stored here: the caller stores the returned registration in one transaction, so a
failure at any step leaves the device exactly as it was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from iotistic_contracts.provisioning import (
    DeviceSecrets,
    KeyExchangeRequest,
    RegisterRequest,
    RegisterResponse,
    RegistrationData,
    normalize_uuid,
    open_json,
    register_aad,
    seal_json,
    secrets_aad,
)
from iotistic_contracts.sealed import SealedBoxError, load_public_key, public_key_pem
from pydantic import ValidationError

from .. import __version__
from ..store.device import DeviceRegistration
from .cloud_api import ProvisioningApi
from .errors import InvalidProvisioningRequest, describe_invalid
from .host_info import mac_address, os_version
from .http import CloudError, cloud_session
from .keys import load_or_create_device_key
from .request import ProvisionRequest

log = logging.getLogger("iotistic.provisioning")


async def register_device(
    uuid: str, request: ProvisionRequest, data_dir: Path, timeout_s: float
) -> DeviceRegistration:
    private_key = await asyncio.to_thread(load_or_create_device_key, data_dir)
    async with cloud_session(timeout_s=timeout_s) as session:
        api = ProvisioningApi(session, request.endpoint)
        return await _register(api, normalize_uuid(uuid), request, private_key)


async def _register(
    api: ProvisioningApi, uuid: str, request: ProvisionRequest, private_key: rsa.RSAPrivateKey
) -> DeviceRegistration:
    key = request.provisioning_key
    try:
        first = KeyExchangeRequest(deviceUuid=uuid, provisioningApiKey=key)
        second = KeyExchangeRequest(
            deviceUuid=uuid, provisioningApiKey=key, devicePublicKey=public_key_pem(private_key)
        )
        data = RegistrationData(
            deviceUuid=uuid,
            provisioningApiKey=key,
            deviceName=request.device_name,
            deviceType=request.device_type,
            macAddress=mac_address(),
            osVersion=os_version(),
            agentVersion=__version__,
        )
    except ValidationError as exc:
        raise InvalidProvisioningRequest(describe_invalid(exc)) from None

    exchanged = await api.key_exchange(first)
    bound = await api.key_exchange(second)
    if bound.keyId != exchanged.keyId:
        raise CloudError(f"cloud at {api.endpoint} changed the key id during the key exchange")
    log.info("key exchange with %s done (key id %s)", api.endpoint, bound.keyId)
    cloud_key = load_public_key(bound.apiPublicKey)  # validated by the response model already
    sealed = seal_json(cloud_key, data, register_aad(uuid, bound.keyId))
    register = RegisterRequest(deviceUuid=uuid, keyId=bound.keyId, sealed=sealed)
    response = await api.register(register)
    if response.device.uuid != uuid:
        raise CloudError(f"cloud at {api.endpoint} registered another device uuid")
    try:
        secrets = open_json(private_key, response.secrets, secrets_aad(uuid), DeviceSecrets)
    except SealedBoxError as exc:
        raise CloudError(
            f"the secrets sent by the cloud at {api.endpoint} cannot be opened: {exc}"
        ) from None
    return _registration(api.endpoint, request, response, secrets)


def _registration(
    endpoint: str, request: ProvisionRequest, response: RegisterResponse, secrets: DeviceSecrets
) -> DeviceRegistration:
    api_endpoint = response.api.endpoint.strip().rstrip("/")
    parsed = urlsplit(api_endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CloudError(f"cloud at {endpoint} sent an API endpoint that is not an http(s) URL")
    tls = response.api.tlsConfig
    return DeviceRegistration(
        device_id=response.device.deviceId,
        device_name=response.device.deviceName or request.device_name,
        device_type=request.device_type,
        api_key=secrets.deviceApiKey,
        api_endpoint=api_endpoint,
        registered_at=int(time.time()),
        mqtt_broker_url=response.mqtt.brokerUrl,
        mqtt_username=response.mqtt.username,
        mqtt_password=secrets.mqttPassword,
        mqtt_broker_config=response.mqtt.brokerConfig.model_dump(),
        api_tls_config=tls.model_dump() if tls is not None else None,
    )
