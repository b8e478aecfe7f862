"""Provisioning: status, provision with a key, deprovision. No answer carries a secret."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..provisioning.errors import InvalidProvisioningRequest, ProvisioningConflict, describe_invalid
from ..provisioning.http import CloudError
from ..provisioning.service import Provisioner
from .context import api_context
from .errors import ApiError
from .params import json_object

routes = web.RouteTableDef()


class ProvisionBody(BaseModel):
    # strict: a number where a string belongs is a 400, not silently converted.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    provisioningApiKey: str = Field(repr=False)
    apiEndpoint: str | None = None
    deviceName: str | None = None
    deviceType: str | None = None


def _provisioner(request: web.Request) -> Provisioner:
    provisioner = api_context(request).provisioner
    if provisioner is None:
        raise ApiError(503, "not_available", "provisioning is not available in this mode")
    return provisioner


def _cloud_failure(exc: CloudError) -> ApiError:
    return ApiError(502, "cloud_error", exc.message)


@routes.get("/v1/provision")
async def status(request: web.Request) -> web.Response:
    return web.json_response(_provisioner(request).status())


@routes.post("/v1/provision")
async def provision(request: web.Request) -> web.Response:
    provisioner = _provisioner(request)
    try:
        body = ProvisionBody.model_validate(await json_object(request))
    except ValidationError as exc:
        raise ApiError(400, "bad_request", f"invalid body: {describe_invalid(exc)}") from None
    try:
        answer = await provisioner.provision(
            body.provisioningApiKey, body.apiEndpoint, body.deviceName, body.deviceType
        )
    except InvalidProvisioningRequest as exc:
        raise ApiError(400, "bad_request", exc.message) from None
    except ProvisioningConflict as exc:
        raise ApiError(409, "conflict", exc.message) from None
    except CloudError as exc:
        raise _cloud_failure(exc) from None
    return web.json_response(answer)


@routes.post("/v1/deprovision")
async def deprovision(request: web.Request) -> web.Response:
    provisioner = _provisioner(request)
    try:
        answer = await provisioner.deprovision()
    except ProvisioningConflict as exc:
        raise ApiError(409, "conflict", exc.message) from None
    except CloudError as exc:
        raise _cloud_failure(exc) from None
    return web.json_response(answer)
