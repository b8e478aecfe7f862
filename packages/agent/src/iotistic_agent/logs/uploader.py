"""One log upload: NDJSON records to ``POST /api/v1/device/{uuid}/logs``, gzipped if asked."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Final

import aiohttp
from iotistic_contracts.logs import LOGS_CONTENT_TYPE, LogUploadResult
from pydantic import ValidationError

from ..cloud.client import SyncFailure, as_sync_error
from ..provisioning.http import CloudError, cloud_errors, raise_for_cloud_error
from ..store.device import CloudCredentials

MAX_ANSWER_BYTES: Final = 64 * 1024


def ndjson(bodies: Sequence[str]) -> bytes:
    return ("\n".join(bodies) + "\n").encode("utf-8")


class LogUploader:
    def __init__(
        self, session: aiohttp.ClientSession, credentials: CloudCredentials, compress: bool
    ) -> None:
        self._session = session
        self._url = f"{credentials.endpoint}/api/v1/device/{credentials.uuid}/logs"
        self._endpoint = credentials.endpoint
        self._auth = {"Authorization": f"Bearer {credentials.api_key}"}
        self.compress = compress
        self.bytes_sent = 0

    async def upload(self, bodies: Sequence[str]) -> LogUploadResult:
        """Raises ``SyncFailure`` (retry later) or ``Rejected`` (this upload can never pass)."""
        data = ndjson(bodies)
        headers = {**self._auth, "Content-Type": LOGS_CONTENT_TYPE}
        if self.compress:
            data = gzip.compress(data, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        try:
            with cloud_errors(self._endpoint):
                async with self._session.post(self._url, data=data, headers=headers) as response:
                    await raise_for_cloud_error(response)
                    answer = await response.content.read(MAX_ANSWER_BYTES)
        except CloudError as exc:
            raise as_sync_error(exc) from None
        self.bytes_sent += len(data)
        try:
            return LogUploadResult.model_validate_json(answer)
        except ValidationError:
            raise SyncFailure("the cloud answered a log upload with an unexpected body") from None
