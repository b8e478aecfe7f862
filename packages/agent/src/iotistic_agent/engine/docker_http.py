"""The Docker Engine HTTP API through aiohttp's public client, for the calls aiodocker has no
public method for: container logs as raw frames (both streams told apart, with their
timestamps), container update, volumes, `_ping`.

It sends on the session aiodocker opened for the engine (`Docker.session`, a public
attribute), so both share one connection pool and one way of reaching the daemon (unix
socket, TCP, TLS), and it raises aiodocker's `DockerError` like aiodocker's own calls, which
`DockerEngine` already translates.
"""

from __future__ import annotations

import json
from typing import Any

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

CONNECTION_FAILED = 900  # aiodocker's status for "cannot connect to the daemon"


class EngineHttp:
    def __init__(self, docker: aiodocker.Docker, api_version: str) -> None:
        self._docker = docker
        self._version = None if api_version == "auto" else api_version

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        client_timeout: aiohttp.ClientTimeout | None = None,
        versioned: bool = True,
    ) -> aiohttp.ClientResponse:
        """The engine's answer to `method path`, to be released by the caller; an error
        status is a DockerError with the engine's message. `client_timeout` replaces the
        session's (a followed log stream has no read timeout)."""
        prefix = f"/{await self._api_version()}" if versioned else ""
        url = f"{self._docker.docker_host}{prefix}/{path}"
        data = None if body is None else json.dumps(body)
        headers = None if body is None else {"Content-Type": "application/json"}
        try:
            response = await self._docker.session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=client_timeout or self._docker.session.timeout,
            )
        except aiohttp.ClientConnectionError as err:
            raise DockerError(CONNECTION_FAILED, f"cannot connect to the engine: {err}") from err
        if response.status >= 400:
            try:
                raise DockerError(response.status, await _message(response))
            finally:
                response.release()
        return response

    async def json(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        versioned: bool = True,
    ) -> Any:
        """The decoded JSON answer (None when the engine answers without a body)."""
        response = await self.request(method, path, params=params, body=body, versioned=versioned)
        try:
            raw = await response.read()
        finally:
            response.release()
        return json.loads(raw) if raw.strip() else None

    async def _api_version(self) -> str:
        # "auto": the daemon's own API version, asked once (GET /version is unversioned).
        if self._version is None:
            version = await self.json("GET", "version", versioned=False)
            self._version = f"v{version['ApiVersion']}"
        return self._version


async def _message(response: aiohttp.ClientResponse) -> str:
    raw = await response.read()
    try:
        return str(json.loads(raw)["message"])
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", "replace").strip() or response.reason or str(response.status)
