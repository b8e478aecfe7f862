"""The Device API over HTTP: one small client, every transport failure mapped to a CliError.

Imported only by commands that talk to the agent, since httpx is a large share of start-up.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from . import settings
from .errors import CliError, error_from_response, unreachable

CONNECT_TIMEOUT_S = 5.0
# Actions such as purging an app wait for the engine; a minute is generous on a slow device.
REQUEST_TIMEOUT_S = 60.0

Params = Mapping[str, str | int]


def path_segment(value: str | int) -> str:
    """Quote one path segment completely: `1001/web` must reach the server as `1001%2Fweb`."""
    return quote(str(value), safe="")


def _tls_setting(url: str) -> ssl.SSLContext | bool:
    if url.startswith("https://"):
        return True  # verify against the system's CA bundle
    # Plain HTTP never uses TLS. A context that trusts no CA skips loading the CA bundle
    # (tens of milliseconds of start-up) and would refuse, not accept, any TLS peer.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class DeviceApi:
    def __init__(
        self,
        url: str,
        key: Callable[[], str],
        timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.url = url
        self._key = key
        self._timeout = httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S)
        # trust_env=False: the Device API is local, so HTTP_PROXY must not reroute it.
        self._http = httpx.Client(
            base_url=url, timeout=self._timeout, trust_env=False, verify=_tls_setting(url)
        )

    def __enter__(self) -> DeviceApi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- requests ---------------------------------------------------------------------

    def get(self, path: str, params: Params | None = None) -> Any:
        return self._json(self._send("GET", path, params=params))

    def post(self, path: str, body: Any = None) -> Any:
        return self._json(self._send("POST", path, body=body))

    def put(self, path: str, body: Any = None) -> Any:
        return self._json(self._send("PUT", path, body=body))

    def delete(self, path: str) -> Any:
        return self._json(self._send("DELETE", path))

    def ping(self) -> bool:
        """True when something answers /ping (a public route: no key needed)."""
        try:
            return self._http.get("/ping", timeout=CONNECT_TIMEOUT_S).status_code == 200
        except httpx.HTTPError:
            return False

    def stream_ndjson(self, path: str, params: Params | None = None) -> Iterator[dict[str, Any]]:
        """Yield each NDJSON record as soon as its line arrives (follow streams never end)."""
        # No read timeout: a followed log may stay quiet for hours.
        timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT_S)
        request = self._http.build_request(
            "GET", path, params=params, headers=self._auth(), timeout=timeout
        )
        with _transport_errors(self.url, self._timeout.read):
            response = self._http.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    raise error_from_response(response.status_code, response.read())
                for line in response.iter_lines():
                    if line.strip():
                        yield _record(line)
            finally:
                response.close()

    # --- plumbing ---------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        try:
            key = self._key()
        except CliError:
            # Without a key file the likeliest story is an agent that never ran here;
            # say that rather than blame file permissions.
            if not self.ping():
                raise unreachable(self.url) from None
            raise
        return {"Authorization": f"Bearer {key}"}

    def _send(
        self, method: str, path: str, params: Params | None = None, body: Any = None
    ) -> httpx.Response:
        headers = self._auth()
        with _transport_errors(self.url, self._timeout.read):
            response = self._http.request(method, path, params=params, json=body, headers=headers)
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content)
        return response

    def _json(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CliError(f"the agent at {self.url} sent a response that is not JSON") from None


@contextmanager
def _transport_errors(url: str, timeout: float | None) -> Iterator[None]:
    """Map httpx transport failures to messages for people."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout):
        raise unreachable(url) from None
    except httpx.ReadTimeout:
        raise CliError(f"the agent at {url} did not answer within {timeout:g} s") from None
    except httpx.RemoteProtocolError as exc:
        raise CliError(f"the agent at {url} closed the connection: {exc}") from None
    except httpx.TransportError as exc:
        raise CliError(f"request to the agent at {url} failed: {exc}") from None


def _record(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {"message": line}  # show what arrived rather than drop it
    return value if isinstance(value, dict) else {"message": line}


def connect(env: Mapping[str, str] | None = None) -> DeviceApi:
    """A client for the agent that the environment points at; the key is read on first use."""
    environ = os.environ if env is None else env
    return DeviceApi(settings.api_url(environ), lambda: settings.api_key(environ))
