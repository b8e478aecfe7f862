"""Remove this device's registration from the cloud (no cryptography needed)."""

from __future__ import annotations

from urllib.parse import quote

from ..store.device import CloudCredentials
from .http import CloudError, cloud_error, cloud_errors, cloud_session


async def delete_registration(credentials: CloudCredentials, timeout_s: float) -> bool:
    """DELETE the device; True when the cloud deleted it, False when it was already gone."""
    url = f"{credentials.endpoint}/api/v1/device/{quote(credentials.uuid, safe='')}"
    headers = {"Authorization": f"Bearer {credentials.api_key}"}
    async with cloud_session(credentials.ca_cert, credentials.verify_tls, timeout_s) as session:
        with cloud_errors(credentials.endpoint):
            async with session.delete(url, headers=headers) as response:
                if response.status == 404:
                    return False
                if 200 <= response.status < 300:
                    return True
                error = await cloud_error(response)
    if error.status in (401, 403):
        raise CloudError(
            f"the cloud refused this device's API key (HTTP {error.status}): {error.message}",
            error.status,
        )
    raise error
