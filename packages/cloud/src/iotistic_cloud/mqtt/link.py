"""The cloud's one MQTT connection: dynamic-security commands, state reports, update triggers.

``MqttLink.run()`` (a background task of ``serve``) keeps one connection open: it reconnects
with exponential backoff, and after every (re)connect it subscribes again to the
dynamic-security response topic and (when a state handler is given) to the state reports,
shared among the cloud's replicas (``$share/iotistic-cloud/iot/device/+/state``), and makes
sure the broker's defaults are what the cloud relies on (``_setup``).

When ``run()`` is not running (the CLI, or an app whose lifespan did not start), each
``control``/``publish`` call opens a short connection of its own. When it is running but the
broker is down, they fail at once with ``BrokerUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiomqtt
from iotistic_contracts.mqtt import STATE_TOPIC_FILTER, device_username, update_topic

from ..settings import MqttAdmin

log = logging.getLogger("iotistic.cloud.mqtt")

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = "$CONTROL/dynamic-security/v1/response"
SHARE_GROUP: Final = "iotistic-cloud"
SHARED_STATE_FILTER: Final = f"$share/{SHARE_GROUP}/{STATE_TOPIC_FILTER}"
REQUEST_TIMEOUT_S: Final = 5.0
MIN_BACKOFF_S: Final = 0.2
MAX_BACKOFF_S: Final = 30.0
STATE_QUEUE_SIZE: Final = 1000
PIN_BATCH: Final = 100
# The role the cloud gives itself besides the admin role of ``mosquitto_ctrl dynsec init``
# (which may use $CONTROL and receive everything, but publish nothing else).
CLOUD_ROLE: Final = "iotistic-cloud"

StateHandler = Callable[[str, bytes], Awaitable[None]]
DEVICE_USERNAME_PREFIX: Final = device_username("")


class BrokerUnavailable(Exception):
    """The broker cannot be reached, refused the login or did not answer in time."""


class DynsecError(Exception):
    """The dynamic-security plugin refused a command."""


CLOUD_ROLE_ACLS: Final = (("publishClientSend", update_topic("+")),)
DEFAULT_ACL_ACCESS: Final = (
    ("publishClientSend", False),
    ("publishClientReceive", False),
    ("subscribe", False),
    ("unsubscribe", True),
)


def default_acl_command() -> dict[str, Any]:
    """Deny by default: a device may do exactly what its role allows."""
    return {
        "command": "setDefaultACLAccess",
        "acls": [{"acltype": acltype, "allow": allow} for acltype, allow in DEFAULT_ACL_ACCESS],
    }


def own_role_commands(
    cloud_username: str, client: dict[str, Any] | None, role: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """What is missing for the cloud's own role (``getClient`` and ``getRole`` answers;
    None: not found): the role, its ACLs, the role on the cloud's user."""
    commands: list[dict[str, Any]] = []
    if role is None:
        commands.append({"command": "createRole", "rolename": CLOUD_ROLE})
    present = {(acl.get("acltype"), acl.get("topic")) for acl in (role or {}).get("acls", [])}
    for acltype, topic in CLOUD_ROLE_ACLS:
        if (acltype, topic) not in present:
            commands.append(
                {"command": "addRoleACL", "rolename": CLOUD_ROLE, "acltype": acltype,
                 "topic": topic, "allow": True}
            )  # fmt: skip
    roles = {entry.get("rolename") for entry in (client or {}).get("roles", [])}
    if CLOUD_ROLE not in roles:
        commands.append(
            {"command": "addClientRole", "username": cloud_username, "rolename": CLOUD_ROLE}
        )
    return commands


