"""SQL statements per operation, from `pg_stat_statements`.

The bench reads the database as its own role (`OBSERVER`), so its own
queries (these snapshots, the invariant checks) are told apart from the
API's by user and left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from congocart.core.db import Connection

OBSERVER = "congocart_bench"

StatementKey = tuple[int, int, bool]  # userid, queryid, toplevel


@dataclass(frozen=True, slots=True)
class StatementCount:
    query: str
    calls: int
    exec_ms: float = 0.0  # total execution time inside PostgreSQL (planning not included)


@dataclass(frozen=True, slots=True)
class StatementDelta:
    total_calls: int
    top: list[StatementCount]  # the most frequent statements, most first


async def snapshot(conn: Connection, *, database: str) -> dict[StatementKey, StatementCount]:
    rows = await conn.fetch(
        """
        SELECT s.userid::bigint AS userid, s.queryid, s.toplevel, s.calls,
               s.total_exec_time AS exec_ms, s.query
        FROM pg_stat_statements s
        JOIN pg_database d ON d.oid = s.dbid
        JOIN pg_roles r ON r.oid = s.userid
        WHERE d.datname = $1 AND r.rolname <> $2 AND s.queryid IS NOT NULL
        """,
        database,
        OBSERVER,
    )
    return {
        (row["userid"], row["queryid"], row["toplevel"]): StatementCount(
            row["query"], row["calls"], row["exec_ms"]
        )
        for row in rows
    }


def difference(
    before: dict[StatementKey, StatementCount],
    after: dict[StatementKey, StatementCount],
    *,
    top: int = 15,
) -> StatementDelta:
    """Calls (and their execution time) made between two snapshots; statements
    first seen in between count whole. `top` ranks by calls."""
    totals: dict[str, StatementCount] = {}
    for key, stat in after.items():
        earlier = before.get(key)
        calls = stat.calls - (earlier.calls if earlier is not None else 0)
        if calls > 0:
            exec_ms = stat.exec_ms - (earlier.exec_ms if earlier is not None else 0.0)
            seen = totals.get(stat.query)
            if seen is not None:
                calls, exec_ms = calls + seen.calls, exec_ms + seen.exec_ms
            totals[stat.query] = StatementCount(stat.query, calls, exec_ms)
    ranked = sorted(totals.values(), key=lambda count: (-count.calls, count.query))
    return StatementDelta(
        total_calls=sum(count.calls for count in ranked),
        top=ranked[:top],
    )
