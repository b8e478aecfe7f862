"""Hybrid RSA-OAEP + AES-GCM boxes of iotistic_contracts.sealed."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from iotistic_contracts.sealed import (
    SealedBox,
    SealedBoxError,
    generate_private_key,
    load_private_key,
    load_public_key,
    open_sealed,
    private_key_pem,
    public_key_pem,
    seal,
)
from pydantic import ValidationError

AAD = b"iotistic-register:3f1c2b6e-0000-4000-8000-000000000001:k1"
SECRET = b"top-secret-device-api-key-0123456789"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def box(key: rsa.RSAPrivateKey) -> SealedBox:
    return seal(key.public_key(), SECRET, AAD)


def _flip_bit(value: str, index: int) -> str:
    data = bytearray(base64.b64decode(value))
    data[index] ^= 0x01
    return base64.b64encode(bytes(data)).decode()


def test_generated_key_is_rsa_2048_e65537(key: rsa.RSAPrivateKey) -> None:
    assert key.key_size == 2048
    assert key.public_key().public_numbers().e == 65537


def test_round_trip(key: rsa.RSAPrivateKey, box: SealedBox) -> None:
    assert box.alg == "RSA-OAEP-256+A256GCM"
    assert len(base64.b64decode(box.nonce)) == 12
    assert len(base64.b64decode(box.wrappedKey)) == 256
    assert open_sealed(key, box, AAD) == SECRET


def test_empty_and_64_kib_payloads(key: rsa.RSAPrivateKey) -> None:
    big = bytes(range(256)) * 256
    assert len(big) == 64 * 1024
    assert open_sealed(key, seal(key.public_key(), big, AAD), AAD) == big
    assert open_sealed(key, seal(key.public_key(), b"", b""), b"") == b""


def test_each_seal_uses_a_fresh_key_and_nonce(key: rsa.RSAPrivateKey) -> None:
    first = seal(key.public_key(), SECRET, AAD)
    second = seal(key.public_key(), SECRET, AAD)
    assert first.nonce != second.nonce
    assert first.wrappedKey != second.wrappedKey
    assert first.ciphertext != second.ciphertext


def test_wire_round_trip(key: rsa.RSAPrivateKey, box: SealedBox) -> None:
    again = SealedBox.model_validate_json(box.model_dump_json())
    assert again == box
    assert open_sealed(key, again, AAD) == SECRET


@pytest.mark.parametrize("field", ["wrappedKey", "nonce", "ciphertext"])
@pytest.mark.parametrize("where", [0, -1])
def test_tampering_any_field_fails(
    key: rsa.RSAPrivateKey, box: SealedBox, field: str, where: int
) -> None:
    tampered = box.model_copy(update={field: _flip_bit(getattr(box, field), where)})
    with pytest.raises(SealedBoxError, match=r"^cannot decrypt: ") as info:
        open_sealed(key, tampered, AAD)
    assert SECRET.decode() not in str(info.value)


def test_wrong_private_key_fails(other_key: rsa.RSAPrivateKey, box: SealedBox) -> None:
    with pytest.raises(SealedBoxError, match=r"^cannot decrypt: "):
        open_sealed(other_key, box, AAD)


def test_wrong_aad_fails(key: rsa.RSAPrivateKey, box: SealedBox) -> None:
    with pytest.raises(SealedBoxError, match=r"^cannot decrypt: "):
        open_sealed(key, box, AAD + b"x")
    with pytest.raises(SealedBoxError, match=r"^cannot decrypt: "):
        open_sealed(key, box, b"")


def test_truncated_wrapped_key_fails_the_same_way(key: rsa.RSAPrivateKey, box: SealedBox) -> None:
    short = base64.b64encode(base64.b64decode(box.wrappedKey)[:-1]).decode()
    with pytest.raises(SealedBoxError, match=r"^cannot decrypt: "):
        open_sealed(key, box.model_copy(update={"wrappedKey": short}), AAD)


def test_pem_round_trip(key: rsa.RSAPrivateKey) -> None:
    pem = private_key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(pem)
    assert loaded.private_numbers() == key.private_numbers()
    public = public_key_pem(key)
    assert public.startswith("-----BEGIN PUBLIC KEY-----")
    assert load_public_key(public).public_numbers() == key.public_key().public_numbers()
    assert public_key_pem(key.public_key()) == public


@pytest.mark.parametrize("pem", ["", "garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n", "é"])
def test_garbage_public_key_is_refused(pem: str) -> None:
    with pytest.raises(SealedBoxError, match=r"^invalid public key"):
        load_public_key(pem)


@pytest.mark.parametrize("pem", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_garbage_private_key_is_refused(pem: bytes) -> None:
    with pytest.raises(SealedBoxError, match=r"^invalid private key"):
        load_private_key(pem)


def test_public_pem_given_as_private_key_is_refused(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(SealedBoxError, match=r"^invalid private key"):
        load_private_key(public_key_pem(key).encode())


def test_non_rsa_keys_are_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    public = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SealedBoxError, match="expected RSA"):
        load_public_key(public.decode())
    with pytest.raises(SealedBoxError, match="expected RSA"):
        load_private_key(private)


def test_1024_bit_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(SealedBoxError, match="too small: 1024 bits"):
        load_public_key(public_key_pem(small))
    with pytest.raises(SealedBoxError, match="too small: 1024 bits"):
        load_private_key(private_key_pem(small))
    with pytest.raises(SealedBoxError, match="too small"):
        seal(small.public_key(), b"x", b"")


def test_encrypted_private_key_is_refused(key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(SealedBoxError, match=r"^invalid private key"):
        load_private_key(pem)


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"alg": "RSA1_5"}, "alg"),
        ({"nonce": "not base64!"}, "nonce"),
        ({"nonce": base64.b64encode(b"x" * 11).decode()}, "nonce"),
        ({"ciphertext": base64.b64encode(b"x" * 15).decode()}, "ciphertext"),
        ({"wrappedKey": ""}, "wrappedKey"),
        ({"extra": "x"}, "extra"),
    ],
)
def test_box_validation(box: SealedBox, update: dict[str, str], field: str) -> None:
    data = box.model_dump() | update
    with pytest.raises(ValidationError) as info:
        SealedBox.model_validate(data)
    assert [error["loc"] for error in info.value.errors()] == [(field,)]


def test_box_is_frozen(box: SealedBox) -> None:
    with pytest.raises(ValidationError):
        box.nonce = "AAAA"  # type: ignore[misc]
