"""Identity over HTTP: accounts, sessions, roles; on the test's rolled-back connection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import argon2
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI

from congocart.core.db import Connection
from congocart.core.security import TokenKeys, issue_access_token
from tests.conftest import MakeUser
from tests.identity.conftest import (
    PASSWORD,
    assert_problem,
    bearer,
    login,
    register,
    unverified_claims,
)

# --- register ---------------------------------------------------------------------------------


async def test_register_creates_a_customer_and_answers_201_with_the_user(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "ann@example.com", "password": PASSWORD, "full_name": "Ann Smith"},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= {"id", "email", "full_name", "roles"}
    assert uuid.UUID(body["id"])
    assert body["email"] == "ann@example.com"
    assert body["full_name"] == "Ann Smith"
    assert body["roles"] == ["customer"]
    assert "password" not in response.text
    assert "argon2" not in response.text


async def test_register_normalises_the_email(client: httpx.AsyncClient) -> None:
    body = await register(client, "  Ann.Smith@EXAMPLE.com ")
    assert body["email"] == "ann.smith@example.com"
    assert body["full_name"] is None


async def test_register_with_a_taken_email_in_any_case_is_409_email_taken(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "bob@example.com")
    response = await client.post(
        "/api/v1/auth/register", json={"email": "BOB@Example.com", "password": PASSWORD}
    )
    assert_problem(response, 409, "email_taken")


@pytest.mark.parametrize(
    "extra",
    [
        {"role": "admin"},
        {"roles": ["admin"]},
        {"roles": ["customer"]},
        {"is_admin": True},
        {"id": str(uuid.uuid4())},
        {"auth_version": 0},
    ],
)
async def test_register_rejects_server_owned_fields_with_422(
    client: httpx.AsyncClient, extra: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "mallory@example.com", "password": PASSWORD, **extra},
    )
    body = assert_problem(response, 422, "validation_failed")
    assert {e["field"] for e in body["errors"]} == set(extra)
    # Nothing was created: the same email registers cleanly afterwards.
    await register(client, "mallory@example.com")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": "x" * 129}, "password"),
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@", "password": PASSWORD}, "email"),
        ({"password": PASSWORD}, "email"),
        ({"email": "a@example.com"}, "password"),
    ],
)
async def test_register_validates_email_and_password_policy(
    client: httpx.AsyncClient, payload: dict[str, str], field: str
) -> None:
    response = await client.post("/api/v1/auth/register", json=payload)
    body = assert_problem(response, 422, "validation_failed")
    assert field in {e["field"] for e in body["errors"]}


async def test_passwords_are_used_exactly_as_typed(client: httpx.AsyncClient) -> None:
    await register(client, "spaces@example.com", password="  padded password  ")
    await login(client, "spaces@example.com", "  padded password  ")
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": "spaces@example.com", "password": "padded password"},
    )
    assert_problem(response, 401, "invalid_credentials")


# --- login ------------------------------------------------------------------------------------


async def test_login_returns_a_bearer_pair_that_authenticates(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register(client, "carol@example.com")
    response = await client.post(
        "/api/v1/auth/login", json={"email": "Carol@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == app.state.settings.access_token_ttl_seconds
    assert body["refresh_token"]
    assert body["refresh_token"] != body["access_token"]
    claims = unverified_claims(body["access_token"])
    assert claims["sub"] == user["id"]
    assert claims["roles"] == ["customer"]
    assert {"iat", "exp", "iss", "aud", "jti"} <= claims.keys()
    me = await client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == user


async def test_login_with_a_wrong_password_is_401_invalid_credentials(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "dave@example.com")
    response = await client.post(
        "/api/v1/auth/login", json={"email": "dave@example.com", "password": "wrong password"}
    )
    assert_problem(response, 401, "invalid_credentials")


async def test_login_answers_an_unknown_email_exactly_like_a_wrong_password(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "erin@example.com")
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": "erin@example.com", "password": "wrong password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong password"}
    )
    strip = lambda r: {k: v for k, v in r.json().items() if k != "request_id"}  # noqa: E731
    assert_problem(unknown, 401, "invalid_credentials")
    assert strip(unknown) == strip(wrong)


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Argon2 verification the app makes, by the hash verified against."""
    calls: list[str] = []
    lock = threading.Lock()
    real_verify = argon2.PasswordHasher.verify

    def counting(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        with lock:
            calls.append(hash if isinstance(hash, str) else hash.decode())
        return real_verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting)
    return calls


