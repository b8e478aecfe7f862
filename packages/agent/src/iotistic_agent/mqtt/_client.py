"""aiomqtt's client plus the PUBACK reason code (imported only once MQTT is used).

aiomqtt 2.5's ``Client.publish`` waits for paho's ``on_publish`` callback (the PUBACK for
QoS 1) but drops the reason code that paho hands to it, and paho's ``MQTTMessageInfo`` does
not keep it either. ``publish_acknowledged`` therefore publishes through the paho client that
aiomqtt drives (``self._client``, the same call aiomqtt's ``publish`` makes) and waits for the
reason code, which ``_on_publish`` (the callback aiomqtt registers with paho; overridden here,
it still runs aiomqtt's own) hands over by message id.

No race between the two: aiomqtt registers socket callbacks with paho, so paho never writes or
reads inside ``publish()``; the PUBACK is read later, in the event loop's reader callback, by
which time the message id has its future.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


class AcknowledgingClient(aiomqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acks: dict[int, asyncio.Future[ReasonCode]] = {}

    async def publish_acknowledged(
        self, topic: str, payload: bytes, qos: int, timeout_s: float
    ) -> ReasonCode:
        """Publish and return the broker's answer: the PUBACK's reason code for QoS 1 (with
        MQTT 3.1.1 always Success), Success once written for QoS 0. Raises ``MqttError`` when
        the message cannot be sent or no answer comes within ``timeout_s`` seconds."""
        ack: asyncio.Future[ReasonCode] = asyncio.get_running_loop().create_future()
        info = self._client.publish(topic, payload, qos)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        if info.is_published():  # not with aiomqtt's socket callbacks; kept for safety
            return ReasonCode(PacketTypes.PUBACK)
        self._acks[info.mid] = ack
        try:
            return await asyncio.wait_for(ack, timeout_s)
        except TimeoutError:
            raise aiomqtt.MqttError("Operation timed out") from None
        finally:
            self._acks.pop(info.mid, None)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        ack = self._acks.pop(mid, None)
        if ack is not None and not ack.done():
            ack.set_result(reason_code)
        super()._on_publish(client, userdata, mid, reason_code, properties)
