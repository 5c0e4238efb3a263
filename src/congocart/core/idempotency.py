"""Idempotency keys: one request's effect and answer, however often it is sent.

A client sends `Idempotency-Key: <key>` with a request that must not happen
twice (checkout). The first request *claims* the key inside its own
transaction (`claim`); the row holds the request's hash and a lease while the
request runs, then the response it ended with (`complete`, or `store_response`
after a rollback). Any later request with the same `(scope, key)`:

- with a different hash (another body or path) → 422 `idempotency_key_reused`;
- while the first one is still running (lease alive) → 409
  `idempotency_key_in_flight` with `Retry-After`;
- once the first one is done → the stored status and body, replayed;
- when the first one died mid-way (lease expired) → takes the key over.

`locked_until` is the lease and also the claim's fencing token: every later
write names the lease it was claimed with, so a request whose lease ran out
and was taken over can never overwrite the new holder's row. Leases are read
from `clock_timestamp()`, not the transaction's start time, so a takeover's
lease is always later than the one it replaces. A request that
ends in an error worth retrying (the payment provider failed) gives the key
back with `release`. Rows are kept at least 24 h (`core.tasks` prunes them).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from congocart.core.db import Connection, Params
from congocart.core.errors import CongoError

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Printable ASCII, space included: what a header value can carry unescaped.
_KEY = re.compile(rf"^[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}$")


class IdempotencyKeyMissing(CongoError):
    status_code = 400
    code = "idempotency_key_missing"
    default_detail = "This request requires an Idempotency-Key header."


class IdempotencyKeyInvalid(CongoError):
    status_code = 400
    code = "idempotency_key_invalid"
    default_detail = "The Idempotency-Key header must be 1-255 printable ASCII characters."


class IdempotencyKeyReused(CongoError):
    status_code = 422
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used with a different request."


class IdempotencyKeyInFlight(CongoError):
    status_code = 409
    code = "idempotency_key_in_flight"
    default_detail = "A request with this Idempotency-Key is still being processed; retry shortly."

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int = 1,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            detail, errors=errors, headers={"Retry-After": str(retry_after), **(headers or {})}
        )


def parse_key(value: str | None) -> str:
    """The header's value as a key, or 400 (`idempotency_key_missing` / `_invalid`)."""
    if value is None:
        raise IdempotencyKeyMissing
    key = value.strip()
    if not key or not _KEY.match(key):
        raise IdempotencyKeyInvalid
    return key


