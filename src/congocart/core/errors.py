"""One error format for everything: RFC 9457 problem+json.

Features raise `CongoError` subclasses (status + stable code); the handlers
here render them, and also the framework's own 404/405/413/415/422 and any
unexpected exception, so a client never sees anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from congocart.core.schemas import Problem

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class CongoError(Exception):
    """An error the client can act on. Subclasses set `status_code` and `code`."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str | None] = None
    default_detail: ClassVar[str] = "The request could not be processed."
    # True when the work done before the error must be committed anyway (a token
    # family revoked on reuse, a failed login counted); the request's transaction
    # dependency commits instead of rolling back.
    keeps_changes: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequest(CongoError):
    status_code = 400
    code = "bad_request"


class MalformedJSON(CongoError):
    status_code = 400
    code = "malformed_json"
    default_detail = "The request body is not valid JSON."


class NotAuthenticated(CongoError):
    status_code = 401
    code = "not_authenticated"
    default_detail = "Authentication is required."


class InvalidToken(CongoError):
    status_code = 401
    code = "invalid_token"
    default_detail = "The token is invalid or has been revoked."


class TokenExpired(CongoError):
    status_code = 401
    code = "token_expired"
    default_detail = "The token has expired."


class Forbidden(CongoError):
    status_code = 403
    code = "forbidden"
    default_detail = "Your role does not allow this action."


class NotFound(CongoError):
    status_code = 404
    code = "not_found"
    default_detail = "The resource was not found."


class Conflict(CongoError):
    status_code = 409
    code = "conflict"


class ValidationFailed(CongoError):
    status_code = 422
    code = "validation_failed"
    default_detail = "The request failed validation."


class RateLimited(CongoError):
    status_code = 429
    code = "rate_limited"
    default_detail = "Too many requests; slow down."


class ServiceUnavailable(CongoError):
    status_code = 503
    code = "service_unavailable"
    default_detail = "A dependency is unavailable; try again shortly."


_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    detail: str,
    title: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    request_id = getattr(request.state, "request_id", None) or ""
    body: dict[str, Any] = {
        "type": f"https://congocart.dev/problems/{code.replace('_', '-')}",
        "title": title or _title(status),
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = [dict(e) for e in errors]
    response_headers = dict(headers or {})
    if request_id:
        response_headers["X-Request-ID"] = request_id
    if status == 401:
        response_headers.setdefault("WWW-Authenticate", _challenge(code))
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=response_headers,
    )


def _challenge(code: str) -> str:
    if code in ("invalid_token", "token_expired", "refresh_token_reused"):
        error = "invalid_token"
        return f'Bearer error="{error}"'
    return "Bearer"


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0] if loc else "body")


