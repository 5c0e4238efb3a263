"""Access tokens (EdDSA-signed JWTs, published as a JWKS) and password hashing (Argon2id).

Signing keys are PEM-encoded Ed25519 private keys from `CONGOCART_JWT_PRIVATE_KEY`
or `CONGOCART_JWT_PRIVATE_KEY_FILE`; with several PEM blocks the first signs and
all verify, which is how a key is rotated. Outside production, with nothing
configured, a key is generated once and kept at `<home>/jwt_ed25519.pem`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from uuid import UUID

import argon2
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from congocart.config import Settings
from congocart.core.errors import InvalidToken, TokenExpired

ALGORITHM = "EdDSA"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 (a claim value, not a secret)
DEV_KEY_FILENAME = "jwt_ed25519.pem"
_PEM_BLOCK = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
)
_REQUIRED_CLAIMS = ["sub", "roles", "iat", "exp", "iss", "aud", "jti", "typ", "ver"]


class KeyConfigurationError(RuntimeError):
    """The signing keys are missing or unusable; the process must not start."""


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey

    @cached_property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @cached_property
    def public_jwk(self) -> dict[str, str]:
        raw = self.public_key.public_bytes(
            encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
        )
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}

    @cached_property
    def kid(self) -> str:
        """The RFC 7638 JWK thumbprint: stable for the key, whatever process computes it."""
        canonical = json.dumps(self.public_jwk, sort_keys=True, separators=(",", ":"))
        return _b64url(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True)
class TokenKeys:
    """Everything needed to issue and verify tokens; built once per process."""

    keys: tuple[SigningKey, ...]
    issuer: str
    audience: str
    access_ttl_seconds: int
    refresh_ttl_seconds: int
    _by_kid: Mapping[str, SigningKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyConfigurationError("at least one signing key is required")
        object.__setattr__(self, "_by_kid", {key.kid: key for key in self.keys})

    @property
    def signing_key(self) -> SigningKey:
        return self.keys[0]

    def verification_key(self, kid: object) -> SigningKey | None:
        return self._by_kid.get(kid) if isinstance(kid, str) else None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys as a JSON Web Key Set, for `/.well-known/jwks.json`."""
        return {
            "keys": [
                {**key.public_jwk, "kid": key.kid, "use": "sig", "alg": ALGORITHM}
                for key in self.keys
            ]
        }


def load_token_keys(settings: Settings) -> TokenKeys:
    """The configured keys; in development and test a generated one. Raises on bad config."""
    return TokenKeys(
        keys=tuple(SigningKey(k) for k in _load_private_keys(settings)),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
    )


def _load_private_keys(settings: Settings) -> list[Ed25519PrivateKey]:
    dev_key_path = settings.home / DEV_KEY_FILENAME
    if settings.jwt_private_key:
        return parse_private_keys(settings.jwt_private_key, source="CONGOCART_JWT_PRIVATE_KEY")
    if settings.jwt_private_key_file is not None:
        path = settings.jwt_private_key_file
        if settings.env == "production" and _same_file(path, dev_key_path):
            raise KeyConfigurationError(
                f"{path} is the generated development key; production needs its own key"
            )
        try:
            text = path.read_text()
        except OSError as exc:
            raise KeyConfigurationError(
                f"cannot read CONGOCART_JWT_PRIVATE_KEY_FILE: {exc}"
            ) from exc
        return parse_private_keys(text, source=str(path))
    if settings.env == "production":
        raise KeyConfigurationError(
            "production needs a signing key: set CONGOCART_JWT_PRIVATE_KEY (PEM) or "
            "CONGOCART_JWT_PRIVATE_KEY_FILE to an Ed25519 private key"
        )
    return parse_private_keys(_development_key_pem(dev_key_path), source=str(dev_key_path))


