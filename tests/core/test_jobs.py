"""The outbox and its worker, on real PostgreSQL (committed data, real pools)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from prometheus_client import REGISTRY

from congocart.core import jobs
from congocart.core.backoff import retry_delay
from congocart.core.db import Connection, Database
from congocart.worker import Worker, load_task_modules
from tests.core.conftest import eventually

FAST = {"poll_interval": 0.05, "retry_base": timedelta(milliseconds=200)}


@pytest.fixture
async def effects_db(committed_db: Database) -> Database:
    """A committed database with a table where handlers leave their effects."""
    async with committed_db.acquire() as conn:
        await conn.execute("CREATE TABLE job_effects (job_id uuid NOT NULL, note text)")
    return committed_db


@asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield tasks
    finally:
        for w in workers:
            w.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=15)


async def enqueue_committed(db: Database, **kwargs: object) -> UUID:
    async with db.transaction() as tx:
        return await jobs.enqueue(tx, **kwargs)  # type: ignore[arg-type]


async def status_of(db: Database, job_id: UUID) -> str:
    async with db.acquire() as conn:
        status: str = await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id)
        return status


async def effects(db: Database) -> list[UUID]:
    async with db.acquire() as conn:
        return [r["job_id"] for r in await conn.fetch("SELECT job_id FROM job_effects")]


def jobs_metric(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("congocart_jobs_total", {"kind": kind, "outcome": outcome})
    return value or 0.0


async def record_effect(tx: Connection, job: jobs.Job) -> None:
    await tx.execute("INSERT INTO job_effects (job_id) VALUES ($1)", job.id)


# --- enqueue --------------------------------------------------------------------------------


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_exists(
    committed_db: Database,
) -> None:
    async with committed_db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        job_id = await jobs.enqueue(conn, kind="send_mail", payload={"to": "a@example.com"})
        await tx.rollback()
    async with committed_db.acquire() as other:
        assert await other.fetchval("SELECT count(*) FROM jobs") == 0
        assert await other.fetchval("SELECT count(*) FROM jobs WHERE id = $1", job_id) == 0


async def test_a_job_enqueued_in_a_committed_transaction_is_pending_with_its_payload(
    committed_db: Database,
) -> None:
    job_id = await enqueue_committed(
        committed_db, kind="send_mail", payload={"to": "a@example.com", "n": 2}, max_attempts=4
    )
    async with committed_db.acquire() as other:
        row = await other.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
    assert row is not None
    assert (row["kind"], row["status"], row["attempts"], row["max_attempts"]) == (
        "send_mail",
        "pending",
        0,
        4,
    )
    assert row["payload"] == {"to": "a@example.com", "n": 2}


async def test_enqueue_with_a_taken_dedupe_key_returns_the_existing_job(conn: Connection) -> None:
    first = await jobs.enqueue(conn, kind="k", payload={}, dedupe_key="k:1")
    second = await jobs.enqueue(conn, kind="k", payload={"other": True}, dedupe_key="k:1")
    assert second == first
    assert await conn.fetchval("SELECT count(*) FROM jobs WHERE dedupe_key = 'k:1'") == 1


async def test_enqueue_rejects_a_naive_run_at(conn: Connection) -> None:
    with pytest.raises(ValueError, match="aware"):
        await jobs.enqueue(conn, kind="k", payload={}, run_at=datetime(2030, 1, 1))


# --- running ----------------------------------------------------------------------------------


async def test_a_job_runs_once_with_its_payload_and_is_marked_done(effects_db: Database) -> None:
    registry = jobs.Registry()
    seen: list[tuple[UUID, dict[str, object], int]] = []

    @registry.job("greet")
    async def greet(tx: Connection, job: jobs.Job) -> None:
        seen.append((job.id, dict(job.payload), job.attempt))
        await record_effect(tx, job)

    job_id = await enqueue_committed(effects_db, kind="greet", payload={"name": "Ada"})
    async with running(Worker(effects_db, registry=registry, **FAST)):  # type: ignore[arg-type]
        await eventually(lambda: _is(effects_db, job_id, "done"))
        await asyncio.sleep(0.3)  # several more polls: nothing runs it again
    assert seen == [(job_id, {"name": "Ada"}, 1)]
    assert await effects(effects_db) == [job_id]


async def test_a_job_due_later_waits_for_its_time(effects_db: Database) -> None:
    registry = jobs.Registry()
    ran_at: list[float] = []

    @registry.job("later")
    async def later(tx: Connection, job: jobs.Job) -> None:
        ran_at.append(time.monotonic())

    started = time.monotonic()
    run_at = datetime.now(UTC) + timedelta(seconds=0.6)
    job_id = await enqueue_committed(effects_db, kind="later", payload={}, run_at=run_at)
    async with running(Worker(effects_db, registry=registry, **FAST)):  # type: ignore[arg-type]
        await eventually(lambda: _is(effects_db, job_id, "done"))
    assert ran_at[0] - started >= 0.5


async def test_enqueue_notify_wakes_an_idle_worker_without_waiting_for_the_poll(
    effects_db: Database,
) -> None:
    registry = jobs.Registry()
    registry.register("ping", record_effect)
    worker = Worker(effects_db, registry=registry, poll_interval=60.0)
    async with running(worker):
        await asyncio.sleep(0.3)  # idle: the first poll is done, the next is a minute away
        started = time.monotonic()
        job_id = await enqueue_committed(effects_db, kind="ping", payload={})
        await eventually(lambda: _is(effects_db, job_id, "done"), within=5)
        assert time.monotonic() - started < 5


async def test_a_failing_job_is_retried_with_growing_backoff_then_dead(
    effects_db: Database,
) -> None:
    registry = jobs.Registry()
    kind = "always_fails_" + UUID(int=random.getrandbits(128)).hex[:8]
    attempts: list[tuple[int, float]] = []

    @registry.job(kind)
    async def always_fails(tx: Connection, job: jobs.Job) -> None:
        attempts.append((job.attempt, time.monotonic()))
        await record_effect(tx, job)  # rolled back with the failure
        raise RuntimeError(f"boom on attempt {job.attempt}")

    job_id = await enqueue_committed(effects_db, kind=kind, payload={}, max_attempts=3)
    async with running(Worker(effects_db, registry=registry, **FAST)):  # type: ignore[arg-type]
        await eventually(lambda: _is(effects_db, job_id, "dead"))

    assert [a for a, _ in attempts] == [1, 2, 3]
    first_gap = attempts[1][1] - attempts[0][1]
    second_gap = attempts[2][1] - attempts[1][1]
    # Back-off 0.2 s then 0.4 s, each with jitter in [50 %, 100 %).
    assert first_gap >= 0.1
    assert second_gap >= 0.2
    assert await effects(effects_db) == []
    async with effects_db.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
    assert row["attempts"] == 3
    assert row["last_error"] == "RuntimeError: boom on attempt 3"
    assert row["finished_at"] is not None
    assert jobs_metric(kind, "retried") == 2
    assert jobs_metric(kind, "dead") == 1


def test_retry_delay_doubles_per_attempt_within_jitter_and_cap() -> None:
    base, cap = timedelta(seconds=10), timedelta(minutes=5)
    lowest = [retry_delay(n, base=base, cap=cap, rand=lambda: 0.0) for n in range(1, 8)]
    highest = [retry_delay(n, base=base, cap=cap, rand=lambda: 0.999999) for n in range(1, 8)]
    assert [d.total_seconds() for d in lowest] == [5, 10, 20, 40, 80, 150, 150]
    assert [round(d.total_seconds()) for d in highest] == [10, 20, 40, 80, 160, 300, 300]


async def test_a_worker_killed_mid_job_loses_nothing_and_the_effect_happens_once(
    effects_db: Database,
) -> None:
    registry = jobs.Registry()
    started = asyncio.Event()
    runs: list[tuple[int, datetime]] = []

    @registry.job("charge")
    async def charge(tx: Connection, job: jobs.Job) -> None:
        runs.append((job.attempt, await tx.fetchval("SELECT clock_timestamp()")))
        await record_effect(tx, job)
        if job.attempt == 1:
            started.set()
            await asyncio.sleep(3600)  # the first worker dies here, effect uncommitted

    lease = timedelta(seconds=1)
    job_id = await enqueue_committed(effects_db, kind="charge", payload={})
    doomed = Worker(effects_db, registry=registry, lease=lease, **FAST)  # type: ignore[arg-type]
    doomed_task = asyncio.create_task(doomed.run())
    await asyncio.wait_for(started.wait(), timeout=10)
    doomed_task.cancel()  # killed: no drain, no clean-up of the claim
    with pytest.raises(asyncio.CancelledError):
        await doomed_task
    assert await status_of(effects_db, job_id) == "running"  # still under the dead lease
    assert await effects(effects_db) == []
    async with effects_db.acquire() as conn:
        lease_end = await conn.fetchval("SELECT locked_until FROM jobs WHERE id = $1", job_id)

    rescuer = Worker(effects_db, registry=registry, lease=timedelta(seconds=30), **FAST)  # type: ignore[arg-type]
    async with running(rescuer):
        await eventually(lambda: _is(effects_db, job_id, "done"))

    assert [attempt for attempt, _ in runs] == [1, 2]
    assert runs[1][1] >= lease_end  # only once the dead worker's lease had expired
    assert await effects(effects_db) == [job_id]


async def test_two_workers_never_run_the_same_job_and_run_every_job_once(
    effects_db: Database,
) -> None:
    registry = jobs.Registry()
    in_flight: set[UUID] = set()
    overlaps: list[UUID] = []

    @registry.job("work")
    async def work(tx: Connection, job: jobs.Job) -> None:
        if job.id in in_flight:
            overlaps.append(job.id)
        in_flight.add(job.id)
        try:
            await asyncio.sleep(random.uniform(0, 0.02))
            await record_effect(tx, job)
        finally:
            in_flight.discard(job.id)

    async with effects_db.transaction() as tx:
        ids = [await jobs.enqueue(tx, kind="work", payload={"n": n}) for n in range(60)]
    first = Worker(effects_db, registry=registry, concurrency=4, name="first", **FAST)  # type: ignore[arg-type]
    second = Worker(effects_db, registry=registry, concurrency=4, name="second", **FAST)  # type: ignore[arg-type]
    async with running(first, second):

        async def all_done() -> bool:
            async with effects_db.acquire() as conn:
                return bool(
                    await conn.fetchval("SELECT count(*) = 60 FROM jobs WHERE status = 'done'")
                )

        await eventually(all_done, within=30)

    done = await effects(effects_db)
    assert sorted(done) == sorted(ids)  # each job's effect exactly once
    assert overlaps == []
    async with effects_db.acquire() as conn:
        by = {r["locked_by"] for r in await conn.fetch("SELECT locked_by FROM jobs")}
    assert by == {"first", "second"}  # both took part


async def test_stopping_a_worker_lets_its_running_job_finish(effects_db: Database) -> None:
    registry = jobs.Registry()
    started = asyncio.Event()

    @registry.job("slow")
    async def slow(tx: Connection, job: jobs.Job) -> None:
        started.set()
        await asyncio.sleep(0.3)
        await record_effect(tx, job)

    job_id = await enqueue_committed(effects_db, kind="slow", payload={})
    worker = Worker(effects_db, registry=registry, **FAST)  # type: ignore[arg-type]
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), timeout=10)
    worker.stop()
    await asyncio.wait_for(task, timeout=10)
    assert await status_of(effects_db, job_id) == "done"
    assert await effects(effects_db) == [job_id]


async def test_a_worker_claims_only_kinds_it_has_handlers_for(effects_db: Database) -> None:
    registry = jobs.Registry()
    registry.register("known", record_effect)
    unknown = await enqueue_committed(effects_db, kind="unknown", payload={})
    known = await enqueue_committed(effects_db, kind="known", payload={})
    async with running(Worker(effects_db, registry=registry, **FAST)):  # type: ignore[arg-type]
        await eventually(lambda: _is(effects_db, known, "done"))
    assert await status_of(effects_db, unknown) == "pending"


# --- periodic jobs ------------------------------------------------------------------------------


async def test_two_workers_scheduling_the_same_slot_make_one_job(committed_db: Database) -> None:
    registry = jobs.Registry()
    registry.periodic("sweep", every=timedelta(minutes=5))(record_effect)
    schedules = list(registry.schedules.values())
    now = datetime(2030, 5, 1, 12, 7, 30, tzinfo=UTC)
    a, b = Worker(committed_db, registry=registry), Worker(committed_db, registry=registry)

    async def schedule(worker: Worker) -> int:
        async with committed_db.acquire() as conn:
            return await worker.schedule(conn, schedules, now)

    inserted = await asyncio.gather(schedule(a), schedule(b))
    assert sorted(inserted) == [0, 1]
    async with committed_db.acquire() as conn:
        rows = await conn.fetch("SELECT dedupe_key, run_at FROM jobs WHERE kind = 'sweep'")
    assert [(r["dedupe_key"], r["run_at"]) for r in rows] == [
        ("sweep:2030-05-01T12:05:00+00:00", datetime(2030, 5, 1, 12, 5, tzinfo=UTC))
    ]


async def test_running_workers_run_each_periodic_slot_once(effects_db: Database) -> None:
    registry = jobs.Registry()
    registry.periodic("tick", every=timedelta(seconds=1))(record_effect)
    a = Worker(effects_db, registry=registry, **FAST)  # type: ignore[arg-type]
    b = Worker(effects_db, registry=registry, **FAST)  # type: ignore[arg-type]
    async with running(a, b):
        await asyncio.sleep(2.6)

    async with effects_db.acquire() as conn:
        rows = await conn.fetch("SELECT id, dedupe_key, run_at, status FROM jobs ORDER BY run_at")
    assert 2 <= len(rows) <= 4
    keys = [r["dedupe_key"] for r in rows]
    assert len(set(keys)) == len(keys)
    assert keys == [f"tick:{r['run_at'].isoformat()}" for r in rows]
    # One job per slot: slot starts are whole seconds apart (a slow machine may skip one).
    for earlier, later in itertools.pairwise(rows):
        gap = later["run_at"] - earlier["run_at"]
        assert gap >= timedelta(seconds=1)
        assert gap % timedelta(seconds=1) == timedelta(0)
    done = [r["id"] for r in rows if r["status"] == "done"]
    assert sorted(await effects(effects_db)) == sorted(done)
    assert len(done) >= len(rows) - 1  # the newest slot may have been scheduled at the end


def test_periodic_rejects_a_second_different_schedule_for_a_kind() -> None:
    registry = jobs.Registry()
    registry.periodic("sweep", every=timedelta(minutes=1))
    with pytest.raises(ValueError, match="another schedule"):
        registry.periodic("sweep", every=timedelta(minutes=2))


def test_the_core_housekeeping_jobs_are_scheduled_hourly() -> None:
    load_task_modules()
    for kind in ("prune_idempotency_keys", "prune_finished_jobs"):
        assert kind in jobs.registry.handlers
        assert jobs.registry.schedules[kind].every == timedelta(hours=1)


async def _is(db: Database, job_id: UUID, status: str) -> bool:
    return await status_of(db, job_id) == status
