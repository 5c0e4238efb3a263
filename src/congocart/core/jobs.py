"""The transactional outbox: background jobs committed with the data they follow.

The `jobs` table is the queue. A job is an INSERT in the caller's transaction,
so it exists if and only if the business change that asked for it committed
(procrastinate and friends cannot enqueue inside our own asyncpg transaction,
hence this module). `congocart.worker` runs the jobs.

Enqueue, in a service, with the request's `tx`:

    from congocart.core import jobs

    await jobs.enqueue(tx, kind="send_order_confirmation", payload={"order_id": str(order.id)})

Handle, in the feature's `tasks.py` (the worker imports every
`congocart.<feature>.tasks` module at start-up, so the decorator is all it takes):

    @jobs.job("send_order_confirmation")
    async def send_order_confirmation(tx: Connection, job: jobs.Job) -> None:
        ...

A handler runs in a transaction of its own, which also marks the job done: the
handler's database effects and "done" commit together, or neither does. A job
is delivered at least once (a worker may die after an outside call and before
the commit), so a handler must be idempotent, keyed by `job.id` (e.g. a row
with a unique `job_id`, or an idempotency key sent to the outside system).
A handler must finish within the worker's lease (60 s by default); it is
cancelled and retried otherwise. Any exception is a failure: the job is retried
with exponential back-off and jitter until `max_attempts`, then it is `dead`
(counted in `congocart_jobs_total{outcome="dead"}`, listed at
`GET /api/v1/admin/jobs?status=dead`, and re-queued by
`POST /api/v1/admin/jobs/{id}/retry`).

Periodic jobs go through the same table. Declare the schedule with the handler:

    @jobs.periodic("release_expired_reservations", every=timedelta(minutes=1))
    async def release_expired_reservations(tx: Connection, job: jobs.Job) -> None:
        ...

(or call `jobs.periodic(kind, every=...)` alone next to a `@jobs.job(kind)`
handler). Every worker inserts one job per schedule slot, slots being aligned
on the Unix epoch (every 5 min: :00, :05, ...), with `dedupe_key =
"<kind>:<slot start ISO 8601>"`; the unique key makes the N workers' inserts
one job, so each slot runs once however many workers there are. A slot missed
while no worker ran is not caught up: periodic jobs are sweeps, and the next
slot does the work. `job.run_at` is the slot's start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from uuid import UUID

import asyncpg

if TYPE_CHECKING:
    from congocart.core.db import Connection, Params

NOTIFY_CHANNEL = "congocart_jobs"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

JobStatus = Literal["pending", "running", "done", "dead"]


@dataclass(frozen=True, slots=True)
class Job:
    """What a handler receives. `attempt` counts from 1 (this run included)."""

    id: UUID
    kind: str
    payload: Mapping[str, Any]
    attempt: int
    max_attempts: int
    run_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A row of the queue, as the admin view shows it."""

    id: UUID
    kind: str
    status: JobStatus
    payload: Mapping[str, Any]
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None
    dedupe_key: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


