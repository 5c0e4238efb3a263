"""A minimal HTTP/1.1 client for the load generator.

One persistent keep-alive connection per virtual client and one request in
flight on it. httpx spends more CPU per request than the API's cheapest
routes do, which would make the load generator the bottleneck on a small
machine; this codec writes a request with one `bytes` join and parses a
response with a handful of `find` calls on an `asyncio.Protocol`.

It speaks just enough HTTP/1.1 for our own server: `Content-Length` and
chunked bodies, bodies delimited by the connection closing, and
`Connection: close`. No pipelining, no redirects, no TLS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

Headers = Sequence[tuple[str, str]]

_NO_BODY_STATUSES = frozenset({204, 304})


class ProtocolError(Exception):
    """The server sent something that is not a well-formed HTTP/1.1 response."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


def encode_request(
    method: str,
    target: str,
    *,
    host: str,
    body: bytes | None = None,
    headers: Headers = (),
    content_type: str = "application/json",
) -> bytes:
    """The bytes of one request: request line, headers, blank line, body."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if body is not None:
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class ResponseParser:
    """Incremental parser: `feed` bytes as they arrive, get a `Response` when complete.

    Bytes after a complete response stay buffered for the next one. Set
    `expect_no_body` before the response to a HEAD request.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._headers: dict[str, str] = {}
        self._head_done = False
        self._length: int | None = None
        self._chunked = False
        self._until_close = False
        self._chunks = bytearray()
        self.expect_no_body = False

    @property
    def reading_until_close(self) -> bool:
        return self._head_done and self._until_close

    def feed(self, data: bytes) -> Response | None:
        self._buffer += data
        if not self._head_done and not self._parse_head():
            return None
        if self._chunked:
            return self._parse_chunked()
        if self._until_close:
            return None
        assert self._length is not None
        if len(self._buffer) < self._length:
            return None
        body = bytes(self._buffer[: self._length])
        del self._buffer[: self._length]
        return self._finish(body)

    def feed_eof(self) -> Response | None:
        """The connection closed: completes a body delimited by the close, or fails."""
        if self._head_done and self._until_close:
            body = bytes(self._buffer)
            self._buffer.clear()
            return self._finish(body)
        if self._head_done or self._buffer:
            raise ProtocolError("connection closed in the middle of a response")
        return None

    def _finish(self, body: bytes) -> Response:
        response = Response(self._status, self._headers, body)
        expect_no_body = self.expect_no_body
        self._reset()
        self.expect_no_body = expect_no_body
        return response

    def _parse_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > 65536:
                raise ProtocolError("response head larger than 64 KiB")
            return False
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {status_line!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError(f"bad header line {line!r}")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            # An interim response (100 Continue): skip it, the real one follows.
            return self._parse_head()
        self._status = status
        self._headers = headers
        self._head_done = True
        if self.expect_no_body or status in _NO_BODY_STATUSES:
            self._length = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError as exc:
                raise ProtocolError("bad Content-Length") from exc
            if self._length < 0:
                raise ProtocolError("negative Content-Length")
        else:
            self._until_close = True
        return True

    def _parse_chunked(self) -> Response | None:
        buffer = self._buffer
        pos = 0
        while True:
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                break
            size_text = bytes(buffer[pos:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise ProtocolError(f"bad chunk size {size_text!r}") from exc
            if size == 0:
                # The last chunk, then optional trailers, then a blank line.
                if buffer[line_end + 2 : line_end + 4] == b"\r\n":
                    end = line_end + 4
                else:
                    trailers_end = buffer.find(b"\r\n\r\n", line_end + 2)
                    if trailers_end < 0:
                        break
                    end = trailers_end + 4
                del buffer[:end]
                return self._finish(bytes(self._chunks))
            data_start = line_end + 2
            data_end = data_start + size
            if len(buffer) < data_end + 2:
                break
            if buffer[data_end : data_end + 2] != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
            self._chunks += buffer[data_start:data_end]
            pos = data_end + 2
        # Drop the chunks already copied out so the buffer does not grow.
        del buffer[:pos]
        return None


class HttpConnection(asyncio.Protocol):
    """One TCP connection; `request` sends one request and awaits its response."""

    def __init__(self, host: str, port: int) -> None:
        self.host_header = f"{host}:{port}"
        self._transport: asyncio.Transport | None = None
        self._parser = ResponseParser()
        self._waiter: asyncio.Future[Response] | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: cls(host, port), host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for: the connection can no longer be trusted.
            self.close()
            return
        try:
            response = self._parser.feed(data)
        except ProtocolError as exc:
            waiter.set_exception(exc)
            self.close()
            return
        if response is not None:
            self._waiter = None
            if not response.keep_alive:
                self.close()
            waiter.set_result(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        self._waiter = None
        if waiter is None or waiter.done():
            return
        try:
            response = self._parser.feed_eof()
        except ProtocolError as error:
            waiter.set_exception(error)
            return
        if response is None:
            waiter.set_exception(ConnectionError("connection closed before a response"))
        else:
            waiter.set_result(response)

    async def request(
        self, method: str, target: str, *, body: bytes | None = None, headers: Headers = ()
    ) -> Response:
        if self.closed or self._transport is None:
            raise ConnectionError("connection is closed")
        if self._waiter is not None:
            raise RuntimeError("one request at a time on a connection")
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._parser.expect_no_body = method == "HEAD"
        self._transport.write(
            encode_request(method, target, host=self.host_header, body=body, headers=headers)
        )
        return await waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class Client:
    """A virtual client's connection: reconnects after the server closes it."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._connection: HttpConnection | None = None
        self.connects = 0

    async def request(
        self,
        method: str,
        target: str,
        *,
        json: object | None = None,
        headers: Headers = (),
    ) -> Response:
        """Send one request; a timeout or a broken connection raises and drops the connection."""
        body = None if json is None else orjson.dumps(json)
        try:
            async with asyncio.timeout(self.timeout):
                connection = self._connection
                if connection is None or connection.closed:
                    connection = await HttpConnection.open(self.host, self.port)
                    self._connection = connection
                    self.connects += 1
                return await connection.request(method, target, body=body, headers=headers)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
