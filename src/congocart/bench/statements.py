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


@dataclass(frozen=True, slots=True)
class StatementDelta:
    total_calls: int
    top: list[StatementCount]  # the most frequent statements, most first


async def snapshot(conn: Connection, *, database: str) -> dict[StatementKey, StatementCount]:
    rows = await conn.fetch(
        """
        SELECT s.userid::bigint AS userid, s.queryid, s.toplevel, s.calls, s.query
        FROM pg_stat_statements s
        JOIN pg_database d ON d.oid = s.dbid
        JOIN pg_roles r ON r.oid = s.userid
        WHERE d.datname = $1 AND r.rolname <> $2 AND s.queryid IS NOT NULL
        """,
        database,
        OBSERVER,
    )
    return {
        (row["userid"], row["queryid"], row["toplevel"]): StatementCount(row["query"], row["calls"])
        for row in rows
    }


def difference(
    before: dict[StatementKey, StatementCount],
    after: dict[StatementKey, StatementCount],
    *,
    top: int = 15,
) -> StatementDelta:
    """Calls made between two snapshots; statements first seen in between count whole."""
    counts: dict[str, int] = {}
    for key, stat in after.items():
        calls = stat.calls - (before[key].calls if key in before else 0)
        if calls > 0:
            counts[stat.query] = counts.get(stat.query, 0) + calls
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return StatementDelta(
        total_calls=sum(counts.values()),
        top=[StatementCount(query, calls) for query, calls in ranked[:top]],
    )
