"""The device's RSA key pair, kept in `<data dir>/device-key.pem` (imports cryptography)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from iotistic_contracts.sealed import (
    SealedBoxError,
    generate_private_key,
    load_private_key,
    private_key_pem,
)

from .files import device_key_path, write_private_file

log = logging.getLogger("iotistic.provisioning")


def load_or_create_device_key(data_dir: Path) -> rsa.RSAPrivateKey:
    """Reuse the stored key when it is a valid RSA key; otherwise generate and store one.

    Blocking (key generation takes a moment on a small device): run it in a thread."""
    path = device_key_path(data_dir)
    try:
        pem: bytes | None = path.read_bytes()
    except FileNotFoundError:
        pem = None
    if pem is not None:
        try:
            key = load_private_key(pem)
        except SealedBoxError as exc:
            log.warning("device key %s cannot be used (%s): generating a new one", path, exc)
        else:
            os.chmod(path, 0o600)  # repair permissions someone loosened
            return key
    key = generate_private_key()
    write_private_file(path, private_key_pem(key))
    log.info("generated a new device key pair in %s", path)
    return key
