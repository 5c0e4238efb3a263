"""api-contract.md, "Identity": accounts, sessions, roles, access tokens."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from congocart.config import Settings
from congocart.core.security import load_token_keys
from tests.acceptance.conftest import API, assert_problem
from tests.conftest import MakeUser

PASSWORD = "correct horse battery staple"


def fresh_email() -> str:
    return f"acc-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: httpx.AsyncClient, email: str, **extra: Any) -> httpx.Response:
    return await client.post(
        f"{API}/auth/register", json={"email": email, "password": PASSWORD, **extra}
    )


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_token_pair(body: dict[str, Any]) -> None:
    assert isinstance(body["access_token"], str)
    assert body["access_token"]
    assert isinstance(body["refresh_token"], str)
    assert body["refresh_token"]
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int)
    assert 0 < body["expires_in"] <= 3600


async def test_register_is_201_with_the_user_and_the_customer_role(
    client: httpx.AsyncClient,
) -> None:
    email = fresh_email()

    response = await register(client, email, full_name="Ada Lovelace")

    assert response.status_code == 201, response.text
    user = response.json()
    assert {"id", "email", "full_name", "roles"} <= user.keys()
    uuid.UUID(user["id"])
    assert user["email"] == email
    assert user["full_name"] == "Ada Lovelace"
    assert user["roles"] == ["customer"]


async def test_full_name_is_optional(client: httpx.AsyncClient) -> None:
    response = await register(client, fresh_email())

    assert response.status_code == 201
    assert response.json()["full_name"] is None


async def test_registering_a_taken_email_is_409_email_taken(client: httpx.AsyncClient) -> None:
    email = fresh_email()
    assert (await register(client, email)).status_code == 201

    assert_problem(await register(client, email), 409, "email_taken")
    assert_problem(await register(client, email.upper()), 409, "email_taken")


async def test_login_is_200_with_a_bearer_token_pair(client: httpx.AsyncClient) -> None:
    email = fresh_email()
    await register(client, email)

    assert_token_pair(await login(client, email))


async def test_bad_credentials_are_401_invalid_credentials(client: httpx.AsyncClient) -> None:
    email = fresh_email()
    await register(client, email)

    wrong_password = await client.post(
        f"{API}/auth/login", json={"email": email, "password": "not the password"}
    )
    unknown_email = await client.post(
        f"{API}/auth/login", json={"email": fresh_email(), "password": PASSWORD}
    )

    assert_problem(wrong_password, 401, "invalid_credentials")
    assert_problem(unknown_email, 401, "invalid_credentials")


async def test_the_oauth2_password_form_logs_in_like_login(client: httpx.AsyncClient) -> None:
    email = fresh_email()
    await register(client, email)

    response = await client.post(
        f"{API}/auth/token", data={"username": email, "password": PASSWORD}
    )
    wrong = await client.post(f"{API}/auth/token", data={"username": email, "password": "nope"})

    assert response.status_code == 200, response.text
    assert_token_pair(response.json())
    assert_problem(wrong, 401, "invalid_credentials")


async def test_refresh_returns_a_new_pair_and_spends_the_old_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    email = fresh_email()
    await register(client, email)
    first = await login(client, email)

    rotated = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )

    assert rotated.status_code == 200, rotated.text
    pair = rotated.json()
    assert_token_pair(pair)
    assert pair["refresh_token"] != first["refresh_token"]
    assert (await client.get(f"{API}/me", headers=bearer(pair["access_token"]))).status_code == 200


async def test_a_spent_refresh_token_is_401_refresh_token_reused_and_revokes_the_family(
    client: httpx.AsyncClient,
) -> None:
    email = fresh_email()
    await register(client, email)
    first = await login(client, email)
    second = (
        await client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()

    reused = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    after = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )

    assert_problem(reused, 401, "refresh_token_reused")
    assert after.status_code == 401
    assert_problem(after, 401)


async def test_logout_is_204_and_the_family_can_no_longer_refresh(
    client: httpx.AsyncClient,
) -> None:
    email = fresh_email()
    await register(client, email)
    pair = await login(client, email)

    response = await client.post(
        f"{API}/auth/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers=bearer(pair["access_token"]),
    )
    refresh = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    revoked = await client.get(f"{API}/me", headers=bearer(pair["access_token"]))

    assert_problem(revoked, 401, "invalid_token")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(refresh, 401, "invalid_token")
    assert 'error="invalid_token"' in refresh.headers["www-authenticate"]


async def test_logout_needs_a_user(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/auth/logout", json={"refresh_token": "whatever"})

    assert_problem(response, 401, "not_authenticated")


async def test_me_is_200_with_the_user(client: httpx.AsyncClient) -> None:
    email = fresh_email()
    registered = (await register(client, email, full_name="Grace Hopper")).json()
    pair = await login(client, email)

    response = await client.get(f"{API}/me", headers=bearer(pair["access_token"]))

    assert response.status_code == 200
    assert response.json() == registered


async def test_an_admin_sets_roles_old_access_tokens_stop_and_refreshed_ones_carry_them(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(roles=("customer", "admin"))
    email = fresh_email()
    user = (await register(client, email)).json()
    pair = await login(client, email)
    assert (
        await client.get(f"{API}/admin/orders", headers=bearer(pair["access_token"]))
    ).status_code == 403

    response = await client.put(
        f"{API}/admin/users/{user['id']}/roles",
        json={"roles": ["customer", "staff"]},
        headers=admin.headers,
    )
    old_token = await client.get(f"{API}/me", headers=bearer(pair["access_token"]))
    refreshed = (
        await client.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    ).json()
    as_staff = await client.get(f"{API}/admin/orders", headers=bearer(refreshed["access_token"]))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == user["id"]
    assert sorted(response.json()["roles"]) == ["customer", "staff"]
    assert_problem(old_token, 401, "invalid_token")
    assert as_staff.status_code == 200
    assert (
        "staff"
        in jwt.decode(refreshed["access_token"], options={"verify_signature": False})["roles"]
    )


async def test_setting_roles_is_admin_only(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    staff = await make_user(roles=("customer", "staff"))
    target = await make_user()

    response = await client.put(
        f"{API}/admin/users/{target.id}/roles", json={"roles": ["admin"]}, headers=staff.headers
    )

    assert_problem(response, 403)


async def test_access_tokens_carry_the_named_claims_and_verify_with_the_jwks(
    client: httpx.AsyncClient,
) -> None:
    email = fresh_email()
    user = (await register(client, email)).json()
    token = (await login(client, email))["access_token"]
    jwks = (await client.get("/.well-known/jwks.json")).json()

    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public_key = jwt.PyJWK.from_json(json.dumps(key))
    unverified = jwt.decode(token, options={"verify_signature": False})
    claims = jwt.decode(
        token,
        public_key.key,
        algorithms=[header["alg"]],
        audience=unverified["aud"],
        issuer=unverified["iss"],
    )

    assert {"sub", "roles", "iat", "exp", "iss", "aud", "jti"} <= claims.keys()
    assert claims["sub"] == user["id"]
    assert claims["roles"] == ["customer"]
    assert 0 < claims["exp"] - claims["iat"] <= 15 * 60


async def test_tokens_with_a_wrong_algorithm_audience_issuer_or_signature_are_invalid_token(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    email = fresh_email()
    await register(client, email)
    token = (await login(client, email))["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    head, body, signature = token.split(".")
    forged = [
        jwt.encode(claims, "a shared secret that is long enough for hs256", algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),
        f"{head}.{body}.{signature[:-4]}AAAA",
    ]
    stranger = Ed25519PrivateKey.generate()
    forged.append(jwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": header["kid"]}))
    # The server's own key, but for another audience or from another issuer.
    own = load_token_keys(settings).signing_key
    for wrong in ({"aud": "someone-else"}, {"iss": "someone-else"}):
        forged.append(
            jwt.encode(
                {**claims, **wrong}, own.private_key, algorithm="EdDSA", headers={"kid": own.kid}
            )
        )

    for bad in forged:
        response = await client.get(f"{API}/me", headers=bearer(bad))
        assert_problem(response, 401, "invalid_token")