Handler = Callable[["Connection", Job], Awaitable[None]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True, slots=True)
class Schedule:
    kind: str
    every: timedelta
    max_attempts: int

    def slot_start(self, now: datetime) -> datetime:
        """The start of the epoch-aligned slot that contains `now`."""
        return EPOCH + self.every * ((now - EPOCH) // self.every)

    def dedupe_key(self, slot_start: datetime) -> str:
        return f"{self.kind}:{slot_start.isoformat()}"


class Registry:
    """Handlers by kind, and the periodic schedules."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.schedules: dict[str, Schedule] = {}

    def register(self, kind: str, handler: Handler) -> None:
        existing = self.handlers.get(kind)
        if existing is not None and existing is not handler:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        self.handlers[kind] = handler

    def job(self, kind: str) -> Callable[[H], H]:
        def decorate(handler: H) -> H:
            self.register(kind, handler)
            return handler

        return decorate

    def periodic(self, kind: str, *, every: timedelta, max_attempts: int = 3) -> Callable[[H], H]:
        if every < timedelta(seconds=1):
            raise ValueError("a periodic job runs at most once a second")
        existing = self.schedules.get(kind)
        schedule = Schedule(kind, every, max_attempts)
        if existing is not None and existing != schedule:
            raise ValueError(f"job kind {kind!r} already has another schedule")
        self.schedules[kind] = schedule
        return self.job(kind)


# The process-wide registry the worker uses; tests build their own `Registry`.
registry = Registry()


def job(kind: str) -> Callable[[H], H]:
    """Register the decorated coroutine as the handler of `kind`."""
    return registry.job(kind)


def register(kind: str, handler: Handler) -> None:
    """Register `handler` for `kind` (the non-decorator form of `job`)."""
    registry.register(kind, handler)


def periodic(kind: str, *, every: timedelta, max_attempts: int = 3) -> Callable[[H], H]:
    """Schedule `kind` once per `every`; decorating a handler also registers it."""
    return registry.periodic(kind, every=every, max_attempts=max_attempts)


async def enqueue(
    tx: Connection,
    *,
    kind: str,
    payload: Mapping[str, Any],
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 10,
) -> UUID:
    """Add a job in the caller's transaction: it commits with it, or not at all.

    `payload` must be JSON-serialisable (orjson: str, int, bool, None, lists,
    dicts, UUID and datetime; money as minor units or decimal strings). With a
    `dedupe_key` that is already taken, nothing is added and the existing
    job's id is returned.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if run_at is not None and run_at.tzinfo is None:
        raise ValueError("run_at must be an aware datetime")
    job_id: UUID | None = await tx.fetchval(
        """
        INSERT INTO jobs (kind, payload, run_at, dedupe_key, max_attempts)
        VALUES ($1, $2, coalesce($3, now()), $4, $5)
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id
        """,
        kind,
        dict(payload),
        run_at,
        dedupe_key,
        max_attempts,
    )
    if job_id is None:
        job_id = await tx.fetchval("SELECT id FROM jobs WHERE dedupe_key = $1", dedupe_key)
        if job_id is None:  # the holder of the key was deleted in between
            raise RuntimeError(f"job with dedupe_key {dedupe_key!r} vanished")
        return job_id
    if run_at is None or run_at <= datetime.now(UTC):
        # Delivered at commit only, so a rolled-back job wakes nobody. Notifications
        # with the same payload in one transaction collapse into one.
        await tx.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    return job_id


def enqueue_sql(
    p: Params, *, name: str, kind: str, payload: Mapping[str, Any], only_if: str
) -> str:
    """`enqueue` as a CTE named `name` of another statement: a job due now, no
    dedupe key, added (and the workers woken at commit) when the SQL condition
    `only_if` holds. Its RETURNING wakes them: a data-modifying CTE always runs
    to completion, whether or not the statement reads it."""
    return f"""
        {name} AS (
            INSERT INTO jobs (kind, payload, run_at)
            SELECT {p(kind)}, {p(dict(payload))}, now()
            WHERE {only_if}
            RETURNING pg_notify('{NOTIFY_CHANNEL}', '')
        )
    """


# --- what the worker does to the queue ---------------------------------------------------


def _job(row: asyncpg.Record) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        payload=row["payload"],
        attempt=row["attempts"],
        max_attempts=row["max_attempts"],
        run_at=row["run_at"],
        created_at=row["created_at"],
    )


