"""The Provisioner against a fake cloud that speaks the real protocol over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from iotistic_agent.provisioning.errors import InvalidProvisioningRequest, ProvisioningConflict
from iotistic_agent.provisioning.files import device_key_path
from iotistic_agent.provisioning.http import CloudError
from iotistic_agent.provisioning.service import when_provisioned
from iotistic_contracts.sealed import load_private_key, public_key_pem
from provisioning_support import (
    DEVICE_API_KEY,
    MQTT_PASSWORD,
    PROVISIONING_KEY,
    Device,
    FakeCloud,
    RecordingBackoff,
    error,
    free_port,
    make_device,
    running_cloud,
    start_cloud,
    wait_until,
)

SECRETS = (PROVISIONING_KEY, DEVICE_API_KEY, MQTT_PASSWORD)


@pytest.fixture
async def cloud() -> AsyncIterator[FakeCloud]:
    async with running_cloud() as fake:
        yield fake


def assert_nothing_stored(device: Device) -> None:
    identity = device.devices.identity()
    assert identity.provisioned is False
    assert identity.device_id is None and identity.endpoint is None
    assert device.devices.cloud_credentials() is None
    row = device.devices._conn.execute("SELECT apiKey, mqttPassword FROM device").fetchone()
    assert tuple(row) == (None, None)
    assert device.provisioned == []


# --- success -------------------------------------------------------------------------------


async def test_provisioning_registers_the_device_and_stores_everything(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    device = make_device(tmp_path, {"DEVICE_TYPE": "edge-gateway"})
    uuid = device.devices.identity().uuid

    status = await device.provisioner.provision(PROVISIONING_KEY, cloud.url, name="pi-7")

    assert status["provisioned"] is True and status["inProgress"] is False
    assert status["deviceId"] == f"dev-{uuid[:8]}"
    assert (status["deviceName"], status["deviceType"]) == ("pi-7", "edge-gateway")
    assert status["apiEndpoint"] == cloud.url
    assert status["mqttUsername"] == f"device_{uuid}"
    assert status["registeredAt"].endswith("Z") and status["lastError"] is None
    credentials = device.devices.cloud_credentials()
    assert credentials is not None
    assert (credentials.uuid, credentials.endpoint, credentials.api_key) == (
        uuid,
        cloud.url,
        DEVICE_API_KEY,
    )
    assert credentials.verify_tls is True and credentials.ca_cert is None
    assert device.provisioned == [credentials]  # the listener got the same credentials
    row = device.devices._conn.execute(
        "SELECT mqttPassword, mqttBrokerConfig FROM device"
    ).fetchone()
    assert row["mqttPassword"] == MQTT_PASSWORD
    assert '"host": "broker.test"' in row["mqttBrokerConfig"]
    # The cloud opened the sealed registration and saw what the device says about itself.
    seen = cloud.registered[uuid].data
    assert (seen.deviceName, seen.deviceType, seen.agentVersion) == (
        "pi-7",
        "edge-gateway",
        "0.1.0",
    )
    assert seen.provisioningApiKey == PROVISIONING_KEY
    # The device's key pair: 0600, and the public half is what the cloud sealed secrets to.
    key_file = device_key_path(tmp_path)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert public_key_pem(load_private_key(key_file.read_bytes())) == cloud.device_keys[uuid]
    assert cloud.requests == [
        ("POST", "/api/provisioning/v2/key-exchange"),
        ("POST", "/api/provisioning/v2/key-exchange"),
        ("POST", "/api/provisioning/v2/register"),
    ]


async def test_the_endpoint_defaults_to_cloud_api_endpoint(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    device = make_device(tmp_path, {"CLOUD_API_ENDPOINT": cloud.url + "/"})
    status = await device.provisioner.provision(PROVISIONING_KEY)
    assert status["provisioned"] is True and status["apiEndpoint"] == cloud.url


async def test_tls_settings_from_the_cloud_are_kept_for_later_calls(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    from iotistic_contracts.provisioning import ApiTlsConfig

    cloud.tls_config = ApiTlsConfig(caCert="-----BEGIN CERTIFICATE-----x", verifyCertificate=False)
    device = make_device(tmp_path)
    await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    credentials = device.devices.cloud_credentials()
    assert credentials is not None
    assert (credentials.ca_cert, credentials.verify_tls) == ("-----BEGIN CERTIFICATE-----x", False)


async def test_a_listener_that_fails_does_not_undo_the_registration(
    tmp_path: Path, cloud: FakeCloud, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: object) -> None:
        raise RuntimeError("listener bug")

    device = make_device(tmp_path, on_provisioned=broken)
    status = await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    assert status["provisioned"] is True
    assert "provisioning listener failed" in caplog.text


# --- the cloud refuses or misbehaves: its message surfaces, nothing is stored ---------------


@pytest.mark.parametrize(
    ("where", "status", "message"),
    [
        ("key_exchange", 401, "provisioning key has expired"),
        ("key_exchange", 403, "provisioning key has been revoked"),
        ("register", 409, "provisioning key has reached its device limit"),
        ("register", 400, "registration payload cannot be decrypted"),
        ("key_exchange", 503, "database is down"),
    ],
)
async def test_each_cloud_error_is_surfaced_and_nothing_is_stored(
    tmp_path: Path, cloud: FakeCloud, where: str, status: int, message: str
) -> None:
    setattr(cloud, f"{where}_failure", error(status, message))
    device = make_device(tmp_path)
    with pytest.raises(CloudError) as caught:
        await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    assert caught.value.status == status
    if status < 500:
        assert caught.value.message == f"the cloud refused provisioning: {message}"
    else:
        assert caught.value.message == f"the cloud failed to provision (HTTP {status}): {message}"
    assert caught.value.refused is (status < 500)
    assert device.provisioner.status()["lastError"] == caught.value.message
    assert_nothing_stored(device)


async def test_a_wrong_key_is_the_clouds_refusal(tmp_path: Path, cloud: FakeCloud) -> None:
    device = make_device(tmp_path)
    with pytest.raises(CloudError, match="invalid provisioning key"):
        await device.provisioner.provision("pk_wrong_0123456789abcdef", cloud.url)
    assert_nothing_stored(device)


async def test_an_answer_that_is_not_json_still_gives_a_message(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    cloud.key_exchange_failure = web.Response(status=502, text="<html>Bad Gateway</html>")
    device = make_device(tmp_path)
    with pytest.raises(CloudError, match=r"cloud answered HTTP 502: <html>Bad Gateway</html>"):
        await device.provisioner.provision(PROVISIONING_KEY, cloud.url)


async def test_an_invalid_answer_is_a_clear_error(tmp_path: Path, cloud: FakeCloud) -> None:
    cloud.key_exchange_failure = web.json_response({"apiPublicKey": "nope", "keyId": "k"})
    device = make_device(tmp_path)
    with pytest.raises(CloudError, match=r"invalid answer to /api/provisioning/v2/key-exchange"):
        await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    assert_nothing_stored(device)


async def test_tampered_secrets_from_the_cloud_are_refused_and_nothing_is_stored(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    cloud.tamper_secrets = True
    device = make_device(tmp_path)
    with pytest.raises(CloudError) as caught:
        await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    assert "secrets sent by the cloud" in caught.value.message
    assert "cannot decrypt: wrong key, wrong context or tampered data" in caught.value.message
    assert caught.value.status is None  # not a refusal: worth retrying
    assert_nothing_stored(device)


async def test_a_registration_for_another_uuid_is_refused(tmp_path: Path, cloud: FakeCloud) -> None:
    cloud.other_uuid = "00000000-0000-4000-8000-000000000000"
    device = make_device(tmp_path)
    with pytest.raises(CloudError, match="registered another device uuid"):
        await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    assert_nothing_stored(device)


async def test_a_key_id_that_changes_between_the_exchanges_is_refused(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    cloud.changing_key_id = True
    device = make_device(tmp_path)
    with pytest.raises(CloudError, match="changed the key id"):
        await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    assert_nothing_stored(device)


async def test_an_api_endpoint_that_is_no_url_is_refused(tmp_path: Path, cloud: FakeCloud) -> None:
    cloud.api_endpoint = "ftp://cloud"
    device = make_device(tmp_path)
    with pytest.raises(CloudError, match="not an http"):
        await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    assert_nothing_stored(device)


async def test_an_unreachable_cloud_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    device = make_device(tmp_path)
    with pytest.raises(CloudError) as caught:
        await device.provisioner.provision(PROVISIONING_KEY, url)
    assert caught.value.message.startswith(f"provisioning failed: cloud at {url} is unreachable: ")
    assert caught.value.status is None
    assert_nothing_stored(device)


# --- bad input and conflicts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("short",), "provisioning key must be 16 to 256 characters"),
        (("k" * 257,), "provisioning key must be 16 to 256 characters"),
        (("key with spaces inside",), "must not contain spaces"),
        ((PROVISIONING_KEY, "cloud.example"), "apiEndpoint must be an http:// or https:// URL"),
        ((PROVISIONING_KEY, "http://[::1"), "apiEndpoint must be an http"),
        ((PROVISIONING_KEY, "http://h:99999"), "apiEndpoint must be an http"),
        ((PROVISIONING_KEY,), "no cloud API endpoint"),
        ((PROVISIONING_KEY, "http://h", "x" * 256), "deviceName must be 1 to 255"),
        ((PROVISIONING_KEY, "http://h", None, "bad\ntype"), "deviceType must be 1 to 255"),
    ],
)
async def test_bad_input_is_refused_before_anything_happens(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    device = make_device(tmp_path)
    with pytest.raises(InvalidProvisioningRequest, match=message) as caught:
        await device.provisioner.provision(*args)
    assert args[0] not in caught.value.message or len(args[0]) < 16
    assert not device_key_path(tmp_path).exists()


async def test_a_provisioned_device_must_be_deprovisioned_first(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    device = make_device(tmp_path)
    await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    with pytest.raises(ProvisioningConflict, match="already provisioned"):
        await device.provisioner.provision(PROVISIONING_KEY, cloud.url)


async def test_only_one_provisioning_runs_at_a_time(tmp_path: Path, cloud: FakeCloud) -> None:
    cloud.hold_key_exchange = asyncio.Event()
    device = make_device(tmp_path)
    first = asyncio.create_task(device.provisioner.provision(PROVISIONING_KEY, cloud.url))
    await cloud.key_exchange_started.wait()
    assert device.provisioner.status()["inProgress"] is True
    with pytest.raises(ProvisioningConflict, match="already in progress"):
        await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    with pytest.raises(ProvisioningConflict, match="already in progress"):
        await device.provisioner.deprovision()
    cloud.hold_key_exchange.set()
    assert (await first)["provisioned"] is True


# --- deprovision -----------------------------------------------------------------------------


async def test_deprovision_keeps_uuid_api_key_and_key_pair(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    device = make_device(tmp_path)
    uuid = device.devices.identity().uuid
    await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    key_pem = device_key_path(tmp_path).read_bytes()

    status = await device.provisioner.deprovision()

    assert status["provisioned"] is False and status["deprovisionedAt"] is not None
    assert cloud.requests[-1] == ("DELETE", f"/api/v1/device/{uuid}")
    assert cloud.auth_headers == [f"Bearer {DEVICE_API_KEY}"]
    assert device.deprovisioned == [True]
    assert device.devices.cloud_credentials() is None
    row = device.devices._conn.execute("SELECT uuid, apiKey FROM device").fetchone()
    assert tuple(row) == (uuid, DEVICE_API_KEY)
    assert device_key_path(tmp_path).read_bytes() == key_pem
    # Provisioning again reuses the same key pair and uuid.
    await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    assert device_key_path(tmp_path).read_bytes() == key_pem
    assert device.devices.identity().uuid == uuid


async def test_deprovision_of_a_device_the_cloud_forgot_succeeds(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    device = make_device(tmp_path)
    await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    cloud.registered.clear()
    assert (await device.provisioner.deprovision())["provisioned"] is False


async def test_a_refused_device_key_is_reported_and_nothing_changes(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    device = make_device(tmp_path)
    await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    cloud.delete_failure = error(401, "invalid device API key")
    with pytest.raises(CloudError) as caught:
        await device.provisioner.deprovision()
    assert caught.value.message == (
        "the cloud refused this device's API key (HTTP 401): invalid device API key"
    )
    assert device.devices.cloud_credentials() is not None
    assert device.deprovisioned == []
    assert device.provisioner.status()["lastError"] == f"deprovisioning failed: {caught.value}"


async def test_deprovision_with_the_cloud_unreachable_changes_nothing(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    device = make_device(tmp_path)
    cloud.api_endpoint = f"http://127.0.0.1:{free_port()}"
    await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    with pytest.raises(CloudError, match="is unreachable"):
        await device.provisioner.deprovision()
    assert device.devices.identity().provisioned is True


async def test_deprovision_of_an_unprovisioned_device_is_a_conflict(tmp_path: Path) -> None:
    with pytest.raises(ProvisioningConflict, match="not provisioned"):
        await make_device(tmp_path).provisioner.deprovision()


# --- automatic provisioning ------------------------------------------------------------------


async def test_automatic_provisioning_retries_with_backoff_until_the_cloud_appears(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    recorded = RecordingBackoff(base_s=0.01, max_s=0.16, jitter=0.0)
    device = make_device(
        tmp_path, {"PROVISIONING_API_KEY": PROVISIONING_KEY, "CLOUD_API_ENDPOINT": url}, recorded
    )
    task = asyncio.create_task(device.provisioner.run())
    await wait_until(lambda: len(recorded.delays) >= 4)
    assert "is unreachable" in (device.provisioner.status()["lastError"] or "")
    assert recorded.delays[:4] == [0.01, 0.02, 0.04, 0.08]  # doubling, then capped

    cloud = FakeCloud()
    server = await start_cloud(cloud, port)
    try:
        await asyncio.wait_for(task, 10)
    finally:
        await server.close()
    assert device.devices.identity().provisioned is True
    assert device.provisioner.status()["lastError"] is None
    assert all(d <= 0.16 for d in recorded.delays)


async def test_an_unexpected_failure_is_logged_and_retried(
    tmp_path: Path,
    cloud: FakeCloud,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from iotistic_agent.provisioning import register

    real = register.register_device
    calls: list[int] = []

    async def flaky(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug in a dependency")
        return await real(*args)

    monkeypatch.setattr(register, "register_device", flaky)
    recorded = RecordingBackoff(base_s=0.01, max_s=0.04)
    env = {"PROVISIONING_API_KEY": PROVISIONING_KEY, "CLOUD_API_ENDPOINT": cloud.url}
    device = make_device(tmp_path, env, recorded)
    await asyncio.wait_for(device.provisioner.run(), 10)
    assert device.devices.identity().provisioned is True
    assert len(calls) == 2 and recorded.refused == [False]
    assert "automatic provisioning attempt failed" in caplog.text


async def test_a_refused_key_is_retried_at_the_cap_interval(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    cloud.key = "pk_other_0123456789abcdef"
    recorded = RecordingBackoff(base_s=0.01, max_s=0.04)
    device = make_device(
        tmp_path,
        {"PROVISIONING_API_KEY": PROVISIONING_KEY, "CLOUD_API_ENDPOINT": cloud.url},
        recorded,
    )
    task = asyncio.create_task(device.provisioner.run())
    await wait_until(lambda: len(recorded.delays) >= 2)
    assert recorded.refusals == len(recorded.delays)  # every wait is the refusal interval
    assert all(0.8 * 0.04 <= d <= 0.04 for d in recorded.delays)
    assert "invalid provisioning key" in (device.provisioner.status()["lastError"] or "")
    cloud.key = PROVISIONING_KEY  # an admin fixes the key in the cloud
    await asyncio.wait_for(task, 10)
    assert device.devices.identity().provisioned is True


async def test_provisioning_by_hand_ends_the_automatic_retries(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    device = make_device(
        tmp_path,
        {"PROVISIONING_API_KEY": "pk_wrong_0123456789abcdef", "CLOUD_API_ENDPOINT": cloud.url},
    )
    task = asyncio.create_task(device.provisioner.run())
    await wait_until(lambda: device.provisioner.status()["nextAttemptAt"] is not None)
    await device.provisioner.provision(PROVISIONING_KEY)
    await asyncio.wait_for(task, 10)
    assert device.devices.identity().provisioned is True


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"PROVISIONING_API_KEY": PROVISIONING_KEY},
        {"PROVISIONING_API_KEY": "", "CLOUD_API_ENDPOINT": "http://127.0.0.1:9"},
    ],
)
async def test_without_key_or_endpoint_there_is_nothing_to_do(
    tmp_path: Path, env: dict[str, str]
) -> None:
    device = make_device(tmp_path, env)
    await asyncio.wait_for(device.provisioner.run(), 5)
    assert device.devices.identity().provisioned is False


async def test_an_unusable_key_in_the_environment_stops_with_a_clear_error(tmp_path: Path) -> None:
    env = {"PROVISIONING_API_KEY": "too-short", "CLOUD_API_ENDPOINT": "http://127.0.0.1:9"}
    device = make_device(tmp_path, env)
    await asyncio.wait_for(device.provisioner.run(), 5)
    assert device.provisioner.status()["lastError"] == (
        "PROVISIONING_API_KEY: the provisioning key must be 16 to 256 characters long"
    )


async def test_an_operators_deprovision_is_not_undone_automatically(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    env = {"PROVISIONING_API_KEY": PROVISIONING_KEY, "CLOUD_API_ENDPOINT": cloud.url}
    device = make_device(tmp_path, env)
    await device.provisioner.run()
    await device.provisioner.deprovision()
    # As after a restart: a new provisioner over the same database.
    again = make_device(tmp_path, env)
    await asyncio.wait_for(again.provisioner.run(), 5)
    assert again.devices.identity().provisioned is False


async def test_require_provisioning_holds_a_component_until_provisioned(
    tmp_path: Path, cloud: FakeCloud
) -> None:
    device = make_device(tmp_path)
    started = asyncio.Event()

    async def reconciler() -> None:
        started.set()

    gated = asyncio.create_task(when_provisioned(device.provisioner, True, reconciler))
    # A negative cannot be awaited: the gate gets 50 ms in which it must not open.
    await asyncio.wait({gated}, timeout=0.05)
    assert not started.is_set()
    await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    await asyncio.wait_for(gated, 5)
    assert started.is_set()


async def test_without_require_provisioning_the_component_starts_at_once(tmp_path: Path) -> None:
    device = make_device(tmp_path)
    started = asyncio.Event()

    async def reconciler() -> None:
        started.set()

    await asyncio.wait_for(when_provisioned(device.provisioner, False, reconciler), 5)
    assert started.is_set()


# --- secrets stay secret ---------------------------------------------------------------------


async def test_no_secret_reaches_the_log_or_the_status(
    tmp_path: Path, cloud: FakeCloud, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    device = make_device(tmp_path)
    cloud.register_failure = error(400, f"bad key {PROVISIONING_KEY}")  # a cloud that echoes it
    with pytest.raises(CloudError) as caught:
        await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    assert PROVISIONING_KEY not in caught.value.message
    cloud.register_failure = None
    status = await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    await device.provisioner.deprovision()
    private_key = device_key_path(tmp_path).read_text()
    texts = [caplog.text, repr(status), repr(device.provisioner.status())]
    texts += [repr(c) for c in device.provisioned]
    for text in texts:
        for secret in (*SECRETS, private_key.splitlines()[1]):
            assert secret not in text
    assert "provisioned" in caplog.text  # the log does tell the story


async def test_an_unusable_stored_key_pair_is_replaced(
    tmp_path: Path, cloud: FakeCloud, caplog: pytest.LogCaptureFixture
) -> None:
    device_key_path(tmp_path).write_text("not a key")
    device = make_device(tmp_path)
    await device.provisioner.provision(PROVISIONING_KEY, cloud.url)
    uuid = device.devices.identity().uuid
    assert (
        public_key_pem(load_private_key(device_key_path(tmp_path).read_bytes()))
        == (cloud.device_keys[uuid])
    )
    assert "cannot be used" in caplog.text
    assert stat.S_IMODE(device_key_path(tmp_path).stat().st_mode) == 0o600
