"""The outermost request wrapper: request id, body limits, timing, logs, metrics.

Written as plain ASGI middleware so it sees every response, including the
500 it renders itself for an exception nothing else handled.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Container

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from congocart.core import metrics
from congocart.core.errors import problem_response, unexpected_problem

log = structlog.get_logger("congocart.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_READ_HEADERS = frozenset({b"x-request-id", b"content-length", b"content-type"})
_UNLOGGED_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, form_paths: Container[str] = ()
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.form_paths = form_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Only the headers this wrapper reads: it runs on every request.
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            name = name.lower()
            if name in _READ_HEADERS:
                headers[name.decode("latin-1")] = value.decode("latin-1")
        sent_id = headers.get("x-request-id", "")
        request_id = sent_id if _REQUEST_ID.match(sent_id) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        request = Request(scope)
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                raw = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                raw.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = raw
            await send(message)

        rejection = self._reject_early(scope, headers, request)
        if rejection is not None:
            await rejection(scope, receive, send_with_id)
            self._observe(scope, request_id, status_holder["status"], started)
            return

        if scope["method"] in _BODY_METHODS and "content-length" not in headers:
            # A streamed body of unknown length: read it here, up to the limit,
            # so an oversized one is a 413 before any handler sees it.
            body = await self._read_limited(receive)
            if body is None:
                await self._too_large(request)(scope, receive, send_with_id)
                self._observe(scope, request_id, 413, started)
                return
            receive = _replay(body, receive)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            response = unexpected_problem(request, exc)  # logs it
            if not status_holder["started"]:
                await response(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            self._observe(scope, request_id, status_holder["status"], started)

    def _reject_early(
        self, scope: Scope, headers: dict[str, str], request: Request
    ) -> ASGIAppLike | None:
        # PostgreSQL text cannot hold NUL; no route has a use for it in a path or query.
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            return problem_response(
                request, status=400, code="bad_request", detail="NUL characters are not allowed."
            )
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return problem_response(
                    request, status=400, code="bad_request", detail="Invalid Content-Length."
                )
            if int(length) > self.max_body_bytes:
                return self._too_large(request)
        if scope["method"] in _BODY_METHODS and (length not in (None, "0")):
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            is_json = media_type == "application/json" or media_type.endswith("+json")
            is_form = (
                media_type == "application/x-www-form-urlencoded"
                and scope["path"] in self.form_paths
            )
            if not (is_json or is_form):
                return problem_response(
                    request,
                    status=415,
                    code="unsupported_media_type",
                    detail="Send the body as application/json.",
                )
        return None

    async def _read_limited(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self, request: Request) -> ASGIAppLike:
        return problem_response(
            request,
            status=413,
            code="payload_too_large",
            detail=f"The body may be at most {self.max_body_bytes} bytes.",
        )

    def _observe(self, scope: Scope, request_id: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = _route_template(scope)
        metrics.observe_request(scope["method"], route, status, elapsed)
        # The level check first: a filtered-out call still builds its arguments.
        if route not in _UNLOGGED_ROUTES and log.is_enabled_for(logging.INFO):
            log.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                request_id=request_id,
            )


ASGIAppLike = ASGIApp


def _replay(body: bytes, downstream: Receive) -> Receive:
    """A receive that yields the buffered body once, then waits on the real channel."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await downstream()

    return receive


def _route_template(scope: Scope) -> str:
    """The matched route's path template, so metrics labels stay bounded.

    FastAPI keeps the route of an included router with its own path (without
    the include prefix) in `scope["route"]`; the full template is on the
    effective route context it records in `scope["fastapi"]`. The metrics
    test pins this for the pinned FastAPI version.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", None)
    if isinstance(path, str) and path:
        return path
    route = scope.get("route")
    if route is not None and isinstance(getattr(route, "path", None), str):
        return str(route.path)
    return "unmatched"