@pytest.mark.parametrize("email", ["nobody@example.com", "not even an email"])
async def test_login_with_an_unknown_email_still_runs_a_full_hash_verification(
    client: httpx.AsyncClient, verify_calls: list[str], email: str
) -> None:
    await register(client, "frank@example.com")
    await client.post(
        "/api/v1/auth/login", json={"email": "frank@example.com", "password": "wrong password"}
    )
    assert len(verify_calls) == 1
    known_hash = verify_calls[0]
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert_problem(response, 401, "invalid_credentials")
    assert len(verify_calls) == 2
    dummy_hash = verify_calls[1]
    # A real Argon2id hash with the same cost parameters as a stored one.
    assert dummy_hash.startswith("$argon2id$")
    assert dummy_hash.split("$")[3] == known_hash.split("$")[3]


async def test_oauth2_token_form_logs_in_like_login(client: httpx.AsyncClient) -> None:
    await register(client, "gina@example.com")
    response = await client.post(
        "/api/v1/auth/token", data={"username": "gina@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    me = await client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.json()["email"] == "gina@example.com"
    wrong = await client.post(
        "/api/v1/auth/token", data={"username": "gina@example.com", "password": "nope nope"}
    )
    assert_problem(wrong, 401, "invalid_credentials")


async def test_the_docs_authorize_through_the_oauth2_token_route(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert any(s.get("flows", {}).get("password", {}).get("tokenUrl") for s in schemes.values())
    assert "/api/v1/auth/token" in schema["paths"]


# --- refresh ----------------------------------------------------------------------------------


async def test_refresh_rotates_the_pair_and_spends_the_old_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "hank@example.com")
    first = await login(client, "hank@example.com")
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["token_type"] == "bearer"
    me = await client.get("/api/v1/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200
    third = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert third.status_code == 200


async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ivy@example.com")
    first = await login(client, "ivy@example.com")
    other_session = await login(client, "ivy@example.com")
    rotated = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    newest = rotated.json()["refresh_token"]

    reused = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert_problem(reused, 401, "refresh_token_reused")

    # The newest token of that family is dead too (the revocation was committed
    # although the reuse request failed) ...
    newest_response = await client.post("/api/v1/auth/refresh", json={"refresh_token": newest})
    assert_problem(newest_response, 401, "invalid_token")
    # ... while another login's session is untouched.
    other = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other_session["refresh_token"]}
    )
    assert other.status_code == 200


@pytest.mark.parametrize("token", ["", "x" * 3000, "made-up-token"])
async def test_refresh_with_an_unknown_or_malformed_token_is_rejected(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    if token == "made-up-token":
        assert_problem(response, 401, "invalid_token")
    else:
        assert_problem(response, 422, "validation_failed")


async def test_an_expired_refresh_token_is_invalid(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    await register(client, "jack@example.com")
    pair = await login(client, "jack@example.com")
    await conn.execute("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert_problem(response, 401, "invalid_token")


async def test_refresh_tokens_are_stored_only_as_sha256_hashes(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    await register(client, "kate@example.com")
    pair = await login(client, "kate@example.com")
    stored = await conn.fetchval("SELECT token_hash FROM refresh_tokens")
    assert stored == hashlib.sha256(pair["refresh_token"].encode()).digest()
    as_text = await conn.fetchval(
        "SELECT count(*) FROM refresh_tokens WHERE token_hash = $1", pair["refresh_token"].encode()
    )
    assert as_text == 0


# --- logout -----------------------------------------------------------------------------------


async def test_logout_ends_the_session_and_the_users_access_tokens(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "liam@example.com")
    session = await login(client, "liam@example.com")
    other = await login(client, "liam@example.com")
    response = await client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": session["refresh_token"]},
        headers=bearer(session["access_token"]),
    )
    assert response.status_code == 204
    assert response.content == b""

    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert_problem(refreshed, 401, "invalid_token")
    for access in (session["access_token"], other["access_token"]):
        me = await client.get("/api/v1/me", headers=bearer(access))
        assert_problem(me, 401, "invalid_token")
    # The other session may still refresh, and its new access token works.
    renewed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert renewed.status_code == 200
    me = await client.get("/api/v1/me", headers=bearer(renewed.json()["access_token"]))
    assert me.status_code == 200


async def test_logout_cannot_end_another_users_session(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await register(client, "mia@example.com")
    victim = await login(client, "mia@example.com")
    attacker = await make_user()
    response = await client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": victim["refresh_token"]},
        headers=attacker.headers,
    )
    assert response.status_code == 204
    still = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": victim["refresh_token"]}
    )
    assert still.status_code == 200


async def test_logout_needs_an_access_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/logout", json={"refresh_token": "whatever"})
    body = assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["title"]


# --- me and the bearer check ------------------------------------------------------------------


async def test_me_returns_the_callers_account(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user(roles=("customer", "staff"))
    response = await client.get("/api/v1/me", headers=user.headers)
    assert response.status_code == 200
    assert response.json() == {
        "id": str(user.id),
        "email": user.email,
        "full_name": None,
        "roles": ["customer", "staff"],
    }


async def test_me_without_a_token_is_401_not_authenticated(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert_problem(response, 401, "not_authenticated")


@pytest.mark.parametrize(
    "authorization", ["Bearer", "Bearer ", "Bearer not.a.jwt", "Basic YTpi", "Token abc", "abc"]
)
async def test_me_with_a_malformed_authorization_header_is_invalid_token(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get("/api/v1/me", headers={"Authorization": authorization})
    assert_problem(response, 401, "invalid_token")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _split(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return decode(header), decode(payload), signature


def _alg_none(keys: TokenKeys, token: str) -> str:
    header, payload, _ = _split(token)
    return ".".join(
        [
            _b64(json.dumps({**header, "alg": "none"}).encode()),
            _b64(json.dumps({**payload, "roles": ["admin"]}).encode()),
            "",
        ]
    )


def _hs256_with_public_key(keys: TokenKeys, token: str) -> str:
    header, payload, _ = _split(token)
    secret = keys.signing_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = _b64(json.dumps({**header, "alg": "HS256"}).encode())
    body = _b64(json.dumps({**payload, "roles": ["admin"]}).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _tampered(keys: TokenKeys, token: str) -> str:
    _header, payload, signature = _split(token)
    body = _b64(json.dumps({**payload, "roles": ["customer", "admin"]}).encode())
    return f"{token.split('.')[0]}.{body}.{signature}"


def _resigned(keys: TokenKeys, token: str, **changes: Any) -> str:
    header, payload, _ = _split(token)
    return jwt.encode(
        {**payload, **changes},
        keys.signing_key.private_key,
        algorithm="EdDSA",
        headers={"kid": header["kid"]},
    )


HOSTILE: dict[str, Callable[[TokenKeys, str], str]] = {
    "alg none": _alg_none,
    "HS256 signed with the public key": _hs256_with_public_key,
    "tampered payload": _tampered,
    "wrong audience": lambda k, t: _resigned(k, t, aud="another-api"),
    "wrong issuer": lambda k, t: _resigned(k, t, iss="someone-else"),
    "not an access token": lambda k, t: _resigned(k, t, typ="refresh"),
    "auth version forged ahead": lambda k, t: _resigned(k, t, ver=2),
    "unknown subject": lambda k, t: _resigned(k, t, sub=str(uuid.uuid4())),
    "unknown key id": lambda k, t: jwt.encode(
        _split(t)[1], k.signing_key.private_key, algorithm="EdDSA", headers={"kid": "other"}
    ),
}


@pytest.mark.parametrize("forge", HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_access_tokens_are_401_invalid_token(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_user: MakeUser,
    forge: Callable[[TokenKeys, str], str],
) -> None:
    user = await make_user()
    token = user.headers["Authorization"].removeprefix("Bearer ")
    assert (await client.get("/api/v1/me", headers=user.headers)).status_code == 200
    forged = forge(app.state.token_keys, token)
    response = await client.get("/api/v1/me", headers=bearer(forged))
    assert_problem(response, 401, "invalid_token")


async def test_an_expired_access_token_is_401_token_expired(
    client: httpx.AsyncClient, app: FastAPI, make_user: MakeUser
) -> None:
    user = await make_user()
    expired = issue_access_token(
        app.state.token_keys,
        subject=user.id,
        roles=["customer"],
        auth_version=1,
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    response = await client.get("/api/v1/me", headers=bearer(expired.token))
    assert_problem(response, 401, "token_expired")


async def test_a_refresh_token_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    await register(client, "nina@example.com")
    pair = await login(client, "nina@example.com")
    response = await client.get("/api/v1/me", headers=bearer(pair["refresh_token"]))
    assert_problem(response, 401, "invalid_token")


async def test_an_access_token_is_not_a_refresh_token(client: httpx.AsyncClient) -> None:
    await register(client, "otto@example.com")
    pair = await login(client, "otto@example.com")
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["access_token"]}
    )
    assert_problem(response, 401, "invalid_token")


async def test_a_deleted_users_token_stops_working(
    client: httpx.AsyncClient, conn: Connection, make_user: MakeUser
) -> None:
    user = await make_user()
    await conn.execute("DELETE FROM users WHERE id = $1", user.id)
    response = await client.get("/api/v1/me", headers=user.headers)
    assert_problem(response, 401, "invalid_token")


# --- password change --------------------------------------------------------------------------


async def test_changing_the_password_ends_access_tokens_and_other_sessions(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "pia@example.com")
    mine = await login(client, "pia@example.com")
    other = await login(client, "pia@example.com")
    response = await client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=bearer(mine["access_token"]),
    )
    assert response.status_code == 204

    for access in (mine["access_token"], other["access_token"]):
        assert_problem(await client.get("/api/v1/me", headers=bearer(access)), 401, "invalid_token")
    stale = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert_problem(stale, 401, "invalid_token")
    # The caller's own session carries on.
    renewed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": mine["refresh_token"]}
    )
    assert renewed.status_code == 200
    assert (
        await client.get("/api/v1/me", headers=bearer(renewed.json()["access_token"]))
    ).status_code == 200
    old = await client.post(
        "/api/v1/auth/login", json={"email": "pia@example.com", "password": PASSWORD}
    )
    assert_problem(old, 401, "invalid_credentials")
    await login(client, "pia@example.com", "a brand new passphrase")


async def test_changing_the_password_needs_the_current_one(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    response = await client.post(
        "/api/v1/me/password",
        json={"current_password": "not my password", "new_password": "a brand new passphrase"},
        headers=user.headers,
    )
    assert_problem(response, 401, "invalid_credentials")
    assert (await client.get("/api/v1/me", headers=user.headers)).status_code == 200
    await login(client, user.email, user.password)


async def test_a_new_password_must_meet_the_policy(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    response = await client.post(
        "/api/v1/me/password",
        json={"current_password": user.password, "new_password": "short"},
        headers=user.headers,
    )
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["field"] == "new_password"


async def test_changing_the_password_needs_an_access_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert_problem(response, 401, "not_authenticated")


# --- roles ------------------------------------------------------------------------------------


async def test_admin_changes_roles_and_the_users_access_tokens_die_at_once(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(roles=("admin",))
    await register(client, "quinn@example.com")
    session = await login(client, "quinn@example.com")
    user_id = unverified_claims(session["access_token"])["sub"]

    response = await client.put(
        f"/api/v1/admin/users/{user_id}/roles",
        json={"roles": ["customer", "staff"]},
        headers=admin.headers,
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": user_id,
        "email": "quinn@example.com",
        "full_name": None,
        "roles": ["customer", "staff"],
    }

    old = await client.get("/api/v1/me", headers=bearer(session["access_token"]))
    assert_problem(old, 401, "invalid_token")
    renewed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert renewed.status_code == 200
    access = renewed.json()["access_token"]
    assert unverified_claims(access)["roles"] == ["customer", "staff"]
    me = await client.get("/api/v1/me", headers=bearer(access))
    assert me.json()["roles"] == ["customer", "staff"]


@pytest.mark.parametrize("roles", [("customer",), ("staff",), ("customer", "staff")])
async def test_non_admins_get_403_on_every_admin_route(
    client: httpx.AsyncClient, make_user: MakeUser, roles: tuple[str, ...]
) -> None:
    caller = await make_user(roles=roles)
    target = await make_user()
    response = await client.put(
        f"/api/v1/admin/users/{target.id}/roles", json={"roles": ["admin"]}, headers=caller.headers
    )
    assert_problem(response, 403, "forbidden")
    me = await client.get("/api/v1/me", headers=target.headers)
    assert me.json()["roles"] == ["customer"]


async def test_role_change_without_a_token_is_401(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    target = await make_user()
    response = await client.put(f"/api/v1/admin/users/{target.id}/roles", json={"roles": ["admin"]})
    assert_problem(response, 401, "not_authenticated")


async def test_role_change_for_an_unknown_user_is_404(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(roles=("admin",))
    response = await client.put(
        f"/api/v1/admin/users/{uuid.uuid4()}/roles",
        json={"roles": ["staff"]},
        headers=admin.headers,
    )
    assert_problem(response, 404, "user_not_found")


@pytest.mark.parametrize("roles", [[], ["superuser"], "admin", None])
async def test_role_change_validates_the_roles(
    client: httpx.AsyncClient, make_user: MakeUser, roles: Any
) -> None:
    admin = await make_user(roles=("admin",))
    target = await make_user()
    response = await client.put(
        f"/api/v1/admin/users/{target.id}/roles", json={"roles": roles}, headers=admin.headers
    )
    assert_problem(response, 422, "validation_failed")


async def test_an_admin_cannot_remove_their_own_admin_role(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(roles=("admin",))
    response = await client.put(
        f"/api/v1/admin/users/{admin.id}/roles", json={"roles": ["customer"]}, headers=admin.headers
    )
    assert_problem(response, 409, "own_admin_role_required")
    assert (await client.get("/api/v1/me", headers=admin.headers)).json()["roles"] == ["admin"]


# --- JWKS -------------------------------------------------------------------------------------


async def test_jwks_publishes_the_key_that_verifies_access_tokens(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await register(client, "rita@example.com")
    access = (await login(client, "rita@example.com"))["access_token"]
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    jwks = response.json()
    assert all("d" not in key for key in jwks["keys"])  # never the private part
    kid = jwt.get_unverified_header(access)["kid"]
    [jwk] = [key for key in jwks["keys"] if key["kid"] == kid]
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    claims = jwt.decode(
        access,
        jwt.PyJWK(jwk).key,
        algorithms=["EdDSA"],
        audience=app.state.settings.jwt_audience,
        issuer=app.state.settings.jwt_issuer,
    )
    assert claims["roles"] == ["customer"]
    assert (await client.get("/api/v1/.well-known/jwks.json")).status_code == 404


# --- hostile input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"email": "nul\u0000@example.com", "password": PASSWORD},
        {"email": "ok@exa\u0000mple.com", "password": PASSWORD},
        {"email": "named@example.com", "password": PASSWORD, "full_name": "A\u0000B"},
        {"email": "named@example.com", "password": PASSWORD, "full_name": "line\nbreak"},
        {"email": "named@example.com", "password": "\u0000" * 10},
        {"email": "İSTANBUL@example.com", "password": PASSWORD},
        {"email": "ΣΑΣ@example.com", "password": PASSWORD},
        {"email": "x" * 300 + "@example.com", "password": PASSWORD},
        {"email": "a@" + "b" * 300 + ".com", "password": PASSWORD},
        {"email": 42, "password": PASSWORD},
        {"email": ["a@example.com"], "password": PASSWORD},
        {"email": "a@example.com", "password": None},
        {"email": "a@example.com", "password": "p" * 5000},
    ],
)
async def test_hostile_identity_input_never_causes_a_server_error(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    registered = await client.post("/api/v1/auth/register", json=body)
    assert registered.status_code in (201, 422), registered.text
    login_body = {"email": body["email"], "password": body["password"]}
    logged_in = await client.post("/api/v1/auth/login", json=login_body)
    assert logged_in.status_code in (200, 401, 422), logged_in.text
    if registered.status_code == 201:
        assert logged_in.status_code == 200
    form = {"username": str(body["email"]), "password": str(body["password"])}
    by_form = await client.post("/api/v1/auth/token", data=form)
    assert by_form.status_code in (200, 401, 422), by_form.text


async def test_login_upgrades_a_hash_made_with_older_cost_settings(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    await register(client, "legacy@example.com")
    older = argon2.PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    await conn.execute(
        "UPDATE users SET password_hash = $1 WHERE email = 'legacy@example.com'",
        older.hash(PASSWORD),
    )
    pair = await login(client, "legacy@example.com")
    stored = await conn.fetchval(
        "SELECT password_hash FROM users WHERE email = 'legacy@example.com'"
    )
    assert "m=8,t=1,p=1" in stored
    # The upgrade does not end sessions or access tokens.
    assert (await client.get("/api/v1/me", headers=bearer(pair["access_token"]))).status_code == 200
    await login(client, "legacy@example.com")
