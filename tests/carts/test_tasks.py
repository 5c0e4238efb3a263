"""The cart expiry job: registered with the worker, and expiring only abandoned guest carts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from congocart.carts import service, tasks
from congocart.core import jobs
from congocart.core.db import Connection
from congocart.worker import load_task_modules
from tests.carts.conftest import principal
from tests.conftest import MakeUser

A_RUN = jobs.Job(
    id=uuid4(),
    kind="expire_idle_guest_carts",
    payload={},
    attempt=1,
    max_attempts=3,
    run_at=datetime.now(UTC),
    created_at=datetime.now(UTC),
)


def test_the_worker_runs_cart_expiry_hourly() -> None:
    assert "congocart.carts.tasks" in load_task_modules()
    schedule = jobs.registry.schedules["expire_idle_guest_carts"]
    assert schedule.every == timedelta(hours=1)
    assert jobs.registry.handlers["expire_idle_guest_carts"] is tasks.expire_idle_guest_carts


async def test_guest_carts_idle_past_thirty_days_expire_and_others_stay_open(
    conn: Connection, make_user: MakeUser
) -> None:
    user = await make_user()
    ages = {"old guest": 31, "young guest": 29, "old user": 90}
    carts = {
        "old guest": await service.create_cart(conn, user=None, currency=None, shop_currency="USD"),
        "young guest": await service.create_cart(
            conn, user=None, currency=None, shop_currency="USD"
        ),
        "old user": await service.create_cart(
            conn, user=principal(user), currency=None, shop_currency="USD"
        ),
    }
    for name, cart in carts.items():
        await conn.execute(
            "UPDATE carts SET updated_at = now() - make_interval(days => $2) WHERE id = $1",
            cart.id,
            ages[name],
        )

    await tasks.expire_idle_guest_carts(conn, A_RUN)
    await tasks.expire_idle_guest_carts(conn, A_RUN)  # a second run changes nothing more

    rows = await conn.fetch(
        "SELECT id, status, version FROM carts WHERE id = ANY($1::uuid[])",
        [cart.id for cart in carts.values()],
    )
    by_id = {row["id"]: (row["status"], row["version"]) for row in rows}
    assert {name: by_id[cart.id] for name, cart in carts.items()} == {
        "old guest": ("expired", 2),
        "young guest": ("open", 1),
        "old user": ("open", 1),
    }
