"""The background worker: runs the outbox's jobs (see `congocart.core.jobs`).

A worker loops: schedule the current periodic slots, bury jobs whose last
attempt's worker died, claim as many due jobs as it has free slots (`FOR
UPDATE SKIP LOCKED`, under a lease), and run each in a task of its own. It
sleeps until a NOTIFY from `enqueue` (sent at commit), a finished job frees a
slot, or the poll interval (the fallback for delayed jobs, missed
notifications and a lost listener connection) runs out.

Running a job: one transaction locks the claimed row, runs the handler, marks
the job done and commits, so the effect and "done" land together. On an
exception the transaction rolls back and the job is put back with exponential
back-off and jitter, or made dead once out of attempts. A worker that dies
loses nothing: its transaction rolls back with its connection, the lease
expires, and another worker claims the job again.

Any number of workers (processes, or tasks inside `congocart serve`) may run
against one database; that is how the work scales.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import os
import pkgutil
import signal
import socket
import uuid
from datetime import UTC, datetime, timedelta

import structlog
from structlog.typing import FilteringBoundLogger

import congocart
from congocart.adapters.payment_gateway import open_payment_gateway
from congocart.config import Settings
from congocart.core import jobs, metrics
from congocart.core.backoff import retry_delay
from congocart.core.db import Connection, Database
from congocart.core.logging import configure_logging
from congocart.payments import service as payments

log = structlog.get_logger("congocart.worker")

MAX_ERROR_CHARS = 2000


def load_task_modules() -> list[str]:
    """Import `congocart.core.tasks` and every `congocart.<feature>.tasks`, registering handlers."""
    names = ["congocart.core.tasks"]
    for info in pkgutil.iter_modules(congocart.__path__):
        name = f"congocart.{info.name}.tasks"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            names.append(name)
    for name in names:
        importlib.import_module(name)
    return names


class Worker:
    """Claims and runs jobs with at most `concurrency` in flight."""

    def __init__(
        self,
        db: Database,
        *,
        registry: jobs.Registry | None = None,
        concurrency: int = 4,
        lease: timedelta = timedelta(seconds=60),
        poll_interval: float = 2.0,
        retry_base: timedelta = timedelta(seconds=10),
        retry_cap: timedelta = timedelta(hours=1),
        shutdown_grace: float = 30.0,
        name: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.db = db
        self.registry = registry if registry is not None else jobs.registry
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.shutdown_grace = shutdown_grace
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._scheduled_slots: dict[str, datetime] = {}

    def stop(self) -> None:
        """Stop claiming; `run` returns once the jobs in flight finish (or the grace ends)."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Run until `stop()`. Cancelling this task stops at once, like a killed process."""
        log.info("worker_started", worker=self.name, concurrency=self.concurrency)
        listener = asyncio.create_task(self._listen(), name=f"{self.name}:listen")
        try:
            await self._loop()
            await self._drain()
        finally:
            listener.cancel()
            for task in self._running:
                task.cancel()
            await asyncio.gather(listener, *self._running, return_exceptions=True)
            log.info("worker_stopped", worker=self.name)

    async def _loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            free = self.concurrency - len(self._running)
            claimed = 0
            try:
                async with self.db.acquire() as conn:
                    await self._schedule(conn)
                    await self._bury_abandoned(conn)
                    if free > 0:
                        claimed = await self._claim_and_start(conn, free)
                failures = 0
            except Exception as exc:
                # Most likely the database is away: keep trying, more slowly, and say so
                # once per outage. The loop must outlive any error, or jobs stop silently.
                failures += 1
                if failures == 1:
                    log.error("worker_loop_failed", worker=self.name, exc_info=exc)
                await self._sleep(min(self.poll_interval * failures, 30.0))
                continue
            if free > 0 and claimed == free:
                continue  # maybe more is due; the next pass finds no free slot and waits
            await self._sleep(self._next_wait())

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def _next_wait(self) -> float:
        """The poll interval, shortened to wake at the next periodic slot's start."""
        wait = self.poll_interval
        now = datetime.now(UTC)
        for schedule in self.registry.schedules.values():
            next_slot = schedule.slot_start(now) + schedule.every
            wait = min(wait, (next_slot - now).total_seconds() + 0.01)
        return max(wait, 0.01)

    async def _drain(self) -> None:
        """Let the jobs in flight finish; cancel what is left after the grace period."""
        if not self._running:
            return
        log.info("worker_draining", worker=self.name, in_flight=len(self._running))
        _, pending = await asyncio.wait(self._running, timeout=self.shutdown_grace)
        for task in pending:
            # Cancelled mid-run: rolled back, and rerun by another worker after the lease.
            task.cancel()

    async def _schedule(self, conn: Connection) -> None:
        now = datetime.now(UTC)
        new = [
            s
            for s in self.registry.schedules.values()
            if self._scheduled_slots.get(s.kind) != s.slot_start(now)
        ]
        if not new:
            return
        inserted = await self.schedule(conn, new, now)
        if inserted:
            self._wake.set()

    async def schedule(
        self, conn: Connection, schedules: list[jobs.Schedule], now: datetime
    ) -> int:
        """Insert the slot of `now` for `schedules`; the unique dedupe key makes it once-only."""
        inserted = await jobs.schedule_slots(conn, schedules, now)
        for s in schedules:
            self._scheduled_slots[s.kind] = s.slot_start(now)
        return inserted

    async def _bury_abandoned(self, conn: Connection) -> None:
        for kind in await jobs.bury_abandoned(conn):
            metrics.JOBS.labels(kind, "dead").inc()
            log.error("job_dead", kind=kind, reason="worker stopped during the last attempt")

    async def _claim_and_start(self, conn: Connection, free: int) -> int:
        claimed = await jobs.claim_due(
            conn,
            kinds=list(self.registry.handlers),
            limit=free,
            lease=self.lease,
            worker=self.name,
        )
        for job in claimed:
            task = asyncio.create_task(self._execute(job), name=f"job:{job.kind}:{job.id}")
            self._running.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free

    async def _execute(self, job: jobs.Job) -> None:
        handler = self.registry.handlers[job.kind]
        bound = log.bind(job_id=str(job.id), kind=job.kind, attempt=job.attempt, worker=self.name)
        try:
            # The handler must finish within the lease: past it, another worker could
            # take the job as soon as this transaction lets go of the row.
            async with asyncio.timeout(self.lease.total_seconds()):
                async with self.db.transaction() as tx:
                    if not await jobs.lock_claimed(tx, job):
                        bound.warning("job_lost", reason="claimed again after the lease expired")
                        return
                    await handler(tx, job)
                    await jobs.mark_done(tx, job.id)
        except Exception as exc:
            await self._fail(job, exc, bound)
            return
        metrics.JOBS.labels(job.kind, "done").inc()
        bound.debug("job_done")

    async def _fail(self, job: jobs.Job, exc: Exception, bound: FilteringBoundLogger) -> None:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        delay = retry_delay(job.attempt, base=self.retry_base, cap=self.retry_cap)
        try:
            async with self.db.acquire() as conn:
                status = await jobs.record_failure(conn, job, error=error, retry_in=delay)
        except Exception as record_exc:
            # Not recorded: the lease expires and the job is retried all the same.
            bound.error("job_failure_not_recorded", error=str(record_exc), exc_info=exc)
            return
        if status == "dead":
            metrics.JOBS.labels(job.kind, "dead").inc()
            bound.error("job_dead", error=error, exc_info=exc)
        elif status == "pending":
            metrics.JOBS.labels(job.kind, "retried").inc()
            bound.warning("job_failed", error=error, retry_in_s=delay.total_seconds())

    async def _listen(self) -> None:
        """Hold a LISTEN connection so `enqueue`'s NOTIFY wakes this worker at once."""
        while not self._stopping.is_set():
            lost = asyncio.Event()

            def on_lost(_conn: object, lost: asyncio.Event = lost) -> None:
                lost.set()

            try:
                async with self.db.acquire() as conn:
                    await conn.add_listener(jobs.NOTIFY_CHANNEL, self._notified)
                    conn.add_termination_listener(on_lost)
                    try:
                        await self._wait_for_stop_or(lost)
                    finally:
                        conn.remove_termination_listener(on_lost)
                        if not conn.is_closed():
                            await conn.remove_listener(jobs.NOTIFY_CHANNEL, self._notified)
            except Exception as exc:
                log.warning("worker_listener_lost", worker=self.name, error=repr(exc))
            if not self._stopping.is_set():
                # Polling covers the gap; listen again shortly.
                await self._sleep_unless_stopping(self.poll_interval)

    async def _wait_for_stop_or(self, event: asyncio.Event) -> None:
        stop = asyncio.create_task(self._stopping.wait())
        other = asyncio.create_task(event.wait())
        try:
            await asyncio.wait({stop, other}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            other.cancel()

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _notified(self, *_args: object) -> None:
        self._wake.set()


async def run_worker(settings: Settings, *, dsn: str, concurrency: int) -> None:
    """The `congocart worker` process: run until SIGTERM or SIGINT, then drain."""
    configure_logging(json=settings.log_json, level=settings.log_level)
    load_task_modules()
    # Each job holds a connection while it runs; one more for claiming, one for LISTEN.
    db = Database(dsn, min_size=2, max_size=concurrency + 2)
    await db.connect()
    worker = Worker(db, concurrency=concurrency)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    try:
        # Jobs that give money back (voids of abandoned checkouts) use this gateway.
        async with open_payment_gateway(dsn, max_connections=concurrency) as gateway:
            payments.install_gateway(gateway)
            await worker.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await db.close()