def pin_commands(clients: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``modifyClient`` for each device account (``listClients`` with verbose) that is not
    pinned to its own client id: accounts made before the cloud pinned them."""
    return [
        {"command": "modifyClient", "username": username, "clientid": username}
        for client in clients
        if (username := str(client.get("username", ""))).startswith(DEVICE_USERNAME_PREFIX)
        and client.get("clientid") != username
    ]


class SetupChanged(Exception):
    """The cloud changed its own roles; the broker disconnects it for that."""


def tls_context(admin: MqttAdmin) -> ssl.SSLContext | None:
    if not admin.use_tls:
        return None
    return ssl.create_default_context(cafile=admin.ca_cert_file)


def is_harmless(error: str) -> bool:
    """Errors of idempotent commands that mean "already so"."""
    text = error.lower()
    return "already" in text or "not found" in text


class MqttLink:
    def __init__(
        self,
        admin: MqttAdmin,
        *,
        on_state: StateHandler | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        min_backoff_s: float = MIN_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.admin = admin
        self.on_state = on_state
        self._timeout = request_timeout_s
        self._min_backoff = min_backoff_s
        self._max_backoff = max_backoff_s
        self._client: aiomqtt.Client | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._running = False
        self._setup_changed: str | None = None
        self.connected = asyncio.Event()
        self.connections = 0

    # -- connections -------------------------------------------------------------------------

    def _new_client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.admin.host,
            self.admin.port,
            username=self.admin.username,
            password=self.admin.password,
            identifier=f"iotistic-cloud-{uuid.uuid4().hex[:16]}",
            protocol=aiomqtt.ProtocolVersion.V5,
            tls_context=tls_context(self.admin),
            timeout=self._timeout,
            keepalive=30,
        )

    async def run(self) -> None:
        """Forever: connect, set up, read messages; reconnect with backoff on failure."""
        self._running = True
        backoff = self._min_backoff
        try:
            while True:
                self._setup_changed = None
                try:
                    await self._session()
                except* (SetupChanged, aiomqtt.MqttError, BrokerUnavailable, OSError) as group:
                    if self._setup_changed is not None:
                        # The broker kicked the cloud for changing its own roles (expected).
                        log.info("MQTT broker setup: %s; connecting again", self._setup_changed)
                        backoff = 0
                    else:
                        if self.connected.is_set():
                            backoff = self._min_backoff
                        log.warning(
                            "MQTT broker %s: %s; reconnecting in %.1f s",
                            self.admin.url,
                            _first_reason(group),
                            backoff,
                        )
                except* Exception:
                    # A bug must not end the link for the life of the process.
                    log.exception("MQTT link failed; reconnecting in %.1f s", backoff)
                finally:
                    self._drop_connection()
                await asyncio.sleep(backoff)
                backoff = min(max(backoff * 2, self._min_backoff), self._max_backoff)
        finally:
            self._running = False

    async def _session(self) -> None:
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(STATE_QUEUE_SIZE)
        async with self._new_client() as client, asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read(client, queue))
            tasks.create_task(self._handle_states(queue))
            await client.subscribe(RESPONSE_TOPIC, qos=1)
            await self._setup(client)
            if self.on_state is not None:
                await client.subscribe(SHARED_STATE_FILTER, qos=1)
            self._client = client
            self.connections += 1
            self.connected.set()
            log.info(
                "MQTT broker %s: connected as %s (broker management on)",
                self.admin.url,
                self.admin.username,
            )

    def _drop_connection(self) -> None:
        self._client = None
        self.connected.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BrokerUnavailable("connection to the broker lost"))

    async def _setup(self, client: aiomqtt.Client) -> None:
        """Deny by default, device accounts pinned to their client ids, and the cloud's right
        to publish update triggers. Changing its own roles makes the broker disconnect the
        cloud (Mosquitto kicks a client whose roles change), so those commands are sent only
        when something is missing, without waiting for an answer, and the link connects
        again."""
        default, own, role, clients = await self._request(
            client,
            [
                default_acl_command(),
                {"command": "getClient", "username": self.admin.username},
                {"command": "getRole", "rolename": CLOUD_ROLE},
                {"command": "listClients", "verbose": True},
            ],
        )
        if default.get("error"):
            log.warning("MQTT broker setup: setDefaultACLAccess: %s", default["error"])
        await self._pin_devices(client, clients)
        if own.get("error"):
            log.warning("MQTT broker setup: getClient %s: %s", self.admin.username, own["error"])
            return
        missing = own_role_commands(
            self.admin.username,
            own.get("data", {}).get("client"),
            None if role.get("error") else role.get("data", {}).get("role"),
        )
        if missing:
            self._setup_changed = ", ".join(command["command"] for command in missing)
            await client.publish(CONTROL_TOPIC, json.dumps({"commands": missing}), qos=1)
            raise SetupChanged(self._setup_changed)

    async def _pin_devices(self, client: aiomqtt.Client, listed: dict[str, Any]) -> None:
        """Pin device accounts of an earlier release to their client ids. The broker
        disconnects each such device once (its account changed); it connects again with its
        own id, which is the only one it may use from then on."""
        if listed.get("error"):
            log.warning("MQTT broker setup: listClients: %s", listed["error"])
            return
        commands = pin_commands(listed.get("data", {}).get("clients", []))
        failed: list[str] = []
        # In batches: Mosquitto 2.0 saves its whole file after each command, so one large
        # request could outlast the request timeout. What is left is done at the next connect.
        for start in range(0, len(commands), PIN_BATCH):
            responses = await self._request(client, commands[start : start + PIN_BATCH])
            failed += [str(r["error"]) for r in responses if r.get("error")]
        if commands:
            pinned = len(commands) - len(failed)
            log.info("MQTT broker setup: %d device accounts pinned to their client ids", pinned)
        if failed:
            log.warning("MQTT broker setup: %d not pinned: %s", len(failed), failed[0])

    async def _read(self, client: aiomqtt.Client, queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else b""
            if topic == RESPONSE_TOPIC:
                self._resolve(payload)
            elif self.on_state is not None:
                await queue.put((topic, payload))

    async def _handle_states(self, queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        while True:
            topic, payload = await queue.get()
            if self.on_state is None:
                continue
            try:
                await self.on_state(topic, payload)
            except Exception:
                log.exception("MQTT message on %s could not be handled", topic)

    def _resolve(self, payload: bytes) -> None:
        try:
            body = json.loads(payload)
            responses = body.get("responses", [])
        except (ValueError, AttributeError):
            log.warning("dynamic-security response is not JSON")
            return
        for response in responses:
            if not isinstance(response, dict):
                continue
            future = self._pending.get(str(response.get("correlationData")))
            if future is not None and not future.done():
                future.set_result(response)

    # -- requests ----------------------------------------------------------------------------

    async def _request(
        self, client: aiomqtt.Client, commands: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        tagged = [{**command, "correlationData": uuid.uuid4().hex} for command in commands]
        futures = {command["correlationData"]: loop.create_future() for command in tagged}
        self._pending.update(futures)
        try:
            async with asyncio.timeout(self._timeout):
                await client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
                return [await future for future in futures.values()]
        except TimeoutError:
            raise BrokerUnavailable("the broker did not answer in time") from None
        except aiomqtt.MqttError as exc:
            raise BrokerUnavailable(str(exc)) from None
        finally:
            for key in futures:
                self._pending.pop(key, None)

    async def _oneshot(self, action: Callable[[aiomqtt.Client], Awaitable[Any]]) -> Any:
        """A short connection of its own (no ``run()`` in this process)."""
        try:
            async with self._new_client() as client:
                reader = asyncio.create_task(self._read(client, asyncio.Queue(1)))
                try:
                    await client.subscribe(RESPONSE_TOPIC, qos=1)
                    return await action(client)
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                        await reader
        except aiomqtt.MqttError as exc:
            raise BrokerUnavailable(str(exc)) from None

    async def _with_client(self, action: Callable[[aiomqtt.Client], Awaitable[Any]]) -> Any:
        if not self._running:
            return await self._oneshot(action)
        client = self._client
        if client is None:
            raise BrokerUnavailable("not connected to the broker")
        return await action(client)

    async def control(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send dynamic-security commands; returns one response per command, in order."""

        async def action(client: aiomqtt.Client) -> list[dict[str, Any]]:
            return await self._request(client, commands)

        result: list[dict[str, Any]] = await self._with_client(action)
        return result

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        async def action(client: aiomqtt.Client) -> None:
            try:
                await client.publish(topic, payload, qos=qos, timeout=self._timeout)
            except aiomqtt.MqttError as exc:
                raise BrokerUnavailable(str(exc)) from None

        await self._with_client(action)


def _first_reason(group: BaseExceptionGroup[Exception]) -> str:
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return str(leaves[0]) if leaves else "error"
