"""core.idempotency on its own: claiming, answering, replaying, taking over, giving back."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from congocart.core import idempotency
from congocart.core.db import Connection

LEASE = timedelta(minutes=3)


def a_hash(body: dict[str, object] | None = None) -> bytes:
    return idempotency.request_hash(method="POST", path="/things", body=body or {"a": 1})


async def claim(conn: Connection, key: str, request_hash: bytes) -> object:
    return await idempotency.claim(
        conn, scope="test", key=key, request_hash=request_hash, lease=LEASE
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("abc", "abc"), ("  padded  ", "padded"), ("a" * 255, "a" * 255), ("~ !{}", "~ !{}")],
)
def test_parse_key_accepts_1_to_255_printable_characters(value: str, expected: str) -> None:
    assert idempotency.parse_key(value) == expected


@pytest.mark.parametrize("value", ["", "   ", "a" * 256, "tab\there", "é", "nul\x00"])
def test_parse_key_refuses_anything_else_with_400_invalid(value: str) -> None:
    with pytest.raises(idempotency.IdempotencyKeyInvalid) as raised:
        idempotency.parse_key(value)
    assert raised.value.status_code == 400


def test_parse_key_without_a_header_is_400_missing() -> None:
    with pytest.raises(idempotency.IdempotencyKeyMissing):
        idempotency.parse_key(None)


def test_the_request_hash_ignores_key_order_but_not_values_path_or_method() -> None:
    body = {"b": [1, {"y": 2, "x": 1}], "a": "z"}
    same = {"a": "z", "b": [1, {"x": 1, "y": 2}]}
    assert a_hash(body) == a_hash(same)
    assert a_hash(body) != a_hash({**body, "a": "other"})
    assert a_hash(body) != idempotency.request_hash(method="POST", path="/other", body=body)
    assert a_hash(body) != idempotency.request_hash(method="PUT", path="/things", body=body)


async def test_a_completed_key_replays_its_answer(conn: Connection) -> None:
    key = str(uuid.uuid4())
    first = await claim(conn, key, a_hash())
    assert isinstance(first, idempotency.Claim)
    assert not first.took_over

    assert await idempotency.complete(conn, first, status=201, body={"id": "x"})
    replay = await claim(conn, key, a_hash())

    assert replay == idempotency.StoredResponse(201, {"id": "x"})


async def test_a_key_in_flight_is_409_with_retry_after(conn: Connection) -> None:
    key = str(uuid.uuid4())
    await claim(conn, key, a_hash())

    with pytest.raises(idempotency.IdempotencyKeyInFlight) as raised:
        await claim(conn, key, a_hash())

    assert raised.value.status_code == 409
    assert raised.value.headers["Retry-After"] == "1"


async def test_a_key_used_with_another_request_is_422_reused_in_flight_or_done(
    conn: Connection,
) -> None:
    key = str(uuid.uuid4())
    first = await claim(conn, key, a_hash({"n": 1}))
    with pytest.raises(idempotency.IdempotencyKeyReused):
        await claim(conn, key, a_hash({"n": 2}))

    assert isinstance(first, idempotency.Claim)
    await idempotency.complete(conn, first, status=201, body={})
    with pytest.raises(idempotency.IdempotencyKeyReused) as raised:
        await claim(conn, key, a_hash({"n": 2}))
    assert raised.value.status_code == 422


async def test_keys_are_separate_per_scope(conn: Connection) -> None:
    key = str(uuid.uuid4())
    await idempotency.claim(conn, scope="user:1", key=key, request_hash=a_hash(), lease=LEASE)

    other = await idempotency.claim(
        conn, scope="user:2", key=key, request_hash=a_hash({"x": 1}), lease=LEASE
    )

    assert isinstance(other, idempotency.Claim)


async def expire(conn: Connection, key: str) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET locked_until = now() - interval '1 second' WHERE key = $1",
        key,
    )


async def test_an_expired_claim_is_taken_over_and_the_old_holder_can_no_longer_write(
    conn: Connection,
) -> None:
    key = str(uuid.uuid4())
    crashed = await claim(conn, key, a_hash())
    assert isinstance(crashed, idempotency.Claim)
    await expire(conn, key)

    taken = await claim(conn, key, a_hash())

    assert isinstance(taken, idempotency.Claim)
    assert taken.took_over
    assert taken.lease_until > crashed.lease_until
    # The lease is the fencing token: the old holder's writes find nothing.
    assert not await idempotency.complete(conn, crashed, status=201, body={"stale": True})
    await idempotency.release(conn, crashed)
    assert await idempotency.complete(conn, taken, status=201, body={"fresh": True})
    assert await claim(conn, key, a_hash()) == idempotency.StoredResponse(201, {"fresh": True})


async def test_a_released_key_can_be_claimed_again(conn: Connection) -> None:
    key = str(uuid.uuid4())
    first = await claim(conn, key, a_hash({"n": 1}))
    assert isinstance(first, idempotency.Claim)

    await idempotency.release(conn, first)
    again = await claim(conn, key, a_hash({"n": 2}))

    assert isinstance(again, idempotency.Claim)
    assert not again.took_over


async def test_an_answer_stored_after_a_rollback_is_replayed(conn: Connection) -> None:
    key = str(uuid.uuid4())
    savepoint = conn.transaction()
    await savepoint.start()
    claimed = await claim(conn, key, a_hash())
    assert isinstance(claimed, idempotency.Claim)
    await savepoint.rollback()

    await idempotency.store_response(conn, claimed, status=409, body={"code": "out_of_stock"})

    assert await claim(conn, key, a_hash()) == idempotency.StoredResponse(
        409, {"code": "out_of_stock"}
    )


async def test_an_answer_stored_after_a_rollback_never_overwrites_a_live_claim(
    conn: Connection,
) -> None:
    key = str(uuid.uuid4())
    savepoint = conn.transaction()
    await savepoint.start()
    rolled_back = await claim(conn, key, a_hash())
    assert isinstance(rolled_back, idempotency.Claim)
    await savepoint.rollback()
    live = await claim(conn, key, a_hash())  # another request got in meanwhile
    assert isinstance(live, idempotency.Claim)

    await idempotency.store_response(conn, rolled_back, status=409, body={"code": "late"})

    with pytest.raises(idempotency.IdempotencyKeyInFlight):
        await claim(conn, key, a_hash())
