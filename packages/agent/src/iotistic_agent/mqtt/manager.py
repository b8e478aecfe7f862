"""One MQTT connection per agent: connect, subscribe, dispatch, publish, reconnect.

``run()`` keeps the connection up until cancelled and never raises: a failure is recorded
(``status()["lastError"]``), logged, and followed by a new attempt after an exponential
backoff (1 s doubling to 60 s, +-20 % jitter). Every connection subscribes again (the
session is clean) and first delivers, in order, what was published while the broker was away
(the bounded ``Outbox``).

The connection speaks MQTT 5 so that a QoS 1 PUBACK carries a reason code: with MQTT 3.1.1
Mosquitto acknowledges a publish its ACL denied, or one nobody is subscribed to, exactly like a
delivered one. ``publish_confirmed`` (state reports) counts only a PUBACK with a success code
other than 0x10 "No matching subscribers" as delivered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ..backoff import Backoff
from .credentials import MqttCredentials
from .outbox import DEFAULT_MAX_MESSAGES, Outbox, Outgoing
from .routing import OnReading, OnUpdate, Router, SensorCounter, subscriptions
from .tls import tls_context

if TYPE_CHECKING:
    from ._client import AcknowledgingClient as _Client

log = logging.getLogger("iotistic.mqtt")

State = Literal["connected", "connecting", "disconnected", "not configured"]
RECONNECT_BACKOFF = Backoff(base_s=1.0, max_s=60.0)
TIMEOUT_S = 10.0
KEEPALIVE_S = 30
INCOMING_MAX = 1000


# PUBACK reason codes (MQTT 5, 3.4.2.1): 0x00 success, 0x10 accepted but nobody subscribed,
# 0x80 and above a failure (0x87 Not authorized: the broker's ACL denied the publish).
NO_MATCHING_SUBSCRIBERS = 0x10
FAILURE = 0x80


class SubscriptionRefused(Exception):
    """The broker answered a SUBSCRIBE with a failure code (usually its ACL)."""


def _ignore() -> None:
    pass


class MqttManager:
    def __init__(
        self,
        credentials: MqttCredentials | None,
        *,
        on_update: OnUpdate = _ignore,
        on_reading: OnReading | None = None,
        backoff: Backoff = RECONNECT_BACKOFF,
        outbox_max: int = DEFAULT_MAX_MESSAGES,
        timeout_s: float = TIMEOUT_S,
        keepalive_s: int = KEEPALIVE_S,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.credentials = credentials
        self.sensor_counter = SensorCounter()
        uuid = credentials.uuid if credentials is not None else ""
        self._router = Router(uuid, on_update, on_reading or self.sensor_counter)
        self._backoff = backoff
        self._outbox = Outbox(outbox_max)
        self._timeout_s = timeout_s
        self._keepalive_s = keepalive_s
        self._rand = rand
        self._client: _Client | None = None
        self._send_lock = asyncio.Lock()
        self._state: State = "not configured" if credentials is None else "disconnected"
        self._last_error: str | None = None
        self._connections = 0
        self.reconnects = 0

    # --- state -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._client is not None

    def status(self) -> dict[str, Any]:
        broker = self.credentials.broker.url if self.credentials is not None else None
        return {
            "state": self._state,
            "broker": broker,
            "lastError": self._last_error,
            "queued": len(self._outbox),
            "dropped": self._outbox.dropped,
            "reconnects": self.reconnects,
            "updatesReceived": self._router.updates,
            "sensorReadings": self._router.readings,
            "invalidReadings": self._router.invalid,
        }

    # --- publishing ------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes | str, qos: int = 0) -> None:
        """Publish now when connected (returns once sent; after the PUBACK for QoS 1), else
        keep the message for the next connection. The outbox holds at most ``outbox_max``
        messages; when full the oldest is dropped (with a warning). Never raises."""
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        self._outbox.append(Outgoing(topic, data, qos))
        client = self._client
        if client is None:
            return
        try:
            await self._drain(client)
        except Exception as exc:
            # Kept in the outbox, in order; the next publish or connection delivers it.
            log.warning("MQTT publish to %s failed, message kept: %s", topic, _describe(exc))

    async def publish_confirmed(
        self, topic: str, payload: bytes, qos: int = 1, timeout_s: float | None = None
    ) -> bool:
        """Publish without the outbox: True once a subscriber will get it (for QoS 1 a PUBACK
        whose reason code is a success other than 0x10 "No matching subscribers"), False when
        not connected, when the broker refused it (0x80 and above, e.g. 0x87 Not authorized),
        when nobody is subscribed (0x10), or on any other failure: the caller has its own
        fallback. QoS 0 has no PUBACK: True once written."""
        client = self._client
        if client is None:
            return False
        try:
            code = await client.publish_acknowledged(
                topic, payload, qos, timeout_s or self._timeout_s
            )
        except Exception as exc:
            log.warning("MQTT publish to %s failed: %s", topic, _describe(exc))
            return False
        if code.value >= FAILURE:
            log.warning(
                "MQTT publish to %s refused by the broker: %s (0x%02x)", topic, code, code.value
            )
            return False
        if code.value == NO_MATCHING_SUBSCRIBERS:
            log.info("MQTT publish to %s reached no subscriber (is the cloud connected?)", topic)
            return False
        return True

    async def _drain(self, client: _Client, connecting: bool = False) -> None:
        async with self._send_lock:
            if not connecting and client is not self._client:
                return  # that connection is gone; the next one delivers the outbox
            while (message := self._outbox.peek()) is not None:
                code = await client.publish_acknowledged(
                    message.topic, message.payload, message.qos, self._timeout_s
                )
                self._outbox.pop()
                # A refusal is final (sending it again gets the same answer): logged, dropped.
                # 0x10 (nobody subscribed) is normal for sensor data and not logged.
                if code.value >= FAILURE:
                    log.warning(
                        "MQTT publish to %s refused by the broker, message dropped: %s (0x%02x)",
                        message.topic,
                        code,
                        code.value,
                    )

    # --- the connection loop ---------------------------------------------------------------

    async def run(self) -> None:
        credentials = self.credentials
        if credentials is None:
            return
        failures = 0
        try:
            while True:
                self._state = "connecting"
                connections_before = self._connections
                try:
                    await self._session(credentials)
                    error = "the broker closed the connection"
                except Exception as exc:
                    error = _describe(exc)
                self._state = "disconnected"
                self._last_error = error
                # A connection that was up starts the backoff again from its first step.
                failures = 1 if self._connections > connections_before else failures + 1
                delay = self._backoff.delay(failures, self._rand)
                log.warning(
                    "MQTT %s: %s; reconnecting in %.1f s", credentials.broker.url, error, delay
                )
                await asyncio.sleep(delay)
        finally:
            self._client = None
            self._state = "disconnected"

    async def _session(self, credentials: MqttCredentials) -> None:
        # Lazily: paho and aiomqtt cost memory only once MQTT is used.
        import aiomqtt

        from ._client import AcknowledgingClient

        broker = credentials.broker
        client = AcknowledgingClient(
            broker.host,
            broker.port,
            username=credentials.username,
            password=credentials.password,
            identifier=credentials.client_id,
            tls_context=tls_context(broker),
            timeout=self._timeout_s,
            keepalive=self._keepalive_s,
            # MQTT 5: PUBACKs carry reason codes. Clean start on every connection, and no
            # Session Expiry Interval (0): the session ends with the connection, as a 3.1.1
            # clean session did. Every connection subscribes again.
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=True,
            # Bounded: a flood of sensor data drops messages instead of growing memory.
            max_queued_incoming_messages=INCOMING_MAX,
            logger=logging.getLogger("iotistic.mqtt.paho"),
        )
        async with client:
            for topic, qos in subscriptions(credentials.uuid):
                granted = await client.subscribe(topic, qos)
                if any(_refused(code) for code in granted):
                    raise SubscriptionRefused(f"the broker refused the subscription to {topic}")
            await self._drain(client, connecting=True)
            self._client = client
            self._state = "connected"
            self._last_error = None
            if self._connections:
                self.reconnects += 1
            self._connections += 1
            log.info("MQTT connected to %s as %s", broker.url, credentials.client_id)
            try:
                async for message in client.messages:
                    payload = message.payload
                    data = payload if isinstance(payload, bytes) else str(payload).encode()
                    self._router.dispatch(message.topic.value, data)
            finally:
                self._client = None


def _refused(code: Any) -> bool:
    # A SUBACK reason code per filter: the granted QoS (0x00-0x02) or a failure (0x80 and
    # above: 0x80 unspecified, 0x87 Not authorized, ...); paho wraps them as ReasonCode.
    value = getattr(code, "value", code)
    return isinstance(value, int) and value >= FAILURE


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return f"TLS certificate verification failed: {exc}"
    text = str(exc).strip()
    return text or type(exc).__name__
