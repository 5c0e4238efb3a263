"""Admin endpoints over the job queue: what is stuck or dead, and a way to retry it.

The queue's SQL lives in `congocart.core.jobs`, the outbox module every feature
enqueues through; this router calls it directly, as a feature's router calls
its service: there are no rules here beyond what that module already does.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter

from congocart.core import jobs as outbox
from congocart.core.db import Conn, Tx
from congocart.core.errors import problem_responses
from congocart.core.jobs import JobStatus
from congocart.core.pagination import Cursor, Limit, decode_time_cursor, encode_cursor
from congocart.core.schemas import Page
from congocart.identity.dependencies import AdminUser
from congocart.jobs.errors import JobNotDead, JobNotFound
from congocart.jobs.schemas import JobRead

router = APIRouter(prefix="/admin/jobs", tags=["admin: jobs"], responses=problem_responses(403))


def _after(cursor: str | None) -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    return decode_time_cursor(cursor)


@router.get("", response_model=Page[JobRead])
async def list_jobs(
    admin: AdminUser,
    conn: Conn,
    status: JobStatus | None = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[JobRead]:
    """Background jobs, most recently changed first.

    `?status=dead` lists the jobs that ran out of attempts, with their last error.
    """
    records = await outbox.list_jobs(conn, status=status, limit=limit + 1, after=_after(cursor))
    page, more = records[:limit], len(records) > limit
    next_cursor = (
        encode_cursor([page[-1].updated_at.isoformat(), str(page[-1].id)]) if more else None
    )
    return Page[JobRead](
        items=[JobRead.model_validate(record) for record in page], next_cursor=next_cursor
    )


@router.post("/{job_id}/retry", response_model=JobRead, responses=problem_responses(409))
async def retry_job(admin: AdminUser, tx: Tx, job_id: UUID) -> JobRead:
    """Give a dead job a fresh set of attempts, due now. Only dead jobs can be retried."""
    record = await outbox.requeue_dead(tx, job_id)
    if record is None:
        if await outbox.get_job(tx, job_id) is None:
            raise JobNotFound()
        raise JobNotDead()
    return JobRead.model_validate(record)
