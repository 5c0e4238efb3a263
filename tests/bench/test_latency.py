"""Percentiles and the run tally."""

from __future__ import annotations

import random

import pytest

from congocart.bench.latency import Tally, percentile, summarize


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([7.0], 0) == 7.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_interpolates_between_the_nearest_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(values, 75) == pytest.approx(3.25)


def test_percentile_of_1_to_100_matches_the_linear_definition() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)


def test_percentile_refuses_no_values_and_out_of_range_q() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0], 101)


def test_summarize_reports_milliseconds_of_unsorted_seconds() -> None:
    seconds = [0.003, 0.001, 0.002, 0.010]
    random.Random(1).shuffle(seconds)
    summary = summarize(seconds)
    assert summary is not None
    assert summary.count == 4
    assert summary.p50 == pytest.approx(2.5)
    assert summary.max == pytest.approx(10.0)
    assert summary.mean == pytest.approx(4.0)
    assert summary.p50 <= summary.p95 <= summary.p99 <= summary.max


def test_summarize_of_nothing_is_none() -> None:
    assert summarize([]) is None


def test_tally_counts_unexpected_statuses_and_5xx_as_errors() -> None:
    tally = Tally()
    tally.record_request("checkout", 201, 0.01, ok=True)
    tally.record_request("checkout", 409, 0.01, ok=False)
    tally.record_request("checkout", 503, 0.01, ok=False)
    tally.record_request("checkout", "TimeoutError", 30.0, ok=False)
    assert tally.request_count == 4
    assert tally.errors == 3
    assert tally.server_errors == 1
    assert tally.requests["checkout"].latencies == [0.01]
    assert tally.requests["checkout"].statuses == {
        "201": 1,
        "409": 1,
        "503": 1,
        "TimeoutError": 1,
    }
