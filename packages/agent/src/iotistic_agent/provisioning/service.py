"""The Provisioner: provision and deprovision on request, and automatically at start.

Light at import: the registration itself (and with it ``cryptography``) is imported only when
a registration runs, so an agent that is already provisioned, or has no provisioning key,
never loads it.

Automatic provisioning (`run`): when PROVISIONING_API_KEY and CLOUD_API_ENDPOINT are set and
the device is not provisioned, try, and on failure try again: network errors and 5xx back off
exponentially (5 s, x2, at most 5 min, +-20 % jitter); a 4xx refusal (bad, expired, revoked or
exhausted key) cannot be fixed by repeating, but an admin may fix the key in the cloud, so it
is retried at the cap interval. A device an operator deprovisioned is not registered again
automatically: that needs `iotctl provision`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..backoff import Backoff
from ..orchestrator.status import iso
from ..settings import AgentSettings
from ..store.device import CloudCredentials, DeviceStore
from .errors import InvalidProvisioningRequest, ProvisioningConflict
from .http import DEFAULT_TIMEOUT_S, CloudError
from .request import ProvisionRequest, check_endpoint, check_key, check_text

log = logging.getLogger("iotistic.provisioning")

PROVISIONING_BACKOFF = Backoff(base_s=5.0, max_s=300.0)


def _ignore(*_: object) -> None:
    pass


class Provisioner:
    def __init__(
        self,
        devices: DeviceStore,
        settings: Callable[[], AgentSettings],
        data_dir: Path,
        *,
        on_provisioned: Callable[[CloudCredentials], None] = _ignore,
        on_deprovisioned: Callable[[], None] = _ignore,
        backoff: Backoff | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        """`settings` is read at each use, so `iotctl config set-api` is honoured."""
        self._devices = devices
        self._settings = settings
        self._data_dir = data_dir
        self._on_provisioned = on_provisioned
        self._on_deprovisioned = on_deprovisioned
        self._backoff = backoff or PROVISIONING_BACKOFF
        self._timeout_s = timeout_s
        self._clock = clock
        self._rand = rand
        # One registration or deprovision at a time; a second caller gets a 409, not a queue.
        self._lock = asyncio.Lock()
        self._provisioned = asyncio.Event()
        if devices.identity().provisioned:
            self._provisioned.set()
        self._last_error: str | None = None
        self._next_attempt_at: float | None = None

    # --- state -----------------------------------------------------------------------------

    @property
    def provisioned(self) -> bool:
        return self._devices.identity().provisioned

    async def wait_until_provisioned(self) -> None:
        await self._provisioned.wait()

    def status(self) -> dict[str, Any]:
        """What `GET /v1/provision` shows: never the API key, MQTT password or provisioning key."""
        i = self._devices.identity()
        return {
            "provisioned": i.provisioned,
            "uuid": i.uuid,
            "deviceId": i.device_id,
            "deviceName": i.name,
            "deviceType": i.device_type,
            "apiEndpoint": i.endpoint,
            "registeredAt": iso(i.registered_at) if i.registered_at is not None else None,
            "deprovisionedAt": iso(i.deprovisioned_at) if i.deprovisioned_at is not None else None,
            "mqttBrokerUrl": i.mqtt_broker_url,
            "mqttUsername": i.mqtt_username,
            "inProgress": self._lock.locked(),
            "lastError": self._last_error,
            "nextAttemptAt": iso(self._next_attempt_at) if self._next_attempt_at else None,
        }

    # --- on request --------------------------------------------------------------------------

    async def provision(
        self,
        key: str,
        api_url: str | None = None,
        name: str | None = None,
        device_type: str | None = None,
    ) -> dict[str, Any]:
        """Register with the cloud now. Raises InvalidProvisioningRequest (bad input),
        ProvisioningConflict (provisioned already, or busy) or CloudError (refused or
        unreachable); on any failure nothing is stored."""
        wanted = self._input(key, api_url, name, device_type)
        if self._lock.locked():
            raise ProvisioningConflict("provisioning or deprovisioning is already in progress")
        async with self._lock:
            self._refuse_if_provisioned()
            await self._attempt(wanted)
        return self.status()

    async def deprovision(self) -> dict[str, Any]:
        """Delete the registration in the cloud, then mark the device unprovisioned; the
        uuid, device API key and key pair stay. On a cloud failure nothing changes here."""
        if self._lock.locked():
            raise ProvisioningConflict("provisioning or deprovisioning is already in progress")
        async with self._lock:
            credentials = self._devices.cloud_credentials()
            if credentials is None:
                raise ProvisioningConflict("the device is not provisioned")
            from .deregister import delete_registration

            log.info("deprovisioning device %s from %s", credentials.uuid, credentials.endpoint)
            try:
                deleted = await delete_registration(credentials, self._timeout_s)
            except CloudError as exc:
                self._last_error = f"deprovisioning failed: {exc.message}"
                log.warning("%s", self._last_error)
                raise
            self._devices.mark_deprovisioned(int(self._clock()))
            self._provisioned.clear()
            self._last_error = None
        log.info(
            "device %s deprovisioned%s; it keeps its uuid and API key",
            credentials.uuid,
            "" if deleted else " (the cloud no longer knew it)",
        )
        self._notify(self._on_deprovisioned)
        return self.status()

    # --- automatically -----------------------------------------------------------------------

    async def run(self) -> None:
        """Provision from the environment, retrying until it works; returns when provisioned
        or when there is nothing to do."""
        failures = 0
        while True:
            wanted = self._automatic_input()
            if wanted is None:
                return
            try:
                async with self._lock:
                    if self.provisioned:
                        return
                    await self._attempt(wanted)
                return
            except CloudError as exc:
                failures += 1
                refused = exc.refused
                delay = (
                    self._backoff.capped_delay(self._rand)
                    if refused
                    else self._backoff.delay_honouring(failures, exc.retry_after_s, self._rand)
                )
            except InvalidProvisioningRequest as exc:
                log.error("automatic provisioning is off: %s", exc.message)
                return
            except Exception:  # a loop never dies: log it, back off, try again
                failures += 1
                refused = False
                log.exception("automatic provisioning attempt failed")
                delay = self._backoff.delay(failures, self._rand)
            self._next_attempt_at = self._clock() + delay
            if refused:
                log.error(
                    "the cloud refused the provisioning key; trying again every %.0f s in "
                    "case it is fixed there (or use iotctl provision with another key)",
                    delay,
                )
            else:
                log.warning("next provisioning attempt in %.0f s", delay)
            try:
                await asyncio.wait_for(self._provisioned.wait(), delay)
                return  # provisioned by hand meanwhile
            except TimeoutError:
                pass
            finally:
                self._next_attempt_at = None

    def _automatic_input(self) -> ProvisionRequest | None:
        settings = self._settings()
        identity = self._devices.identity()
        if identity.provisioned or settings.PROVISIONING_API_KEY is None:
            return None
        if settings.CLOUD_API_ENDPOINT is None:
            log.warning("PROVISIONING_API_KEY is set without CLOUD_API_ENDPOINT: no provisioning")
            return None
        if identity.deprovisioned_at is not None:
            log.info(
                "device was deprovisioned by an operator at %s: not provisioning it again "
                "automatically (use iotctl provision)",
                iso(identity.deprovisioned_at),
            )
            return None
        try:
            return self._input(settings.PROVISIONING_API_KEY.get_secret_value(), None, None, None)
        except InvalidProvisioningRequest as exc:
            self._last_error = f"PROVISIONING_API_KEY: {exc.message}"
            log.error("automatic provisioning is off: %s", self._last_error)
            return None

    # --- one attempt -------------------------------------------------------------------------

    async def _attempt(self, wanted: ProvisionRequest) -> None:
        """Register and store (one transaction); keeps lastError for the status."""
        uuid = self._devices.identity().uuid
        log.info("provisioning device %s with the cloud at %s", uuid, wanted.endpoint)
        try:
            from .register import register_device  # cryptography: only now

            registration = await register_device(uuid, wanted, self._data_dir, self._timeout_s)
            self._devices.save_registration(registration)
        except CloudError as exc:
            message = _redact(exc.message, wanted.provisioning_key)
            if exc.refused:
                self._last_error = f"the cloud refused provisioning: {message}"
            elif exc.status is not None:
                self._last_error = f"the cloud failed to provision (HTTP {exc.status}): {message}"
            else:
                self._last_error = f"provisioning failed: {message}"
            if exc.retry_after_s is not None:
                self._last_error += f" (the cloud asks to retry in {exc.retry_after_s:.0f} s)"
            log.warning("%s", self._last_error)
            raise CloudError(self._last_error, exc.status, exc.retry_after_s) from None
        except InvalidProvisioningRequest as exc:
            self._last_error = exc.message
            raise
        except (OSError, sqlite3.Error) as exc:
            self._last_error = f"provisioning failed on the device: {exc}"
            log.error("%s", self._last_error)
            raise
        self._last_error = None
        self._provisioned.set()
        log.info(
            "device %s provisioned: cloud device id %s, API %s, MQTT user %s",
            uuid,
            registration.device_id,
            registration.api_endpoint,
            registration.mqtt_username,
        )
        credentials = self._devices.cloud_credentials()
        if credentials is not None:
            self._notify(self._on_provisioned, credentials)

    def _notify(self, callback: Callable[..., None], *args: Any) -> None:
        # The registration is stored; a listener's failure must not turn it into an error.
        try:
            callback(*args)
        except Exception:
            log.exception("provisioning listener failed")

    def _refuse_if_provisioned(self) -> None:
        identity = self._devices.identity()
        if identity.provisioned:
            raise ProvisioningConflict(
                f"the device is already provisioned (device id {identity.device_id} with "
                f"{identity.endpoint}); deprovision it first"
            )

    # --- input -------------------------------------------------------------------------------

    def _input(
        self, key: str, api_url: str | None, name: str | None, device_type: str | None
    ) -> ProvisionRequest:
        key = check_key(key)  # first: the most likely mistake
        settings = self._settings()
        identity = self._devices.identity()
        endpoint = check_endpoint(api_url) if api_url is not None else settings.CLOUD_API_ENDPOINT
        if endpoint is None:
            raise InvalidProvisioningRequest(
                "no cloud API endpoint: give apiEndpoint (iotctl provision --api URL) or set "
                "CLOUD_API_ENDPOINT"
            )
        return ProvisionRequest(
            endpoint=endpoint,
            provisioning_key=key,
            device_name=check_text("deviceName", name) if name is not None else identity.name,
            device_type=(
                check_text("deviceType", device_type)
                if device_type is not None
                else settings.DEVICE_TYPE or identity.device_type
            ),
        )


def _redact(text: str, secret: str) -> str:
    """A cloud that echoes the key in its error text must not get it into logs or answers."""
    return text.replace(secret, "***") if secret else text


async def when_provisioned(
    provisioner: Provisioner, required: bool, component: Callable[[], Awaitable[None]]
) -> None:
    """Run `component` now, or (REQUIRE_PROVISIONING) once the device is provisioned."""
    if required and not provisioner.provisioned:
        log.warning(
            "REQUIRE_PROVISIONING is set and the device is not provisioned: containers are "
            "left alone until it is (iotctl provision status)"
        )
        await provisioner.wait_until_provisioned()
        log.info("device provisioned: starting")
    await component()
