"""JSON responses for read models that are plain dicts and lists, not Pydantic models.

A hot read route can return `json_response(document)` and keep its schema in
the OpenAPI document with `response_model=`: FastAPI passes a returned
`Response` through untouched (no validation, no second serialisation), and
documents the route from `response_model` as usual. The route's tests prove
that the document validates against that model and equals what the model
would render.

orjson renders what our response models render: UUIDs and strings as they
are, aware datetimes in RFC 3339 with `Z` for UTC (microseconds only when
not zero), and Decimal as a string (never a float).
"""

from __future__ import annotations

from decimal import Decimal

import orjson
from fastapi.responses import Response

_OPTIONS = orjson.OPT_UTC_Z


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_bytes(document: object) -> bytes:
    return orjson.dumps(document, default=_default, option=_OPTIONS)


def json_response(document: object, *, status_code: int = 200) -> Response:
    return Response(json_bytes(document), status_code=status_code, media_type="application/json")
