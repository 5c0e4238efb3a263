"""Housekeeping jobs of the core tables, run hourly by the workers."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from congocart.core import jobs

if TYPE_CHECKING:
    from congocart.core.db import Connection

# The contract keeps an idempotency key (and its stored response) at least 24 h;
# pruning at 48 h leaves a margin for clocks and a late hourly run.
IDEMPOTENCY_KEY_RETENTION = timedelta(hours=48)
# Done jobs are kept a week for inspection; dead ones a month, as evidence.
DONE_JOB_RETENTION = timedelta(days=7)
DEAD_JOB_RETENTION = timedelta(days=30)
# One run deletes at most this many rows, so it never holds locks for long;
# the next run takes the rest.
PRUNE_BATCH = 50_000


@jobs.periodic("prune_idempotency_keys", every=timedelta(hours=1))
async def prune_idempotency_keys(tx: Connection, job: jobs.Job) -> None:
    await tx.execute(
        """
        DELETE FROM idempotency_keys
        WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM idempotency_keys
            WHERE created_at < now() - make_interval(secs => $1)
            LIMIT $2
        ))
        """,
        IDEMPOTENCY_KEY_RETENTION.total_seconds(),
        PRUNE_BATCH,
    )


@jobs.periodic("prune_finished_jobs", every=timedelta(hours=1))
async def prune_finished_jobs(tx: Connection, job: jobs.Job) -> None:
    await tx.execute(
        """
        DELETE FROM jobs
        WHERE id = ANY(ARRAY(
            SELECT id FROM jobs
            WHERE (status = 'done' AND finished_at < now() - make_interval(secs => $1))
               OR (status = 'dead' AND finished_at < now() - make_interval(secs => $2))
            LIMIT $3
        ))
        """,
        DONE_JOB_RETENTION.total_seconds(),
        DEAD_JOB_RETENTION.total_seconds(),
        PRUNE_BATCH,
    )
