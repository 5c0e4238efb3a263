"""GET /api/v1/admin/jobs and POST /api/v1/admin/jobs/{id}/retry."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx
import pytest

from congocart.core.db import Connection
from tests.conftest import MakeUser


async def add_job(conn: Connection, *, kind: str, status: str, error: str | None = None) -> UUID:
    job_id: UUID = await conn.fetchval(
        """
        INSERT INTO jobs (kind, status, attempts, max_attempts, last_error, finished_at)
        VALUES ($1, $2, 3, 3, $3, CASE WHEN $2 IN ('done', 'dead') THEN now() END)
        RETURNING id
        """,
        kind,
        status,
        error,
    )
    return job_id


async def test_admins_see_dead_jobs_with_their_last_error(
    client: httpx.AsyncClient, conn: Connection, make_user: MakeUser
) -> None:
    admin = await make_user(roles=("admin",))
    dead = await add_job(conn, kind="send_mail", status="dead", error="SMTPError: refused")
    await add_job(conn, kind="send_mail", status="done")
    response = await client.get("/api/v1/admin/jobs?status=dead", headers=admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert [item["id"] for item in body["items"]] == [str(dead)]
    item = body["items"][0]
    assert item["status"] == "dead"
    assert item["kind"] == "send_mail"
    assert item["last_error"] == "SMTPError: refused"
    assert item["attempts"] == item["max_attempts"] == 3


async def test_the_job_list_pages_with_a_cursor(
    client: httpx.AsyncClient, conn: Connection, make_user: MakeUser
) -> None:
    admin = await make_user(roles=("admin",))
    ids = {str(await add_job(conn, kind=f"k{n}", status="dead")) for n in range(5)}
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        params = {"status": "dead", "limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/admin/jobs", params=params, headers=admin.headers)
        assert response.status_code == 200
        seen += [item["id"] for item in response.json()["items"]]
        cursor = response.json()["next_cursor"]
    assert cursor is None
    assert len(seen) == 5
    assert set(seen) == ids


async def test_the_job_list_is_for_admins_only(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    customer = await make_user(roles=("customer",))
    staff = await make_user(roles=("staff",))
    assert (await client.get("/api/v1/admin/jobs")).status_code == 401
    for user in (customer, staff):
        response = await client.get("/api/v1/admin/jobs", headers=user.headers)
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"


async def test_an_unknown_status_filter_is_a_validation_error(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(roles=("admin",))
    response = await client.get("/api/v1/admin/jobs?status=zombie", headers=admin.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


async def test_retrying_a_dead_job_makes_it_pending_and_due_with_fresh_attempts(
    client: httpx.AsyncClient, conn: Connection, make_user: MakeUser
) -> None:
    admin = await make_user(roles=("admin",))
    dead = await add_job(conn, kind="send_mail", status="dead", error="boom")
    response = await client.post(f"/api/v1/admin/jobs/{dead}/retry", headers=admin.headers)
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response.json()["attempts"] == 0
    row = await conn.fetchrow("SELECT status, run_at <= now() AS due FROM jobs WHERE id = $1", dead)
    assert (row["status"], row["due"]) == ("pending", True)

    again = await client.post(f"/api/v1/admin/jobs/{dead}/retry", headers=admin.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "job_not_dead"
    missing = await client.post(f"/api/v1/admin/jobs/{uuid4()}/retry", headers=admin.headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "job_not_found"


# Well-formed JSON of the wrong shape, found by tests/fuzz: an id that is a number or
# false, a time past the calendar's ends once its offset applies. These were 500s.
HOSTILE_CURSORS = [
    "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgNV0",  # ["2026-01-01T00:00:00+00:00", 5]
    "WyIwMDAxMTAwMTAwMFoiLCBmYWxzZV0",  # ["00011001000Z", false]
    # ["0001-01-01T00:00:00+01:00", "00000000-0000-0000-0000-000000000000"]
    "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzAxOjAwIiwgIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd",
]


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
async def test_a_jobs_cursor_of_the_wrong_shape_is_400(
    client: httpx.AsyncClient, make_user: MakeUser, cursor: str
) -> None:
    admin = await make_user(roles=("admin",))
    response = await client.get(
        "/api/v1/admin/jobs", params={"cursor": cursor}, headers=admin.headers
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"
