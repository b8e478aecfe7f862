"""Target states: set by the admin (If-Match against concurrent changes), versioned on
change, polled by the device with ETags."""

from __future__ import annotations

import asyncio

import httpx
from iotistic_cloud.composition import Cloud
from iotistic_contracts.sync import TargetResponse

from tests.cloud.conftest import SettableClock
from tests.cloud.device_kit import ADMIN, SimDevice, provision, target


async def set_target(client: httpx.AsyncClient, device_uuid: str, body: object) -> httpx.Response:
    return await client.put(f"/api/admin/v1/devices/{device_uuid}/target", json=body, headers=ADMIN)


async def poll(
    client: httpx.AsyncClient, device: SimDevice, if_none_match: str | None = None
) -> httpx.Response:
    headers = dict(device.auth)
    if if_none_match is not None:
        headers["If-None-Match"] = if_none_match
    return await client.get(device.state_path, headers=headers)


async def test_new_device_polls_an_empty_target_at_version_0(
    client: httpx.AsyncClient, key: str
) -> None:
    device = await provision(client, key)
    answer = await poll(client, device)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {device.uuid: {"apps": {}, "config": {}, "version": 0}}
    etag = answer.headers["etag"]
    assert etag.startswith('"0-') and etag.endswith('"')


async def test_poll_body_is_the_wire_model(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    desired = target((1001, "web", "nginx:1.25"), config={"SUPERVISOR_POLL_INTERVAL": "60000"})
    assert (await set_target(client, device.uuid, desired)).status_code == 200
    answer = await poll(client, device)
    parsed = TargetResponse.model_validate_json(answer.content).root[device.uuid]
    assert parsed.version == 1
    assert parsed.apps["1001"].services[0].imageName == "nginx:1.25"
    assert parsed.config == {"SUPERVISOR_POLL_INTERVAL": "60000"}


async def test_etag_gives_304_without_body(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    etag = (await poll(client, device)).headers["etag"]
    for header in [etag, f"W/{etag}", f'"other", {etag}', "*"]:
        answer = await poll(client, device, header)
        assert answer.status_code == 304, header
        assert answer.content == b""
        assert answer.headers["etag"] == etag
    stale = await poll(client, device, '"0-deadbeef"')
    assert stale.status_code == 200


async def test_version_moves_only_when_the_state_changes(
    client: httpx.AsyncClient, key: str
) -> None:
    device = await provision(client, key)
    first = target((1001, "web", "nginx:1.25"))
    answer = await set_target(client, device.uuid, first)
    assert answer.json() == {"uuid": device.uuid, "version": 1, "changed": True}
    etag_1 = (await poll(client, device)).headers["etag"]

    # The same state again (keys in another order, an id as a digit string): no new version.
    same = {
        "config": {},
        "apps": {
            "1001": {
                "services": [{"imageName": "nginx:1.25", "serviceName": "web", "serviceId": "1"}],
                "appName": "app1001",
                "appId": 1001,
            }
        },
    }
    answer = await set_target(client, device.uuid, same)
    assert answer.json() == {"uuid": device.uuid, "version": 1, "changed": False}
    assert (await poll(client, device, etag_1)).status_code == 304

    answer = await set_target(client, device.uuid, target((1001, "web", "nginx:1.26")))
    assert answer.json() == {"uuid": device.uuid, "version": 2, "changed": True}
    changed = await poll(client, device, etag_1)
    assert changed.status_code == 200
    assert changed.json()[device.uuid]["version"] == 2
    assert changed.headers["etag"] != etag_1


async def test_target_is_validated_with_field_paths(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    bad = target((1001, "web", "nginx"))
    bad["apps"]["1001"]["services"][0]["config"] = {"restart": "sometimes", "bogus": 1}
    answer = await set_target(client, device.uuid, bad)
    assert answer.status_code == 400
    body = answer.json()
    fields = {error["field"] for error in body["errors"]}
    assert "apps.1001.services[0].config.restart" in fields
    assert "apps.1001.services[0].config.bogus" in fields
    assert body["error"].startswith("invalid target state: ")
    # Nothing changed for the device.
    assert (await poll(client, device)).json()[device.uuid]["version"] == 0


async def test_target_rejects_duplicate_keys_and_non_objects(
    client: httpx.AsyncClient, key: str
) -> None:
    device = await provision(client, key)
    path = f"/api/admin/v1/devices/{device.uuid}/target"
    duplicate = b'{"apps": {}, "apps": {}, "config": {}}'
    nul, infinite = b'{"config": {"a": "\\u0000"}}', b'{"config": {"a": 1e400}}'
    json_headers = {**ADMIN, "Content-Type": "application/json"}
    for raw in [duplicate, b"[]", b"{not json", nul, infinite]:
        answer = await client.put(path, content=raw, headers=json_headers)
        assert answer.status_code == 400, raw
        assert answer.json()["error"].startswith("invalid target state"), answer.text
    # A body that does not say it is JSON is not read as JSON.
    answer = await client.put(path, content=b'{"apps": {}}', headers=ADMIN)
    assert answer.status_code == 415
    assert answer.json() == {"error": "Content-Type is missing (use application/json)"}


async def test_target_for_an_unknown_device(client: httpx.AsyncClient) -> None:
    answer = await set_target(client, "9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d", target())
    assert answer.status_code == 404
    assert answer.json() == {"error": "device 9b0c5b1e-8f0e-4f7e-9d6f-3f1c2a4b5c6d does not exist"}


async def test_poll_marks_the_device_seen(
    client: httpx.AsyncClient, cloud: Cloud, clock: SettableClock, key: str
) -> None:
    device = await provision(client, key)
    path = f"/api/admin/v1/devices/{device.uuid}"
    clock.advance(cloud.settings.offline_after_s + 1)
    assert (await client.get(path, headers=ADMIN)).json()["status"] == "offline"
    await poll(client, device)
    shown = (await client.get(path, headers=ADMIN)).json()
    assert shown["status"] == "online"
    assert shown["lastSeen"] is not None


async def test_uppercase_uuid_in_the_path_is_the_same_device(
    client: httpx.AsyncClient, key: str
) -> None:
    device = await provision(client, key)
    answer = await client.get(f"/api/v1/device/{device.uuid.upper()}/state", headers=device.auth)
    assert answer.status_code == 200


async def put_if_match(
    client: httpx.AsyncClient, device: SimDevice, body: object, if_match: str
) -> httpx.Response:
    headers = {**ADMIN, "If-Match": if_match}
    return await client.put(
        f"/api/admin/v1/devices/{device.uuid}/target", json=body, headers=headers
    )


async def test_if_match_refuses_to_overwrite_a_change(client: httpx.AsyncClient, key: str) -> None:
    """An admin read the target (ETag), another changed it meanwhile: the first one's save
    is a 412 and changes nothing, instead of silently overwriting the other change."""
    device = await provision(client, key)
    shown = await client.get(f"/api/admin/v1/devices/{device.uuid}", headers=ADMIN)
    read_etag = shown.headers["etag"]
    assert read_etag == shown.json()["targetEtag"] == (await poll(client, device)).headers["etag"]

    theirs = await put_if_match(client, device, target((1, "web", "nginx:1")), read_etag)
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["version"] == 1
    new_etag = theirs.headers["etag"]
    assert new_etag == (await poll(client, device)).headers["etag"] != read_etag

    mine = await put_if_match(client, device, target((1, "web", "nginx:2")), read_etag)
    assert mine.status_code == 412
    assert mine.json() == {
        "error": f"the target of device {device.uuid} is at version 1 (ETag {new_etag}), not "
        "the one If-Match names: it changed since it was read; read it again"
    }
    polled = (await poll(client, device)).json()[device.uuid]
    assert (polled["version"], polled["apps"]["1"]["services"][0]["imageName"]) == (1, "nginx:1")


async def test_if_match_forms(client: httpx.AsyncClient, key: str) -> None:
    device = await provision(client, key)
    etag = (await poll(client, device)).headers["etag"]
    body = target((1, "web", "nginx:1"))
    for refused in (f"W/{etag}", '"7"', "7", '"other"'):
        assert (await put_if_match(client, device, body, refused)).status_code == 412, refused
    # The ETag in a list, the version bare or quoted, and * (any target: the device exists).
    for version, if_match in enumerate([f'"other", {etag}', "1", '"2"', "*"], start=1):
        body = target((1, "web", f"nginx:{version + 1}"))
        answer = await put_if_match(client, device, body, if_match)
        assert answer.status_code == 200, if_match
        assert answer.json()["version"] == version
    # Unchanged content with a current If-Match: 200, the same version.
    same = await put_if_match(client, device, body, "4")
    assert (same.status_code, same.json()["changed"], same.json()["version"]) == (200, False, 4)


async def test_two_saves_with_the_same_if_match_one_wins(
    client: httpx.AsyncClient, key: str
) -> None:
    device = await provision(client, key)
    answers = await asyncio.gather(
        *(put_if_match(client, device, target((1, "web", f"nginx:{n}")), "0") for n in range(4))
    )
    assert sorted(answer.status_code for answer in answers) == [200, 412, 412, 412]
    assert (await poll(client, device)).json()[device.uuid]["version"] == 1
