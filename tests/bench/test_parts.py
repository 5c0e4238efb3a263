"""The harness's pure parts: SQL deltas, invariant comparison, pgbench output, options."""

from __future__ import annotations

import pytest
import typer

from congocart.bench.command import parse_concurrency, parse_scenarios
from congocart.bench.harness import pgbench_follows
from congocart.bench.invariants import StoreState, compare
from congocart.bench.pgbench import PgbenchError, parse_output
from congocart.bench.profiling import rank
from congocart.bench.scenarios import SCENARIOS, PlacedOrder
from congocart.bench.statements import StatementCount, difference


def test_sql_difference_counts_calls_between_snapshots_and_new_statements_whole() -> None:
    before = {
        (10, 1, True): StatementCount("SELECT a", 100, 50.0),
        (10, 2, True): StatementCount("BEGIN", 5, 1.0),
    }
    after = {
        (10, 1, True): StatementCount("SELECT a", 130, 65.0),
        (10, 2, True): StatementCount("BEGIN", 5, 1.0),
        (10, 3, True): StatementCount("INSERT b", 7, 3.5),
        (11, 1, True): StatementCount("SELECT a", 3, 2.0),
    }
    delta = difference(before, after)
    assert delta.total_calls == 40
    assert delta.top == [
        StatementCount("SELECT a", 33, 17.0),
        StatementCount("INSERT b", 7, 3.5),
    ]


def order(
    order_id: str, lines: dict[str, int], listed: dict[str, int] | None = None
) -> PlacedOrder:
    return PlacedOrder(id=order_id, cart_lines=lines, order_lines=listed or lines)


def test_invariants_hold_when_stock_fell_by_exactly_what_was_ordered() -> None:
    before = StoreState(orders=10, available={"A": 100, "B": 50, "C": 7})
    after = StoreState(orders=12, available={"A": 97, "B": 49, "C": 7})
    placed = [order("o1", {"A": 2, "B": 1}), order("o2", {"A": 1})]
    checks = compare(before, after, placed)
    assert [c.ok for c in checks] == [True, True, True]


def test_invariants_catch_an_extra_order_a_wrong_line_and_stock_taken_twice() -> None:
    before = StoreState(orders=10, available={"A": 100, "B": 50})
    after = StoreState(orders=13, available={"A": 96, "B": 50})
    placed = [order("o1", {"A": 2}), order("o2", {"B": 1}, listed={"B": 2})]
    created, lines, stock = compare(before, after, placed)
    assert not created.ok
    assert "3 orders created, 2 checkouts answered 201" in created.detail
    assert not lines.ok
    assert "o2" in lines.detail
    assert not stock.ok
    assert "A: down 4, ordered 2" in stock.detail
    assert "B: down 0, ordered 1" in stock.detail


def test_pgbench_output_gives_tps_transactions_failures_and_latency() -> None:
    output = """transaction type: db-limit-checkout.sql
scaling factor: 1
query mode: simple
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 5 s
number of transactions actually processed: 12345
number of failed transactions: 3 (0.024%)
latency average = 3.240 ms
initial connection time = 10.201 ms
tps = 2468.123456 (without initial connection time)
"""
    assert parse_output(output) == (2468.123456, 12345, 3, 3.24)


def test_pgbench_output_without_tps_is_an_error() -> None:
    with pytest.raises(PgbenchError):
        parse_output("pgbench: error: connection refused")


def test_concurrency_option_parses_a_comma_separated_list() -> None:
    assert parse_concurrency("1,8,32") == (1, 8, 32)
    assert parse_concurrency("8") == (8,)
    for bad in ("", "0", "8,8", "x", "-1"):
        with pytest.raises(typer.BadParameter):
            parse_concurrency(bad)


def test_scenarios_option_accepts_known_names_and_all() -> None:
    assert parse_scenarios("browse") == ("browse",)
    assert parse_scenarios("checkout,browse") == ("checkout", "browse")
    assert parse_scenarios("all") == SCENARIOS
    for bad in ("", "brows", "browse,browse"):
        with pytest.raises(typer.BadParameter):
            parse_scenarios(bad)


def test_profile_ranking_gives_self_time_and_our_code_inclusive_time() -> None:
    lines = [
        "run (asyncio/runners.py:10);app (fastapi/routing.py:5);"
        "list (congocart/catalog/api.py:40) 6",
        "run (asyncio/runners.py:10);app (fastapi/routing.py:7);list (congocart/catalog/api.py:41);"
        "fetch (asyncpg/connection.py:9) 3",
        "run (asyncio/runners.py:12) 1",
        "garbage",
    ]
    samples, by_self, ours = rank(lines)
    assert samples == 10
    assert [(h.function, h.self_pct) for h in by_self] == [
        ("list (congocart/catalog/api.py)", 60.0),
        ("fetch (asyncpg/connection.py)", 30.0),
        ("run (asyncio/runners.py)", 10.0),
    ]
    assert [(h.function, h.total_pct) for h in ours] == [("list (congocart/catalog/api.py)", 90.0)]


@pytest.mark.parametrize(
    ("scenarios", "follows"),
    [
        (list(SCENARIOS), "checkout"),
        (["browse", "checkout-flow", "checkout"], "checkout"),
        (["cart", "checkout-flow"], "checkout-flow"),
        (["browse", "cart"], None),
    ],
)
def test_pgbench_follows_the_checkout_run_else_the_checkout_flow_run(
    scenarios: list[str], follows: str | None
) -> None:
    assert pgbench_follows(scenarios) == follows
