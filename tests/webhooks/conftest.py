"""Webhook test helpers: a real HTTP receiver on 127.0.0.1 that checks signatures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
import pytest

from congocart.adapters.webhook_sender import HttpxWebhookSender
from congocart.webhooks import tasks
from congocart.webhooks.domain import SIGNATURE_HEADER, verify


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_valid: bool

    @property
    def event(self) -> dict[str, object]:
        parsed: dict[str, object] = orjson.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then 200), after checking the
    signature against `secret` (a bad signature is answered 400, as a receiver would)."""

    statuses: list[int] = field(default_factory=list)
    secret: str = ""
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/congocart"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_head = await reader.readuntil(b"\r\n\r\n")
            lines = request_head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            valid = verify(
                self.secret,
                header=headers.get(SIGNATURE_HEADER.lower(), ""),
                body=body,
                now=int(time.time()),
            )
            self.received.append(Received(headers=headers, body=body, signature_valid=valid))
            status = self.statuses.pop(0) if self.statuses else 200
            if not valid:
                status = 400
            answer = f"HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\nConnection: close"
            writer.write(f"{answer}\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, host="127.0.0.1", port=0)
    receiver.port = server.sockets[0].getsockname()[1]
    async with server:
        yield receiver
        server.close()


@pytest.fixture
async def sender() -> AsyncIterator[HttpxWebhookSender]:
    sender = HttpxWebhookSender(block_private_targets=False, timeout_seconds=5)
    yield sender
    await sender.aclose()


@pytest.fixture
async def installed_sender(sender: HttpxWebhookSender) -> AsyncIterator[HttpxWebhookSender]:
    """The delivery job's sender for this test, with retries a second apart."""
    tasks.install_sender(sender, retry_base=timedelta(seconds=1))
    yield sender
    tasks.install_sender(None)
