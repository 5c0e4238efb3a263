"""JSON bytes of plain read models (dicts, lists, strings, numbers, datetimes).

orjson renders what our response models render: UUIDs and strings as they
are, aware datetimes in RFC 3339 with `Z` for UTC (microseconds only when
not zero), Decimal as a string (never a float). No web framework here:
services that answer ready-made bodies use it too.
"""

from __future__ import annotations

from decimal import Decimal

import orjson

_OPTIONS = orjson.OPT_UTC_Z


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_bytes(document: object) -> bytes:
    return orjson.dumps(document, default=_default, option=_OPTIONS)