def parse_private_keys(text: str, *, source: str) -> list[Ed25519PrivateKey]:
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        raise KeyConfigurationError(f"{source}: no PEM private key found")
    keys: list[Ed25519PrivateKey] = []
    for block in blocks:
        try:
            key = serialization.load_pem_private_key(block.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyConfigurationError(f"{source}: unreadable private key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyConfigurationError(f"{source}: the key is not an Ed25519 private key")
        keys.append(key)
    return keys


def private_key_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode()


def _development_key_pem(path: Path) -> str:
    """Read the development key, generating it first if needed (0600, race-safe)."""
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(private_key_pem(Ed25519PrivateKey.generate()))
        # link() fails if the file exists: when several processes start at once,
        # the first key written wins and everyone reads that one.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- access tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessClaims:
    subject: UUID
    roles: frozenset[str]
    auth_version: int
    session_id: UUID | None
    token_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    expires_in: int


def issue_access_token(
    keys: TokenKeys,
    *,
    subject: UUID,
    roles: Iterable[str],
    auth_version: int,
    session_id: UUID | None = None,
    now: datetime | None = None,
) -> IssuedAccessToken:
    """A signed access token. `ver` is the user's auth version at issue time."""
    issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
    payload: dict[str, Any] = {
        "sub": str(subject),
        "roles": sorted(roles),
        "ver": auth_version,
        "typ": ACCESS_TOKEN_TYPE,
        "iss": keys.issuer,
        "aud": keys.audience,
        "iat": issued_at,
        "exp": issued_at + timedelta(seconds=keys.access_ttl_seconds),
        "jti": secrets.token_urlsafe(16),
    }
    if session_id is not None:
        payload["sid"] = str(session_id)
    key = keys.signing_key
    token = jwt.encode(
        payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"}
    )
    return IssuedAccessToken(token=token, expires_in=keys.access_ttl_seconds)


def decode_access_token(token: str, *, keys: TokenKeys) -> AccessClaims:
    """Verify algorithm, key, signature, expiry, issuer, audience and token type.

    Raises `TokenExpired` for a genuine token past its expiry and `InvalidToken`
    for anything else; the signature is checked before the expiry, so a forged
    token never reads as merely expired.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidToken() from exc
    # Only EdDSA is ever accepted: no `none`, no HMAC keyed with the public key.
    if header.get("alg") != ALGORITHM:
        raise InvalidToken()
    key = keys.verification_key(header.get("kid"))
    if key is None:
        raise InvalidToken()
    try:
        claims = jwt.decode(
            token,
            key.public_key,
            algorithms=[ALGORITHM],
            audience=keys.audience,
            issuer=keys.issuer,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken() from exc
    return _access_claims(claims)


def _access_claims(claims: Mapping[str, Any]) -> AccessClaims:
    if claims.get("typ") != ACCESS_TOKEN_TYPE:
        raise InvalidToken()
    roles, version, sid = claims["roles"], claims["ver"], claims.get("sid")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidToken()
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidToken()
    try:
        subject = UUID(str(claims["sub"]))
        session_id = UUID(str(sid)) if sid is not None else None
    except ValueError as exc:
        raise InvalidToken() from exc
    return AccessClaims(
        subject=subject,
        roles=frozenset(roles),
        auth_version=version,
        session_id=session_id,
        token_id=str(claims["jti"]),
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


# --- opaque refresh tokens --------------------------------------------------------------------


def new_refresh_token() -> str:
    """An opaque, unguessable refresh token (256 bits); only its hash is stored."""
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# --- passwords --------------------------------------------------------------------------------


class Passwords:
    """Argon2id hashing. The work runs in a thread so the event loop keeps serving."""

    def __init__(self, *, memory_kib: int, time_cost: int) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=argon2.Type.ID
        )
        # Verified against when the account does not exist, so a login for an
        # unknown email costs the same as one for a known email.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        return cls(
            memory_kib=settings.password_hash_memory_kib,
            time_cost=settings.password_hash_time_cost,
        )

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches; with no hash, verify a dummy and answer False."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            ok = self._hasher.verify(password_hash or self._dummy_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
        return ok and password_hash is not None
