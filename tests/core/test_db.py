"""core.db: a statement that aborts itself when its own outcome is inconsistent."""

from __future__ import annotations

import asyncpg
import pytest

from congocart.core.db import Connection, abort_unless, aborted


async def test_a_statement_aborted_by_its_condition_writes_nothing(conn: Connection) -> None:
    await conn.execute("CREATE TEMP TABLE notes (n int)")
    sql = f"""
        WITH written AS (INSERT INTO notes VALUES (1) RETURNING n)
        SELECT {abort_unless("(SELECT count(*) FROM written) = $1", "too_few")}
    """  # noqa: S608 - a fixed condition, the value is a parameter
    assert await conn.fetchval(sql, 1) is True
    with pytest.raises(asyncpg.RaiseError) as raised:
        async with conn.transaction():  # a savepoint here: the test's transaction goes on
            await conn.fetchval(sql, 2)
    assert aborted(raised.value) == "too_few"
    assert await conn.fetchval("SELECT count(*) FROM notes") == 1  # the first one only


async def test_other_errors_are_not_aborts(conn: Connection) -> None:
    with pytest.raises(asyncpg.RaiseError) as raised:
        await conn.execute("DO $$ BEGIN RAISE EXCEPTION 'boom'; END $$")
    assert aborted(raised.value) is None
    assert aborted(ValueError("x")) is None


def test_an_abort_reason_is_a_fixed_word_not_a_value() -> None:
    with pytest.raises(ValueError, match="fixed word"):
        abort_unless("true", "x'); DROP TABLE orders; --")
