"""Sending webhook deliveries over HTTP (httpx), behind the `WebhookSender` port.

In production the sender refuses targets that resolve to loopback, private,
link-local or otherwise non-public addresses, so a webhook cannot be pointed
at the shop's own network (SSRF); development and tests deliver to 127.0.0.1.

The check is made where the connection is opened (`PublicOnlyBackend`): the
host is resolved once, every address it resolves to is vetted, and the
socket is connected to a vetted address. No second lookup happens between
the check and the connection, so a DNS answer that changes in between (DNS
rebinding) cannot lead the request inside. TLS still verifies the
certificate against the URL's host name.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping

import httpcore
import httpx

from congocart.webhooks.domain import WebhookSendFailed, is_public_address

USER_AGENT = "CongoCart-Webhooks/1"
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

Resolve = Callable[[str, int], Awaitable[list[str]]]


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend that connects only to vetted addresses."""

    def __init__(
        self,
        *,
        resolve: Resolve = resolve_host,
        allowed: Callable[[str], bool] = is_public_address,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolve = resolve
        self._allowed = allowed
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        if not addresses or not all(self._allowed(address) for address in addresses):
            raise httpcore.ConnectError(f"target {host!r} resolves to a non-public address")
        return await self._inner.connect_tcp(
            addresses[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a webhook target is never a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _VettedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connection pool opening connections through
    `PublicOnlyBackend` (httpx takes no network backend as an argument)."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        super().__init__()
        # What httpx.AsyncHTTPTransport() builds by default, but for the backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=DEFAULT_LIMITS.max_connections,
            max_keepalive_connections=DEFAULT_LIMITS.max_keepalive_connections,
            keepalive_expiry=DEFAULT_LIMITS.keepalive_expiry,
            network_backend=backend,
        )


class HttpxWebhookSender:
    """`WebhookSender` over one shared `httpx.AsyncClient` (no redirects followed)."""

    def __init__(
        self,
        *,
        block_private_targets: bool,
        timeout_seconds: float = 10.0,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        if backend is None and block_private_targets:
            backend = PublicOnlyBackend()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            # A redirect could lead to a private address after the check: not followed.
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=None if backend is None else _VettedTransport(backend),
        )

    async def send(self, *, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            response = await self._client.post(
                url, content=body, headers={"Content-Type": "application/json", **headers}
            )
        except httpx.HTTPError as exc:
            raise WebhookSendFailed(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()
