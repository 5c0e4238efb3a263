"""Latency percentiles and what one timed run observed."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linearly interpolated.

    The same definition as numpy's default: rank (n - 1) * q / 100 between
    the two nearest values.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return sorted_values[low]
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Milliseconds."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float


def summarize(seconds: Sequence[float]) -> LatencySummary | None:
    """Percentiles in milliseconds of durations in seconds; None for no durations."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    return LatencySummary(
        count=len(ordered),
        mean=1000 * sum(ordered) / len(ordered),
        p50=1000 * percentile(ordered, 50),
        p95=1000 * percentile(ordered, 95),
        p99=1000 * percentile(ordered, 99),
        max=1000 * ordered[-1],
    )


@dataclass
class RequestTally:
    """One kind of request (e.g. `add_item`) within a run."""

    latencies: list[float] = field(default_factory=list)  # seconds, expected responses only
    errors: int = 0
    server_errors: int = 0
    statuses: Counter[str] = field(default_factory=Counter)


@dataclass
class Tally:
    """Everything a run observed, filled in by the virtual clients."""

    ops: int = 0
    failed_ops: int = 0
    op_latencies: list[float] = field(default_factory=list)  # seconds, completed ops only
    requests: dict[str, RequestTally] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    def record_request(self, kind: str, status: int | str, seconds: float, *, ok: bool) -> None:
        tally = self.requests.get(kind)
        if tally is None:
            tally = self.requests[kind] = RequestTally()
        tally.statuses[str(status)] += 1
        if ok:
            tally.latencies.append(seconds)
            return
        tally.errors += 1
        if isinstance(status, int) and status >= 500:
            tally.server_errors += 1

    def note_error(self, sample: str) -> None:
        if len(self.error_samples) < 10:
            self.error_samples.append(sample)

    @property
    def request_count(self) -> int:
        return sum(t.statuses.total() for t in self.requests.values())

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.requests.values())

    @property
    def server_errors(self) -> int:
        return sum(t.server_errors for t in self.requests.values())
