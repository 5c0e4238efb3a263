"""Sending webhook deliveries over HTTP (httpx), behind the `WebhookSender` port.

In production the sender refuses targets that resolve to loopback, private,
link-local or otherwise non-public addresses, so a webhook cannot be pointed
at the shop's own network (SSRF); development and tests deliver to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from congocart.webhooks.domain import WebhookSendFailed, is_public_address

USER_AGENT = "CongoCart-Webhooks/1"


class HttpxWebhookSender:
    """`WebhookSender` over one shared `httpx.AsyncClient` (no redirects followed)."""

    def __init__(self, *, block_private_targets: bool, timeout_seconds: float = 10.0) -> None:
        self._block_private = block_private_targets
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            # A redirect could lead to a private address after the check: not followed.
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    async def send(self, *, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        if self._block_private:
            await _refuse_private_target(url)
        try:
            response = await self._client.post(
                url, content=body, headers={"Content-Type": "application/json", **headers}
            )
        except httpx.HTTPError as exc:
            raise WebhookSendFailed(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()


async def _refuse_private_target(url: str) -> None:
    """Resolve the host and refuse if any address is not public.

    The connection resolves the name again; a DNS answer that changes in
    between (rebinding) is the residual risk, narrowed by the short window.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookSendFailed(f"cannot resolve {host!r}: {exc}") from exc
    addresses = {str(info[4][0]) for info in infos}
    blocked = sorted(a for a in addresses if not is_public_address(a))
    if blocked or not addresses:
        raise WebhookSendFailed(f"target {host!r} resolves to a non-public address")
