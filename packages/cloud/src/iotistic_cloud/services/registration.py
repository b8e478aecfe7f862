"""Phase 2 of provisioning: open the sealed registration, create the device, seal its secrets.

Everything is written in one transaction (device row, key usage, exchange deleted): a
failure at any step leaves the database as it was, and the exchange can be used only once.
With broker management on, the device's broker account is created inside that transaction,
just before the commit: an unreachable broker fails the registration (503) with nothing
stored, and a failed commit deletes the broker account again.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from iotistic_contracts.mqtt import device_username
from iotistic_contracts.provisioning import (
    ApiSettings,
    BrokerConfig,
    DeviceSecrets,
    MqttSettings,
    RegisteredDevice,
    RegisterRequest,
    RegisterResponse,
    RegistrationData,
    register_aad,
    seal_json,
    secrets_aad,
)
from iotistic_contracts.sealed import (
    SealedBox,
    SealedBoxError,
    load_private_key,
    load_public_key,
    open_sealed,
)
from iotistic_contracts.target_state import TargetState
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from ..db.engine import Database
from ..db.models import Device, KeyExchange
from ..mqtt.accounts import DeviceAccounts, NoBroker
from ..settings import MqttBroker
from ..tokens import DEVICE_API_KEY_PREFIX, mqtt_password_hash, new_token, token_hash
from .errors import Gone, InvalidInput, ServiceError, Unauthorized
from .exchanges import already_registered
from .keys import claim_device_slot, usable_key
from .targets import render_target, target_columns
from .validation import check_storable, from_validation_error

UNDECRYPTABLE: Final = "registration payload could not be decrypted"
log = logging.getLogger("iotistic.cloud.registration")


def exchange_gone(key_id: str) -> Gone:
    return Gone(f"key exchange {key_id} is unknown, expired or already used; start again")


@dataclass(frozen=True)
class Issued:
    """The new device's secrets in plain form, and the box that carries them to it."""

    api_key: str
    mqtt_password: str
    box: SealedBox


def _open(exchange: KeyExchange, request: RegisterRequest) -> RegistrationData:
    # The cloud generated this key and only it writes the table: no need to re-validate it.
    private_key = load_private_key(exchange.private_key_pem.encode("ascii"), trusted=True)
    # open_sealed and the validation are separate (open_json joins them) so that a decryption
    # failure says nothing, while a payload that decrypts but is invalid names its fields.
    try:
        plaintext = open_sealed(
            private_key, request.sealed, register_aad(request.deviceUuid, request.keyId)
        )
    except SealedBoxError:
        raise InvalidInput(UNDECRYPTABLE) from None
    try:
        data = RegistrationData.model_validate_json(plaintext)
    except ValidationError as exc:
        raise from_validation_error("registration payload is invalid", exc) from None
    check_storable(data.model_dump(mode="json"), "registration payload is invalid")
    if data.deviceUuid != request.deviceUuid:
        raise InvalidInput("registration payload is for another device than deviceUuid")
    return data


def _issue(device_public_key: str, device_uuid: str) -> Issued:
    issued = DeviceSecrets(deviceApiKey=new_token(DEVICE_API_KEY_PREFIX), mqttPassword=new_token())
    box = seal_json(load_public_key(device_public_key), issued, secrets_aad(device_uuid))
    return Issued(issued.deviceApiKey, issued.mqttPassword, box)


class RegistrationService:
    def __init__(
        self, database: Database, broker: MqttBroker, accounts: DeviceAccounts | None = None
    ) -> None:
        self._db = database
        self._broker = broker
        self._accounts = accounts if accounts is not None else NoBroker()

    async def register(
        self, request: RegisterRequest, api_endpoint: str, now: datetime
    ) -> RegisterResponse:
        device_uuid = request.deviceUuid
        account_created = False
        try:
            async with self._db.transaction() as session:
                exchange = await session.get(KeyExchange, request.keyId)
                if exchange is None or exchange.expires_at <= now:
                    raise exchange_gone(request.keyId)
                if exchange.device_uuid != device_uuid:
                    raise InvalidInput(f"key exchange {request.keyId} was issued to another device")
                if exchange.device_public_key is None:
                    raise InvalidInput(
                        f"key exchange {request.keyId} has no device public key; send "
                        "devicePublicKey to /api/provisioning/v2/key-exchange first"
                    )
                data = _open(exchange, request)
                key = await usable_key(session, data.provisioningApiKey, now)
                if key.id != exchange.provisioning_key_id:
                    raise Unauthorized("provisioning key does not match the key exchange")
                issued = _issue(exchange.device_public_key, device_uuid)
                # Single use: of two concurrent registrations with one exchange only one
                # deletes it.
                deleted = await session.execute(
                    delete(KeyExchange)
                    .where(KeyExchange.key_id == exchange.key_id)
                    .execution_options(synchronize_session=False)
                )
                if deleted.rowcount != 1:  # type: ignore[attr-defined]
                    raise exchange_gone(request.keyId)
                await claim_device_slot(session, key.id, now)
                device = self._device_row(data, key.id, key.fleet, issued, now)
                session.add(device)
                try:
                    await session.flush()
                except IntegrityError:
                    raise already_registered(device_uuid) from None
                # Last, so that the commit is all that can still fail.
                await self._accounts.create_device(device_uuid, issued.mqtt_password)
                account_created = True
        except BaseException:
            if account_created:
                await self._forget_account(device_uuid)
            raise
        return RegisterResponse(
            device=RegisteredDevice(
                deviceId=device.device_id, uuid=device_uuid, deviceName=data.deviceName
            ),
            mqtt=MqttSettings(
                brokerUrl=self._broker.url,
                username=device.mqtt_username,
                brokerConfig=BrokerConfig(
                    protocol="mqtts" if self._broker.protocol == "mqtts" else "mqtt",
                    host=self._broker.host,
                    port=self._broker.port,
                    useTls=self._broker.protocol == "mqtts",
                    caCert=self._broker.ca_cert,
                    verifyCertificate=self._broker.verify_certificate,
                ),
            ),
            api=ApiSettings(endpoint=api_endpoint),
            secrets=issued.box,
        )

    async def _forget_account(self, device_uuid: str) -> None:
        try:
            await self._accounts.delete_device(device_uuid)
        except ServiceError as exc:
            # The device never received its password, so the account is unusable; a new
            # registration of the same uuid replaces it.
            log.warning("broker account of %s not deleted: %s", device_uuid, exc.message)

    @staticmethod
    def _device_row(
        data: RegistrationData, key_id: int, fleet: str, issued: Issued, now: datetime
    ) -> Device:
        rendered = render_target(data.deviceUuid, TargetState(), 0)
        return Device(
            uuid=data.deviceUuid,
            device_id=secrets.token_hex(8),
            name=data.deviceName,
            device_type=data.deviceType,
            mac=data.macAddress,
            os_version=data.osVersion,
            agent_version=data.agentVersion,
            fleet=fleet,
            api_key_hash=token_hash(issued.api_key),
            mqtt_username=device_username(data.deviceUuid),
            mqtt_password_hash=mqtt_password_hash(issued.mqtt_password),
            provisioning_key_id=key_id,
            registered_at=now,
            last_seen=now,
            **target_columns(rendered),
            target_updated_at=now,
            reported_state=None,
            reported_at=None,
            last_report_sequence=None,
        )
