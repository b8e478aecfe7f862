"""Hybrid encryption for provisioning payloads: RSA-OAEP-256 wraps a fresh AES-256-GCM key.

RSA-2048 with OAEP-SHA256 can encrypt at most 190 bytes, so the payload itself is encrypted
with AES-GCM and only the AES key goes through RSA. The caller's associated data (device uuid,
key id) is bound into the GCM tag, so a box cannot be replayed in another context.

This module imports ``cryptography``; import it directly (it is deliberately not re-exported
from the package root, so the agent does not load it at start-up).
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Annotated, Final, Literal

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import AfterValidator, BaseModel, ConfigDict

ALGORITHM: Final = "RSA-OAEP-256+A256GCM"
RSA_KEY_BITS: Final = 2048
MIN_RSA_KEY_BITS: Final = 2048
RSA_PUBLIC_EXPONENT: Final = 65537
AES_KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
GCM_TAG_BYTES: Final = 16
# Bounds the work done on untrusted input before any cryptography runs.
MAX_CIPHERTEXT_BYTES: Final = 1024 * 1024
MAX_WRAPPED_KEY_BYTES: Final = 1024  # an 8192-bit modulus


class SealedBoxError(ValueError):
    """A key or sealed box was rejected; the message never contains key or plaintext material."""


def _oaep() -> padding.OAEP:
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    )


def _b64decode(value: str) -> bytes:
    # validate=True rejects stray characters instead of silently skipping them.
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError("not valid standard base64") from exc


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _check_b64(min_bytes: int, max_bytes: int) -> AfterValidator:
    def check(value: str) -> str:
        size = len(_b64decode(value))
        if not min_bytes <= size <= max_bytes:
            if min_bytes == max_bytes:
                raise ValueError(f"must decode to {min_bytes} bytes, got {size}")
            raise ValueError(f"must decode to {min_bytes}..{max_bytes} bytes, got {size}")
        return value

    return AfterValidator(check)


class SealedBox(BaseModel):
    """The wire form of one sealed payload; every binary field is standard base64."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["RSA-OAEP-256+A256GCM"]
    # Its exact size (the modulus size) depends on the key, so it is checked in open_sealed.
    wrappedKey: Annotated[str, _check_b64(1, MAX_WRAPPED_KEY_BYTES)]
    nonce: Annotated[str, _check_b64(NONCE_BYTES, NONCE_BYTES)]
    # Always at least the GCM tag, even for an empty plaintext.
    ciphertext: Annotated[str, _check_b64(GCM_TAG_BYTES, MAX_CIPHERTEXT_BYTES + GCM_TAG_BYTES)]


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS8, unencrypted: the caller protects the file (mode 0600) instead."""
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")


def _check_size(key_size: int, what: str) -> None:
    if key_size < MIN_RSA_KEY_BITS:
        raise SealedBoxError(
            f"{what} is too small: {key_size} bits, at least {MIN_RSA_KEY_BITS} required"
        )


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise SealedBoxError("invalid public key: not a PEM SubjectPublicKeyInfo key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise SealedBoxError(f"invalid public key: expected RSA, got {type(key).__name__}")
    _check_size(key.key_size, "public key")
    return key


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # The library's message may quote parts of the input; keep it out of ours.
        raise SealedBoxError("invalid private key: not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SealedBoxError(f"invalid private key: expected RSA, got {type(key).__name__}")
    _check_size(key.key_size, "private key")
    return key


def seal(public_key: rsa.RSAPublicKey, plaintext: bytes, aad: bytes) -> SealedBox:
    """Encrypt ``plaintext`` to ``public_key``; ``aad`` must be given again to open it."""
    _check_size(public_key.key_size, "public key")
    if len(plaintext) > MAX_CIPHERTEXT_BYTES:
        raise SealedBoxError(f"payload too large: at most {MAX_CIPHERTEXT_BYTES} bytes")
    aes_key = AESGCM.generate_key(bit_length=AES_KEY_BYTES * 8)
    # A fresh key per box makes a random nonce safe; it is still never reused.
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(aes_key).encrypt(nonce, plaintext, aad)
    wrapped = public_key.encrypt(aes_key, _oaep())
    return SealedBox(
        alg=ALGORITHM,
        wrappedKey=_b64encode(wrapped),
        nonce=_b64encode(nonce),
        ciphertext=_b64encode(ciphertext),
    )


def open_sealed(private_key: rsa.RSAPrivateKey, box: SealedBox, aad: bytes) -> bytes:
    """Decrypt ``box``; any wrong key, wrong aad or tampering gives the same error."""
    # One message for every failure, so an attacker learns nothing about which part failed.
    failure = "cannot decrypt: wrong key, wrong context or tampered data"
    wrapped = _b64decode(box.wrappedKey)
    nonce = _b64decode(box.nonce)
    ciphertext = _b64decode(box.ciphertext)
    modulus_bytes = (private_key.key_size + 7) // 8
    if len(wrapped) != modulus_bytes or len(nonce) != NONCE_BYTES:
        raise SealedBoxError(failure)
    try:
        aes_key = private_key.decrypt(wrapped, _oaep())
    except ValueError:
        raise SealedBoxError(failure) from None
    if len(aes_key) != AES_KEY_BYTES:
        raise SealedBoxError(failure)
    try:
        # GCM verifies the tag before returning anything, so no partial plaintext escapes.
        return AESGCM(aes_key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise SealedBoxError(failure) from None
