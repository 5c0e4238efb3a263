"""The API server the bench starts, and CPU seconds of process trees."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from congocart.bench.client import Client


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants, alive or reaped.

    Children that have exited and were waited for are in their parent's
    `children_user`/`children_system`; PostgreSQL's postmaster reaps its
    backends, uvicorn's supervisor its workers.
    """
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def own_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


class ApiServer:
    """`congocart serve --workers N` on a free port, in its own session."""

    def __init__(
        self,
        *,
        database_url: str,
        port: int,
        workers: int,
        log_path: Path,
        home: Path,
        host: str = "127.0.0.1",
    ) -> None:
        self.database_url = database_url
        self.host = host
        self.port = port
        self.workers = workers
        self.log_path = log_path
        self.home = home
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the API is not running")
        return self.process.pid

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            CONGOCART_HOME=str(self.home),
            CONGOCART_RATE_LIMIT_ENABLED="false",
            CONGOCART_LOG_JSON="true",
            CONGOCART_LOG_LEVEL="WARNING",
            # Background jobs are the workers' business (`congocart worker`),
            # not the API processes' being measured here.
            CONGOCART_RUN_WORKER_IN_PROCESS="false",
            CONGOCART_SEED_DEMO="false",
            # One pooled connection per request in flight: the bench's largest
            # concurrency must not queue on the pool of a single worker.
            CONGOCART_DB_POOL_MAX=env.get("CONGOCART_DB_POOL_MAX", "40"),
        )
        env.pop("REDIS_URL", None)
        return env

    def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "congocart.cli",
                    "serve",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()

    async def wait_ready(self, *, within: float = 60.0) -> None:
        """Until the API answers /readyz with 200 (or the server dies)."""
        try:
            async with asyncio.timeout(within):
                while True:
                    if self.process is None or self.process.poll() is not None:
                        raise RuntimeError(f"the API exited at start:\n{self.log_tail()}")
                    client = Client(self.host, self.port, timeout=5)
                    try:
                        if (await client.request("GET", "/readyz")).status == 200:
                            return
                    except (OSError, TimeoutError):
                        pass  # not listening yet, or a worker still starting
                    finally:
                        client.close()
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise RuntimeError(
                f"the API was not ready in {within:.0f} s:\n{self.log_tail()}"
            ) from None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the server's process group (it is its own session), then SIGKILL."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers the supervisor left behind share its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
