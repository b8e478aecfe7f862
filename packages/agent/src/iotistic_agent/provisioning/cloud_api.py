"""The two provisioning calls, `key-exchange` and `register`, with their wire models."""

from __future__ import annotations

from typing import Final, TypeVar

import aiohttp
from iotistic_contracts.provisioning import (
    KeyExchangeRequest,
    KeyExchangeResponse,
    RegisterRequest,
    RegisterResponse,
)
from pydantic import BaseModel, ValidationError

from .errors import describe_invalid
from .http import CloudError, cloud_errors, raise_for_cloud_error

KEY_EXCHANGE_PATH: Final = "/api/provisioning/v2/key-exchange"
REGISTER_PATH: Final = "/api/provisioning/v2/register"
MAX_RESPONSE_BYTES: Final = 256 * 1024

_Response = TypeVar("_Response", bound=BaseModel)


class ProvisioningApi:
    def __init__(self, session: aiohttp.ClientSession, endpoint: str) -> None:
        self._session = session
        self.endpoint = endpoint

    async def key_exchange(self, request: KeyExchangeRequest) -> KeyExchangeResponse:
        return await self._post(KEY_EXCHANGE_PATH, request, KeyExchangeResponse)

    async def register(self, request: RegisterRequest) -> RegisterResponse:
        return await self._post(REGISTER_PATH, request, RegisterResponse)

    async def _post(self, path: str, request: BaseModel, answer: type[_Response]) -> _Response:
        body = request.model_dump_json(exclude_none=True)
        with cloud_errors(self.endpoint):
            async with self._session.post(
                self.endpoint + path, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await raise_for_cloud_error(response)
                raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
        if len(raw) > MAX_RESPONSE_BYTES:
            raise CloudError(f"cloud at {self.endpoint} sent an oversized answer to {path}")
        try:
            return answer.model_validate_json(raw)
        except ValidationError as exc:
            raise CloudError(
                f"cloud at {self.endpoint} sent an invalid answer to {path}: "
                f"{describe_invalid(exc)}"
            ) from None
