"""The configured payment provider, opened for a process (the API or a worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.core.db import Database
from congocart.payments.domain import PaymentGateway


@asynccontextmanager
async def open_payment_gateway(dsn: str, *, max_connections: int) -> AsyncIterator[PaymentGateway]:
    """The sandbox gateway (the only provider so far) on a connection pool of its own.

    Its own pool, like a real provider's own HTTP connections: a checkout keeps
    its request's connection while it waits on the provider, so if the
    provider's calls were drawn from the same pool, a burst of checkouts could
    hold every connection and wait for one more that never comes free.
    """
    # The sandbox never changes session state: no reset round trip on release.
    database = Database(dsn, min_size=1, max_size=max_connections)
    await database.connect()
    try:
        yield SandboxGateway(database)
    finally:
        await database.close()
