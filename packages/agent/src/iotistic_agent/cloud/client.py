"""The two sync calls to the cloud: poll the target (ETag) and send one state report."""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from typing import Final, Protocol

import aiohttp
from iotistic_contracts.mqtt import state_topic
from iotistic_contracts.sync import FULL_REPORT_HEADER, DeviceTarget, TargetResponse
from pydantic import ValidationError

from ..provisioning.http import CloudError, cloud_errors, raise_for_cloud_error
from ..store.device import CloudCredentials

GZIP_ABOVE_BYTES: Final = 1024
MAX_TARGET_BYTES: Final = 4 * 1024 * 1024
RETRIED_STATUSES: Final = frozenset({401, 403, 404})
PUBLISHED: Final = "published"

log = logging.getLogger("iotistic.cloud.report")


class ReportPublisher(Protocol):
    """The MQTT side of report delivery (``MqttService``): reports go over MQTT while the
    connection is up and over HTTP otherwise."""

    @property
    def connected(self) -> bool: ...

    async def publish_confirmed(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """True once the broker acknowledged the message (PUBACK for QoS 1)."""
        ...


class SyncFailure(Exception):
    """The cloud could not be reached or did not do its part: count it, back off, retry
    (not sooner than ``retry_after_s`` when the cloud said when)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Rejected(Exception):
    """The cloud answered that this request is wrong: retrying the same one cannot help."""


@dataclass(frozen=True)
class Fetched:
    target: DeviceTarget | None  # None: 304, the target has not changed
    etag: str | None
    # The cloud missed some of this device's reports (a gap in their sequence numbers):
    # the next report must be full.
    full_report_wanted: bool = False


class SyncClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: CloudCredentials,
        mqtt: ReportPublisher | None = None,
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._mqtt = mqtt
        self._auth = {"Authorization": f"Bearer {credentials.api_key}"}

    @property
    def uuid(self) -> str:
        return self._credentials.uuid

    async def fetch_target(self, etag: str | None) -> Fetched:
        url = f"{self._credentials.endpoint}/api/v1/device/{self._credentials.uuid}/state"
        headers = dict(self._auth)
        if etag:
            headers["If-None-Match"] = etag
        try:
            with cloud_errors(self._credentials.endpoint):
                async with self._session.get(url, headers=headers) as response:
                    wanted = response.headers.get(FULL_REPORT_HEADER) == "true"
                    if response.status == 304:
                        return Fetched(None, etag, wanted)
                    await raise_for_cloud_error(response)
                    body = await response.content.read(MAX_TARGET_BYTES + 1)
                    new_etag = response.headers.get("ETag")
        except CloudError as exc:
            raise as_sync_error(exc) from None
        if len(body) > MAX_TARGET_BYTES:
            raise Rejected(f"target state from the cloud is larger than {MAX_TARGET_BYTES} bytes")
        return Fetched(self._own_target(body), new_etag, wanted)

    def _own_target(self, body: bytes) -> DeviceTarget:
        try:
            entries = TargetResponse.model_validate_json(body).root
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)[:5]
            )
            raise Rejected(f"target state from the cloud is invalid: {problems}") from None
        target = entries.get(self._credentials.uuid)
        if target is None or len(entries) != 1:
            raise Rejected("target state from the cloud is not keyed by this device's uuid")
        return target

    async def send_report(self, body: str) -> str:
        """Send one serialised ``StateReport``: published on the device's MQTT state topic
        (QoS 1, the broker's PUBACK counts as delivered) while MQTT is connected, otherwise
        (or when that fails) PATCHed over HTTP. Returns "published", or the cloud's status
        (accepted/duplicate)."""
        mqtt = self._mqtt
        if mqtt is not None and mqtt.connected:
            topic = state_topic(self._credentials.uuid)
            if await mqtt.publish_confirmed(topic, body.encode("utf-8"), 1):
                return PUBLISHED
            log.info("state report over MQTT failed; sending it over HTTP")
        return await self._patch_report(body)

    async def _patch_report(self, body: str) -> str:
        url = f"{self._credentials.endpoint}/api/v1/device/state"
        data = body.encode("utf-8")
        headers = {**self._auth, "Content-Type": "application/json"}
        if len(data) > GZIP_ABOVE_BYTES:
            data = gzip.compress(data, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        try:
            with cloud_errors(self._credentials.endpoint):
                async with self._session.patch(url, data=data, headers=headers) as response:
                    await raise_for_cloud_error(response)
                    answer = await response.json(content_type=None)
        except CloudError as exc:
            raise as_sync_error(exc) from None
        except ValueError as exc:
            raise SyncFailure("cloud answered a report with something that is not JSON") from exc
        status = answer.get("status") if isinstance(answer, dict) else None
        return str(status or "accepted")


def as_sync_error(exc: CloudError) -> Exception:
    # Server trouble, throttling and lost authorisation may all pass: retry with backoff.
    # Anything else is a "no" to this very request: retrying it cannot help.
    status = exc.status
    if status is None:
        return SyncFailure(exc.message)
    message = f"cloud answered {status}: {exc.message}"
    if status >= 500 or status in RETRIED_STATUSES or not exc.refused:
        return SyncFailure(message, exc.retry_after_s)
    return Rejected(message)