async def claim_due(
    conn: Connection, *, kinds: list[str], limit: int, lease: timedelta, worker: str
) -> list[Job]:
    """Take up to `limit` due jobs under a lease; committed by the caller at once.

    A job is due when pending and its time has come, or when the worker that held
    it let its lease expire (it died) and attempts remain. SKIP LOCKED lets any
    number of workers claim side by side without waiting on each other.
    """
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT id FROM jobs
            WHERE status IN ('pending', 'running')
              AND run_at <= now()
              AND kind = ANY($1::text[])
              AND (status = 'pending'
                   OR (locked_until < now() AND attempts < max_attempts))
            ORDER BY run_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        UPDATE jobs AS j
        SET status = 'running',
            attempts = j.attempts + 1,
            locked_until = now() + make_interval(secs => $3),
            locked_by = $4,
            updated_at = now()
        FROM due
        WHERE j.id = due.id
        RETURNING j.id, j.kind, j.payload, j.attempts, j.max_attempts, j.run_at, j.created_at
        """,
        kinds,
        limit,
        lease.total_seconds(),
        worker,
    )
    return sorted((_job(row) for row in rows), key=lambda job: job.run_at)


async def lock_claimed(tx: Connection, job: Job) -> bool:
    """Lock our claimed row for the handler's transaction; False if it is no longer ours.

    While this lock is held, no other worker can claim the job even after the lease
    expires (their claim skips locked rows), so a slow run is never doubled. If the
    process dies, the lock goes with its connection and the lease decides.

    This waits for the lock rather than skipping: another worker's claim scan may hold
    it for an instant (PostgreSQL keeps the lock on a row that failed the claim's
    recheck until that statement's transaction ends). After the wait the condition is
    checked again on the row's latest version, so "not ours" is never a false alarm.
    """
    found = await tx.fetchval(
        """
        SELECT true FROM jobs
        WHERE id = $1 AND status = 'running' AND attempts = $2
        FOR UPDATE
        """,
        job.id,
        job.attempt,
    )
    return bool(found)


async def mark_done(tx: Connection, job_id: UUID) -> None:
    await tx.execute(
        """
        UPDATE jobs
        SET status = 'done', locked_until = NULL, finished_at = now(), updated_at = now()
        WHERE id = $1
        """,
        job_id,
    )


async def record_failure(
    conn: Connection, job: Job, *, error: str, retry_in: timedelta
) -> JobStatus | None:
    """Put a failed job back with a delay, or make it dead when out of attempts.

    Returns the new status, or None when the job was meanwhile claimed again.
    """
    status: JobStatus | None = await conn.fetchval(
        """
        UPDATE jobs
        SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'pending' END,
            run_at = CASE WHEN attempts >= max_attempts THEN run_at
                          ELSE now() + make_interval(secs => $3) END,
            finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
            locked_until = NULL,
            last_error = $4,
            updated_at = now()
        WHERE id = $1 AND status = 'running' AND attempts = $2
        RETURNING status
        """,
        job.id,
        job.attempt,
        retry_in.total_seconds(),
        error,
    )
    return status


async def bury_abandoned(conn: Connection) -> list[str]:
    """Make dead the jobs whose last attempt's worker died; returns their kinds."""
    rows = await conn.fetch(
        """
        WITH abandoned AS (
            SELECT id FROM jobs
            WHERE status = 'running' AND locked_until < now() AND attempts >= max_attempts
            FOR UPDATE SKIP LOCKED
        )
        UPDATE jobs AS j
        SET status = 'dead',
            locked_until = NULL,
            finished_at = now(),
            updated_at = now(),
            last_error = concat_ws(E'\n', j.last_error,
                                   'the worker running the last attempt stopped')
        FROM abandoned
        WHERE j.id = abandoned.id
        RETURNING j.kind
        """
    )
    return [row["kind"] for row in rows]


async def schedule_slots(conn: Connection, schedules: list[Schedule], now: datetime) -> int:
    """Insert the current slot's job for each schedule unless it exists; returns how many."""
    if not schedules:
        return 0
    starts = [s.slot_start(now) for s in schedules]
    result: str = await conn.execute(
        """
        INSERT INTO jobs (kind, dedupe_key, run_at, max_attempts)
        SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::integer[])
        ON CONFLICT (dedupe_key) DO NOTHING
        """,
        [s.kind for s in schedules],
        [s.dedupe_key(start) for s, start in zip(schedules, starts, strict=True)],
        starts,
        [s.max_attempts for s in schedules],
    )
    return int(result.rsplit(" ", 1)[-1])


# --- the admin view ------------------------------------------------------------------------

_RECORD_COLUMNS = """
    id, kind, status, payload, attempts, max_attempts, run_at, last_error, dedupe_key,
    created_at, updated_at, finished_at
"""


def _record(row: asyncpg.Record) -> JobRecord:
    return JobRecord(**dict(row))


async def list_jobs(
    conn: Connection,
    *,
    status: JobStatus | None,
    limit: int,
    after: tuple[datetime, UUID] | None = None,
) -> list[JobRecord]:
    """Jobs, most recently changed first, keyset-paginated on (updated_at, id)."""
    after_at, after_id = after if after is not None else (None, None)
    rows = await conn.fetch(
        f"""
        SELECT {_RECORD_COLUMNS} FROM jobs
        WHERE ($1::text IS NULL OR status = $1)
          AND ($2::timestamptz IS NULL OR (updated_at, id) < ($2, $3::uuid))
        ORDER BY updated_at DESC, id DESC
        LIMIT $4
        """,  # noqa: S608 - a fixed column list, no values
        status,
        after_at,
        after_id,
        limit,
    )
    return [_record(row) for row in rows]


async def get_job(conn: Connection, job_id: UUID) -> JobRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_RECORD_COLUMNS} FROM jobs WHERE id = $1",  # noqa: S608 - fixed columns
        job_id,
    )
    return _record(row) if row is not None else None


async def requeue_dead(tx: Connection, job_id: UUID) -> JobRecord | None:
    """Give a dead job a fresh set of attempts, due now; None if it is not dead."""
    row = await tx.fetchrow(
        f"""
        UPDATE jobs
        SET status = 'pending', attempts = 0, run_at = now(), locked_until = NULL,
            locked_by = NULL, finished_at = NULL, updated_at = now()
        WHERE id = $1 AND status = 'dead'
        RETURNING {_RECORD_COLUMNS}
        """,  # noqa: S608 - a fixed column list, no values
        job_id,
    )
    if row is None:
        return None
    await tx.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    return _record(row)
