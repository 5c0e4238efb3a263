"""Keyset pagination: opaque cursors that carry the last row's sort key."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import Query

from congocart.core.errors import CongoError


class InvalidCursor(CongoError):
    status_code = 400
    code = "invalid_cursor"
    default_detail = "The cursor is malformed; start again from the first page."


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, *, length: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidCursor from exc
    if not isinstance(values, list) or len(values) != length:
        raise InvalidCursor
    return values


Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1..100.")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="Opaque cursor from `next_cursor`.")
]
