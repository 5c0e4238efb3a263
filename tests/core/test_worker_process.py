"""The worker as it is started: inside `serve` (the lifespan) and as `congocart worker`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

from congocart.config import Settings
from congocart.core import jobs
from congocart.core.db import Connection, Database
from congocart.main import create_app
from tests.core.conftest import eventually

CONGOCART = Path(sys.executable).parent / "congocart"


async def enqueue_committed(db: Database, kind: str) -> uuid.UUID:
    async with db.transaction() as tx:
        return await jobs.enqueue(tx, kind=kind, payload={})


async def status_of(db: Database, job_id: uuid.UUID) -> str:
    async with db.acquire() as conn:
        status: str = await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id)
        return status


async def test_the_app_runs_a_worker_in_process_when_configured(
    committed_db: Database, settings: Settings
) -> None:
    kind = f"in_process_probe_{uuid.uuid4().hex[:8]}"
    ran = asyncio.Event()

    @jobs.job(kind)
    async def probe(tx: Connection, job: jobs.Job) -> None:
        ran.set()

    app = create_app(
        settings.model_copy(update={"run_worker_in_process": True}), database=committed_db
    )
    async with app.router.lifespan_context(app):
        job_id = await enqueue_committed(committed_db, kind)
        await asyncio.wait_for(ran.wait(), timeout=10)
        await eventually(lambda: _is(committed_db, job_id, "done"))


async def test_the_app_runs_no_worker_unless_configured(
    committed_db: Database, settings: Settings
) -> None:
    kind = f"not_in_process_{uuid.uuid4().hex[:8]}"
    jobs.register(kind, _nothing)
    app = create_app(settings, database=committed_db)
    assert not settings.run_worker_in_process
    async with app.router.lifespan_context(app):
        job_id = await enqueue_committed(committed_db, kind)
        await asyncio.sleep(0.5)
        assert await status_of(committed_db, job_id) == "pending"


async def test_the_worker_command_runs_jobs_and_stops_cleanly_on_sigterm(
    committed_db: Database,
) -> None:
    job_id = await enqueue_committed(committed_db, "prune_finished_jobs")
    env = {
        **os.environ,
        "DATABASE_URL": committed_db.dsn,
        "CONGOCART_LOG_JSON": "true",
        "CONGOCART_LOG_LEVEL": "INFO",
    }
    process = await asyncio.create_subprocess_exec(
        str(CONGOCART),
        "worker",
        "--concurrency",
        "2",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(lambda: _is(committed_db, job_id, "done"), within=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b'"concurrency": 2' in stderr
    assert b"worker_stopped" in stderr


async def _nothing(tx: Connection, job: jobs.Job) -> None:
    return None


async def _is(db: Database, job_id: uuid.UUID, status: str) -> bool:
    return await status_of(db, job_id) == status
