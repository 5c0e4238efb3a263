"""`/metrics` under `congocart serve --workers 2`: every process's requests, whoever answers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx

from congocart.bench.cluster import free_port
from congocart.core.db import Database
from tests.core.conftest import eventually

CONGOCART = Path(sys.executable).parent / "congocart"
PRODUCTS_OK = re.compile(
    r'^congocart_http_requests_total\{method="GET",route="/api/v1/products",status="200"\} '
    r"([0-9.e+]+)$",
    re.MULTILINE,
)


async def get(port: int, path: str) -> httpx.Response:
    # A connection of its own each time, so the kernel hands them to either process.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        return await client.get(path, headers={"Connection": "close"})


async def test_every_scrape_counts_the_requests_of_both_serving_processes(
    committed_db: Database, tmp_path: Path
) -> None:
    port = free_port()
    counts_dir = tmp_path / "metrics"
    counts_dir.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": committed_db.dsn,
        "CONGOCART_RATE_LIMIT_ENABLED": "false",
        "CONGOCART_LOG_LEVEL": "WARNING",
        # As an operator would set it; without it `serve` makes (and removes) its own.
        "PROMETHEUS_MULTIPROC_DIR": str(counts_dir),
    }
    env.pop("REDIS_URL", None)
    process = await asyncio.create_subprocess_exec(
        str(CONGOCART),
        "serve",
        "--workers",
        "2",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def ready() -> bool:
        try:
            return (await get(port, "/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    sent = 0

    async def both_processes_counting() -> bool:
        # A second process may still be starting: keep asking until both
        # have answered some (each counts into files of its own).
        nonlocal sent
        for _ in range(10):
            assert (await get(port, "/api/v1/products?limit=1")).status_code == 200
            sent += 1
        return await _counting_processes(counts_dir, at_least=2)

    try:
        await eventually(ready, within=30)
        await eventually(both_processes_counting, within=30)
        # Every scrape, whichever process answers it, adds them all up.
        for _ in range(8):
            scrape = await get(port, "/metrics")
            assert scrape.status_code == 200
            found = PRODUCTS_OK.search(scrape.text)
            assert found is not None, scrape.text[:2000]
            assert float(found.group(1)) == sent
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)


async def _counting_processes(directory: Path, *, at_least: int) -> bool:
    files = await asyncio.to_thread(lambda: list(directory.glob("counter_*.db")))
    return len({path.stem.rsplit("_", 1)[1] for path in files}) >= at_least
