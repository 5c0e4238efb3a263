"""Keyset pagination: opaque cursors that carry the last row's sort key."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query

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


async def _short_list_limit(
    limit: Annotated[
        int,
        Query(ge=1, le=100, description="Checked (1..100) like on every list; the list is whole."),
    ] = 20,
) -> None:
    """The short bounded lists (categories, shipping methods, order events) always come
    whole with `next_cursor: null`; `limit` is still validated like on every list, so a
    limit outside 1..100 is a 422 everywhere."""


# `dependencies=SHORT_LIST` on the route of a short bounded list.
SHORT_LIST = [Depends(_short_list_limit)]
