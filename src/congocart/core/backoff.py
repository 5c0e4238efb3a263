"""Retry delays: exponential back-off with jitter, for jobs and webhook deliveries."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta


def retry_delay(
    attempt: int,
    *,
    base: timedelta,
    cap: timedelta,
    rand: Callable[[], float] = random.random,
) -> timedelta:
    """The wait after failed attempt number `attempt` (1-based): base·2^(attempt-1),
    at most `cap`, times a random factor in [0.5, 1).

    The jitter spreads the retries of what failed together (an outage, a
    receiver down) so they do not all come back in the same instant.
    """
    exponential = base * (1 << min(max(attempt - 1, 0), 32))
    return min(cap, exponential) * (0.5 + rand() / 2)
