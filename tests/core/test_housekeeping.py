"""The hourly prune jobs keep what the contract promises and drop the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from congocart.core import jobs, tasks
from congocart.core.db import Connection

A_RUN = jobs.Job(
    id=uuid4(),
    kind="prune",
    payload={},
    attempt=1,
    max_attempts=3,
    run_at=datetime.now(UTC),
    created_at=datetime.now(UTC),
)


async def test_idempotency_keys_are_kept_24h_and_pruned_after_48h(conn: Connection) -> None:
    for scope, age in (
        ("fresh", timedelta(hours=1)),
        ("day_old", timedelta(hours=25)),
        ("stale", timedelta(hours=49)),
    ):
        await conn.execute(
            """
            INSERT INTO idempotency_keys (scope, key, request_hash, status, created_at)
            VALUES ($1, 'k', '\\x00', 'done', now() - $2::interval)
            """,
            scope,
            age,
        )
    await tasks.prune_idempotency_keys(conn, A_RUN)
    left = {r["scope"] for r in await conn.fetch("SELECT scope FROM idempotency_keys")}
    assert left == {"fresh", "day_old"}


async def test_finished_jobs_are_pruned_after_their_retention_and_live_ones_never(
    conn: Connection,
) -> None:
    rows = [
        ("done_recent", "done", timedelta(days=1)),
        ("done_old", "done", timedelta(days=8)),
        ("dead_recent", "dead", timedelta(days=8)),
        ("dead_old", "dead", timedelta(days=31)),
        ("pending_old", "pending", None),
        ("running_old", "running", None),
    ]
    for kind, status, finished_ago in rows:
        await conn.execute(
            """
            INSERT INTO jobs (kind, status, created_at, finished_at)
            VALUES ($1, $2, now() - interval '60 days', now() - $3::interval)
            """,
            kind,
            status,
            finished_ago,
        )
    await tasks.prune_finished_jobs(conn, A_RUN)
    left = {r["kind"] for r in await conn.fetch("SELECT kind FROM jobs")}
    assert left == {"done_recent", "dead_recent", "pending_old", "running_old"}
