"""Tokens and password hashing (core/security.py): no database."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from congocart.config import Settings
from congocart.core.errors import InvalidToken, TokenExpired
from congocart.core.security import (
    KeyConfigurationError,
    Passwords,
    TokenKeys,
    decode_access_token,
    issue_access_token,
    load_token_keys,
    private_key_pem,
)


def _keys(**overrides: object) -> TokenKeys:
    settings = Settings(env="test", jwt_private_key=private_key_pem(Ed25519PrivateKey.generate()))
    keys = load_token_keys(settings)
    if not overrides:
        return keys
    fields = {
        "keys": keys.keys,
        "issuer": keys.issuer,
        "audience": keys.audience,
        "access_ttl_seconds": keys.access_ttl_seconds,
        "refresh_ttl_seconds": keys.refresh_ttl_seconds,
    }
    fields.update(overrides)
    return TokenKeys(**fields)  # type: ignore[arg-type]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(token: str) -> tuple[dict[str, object], dict[str, object], str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def _token(keys: TokenKeys, **kwargs: object) -> str:
    return issue_access_token(
        keys,
        subject=kwargs.pop("subject", uuid.uuid4()),  # type: ignore[arg-type]
        roles=kwargs.pop("roles", ["customer"]),  # type: ignore[arg-type]
        auth_version=1,
        **kwargs,  # type: ignore[arg-type]
    ).token


def test_an_issued_token_decodes_to_its_claims() -> None:
    keys = _keys()
    subject, session = uuid.uuid4(), uuid.uuid4()
    token = issue_access_token(
        keys, subject=subject, roles={"staff", "customer"}, auth_version=7, session_id=session
    )
    claims = decode_access_token(token.token, keys=keys)
    assert claims.subject == subject
    assert claims.roles == {"staff", "customer"}
    assert claims.auth_version == 7
    assert claims.session_id == session
    assert token.expires_in == keys.access_ttl_seconds
    header, payload, _ = _segments(token.token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == keys.signing_key.kid
    assert {"sub", "roles", "iat", "exp", "iss", "aud", "jti"} <= payload.keys()


def test_alg_none_is_rejected() -> None:
    keys = _keys()
    header, payload, _ = _segments(_token(keys))
    forged = ".".join(
        [
            _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": header["kid"]}).encode()),
            _b64(json.dumps({**payload, "roles": ["admin"]}).encode()),
            "",
        ]
    )
    with pytest.raises(InvalidToken):
        decode_access_token(forged, keys=keys)


def test_hs256_signed_with_the_public_key_is_rejected() -> None:
    keys = _keys()
    _, payload, _ = _segments(_token(keys))
    public_pem = keys.signing_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = keys.signing_key.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    for secret in (public_pem, raw):
        forged = _hs256(payload, secret, kid=keys.signing_key.kid)
        with pytest.raises(InvalidToken):
            decode_access_token(forged, keys=keys)


def _hs256(payload: dict[str, object], secret: bytes, *, kid: str) -> str:
    import hashlib
    import hmac

    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(payload).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def test_a_tampered_payload_is_rejected() -> None:
    keys = _keys()
    header, payload, signature = _segments(_token(keys))
    tampered = ".".join(
        [
            _b64(json.dumps(header).encode()),
            _b64(json.dumps({**payload, "roles": ["admin"]}).encode()),
            signature,
        ]
    )
    with pytest.raises(InvalidToken):
        decode_access_token(tampered, keys=keys)


def test_a_token_signed_by_another_key_is_rejected() -> None:
    ours, theirs = _keys(), _keys()
    with pytest.raises(InvalidToken):
        decode_access_token(_token(theirs), keys=ours)


def test_an_expired_token_is_token_expired() -> None:
    keys = _keys()
    token = _token(keys, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(TokenExpired):
        decode_access_token(token, keys=keys)


def test_a_forged_expired_token_is_invalid_not_expired() -> None:
    keys = _keys()
    other = _keys()
    token = _token(other, now=datetime.now(UTC) - timedelta(hours=1))
    header, _, signature = _segments(token)
    relabelled = ".".join(
        [
            _b64(json.dumps({**header, "kid": keys.signing_key.kid}).encode()),
            token.split(".")[1],
            signature,
        ]
    )
    with pytest.raises(InvalidToken):
        decode_access_token(relabelled, keys=keys)


def test_wrong_audience_is_rejected() -> None:
    keys = _keys()
    token = _token(_keys(keys=keys.keys, audience="another-api"))
    with pytest.raises(InvalidToken):
        decode_access_token(token, keys=keys)


def test_wrong_issuer_is_rejected() -> None:
    keys = _keys()
    token = _token(_keys(keys=keys.keys, issuer="someone-else"))
    with pytest.raises(InvalidToken):
        decode_access_token(token, keys=keys)


def test_a_token_of_another_type_is_rejected() -> None:
    keys = _keys()
    _, payload, _ = _segments(_token(keys))
    key = keys.signing_key
    other_type = jwt.encode(
        {**payload, "typ": "refresh"}, key.private_key, algorithm="EdDSA", headers={"kid": key.kid}
    )
    with pytest.raises(InvalidToken):
        decode_access_token(other_type, keys=keys)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "eyJhbGciOiJFZERTQSJ9..", "..."])
def test_garbage_is_invalid(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        decode_access_token(garbage, keys=_keys())


def test_any_configured_key_verifies_and_the_first_signs() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    rotated = load_token_keys(
        Settings(env="test", jwt_private_key=private_key_pem(new) + private_key_pem(old))
    )
    before = load_token_keys(Settings(env="test", jwt_private_key=private_key_pem(old)))
    assert decode_access_token(_token(before), keys=rotated).roles == {"customer"}
    assert _segments(_token(rotated))[0]["kid"] == rotated.keys[0].kid
    assert [k["kid"] for k in rotated.jwks()["keys"]] == [k.kid for k in rotated.keys]


def test_development_key_is_generated_once_with_owner_only_permissions(tmp_path: Path) -> None:
    settings = Settings(env="development", home=tmp_path)
    first = load_token_keys(settings)
    path = tmp_path / "jwt_ed25519.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_token_keys(settings).signing_key.kid == first.signing_key.kid


def test_production_refuses_to_start_without_a_configured_key(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigurationError):
        load_token_keys(Settings(env="production", home=tmp_path))
    assert not (tmp_path / "jwt_ed25519.pem").exists()


def test_production_refuses_the_generated_development_key(tmp_path: Path) -> None:
    load_token_keys(Settings(env="development", home=tmp_path))
    with pytest.raises(KeyConfigurationError):
        load_token_keys(
            Settings(
                env="production", home=tmp_path, jwt_private_key_file=tmp_path / "jwt_ed25519.pem"
            )
        )


def test_production_accepts_a_key_file(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    path.write_text(private_key_pem(Ed25519PrivateKey.generate()))
    keys = load_token_keys(Settings(env="production", jwt_private_key_file=path))
    assert len(keys.keys) == 1


@pytest.mark.parametrize(
    "pem",
    [
        "not a key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    ],
)
def test_an_unusable_key_is_a_configuration_error(pem: str) -> None:
    with pytest.raises(KeyConfigurationError):
        load_token_keys(Settings(env="test", jwt_private_key=pem))


def test_a_non_ed25519_key_is_a_configuration_error() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(KeyConfigurationError):
        load_token_keys(Settings(env="test", jwt_private_key=pem))


async def test_passwords_are_argon2id_and_verify_only_the_right_password() -> None:
    passwords = Passwords(memory_kib=8, time_cost=1)
    hashed = await passwords.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert await passwords.verify(hashed, "correct horse battery staple")
    assert not await passwords.verify(hashed, "wrong password")
    assert not await passwords.verify("not-a-hash", "correct horse battery staple")
    assert not await passwords.verify(None, "correct horse battery staple")


async def test_a_hash_made_with_other_costs_needs_rehash() -> None:
    cheap, dear = Passwords(memory_kib=8, time_cost=1), Passwords(memory_kib=16, time_cost=2)
    hashed = await cheap.hash("correct horse battery staple")
    assert not cheap.needs_rehash(hashed)
    assert dear.needs_rehash(hashed)
    assert await dear.verify(hashed, "correct horse battery staple")


def test_the_app_refuses_to_start_in_production_without_keys(tmp_path: Path) -> None:
    from congocart.main import create_app

    with pytest.raises(KeyConfigurationError):
        create_app(Settings(env="production", home=tmp_path, database_url="postgresql://unused"))
