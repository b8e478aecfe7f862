"""Random secrets and their stored forms; the plain values exist only in responses to owners."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

# Mosquitto's own password format (``$7$`` = PBKDF2-SHA512), so the next step (broker users)
# can hand the stored hash to the broker without knowing the password.
MQTT_HASH_ITERATIONS: Final = 1000
MQTT_SALT_BYTES: Final = 12


PROVISIONING_KEY_PREFIX: Final = "ipk_"
DEVICE_API_KEY_PREFIX: Final = "idk_"
ADMIN_TOKEN_PREFIX: Final = "iat_"


def new_token(prefix: str = "") -> str:
    """256 random bits, URL-safe, after a prefix that says what the secret is: people and
    secret scanners recognise it, and a key never starts with '-' (which a command line
    would take for an option)."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 hex. Unsalted on purpose: the tokens are 256-bit random values, and a
    deterministic hash lets the database find a key with one indexed lookup."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so the time taken says nothing about the expected value."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def mqtt_password_hash(password: str, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(MQTT_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, MQTT_HASH_ITERATIONS)
    encoded_salt = base64.b64encode(salt).decode("ascii")
    encoded_digest = base64.b64encode(digest).decode("ascii")
    return f"$7${MQTT_HASH_ITERATIONS}${encoded_salt}${encoded_digest}"


def mqtt_password_matches(password: str, stored: str) -> bool:
    try:
        _, kind, iterations, salt, digest = stored.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac(
            "sha512", password.encode("utf-8"), base64.b64decode(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