def request_hash(*, method: str, path: str, body: Mapping[str, Any]) -> bytes:
    """SHA-256 of the method, the path and the body in canonical form (keys sorted).

    Two bodies that differ only in key order or whitespace are the same request.
    """
    canonical = orjson.dumps(dict(body), option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256()
    digest.update(method.upper().encode())
    digest.update(b"\n")
    digest.update(path.encode())
    digest.update(b"\n")
    digest.update(canonical)
    return digest.digest()


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to run the request under `(scope, key)` until `lease_until`."""

    scope: str
    key: str
    request_hash: bytes
    lease_until: datetime
    # True when a crashed earlier request's expired claim was taken over.
    took_over: bool


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What the first request answered; replayed as is."""

    status: int
    body: Any


async def claim(
    tx: Connection, *, scope: str, key: str, request_hash: bytes, lease: timedelta
) -> Claim | StoredResponse:
    """Claim the key for this request, or answer what an earlier request decided.

    Runs in the caller's transaction: a concurrent request with the same key
    waits on the unique index until this transaction ends, then sees the row.
    Raises `IdempotencyKeyReused` or `IdempotencyKeyInFlight`.
    """
    p = Params()
    lease_until = await tx.fetchval(
        claim_sql(p, scope=scope, key=key, request_hash=request_hash, lease=lease), *p.values
    )
    if lease_until is not None:
        return Claim(scope, key, request_hash, lease_until, took_over=False)
    # Someone holds or held the key: settle it under the row's lock.
    existing = await tx.fetchrow(
        """
        SELECT request_hash, status, response_status, response_body, locked_until,
               locked_until > clock_timestamp() AS lease_alive
        FROM idempotency_keys
        WHERE scope = $1 AND key = $2
        FOR UPDATE
        """,
        scope,
        key,
    )
    if existing is None:
        # Given back (`release`) between our insert and this read: the slot is free again.
        return await claim(tx, scope=scope, key=key, request_hash=request_hash, lease=lease)
    if bytes(existing["request_hash"]) != request_hash:
        raise IdempotencyKeyReused
    if existing["status"] == "done":
        return StoredResponse(existing["response_status"], existing["response_body"])
    if existing["lease_alive"]:
        # A checkout takes well under a second: ask for a quick retry, not the lease's end.
        raise IdempotencyKeyInFlight(retry_after=1)
    # The request that held it stopped without an answer (a crash): take it over.
    lease_until = await tx.fetchval(
        """
        UPDATE idempotency_keys
        SET locked_until = clock_timestamp() + make_interval(secs => $3)
        WHERE scope = $1 AND key = $2 AND status = 'in_flight' AND locked_until <= clock_timestamp()
        RETURNING locked_until
        """,
        scope,
        key,
        lease.total_seconds(),
    )
    assert lease_until is not None  # the row is locked by us since the SELECT
    return Claim(scope, key, request_hash, lease_until, took_over=True)


def claim_sql(p: Params, *, scope: str, key: str, request_hash: bytes, lease: timedelta) -> str:
    """The fast half of `claim` as a statement (or a CTE of a larger one): it
    returns the new claim's `locked_until` when the key was free, and no row when
    anyone holds or held it (then call `claim`, which settles that case)."""
    return f"""
        INSERT INTO idempotency_keys (scope, key, request_hash, status, locked_until)
        VALUES ({p(scope)}, {p(key)}, {p(request_hash)}, 'in_flight',
                clock_timestamp() + make_interval(secs => {p(lease.total_seconds())}))
        ON CONFLICT (scope, key) DO NOTHING
        RETURNING locked_until
    """  # noqa: S608 - fixed text around placeholders, no values


async def complete(tx: Connection, claim: Claim, *, status: int, body: Any) -> bool:
    """Record the answer in the caller's transaction; False if the claim was lost."""
    p = Params()
    sql = complete_sql(p, claim, status=status, body=body, only_if="true")
    stored = f"WITH {sql} SELECT EXISTS (SELECT 1 FROM answer_stored)"  # noqa: S608 - no values
    return bool(await tx.fetchval(stored, *p.values))


def complete_sql(p: Params, claim: Claim, *, status: int, body: Any, only_if: str) -> str:
    """`complete` as a CTE (`answer_stored`) of a statement, applied when the
    SQL condition `only_if` holds: the answer is then stored with the change
    it answers, in one statement."""
    return f"""
        answer_stored AS (
            UPDATE idempotency_keys
            SET status = 'done', response_status = {p(status)}, response_body = {p(body)},
                locked_until = NULL
            WHERE scope = {p(claim.scope)} AND key = {p(claim.key)} AND status = 'in_flight'
              AND locked_until = {p(claim.lease_until)} AND {only_if}
            RETURNING true
        )
    """  # noqa: S608 - fixed text around placeholders, no values


async def store_response(conn: Connection, claim: Claim, *, status: int, body: Any) -> None:
    """Record the answer after the claiming transaction rolled back (one statement).

    The rollback took the claim with it: the row is gone (a fresh claim) or back
    to the crashed holder's expired lease (a takeover). Either way it is written
    unless another request holds a live claim meanwhile; then that one answers.
    """
    await conn.execute(
        """
        INSERT INTO idempotency_keys
            (scope, key, request_hash, status, response_status, response_body)
        VALUES ($1, $2, $3, 'done', $4, $5)
        ON CONFLICT (scope, key) DO UPDATE
        SET status = 'done',
            response_status = excluded.response_status,
            response_body = excluded.response_body,
            locked_until = NULL
        WHERE idempotency_keys.status = 'in_flight'
          AND idempotency_keys.request_hash = excluded.request_hash
          AND idempotency_keys.locked_until <= clock_timestamp()
        """,
        claim.scope,
        claim.key,
        claim.request_hash,
        status,
        body,
    )


async def release(conn: Connection, claim: Claim) -> None:
    """Give the key back (the outcome is worth retrying with the same key)."""
    await conn.execute(
        """
        DELETE FROM idempotency_keys
        WHERE scope = $1 AND key = $2 AND status = 'in_flight' AND locked_until = $3
        """,
        claim.scope,
        claim.key,
        claim.lease_until,
    )
