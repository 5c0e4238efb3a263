"""Keyset cursors are client input: anything malformed is InvalidCursor, never a crash."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from congocart.core.pagination import InvalidCursor, cursor_time, decode_time_cursor, encode_cursor

ROW = uuid.uuid4()


def raw_cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def test_a_time_cursor_round_trips() -> None:
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert decode_time_cursor(encode_cursor([at.isoformat(), str(ROW)])) == (at, ROW)


@pytest.mark.parametrize(
    "values",
    [
        ["2026-03-01T00:00:00+00:00", 5],
        ["2026-03-01T00:00:00+00:00", False],
        ["2026-03-01T00:00:00+00:00", [str(ROW)]],
        ["2026-03-01T00:00:00+00:00", "not-a-uuid"],
        [5, str(ROW)],
        ["2026-03-01T00:00:00", str(ROW)],  # no zone
        ["0001-01-01T00:00:00+01:00", str(ROW)],  # year 0 in UTC
        ["9999-12-31T23:59:59-01:00", str(ROW)],  # year 10000 in UTC
        ["0001-01-01T00:00:00+00:00", str(ROW)],  # PostgreSQL's -infinity
        ["yesterday", str(ROW)],
        [str(ROW)],
        {"at": "2026-03-01T00:00:00+00:00"},
    ],
)
def test_a_malformed_time_cursor_is_invalid(values: Any) -> None:
    with pytest.raises(InvalidCursor):
        decode_time_cursor(raw_cursor(values))


@pytest.mark.parametrize("cursor", ["", "%%%", "bm90IGpzb24", "\u00e9t\u00e9"])
def test_a_cursor_that_is_no_json_list_is_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_time_cursor(cursor)


@pytest.mark.parametrize(
    "value", [5, None, "2026-03-01", "2026-03-01T00:00:00", "0001-01-01T00:00:00+01:00"]
)
def test_a_cursor_time_needs_a_zone_and_a_date_postgresql_can_take(value: Any) -> None:
    with pytest.raises(InvalidCursor):
        cursor_time(value)