async def _congo_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CongoError)
    return problem_response(
        request,
        status=exc.status_code,
        code=exc.code,
        detail=exc.detail,
        title=exc.title,
        errors=exc.errors,
        headers=exc.headers,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        return problem_response(
            request, status=400, code="malformed_json", detail=MalformedJSON.default_detail
        )
    errors = [
        {"field": _field_name(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in raw
    ]
    if any(tuple(e.get("loc", ()))[:1] == ("header",) for e in raw):
        # A malformed header is a 400 (api-contract.md), not a failed validation of fields.
        return problem_response(
            request,
            status=400,
            code="invalid_header",
            detail="A request header is malformed; see `errors`.",
            errors=errors,
        )
    return problem_response(
        request,
        status=422,
        code="validation_failed",
        detail="The request failed validation; see `errors`.",
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _STATUS_CODES.get(status, "error")
    detail = exc.detail if isinstance(exc.detail, str) and status != 500 else _title(status)
    if status == 404 and detail == "Not Found":
        detail = "No resource at this address."
    elif status == 405:
        detail = f"The {request.method} method is not allowed here."
    elif status == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # A JSON body that is not UTF-8: FastAPI's generic "error parsing the body".
        code, detail = MalformedJSON.code, MalformedJSON.default_detail
    return problem_response(request, status=status, code=code, detail=detail, headers=exc.headers)


# What a database (or another dependency) that is down or refusing connections raises.
_DEPENDENCY_DOWN = (
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
DEPENDENCY_RETRY_AFTER_SECONDS = 5


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    return unexpected_problem(request, exc)


def unexpected_problem(request: Request, exc: Exception) -> Response:
    """The answer to an exception nothing handled, logged: 503 with Retry-After when a
    dependency is down, else a generic 500 (the details only in the log)."""
    if isinstance(exc, _DEPENDENCY_DOWN):
        # The operation fails closed: 503 with Retry-After (api-contract.md), not a 500.
        log.warning(
            "dependency_unavailable",
            request_id=getattr(request.state, "request_id", None),
            path=request.url.path,
            error=repr(exc),
        )
        return problem_response(
            request,
            status=503,
            code=ServiceUnavailable.code,
            detail=ServiceUnavailable.default_detail,
            headers={"Retry-After": str(DEPENDENCY_RETRY_AFTER_SECONDS)},
        )
    log.error(
        "unhandled_exception",
        request_id=getattr(request.state, "request_id", None),
        path=request.url.path,
        exc_info=exc,
    )
    return problem_response(
        request,
        status=500,
        code="internal_error",
        detail="An unexpected error occurred; it has been logged under this request_id.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CongoError, _congo_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


# ---------------------------------------------------------------- OpenAPI

PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
_PROBLEM_DESCRIPTIONS = {
    400: "Malformed JSON, header, query or cursor (`malformed_json`, `bad_request`, ...).",
    401: "Missing, invalid or expired token (`not_authenticated`, `invalid_token`, "
    "`token_expired`), with a `WWW-Authenticate: Bearer` challenge.",
    403: "Authenticated, but the role does not allow it (`forbidden`).",
    404: "Not found, or not yours: existence never leaks.",
    409: "Conflicts with the resource's current state.",
    412: "`If-Match` names a version that is no longer current (`version_mismatch`).",
    413: "The body is larger than the limit (`payload_too_large`).",
    415: "The body is not `application/json` (`unsupported_media_type`).",
    422: "Validation failed (`validation_failed`, the fields in `errors`).",
    429: "Rate limited (`rate_limited`), with `Retry-After` and `RateLimit-*` headers.",
    500: "Unexpected (`internal_error`): a generic body; the details are only in the "
    "server log, under the same `request_id`.",
    503: "A dependency is down and the operation fails closed (`service_unavailable`).",
}
# Answers any operation can give, whatever its route does: the request
# middleware (NUL in the URL, bad Content-Length, body size), rate limits (and
# their store failing closed), and the generic 500.
_EVERY_OPERATION = (400, 413, 429, 500, 503)
_BODY_METHODS = frozenset({"post", "put", "patch"})
_PROBLEM_HEADERS = {
    401: {"WWW-Authenticate": '`Bearer`, or `Bearer error="invalid_token"`.'},
    405: {"Allow": "The methods the path does allow."},
    429: {"Retry-After": "Seconds until a request may succeed again."},
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the error statuses it can answer, as problem+json.

    A route's own descriptions (naming its codes) may replace these; whatever
    the description, `/openapi.json` documents every 4xx/5xx body as `Problem`.
    """
    return {status: {"description": _PROBLEM_DESCRIPTIONS[status]} for status in statuses}


def document_problems(app: FastAPI) -> None:
    """Make /openapi.json document the errors the server really answers.

    Every 4xx/5xx response is `application/problem+json` with the `Problem`
    schema (FastAPI's own 422 shape is never sent), and the statuses that come
    from the shape of an operation rather than from its route are added: those
    of every operation, 415 for a method with a body, 422 for anything with
    parameters or a body, 401 where a bearer token is read, 404 where a path
    names a resource.
    """
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_problems(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            statuses = set(_EVERY_OPERATION)
            if method in _BODY_METHODS:
                statuses.add(415)
            if parameters or "requestBody" in operation:
                statuses.add(422)
            if operation.get("security"):
                statuses.add(401)
            if any(p.get("in") == "path" for p in parameters) or "{" in path:
                statuses.add(404)
            statuses.update(int(s) for s in responses if s.isdigit() and int(s) >= 400)
            for status in sorted(statuses):
                response = responses.setdefault(str(status), {})
                if not response.get("description") or response["description"] in (
                    "Validation Error",
                    _title(status),
                ):
                    response["description"] = _PROBLEM_DESCRIPTIONS.get(status, _title(status))
                response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}
                for header, description in _PROBLEM_HEADERS.get(status, {}).items():
                    response.setdefault("headers", {})[header] = {
                        "description": description,
                        "required": True,
                        "schema": {"type": "string"},
                    }
            operation["responses"] = dict(sorted(responses.items()))
    return schema
