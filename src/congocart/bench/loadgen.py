"""The closed-loop load generator: N virtual clients, each one request at a time."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from congocart.bench.client import Client, Headers, ProtocolError, Response
from congocart.bench.latency import Tally


class OperationFailed(Exception):
    """A request in the operation got an unexpected answer (already tallied as an error)."""


class Exhausted(Exception):
    """No prepared work left (the checkout scenario's carts): the client stops."""


class Session:
    """A virtual client: its own keep-alive connection, random stream and current tally."""

    def __init__(self, client: Client, *, seed: int) -> None:
        self.client = client
        self.rng = random.Random(seed)
        self.tally = Tally()

    async def call(
        self,
        kind: str,
        method: str,
        target: str,
        *,
        expect: int,
        json: object | None = None,
        headers: Headers = (),
    ) -> Response:
        """One request, timed and tallied under `kind`; anything but `expect` fails the op."""
        started = time.perf_counter()
        try:
            response = await self.client.request(method, target, json=json, headers=headers)
        except (OSError, TimeoutError, ProtocolError) as exc:
            self.tally.record_request(
                kind, type(exc).__name__, time.perf_counter() - started, ok=False
            )
            self.tally.note_error(f"{kind} {method} {target}: {exc!r}")
            raise OperationFailed from exc
        elapsed = time.perf_counter() - started
        ok = response.status == expect
        self.tally.record_request(kind, response.status, elapsed, ok=ok)
        if not ok:
            self.tally.note_error(
                f"{kind} {method} {target} -> {response.status} {response.body[:300]!r}"
            )
            raise OperationFailed
        return response

    def close(self) -> None:
        self.client.close()


Operation = Callable[[Session], Awaitable[None]]


async def open_sessions(host: str, port: int, count: int, *, seed: int) -> list[Session]:
    """`count` sessions with their connections already open (not part of any timing)."""
    sessions = [Session(Client(host, port), seed=seed * 1000 + i) for i in range(count)]
    for session in sessions:
        await session.client.request("GET", "/healthz")
    return sessions


async def run_closed_loop(
    sessions: list[Session], operation: Operation, *, duration: float, tally: Tally
) -> float:
    """Each session runs `operation` back to back until `duration` passes; returns wall seconds.

    An operation started before the deadline finishes and counts. The
    elapsed time is until the last client stopped, so throughput is
    ops / elapsed even when clients ran out of prepared work early.
    """
    for session in sessions:
        session.tally = tally
    started = time.perf_counter()
    deadline = started + duration

    async def client_loop(session: Session) -> None:
        while time.perf_counter() < deadline:
            op_started = time.perf_counter()
            try:
                await operation(session)
            except OperationFailed:
                tally.failed_ops += 1
                continue
            except Exhausted:
                return
            tally.op_latencies.append(time.perf_counter() - op_started)
            tally.ops += 1

    async with asyncio.TaskGroup() as group:
        for session in sessions:
            group.create_task(client_loop(session))
    return time.perf_counter() - started
