"""The Docker adapter of the `Engine` protocol, on aiodocker (Docker Engine API 1.41+).

Every operation is idempotent where the planner may repeat it (create what exists, remove
what is gone), touches only objects carrying the agent's labels, and turns engine failures
into the protocol's errors: `EngineUnavailable` when the daemon cannot be reached,
`ImagePullError`/`StartError` for pulls and starts, `EngineError` for anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

from ..orchestrator.model import (
    LABEL_APP_ID,
    LABEL_CONFIG_HASH,
    LABEL_MANAGED,
    LABEL_SERVICE_NAME,
    ContainerInfo,
    EngineSnapshot,
    ServiceSpec,
)
from .docker_http import CONNECTION_FAILED, EngineHttp
from .docker_mapping import (
    container_create_body,
    container_info,
    endpoint_config,
    image_names,
    labelled_app_ids,
    limits_not_cleared,
    managed_labels,
    network_gateways,
    split_image_ref,
    update_body,
)
from .log_stream import DockerLogDecoder
from .ownership import Ownership
from .protocol import (
    ContainerLogLine,
    ContainerNotFound,
    EngineError,
    EngineUnavailable,
    ImagePullError,
    ServiceEnvironment,
    StartError,
)

log = logging.getLogger(__name__)

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_MANAGED_FILTER = f"{LABEL_MANAGED}=true"


def _is_not_found(err: DockerError) -> bool:
    return err.status == 404


class DockerEngine:
    """`Engine` on a Docker daemon, for the agent of one device: it sees and touches only
    that device's containers, networks and volumes (`Ownership`). Use `async with
    DockerEngine(device_uuid=...) as engine` or `close()`."""

    def __init__(
        self,
        url: str | None = None,
        *,
        device_uuid: str,
        adopt_unlabelled: bool = False,
        api_version: str = "auto",
        request_timeout_s: float = 120.0,
        pull_timeout_s: float = 1800.0,
        inspect_concurrency: int = 8,
        environment: ServiceEnvironment | None = None,
    ) -> None:
        # An explicit default, so a missing socket is an EngineUnavailable at the first call
        # (the reconciler retries) rather than a ValueError from aiodocker's auto-detection.
        self._url = url or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        self._owner = Ownership(device_uuid, adopt_unlabelled)
        self._api_version = api_version
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=10.0, sock_connect=10.0, sock_read=request_timeout_s
        )
        self._pull_timeout_s = pull_timeout_s
        # A followed log stream may stay silent for days: no read timeout there.
        self._follow_timeout = aiohttp.ClientTimeout(
            total=None, connect=10.0, sock_connect=10.0, sock_read=None
        )
        self._inspect_limit = asyncio.Semaphore(inspect_concurrency)
        # Added to a new container's environment (not to its config hash: no replace loop).
        self._environment = environment
        self._client: aiodocker.Docker | None = None
        self._raw: EngineHttp | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> DockerEngine:
        self._docker()
        return self

    async def close(self) -> None:
        client, self._client, self._raw = self._client, None, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> DockerEngine:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _docker(self) -> aiodocker.Docker:
        # Created on first use, inside the running loop that aiohttp's session belongs to.
        if self._client is None:
            self._client = aiodocker.Docker(
                url=self._url, api_version=self._api_version, timeout=self._timeout
            )
        return self._client

    def _http(self) -> EngineHttp:
        """The engine's HTTP API where aiodocker has no public call (docker_http.py)."""
        if self._raw is None:
            self._raw = EngineHttp(self._docker(), self._api_version)
        return self._raw

    async def ping(self) -> bool:
        """True when the daemon answers `GET /_ping`; never raises for a dead daemon."""
        try:
            response = await self._http().request("GET", "_ping", versioned=False)
        except (DockerError, aiohttp.ClientError, TimeoutError):
            return False
        response.release()
        return response.status == 200

    @asynccontextmanager
    async def _errors(
        self, what: str, error: type[EngineError] = EngineError
    ) -> AsyncIterator[None]:
        """Translate aiodocker/aiohttp failures into the protocol's errors."""
        try:
            yield
        except DockerError as err:
            if err.status == CONNECTION_FAILED:
                raise EngineUnavailable(f"{what}: {err.message}") from err
            raise error(f"{what}: {err.message}") from err
        except (aiohttp.ClientConnectionError, ConnectionError) as err:
            raise EngineUnavailable(f"{what}: connection to the engine lost ({err})") from err
        except TimeoutError as err:
            raise error(f"{what}: the engine did not answer in time") from err

    async def _api(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None
    ) -> Any:
        # aiodocker has no public call for container update and volumes.
        return await self._http().json(method, path, params=params, body=body)

    # -- snapshot ----------------------------------------------------------------------

    async def snapshot(self) -> EngineSnapshot:
        async with self._errors("reading the engine state"):
            docker = self._docker()
            listed = await self._api(
                "GET",
                "containers/json",
                params={"all": "1", "filters": json.dumps({"label": [_MANAGED_FILTER]})},
            )
            infos = await asyncio.gather(*(self._inspect_info(c["Id"]) for c in listed))
            images = await docker.images.list()
            networks = await docker.networks.list(filters={"label": [_MANAGED_FILTER]})
            volumes = await self._api(
                "GET", "volumes", params={"filters": json.dumps({"label": [_MANAGED_FILTER]})}
            )
        return EngineSnapshot(
            containers=tuple(sorted((i for i in infos if i is not None), key=lambda i: i.id)),
            images=image_names(images),
            networks=labelled_app_ids(networks, self._owner),
            volumes=labelled_app_ids(volumes.get("Volumes") or [], self._owner),
        )

    async def network_gateways(self) -> dict[str, str]:
        async with self._errors("listing networks"):
            networks = await self._docker().networks.list(filters={"label": [_MANAGED_FILTER]})
        return network_gateways(n for n in networks if self._owner.owns(n.get("Labels")))

    async def _inspect(self, name_or_id: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = await self._api("GET", f"containers/{name_or_id}/json")
        except DockerError as err:
            if _is_not_found(err):
                return None  # removed since it was listed, or never existed
            raise
        return data

    async def _inspect_info(self, container_id: str) -> ContainerInfo | None:
        async with self._inspect_limit:
            data = await self._inspect(container_id)
        return None if data is None else container_info(data, self._owner)

    # -- images ------------------------------------------------------------------------

    async def pull_image(self, image: str) -> None:
        repo, tag = split_image_ref(image)
        async with self._errors(f"pulling {image}", ImagePullError):
            deadline = asyncio.timeout(self._pull_timeout_s)
            try:
                async with deadline:
                    # A failure after the pull started comes as a line of the 200 stream.
                    async for item in self._docker().images.pull(repo, tag=tag, stream=True):
                        # Recent aiodocker raises DockerStreamError itself; older ones yield it.
                        detail = item.get("errorDetail")
                        error = (detail if isinstance(detail, dict) else {}).get("message")
                        if error or item.get("error"):
                            raise ImagePullError(f"pulling {image}: {error or item['error']}")
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise ImagePullError(
                    f"pulling {image}: not finished after {self._pull_timeout_s:.0f}s"
                ) from None
            if not await self._image_present(image):
                raise ImagePullError(
                    f"pulling {image}: the engine reported success but has no such image"
                )

    async def _image_present(self, image: str) -> bool:
        try:
            await self._docker().images.inspect(image)
        except DockerError as err:
            if _is_not_found(err):
                return False
            raise
        return True

    async def remove_image(self, image: str) -> None:
        async with self._errors(f"removing image {image}"):
            try:
                await self._docker().images.delete(image)
            except DockerError as err:
                if not _is_not_found(err):
                    raise  # a conflict (image in use) is a real error

    # -- networks and volumes ----------------------------------------------------------

    async def create_network(self, name: str, app_id: int) -> None:
        body = {
            "Name": name,
            "Driver": "bridge",
            "Labels": managed_labels(app_id, self._owner),
            # Without it, API 1.41 happily creates a second network with the same name.
            "CheckDuplicate": True,
        }
        async with self._errors(f"creating network {name}"):
            try:
                await self._docker().networks.create(body)
                return
            except DockerError as err:
                if err.status != 409:
                    raise
            existing = await self._docker().networks.get(name)
            labels = (await existing.show()).get("Labels") or {}
        self._check_owned("network", name, labels)

    async def remove_network(self, name: str) -> None:
        async with self._errors(f"removing network {name}"):
            try:
                network = await self._docker().networks.get(name)
                await network.delete()
            except DockerError as err:
                if not _is_not_found(err):
                    raise

    async def create_volume(self, name: str, app_id: int) -> None:
        body = {"Name": name, "Driver": "local", "Labels": managed_labels(app_id, self._owner)}
        async with self._errors(f"creating volume {name}"):
            # Creating an existing volume succeeds and returns it unchanged (labels included).
            created = await self._api("POST", "volumes/create", body=body)
        self._check_owned("volume", name, created.get("Labels") or {})

    def _check_owned(self, kind: str, name: str, labels: dict[str, str]) -> None:
        refusal = self._owner.refusal(labels)
        if refusal is not None:
            # Never take over someone else's data or network: the user resolves the clash.
            raise EngineError(f"a {kind} named {name} exists but {refusal}")

    async def remove_volume(self, name: str) -> None:
        async with self._errors(f"removing volume {name}"):
            try:
                await self._api("DELETE", f"volumes/{name}")
            except DockerError as err:
                if not _is_not_found(err):
                    raise  # in use by a container: a real error

    # -- containers --------------------------------------------------------------------

    async def start_service(self, spec: ServiceSpec) -> str:
        name = spec.container_name
        async with self._errors(f"starting {name}", StartError):
            existing = await self._inspect(name)
            if existing is not None:
                container_id = self._reusable(spec, existing)
                state = existing.get("State") or {}
                if state.get("Running") or state.get("Paused"):
                    return container_id  # running (or paused: unpausing is the planner's call)
            mode = await self._resolve_network_mode(spec)
            joined = (existing or {}).get("HostConfig", {}).get("NetworkMode")
            if existing is not None and mode != spec.network_mode and mode != joined:
                # `service:x` whose container was replaced since: join the current one.
                await self._docker().containers.container(container_id).delete(v=True)
                existing = None
            if existing is None:
                container_id = await self._create(spec, mode)
                created = True
            else:
                attached = (existing.get("NetworkSettings") or {}).get("Networks") or {}
                await self._connect_networks(container_id, spec, skip={*attached})
                created = False
            try:
                await self._docker().containers.container(container_id).start()
            except DockerError as err:
                if err.status == CONNECTION_FAILED:
                    raise
                left = "was created but " if created else ""
                raise StartError(f"container {name} {left}failed to start: {err.message}") from err
        return container_id

    def _reusable(self, spec: ServiceSpec, existing: dict[str, Any]) -> str:
        labels = (existing.get("Config") or {}).get("Labels") or {}
        refusal = self._owner.refusal(labels)
        if refusal is None and labels.get(LABEL_CONFIG_HASH) != spec.config_hash:
            refusal = "has a different configuration"
        if refusal is not None:
            raise StartError(
                f"a container named {spec.container_name} exists but {refusal}; "
                "remove it to continue"
            )
        return str(existing["Id"])

    async def _create(self, spec: ServiceSpec, network_mode: str | None) -> str:
        if not await self._image_present(spec.image):
            # The engine never pulls implicitly: fetching is a step of its own, with backoff.
            raise StartError(f"image {spec.image} not present; it has to be pulled first")
        if self._environment is not None:
            extra = self._environment(spec, await self.network_gateways())
            if extra:
                environment = {**dict(spec.environment), **extra}
                spec = dataclasses.replace(spec, environment=tuple(environment.items()))
        body = container_create_body(spec, network_mode, self._owner)
        container = await self._docker().containers.create(body, name=spec.container_name)
        log.info(
            "created container %s (%s) for %s", spec.container_name, container.id[:12], spec.key
        )
        try:
            # The first network was joined at create time (see container_create_body).
            await self._connect_networks(container.id, spec, skip={*spec.network_names[:1]})
        except DockerError as err:
            if err.status == CONNECTION_FAILED:
                raise
            raise StartError(
                f"container {spec.container_name} was created but could not join its "
                f"networks: {err.message}"
            ) from err
        return container.id

    async def _connect_networks(self, container_id: str, spec: ServiceSpec, skip: set[str]) -> None:
        # API 1.41 takes a single endpoint at create time: the others join before the start.
        for network in spec.network_names:
            if network not in skip:
                await self._join(container_id, spec, network)

    async def _join(self, container_id: str, spec: ServiceSpec, network: str) -> None:
        """Attach with the service's aliases there; attached already is fine."""
        aliases = dict(spec.networks).get(network, ())
        body = {"Container": container_id, "EndpointConfig": endpoint_config(spec, aliases)}
        try:
            await (await self._docker().networks.get(network)).connect(body)
        except DockerError as err:
            if "already exists in network" not in err.message:
                raise

    async def connect_network(self, container_id: str, spec: ServiceSpec, network: str) -> None:
        async with self._errors(f"connecting container {container_id[:12]} to {network}"):
            await self._join(container_id, spec, network)

    async def disconnect_network(self, container_id: str, network: str) -> None:
        async with self._errors(f"disconnecting container {container_id[:12]} from {network}"):
            try:
                handle = await self._docker().networks.get(network)
                await handle.disconnect({"Container": container_id, "Force": False})
            except DockerError as err:
                if not (_is_not_found(err) or "is not connected to" in err.message):
                    raise

    async def _resolve_network_mode(self, spec: ServiceSpec) -> str | None:
        mode = spec.network_mode
        if mode is None or not mode.startswith("service:"):
            return mode
        other = mode.removeprefix("service:")
        filters = {
            "label": [
                _MANAGED_FILTER,
                f"{LABEL_APP_ID}={spec.app_id}",
                f"{LABEL_SERVICE_NAME}={other}",
            ],
            "status": ["running"],
        }
        listed = await self._api("GET", "containers/json", params={"filters": json.dumps(filters)})
        listed = [c for c in listed if self._owner.owns(c.get("Labels"))]
        if not listed:
            raise StartError(
                f"network_mode {mode}: service {other} of app {spec.app_id} is not running"
            )
        # During a hand-over two may run: share the namespace of the newest.
        newest = max(listed, key=lambda c: int(c.get("Created") or 0))
        return f"container:{newest['Id']}"

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        # A paused container is stopped too: the daemon unfreezes it to deliver the signal.
        # The request waits as long as the grace period takes (aiodocker: no read timeout).
        async with self._errors(f"stopping container {container_id[:12]}"):
            try:
                await (
                    self._docker()
                    .containers.container(container_id)
                    .stop(t=max(0, math.ceil(timeout_s)))
                )
            except DockerError as err:
                if not _is_not_found(err):  # already stopped is a 304, not an error
                    raise

    async def remove_container(self, container_id: str) -> None:
        # v=True removes the container's anonymous volumes; named volumes are never touched.
        async with self._errors(f"removing container {container_id[:12]}"):
            try:
                await self._docker().containers.container(container_id).delete(force=True, v=True)
            except DockerError as err:
                if not (_is_not_found(err) or "already in progress" in err.message):
                    raise

    async def pause_container(self, container_id: str) -> None:
        async with self._errors(f"pausing container {container_id[:12]}"):
            try:
                await self._docker().containers.container(container_id).pause()
            except DockerError as err:
                if "already paused" not in err.message:
                    raise

    async def unpause_container(self, container_id: str) -> None:
        async with self._errors(f"unpausing container {container_id[:12]}"):
            try:
                await self._docker().containers.container(container_id).unpause()
            except DockerError as err:
                if "not paused" not in err.message:
                    raise

    async def update_container(self, container_id: str, spec: ServiceSpec) -> None:
        """Change restart policy and limits in place; removing a limit needs a new container
        on Docker 20.10 (see `limits_not_cleared`): the rest is applied, then EngineError."""
        what = f"updating container {container_id[:12]}"
        async with self._errors(what):
            current = await self._inspect(container_id)
            if current is None:
                raise EngineError(f"{what}: no such container")
            await self._api("POST", f"containers/{container_id}/update", body=update_body(spec))
        stuck = limits_not_cleared(spec, current.get("HostConfig") or {})
        if stuck:
            raise EngineError(
                f"{what}: the engine cannot remove the {', '.join(stuck)} limit of a "
                "container in place; recreate the container to drop it"
            )

    # -- logs --------------------------------------------------------------------------

    async def container_logs(
        self, container_id: str, *, tail: int | None, follow: bool, since: float | None = None
    ) -> AsyncIterator[ContainerLogLine]:
        """Stream `GET /containers/{id}/logs` (both streams, timestamps) as lines; see
        `log_stream.py` for the engine's framing. `tail` counts the engine's log
        entries: a line over 16 KiB is several of them."""
        what = f"reading the logs of container {container_id[:12]}"
        async with self._errors(what):
            info = await self._inspect(container_id)
        if info is None:
            raise ContainerNotFound(f"{what}: no such container")
        params: dict[str, str] = {
            "stdout": "1",
            "stderr": "1",
            "timestamps": "1",
            "tail": "all" if tail is None else str(max(0, tail)),
            "follow": "1" if follow else "0",
        }
        if since is not None:
            params["since"] = f"{since:.9f}"
        decoder = DockerLogDecoder(tty=bool((info.get("Config") or {}).get("Tty")))
        async for line in self._log_body(container_id, params, decoder, what):
            yield line
        if follow:
            # The container stopped. Docker 20.10 ends a followed stream before the text
            # the container never ended with a newline: read once more what came after.
            resume = decoder.resume_since()
            if resume is not None:
                params["tail"] = "all"
                if since is None or float(resume) >= since:
                    params["since"] = resume
            # Else nothing tells where to start.
            if resume is not None or tail is None or tail > 0:
                params["follow"] = "0"
                decoder.next_body()
                with contextlib.suppress(ContainerNotFound):  # removed meanwhile
                    async for line in self._log_body(container_id, params, decoder, what):
                        yield line
        for line in decoder.finish():
            yield line

    async def _log_body(
        self, container_id: str, params: dict[str, str], decoder: DockerLogDecoder, what: str
    ) -> AsyncIterator[ContainerLogLine]:
        follow = params["follow"] == "1"
        async with self._errors(what):
            try:
                response = await self._http().request(
                    "GET",
                    f"containers/{container_id}/logs",
                    params=params,
                    client_timeout=self._follow_timeout if follow else self._timeout,
                )
            except DockerError as err:
                # 409: "dead or marked for removal", as good as gone for its logs.
                if _is_not_found(err) or err.status == 409:
                    raise ContainerNotFound(f"{what}: {err.message}") from err
                raise
        ended = False
        try:
            while True:
                async with self._errors(what):
                    try:
                        chunk = await response.content.readany()
                    except aiohttp.ClientPayloadError as err:
                        raise EngineError(f"{what}: the log stream was cut ({err})") from err
                if not chunk:
                    break
                for line in decoder.feed(chunk):
                    yield line
            ended = True
        finally:
            # Closed early (client gone) the connection cannot be reused: drop it.
            if ended:
                response.release()
            else:
                response.close()
