"""How Device API answers and transport failures become one-line messages and exit codes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from iotctl.client import DeviceApi, connect, path_segment
from iotctl.errors import KEY_REFUSED, ApiError, CliError, error_from_response


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_documented_error_shape_gives_code_and_message() -> None:
    body = json.dumps({"error": "unknown_config_key", "message": "unknown config key 'FOO'"})
    err = error_from_response(400, body.encode())
    assert (err.status, err.code, err.message, err.exit_code) == (
        400,
        "unknown_config_key",
        "unknown config key 'FOO'",
        1,
    )


def test_401_always_reads_as_a_refused_key() -> None:
    body = json.dumps({"error": "unauthorized", "message": "missing or invalid key"}).encode()
    assert error_from_response(401, body).message == KEY_REFUSED
    assert error_from_response(401, b"").message == KEY_REFUSED


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html>Bad Gateway</html>", "the agent answered HTTP 502: <html>Bad Gateway</html>"),
        (b"", "the agent answered HTTP 502"),
        (b'{"error": "x"}', 'the agent answered HTTP 502: {"error": "x"}'),
        (b"[1, 2]", "the agent answered HTTP 502: [1, 2]"),
    ],
)
def test_answers_outside_the_contract_still_give_a_message(body: bytes, expected: str) -> None:
    err = error_from_response(502, body)
    assert err.message == expected
    assert isinstance(err, ApiError) and err.exit_code == 1


def test_service_refs_are_quoted_as_one_path_segment() -> None:
    assert path_segment("1001/web") == "1001%2Fweb"
    assert path_segment("web-1") == "web-1"
    assert path_segment("a b?c#d") == "a%20b%3Fc%23d"


def test_nothing_listening_means_the_agent_is_not_running() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with DeviceApi(url, lambda: "k" * 43) as api, pytest.raises(CliError) as caught:
        api.get("/v1/device")
    assert caught.value.message == f"cannot reach the agent at {url}: is it running?"


def test_a_missing_key_with_no_agent_blames_the_agent_not_the_file(tmp_path: Path) -> None:
    port = free_port()
    env = {"DEVICE_API_PORT": str(port), "DATABASE_PATH": str(tmp_path / "device.sqlite")}
    with connect(env) as api, pytest.raises(CliError, match="is it running"):
        api.get("/v1/device")
