"""The load generator's HTTP/1.1 codec, against a tiny local server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from congocart.bench.client import (
    Client,
    HttpConnection,
    ProtocolError,
    ResponseParser,
    encode_request,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    request_line, *lines = head.rstrip("\r\n").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return request_line, headers, body


async def serve(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[int, list[int]]]:
    """Answers every request with a JSON echo; counts connections accepted."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                request_line, headers, body = await read_request(reader)
                payload = (
                    b'{"line": "'
                    + request_line.encode()
                    + b'", "body": '
                    + (body or b"null")
                    + b"}"
                )
                writer.write(
                    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n".encode()
                    + f"X-Token: {headers.get('x-cart-token', '')}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server, port = await serve(handler)
    yield port, connections
    server.close()
    await server.wait_closed()


def test_encode_request_writes_request_line_headers_and_json_body() -> None:
    raw = encode_request(
        "POST", "/api/v1/carts", host="h:1", body=b'{"a":1}', headers=[("X-Cart-Token", "t")]
    )
    assert raw == (
        b"POST /api/v1/carts HTTP/1.1\r\nHost: h:1\r\nX-Cart-Token: t\r\n"
        b"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n"
        b'{"a":1}'
    )


def test_encode_request_without_body_has_no_content_headers() -> None:
    assert encode_request("GET", "/x", host="h") == b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"


def test_parser_assembles_a_response_split_across_many_reads() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world"
    parser = ResponseParser()
    results = [parser.feed(raw[i : i + 1]) for i in range(len(raw))]
    assert all(r is None for r in results[:-1])
    response = results[-1]
    assert response is not None
    assert (response.status, response.body, response.headers["x-a"]) == (200, b"hello world", "b")


def test_parser_decodes_chunked_bodies_with_trailers() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    parser = ResponseParser()
    assert parser.feed(raw[:30]) is None
    assert parser.feed(raw[30:50]) is None
    response = parser.feed(raw[50:])
    assert response is not None
    assert response.body == b"hello world"


def test_parser_keeps_bytes_of_the_next_response() -> None:
    parser = ResponseParser()
    two = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    first = parser.feed(two)
    assert first is not None
    assert (first.status, first.body) == (204, b"")
    second = parser.feed(b"")
    assert second is not None
    assert (second.status, second.body) == (200, b"ok")


def test_parser_skips_interim_responses() -> None:
    parser = ResponseParser()
    response = parser.feed(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    )
    assert response is not None
    assert response.status == 201


def test_parser_reads_a_body_delimited_by_the_connection_closing() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart") is None
    assert parser.feed(b"ial") is None
    response = parser.feed_eof()
    assert response is not None
    assert response.body == b"partial"
    assert not response.keep_alive


def test_parser_rejects_garbage_and_truncated_responses() -> None:
    with pytest.raises(ProtocolError):
        ResponseParser().feed(b"SMTP ready\r\n\r\n")
    truncated = ResponseParser()
    truncated.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    with pytest.raises(ProtocolError):
        truncated.feed_eof()


async def test_client_reuses_one_keep_alive_connection(echo_server: tuple[int, list[int]]) -> None:
    port, connections = echo_server
    client = Client("127.0.0.1", port)
    try:
        for i in range(50):
            response = await client.request(
                "POST", f"/items/{i}", json={"n": i}, headers=[("X-Cart-Token", f"t{i}")]
            )
            assert response.status == 201
            assert response.json() == {"line": f"POST /items/{i} HTTP/1.1", "body": {"n": i}}
            assert response.headers["x-token"] == f"t{i}"
    finally:
        client.close()
    assert len(connections) == 1
    assert client.connects == 1


async def test_client_reconnects_after_the_server_closes_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server, port = await serve(handler)
    client = Client("127.0.0.1", port)
    try:
        for _ in range(3):
            assert (await client.request("GET", "/")).body == b"ok"
    finally:
        client.close()
        server.close()
        await server.wait_closed()
    assert client.connects == 3


async def test_client_times_out_and_a_dead_server_is_a_connection_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)
        writer.close()

    server, port = await serve(silent)
    client = Client("127.0.0.1", port, timeout=0.2)
    try:
        with pytest.raises(TimeoutError):
            await client.request("GET", "/")
    finally:
        client.close()
        server.close()
        await server.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await HttpConnection.open("127.0.0.1", port)


def test_client_works_on_uvloop_as_the_bench_runs_it() -> None:
    import uvloop

    async def exchange() -> tuple[int, bytes]:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes")
            await writer.drain()
            writer.close()

        server, port = await serve(handler)
        client = Client("127.0.0.1", port)
        try:
            response = await client.request("GET", "/")
        finally:
            client.close()
            server.close()
        return response.status, response.body

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(exchange()) == (200, b"yes")
