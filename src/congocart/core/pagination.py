"""Keyset pagination: opaque cursors that carry the last row's sort key."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

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


# The instants a cursor may carry: PostgreSQL stores the calendar's very ends as
# ±infinity, and an offset past either end names no date Python can bind.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def decode_time_cursor(cursor: str) -> tuple[datetime, UUID]:
    """A `[timestamp, id]` cursor, as `encode_cursor([at.isoformat(), str(id)])` made it.

    A cursor is client input: well-formed JSON of the wrong types (a number or
    `false` for the id, a list), a time without a zone or one PostgreSQL cannot
    take is `InvalidCursor` (400) like any other malformed one, never a 500.
    """
    at, row_id = decode_cursor(cursor, length=2)
    if not isinstance(row_id, str):
        raise InvalidCursor
    try:
        return cursor_time(at), UUID(row_id)
    except ValueError as exc:
        raise InvalidCursor from exc


def cursor_time(value: Any) -> datetime:
    """A cursor's timestamp: an RFC 3339 string with a zone, inside PostgreSQL's calendar."""
    if not isinstance(value, str):
        raise InvalidCursor
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None or not _EARLIEST <= moment.astimezone(UTC) <= _LATEST:
            raise InvalidCursor
    except (ValueError, OverflowError) as exc:
        raise InvalidCursor from exc
    return moment


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
