"""Coupon use cases on real PostgreSQL: creation, applicability, the redemption counter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from congocart.core.db import Connection
from congocart.core.errors import ValidationFailed
from congocart.core.money import Money
from congocart.core.pagination import InvalidCursor
from congocart.promotions import service
from congocart.promotions.domain import Coupon
from congocart.promotions.errors import CouponCodeTaken, CouponInvalid, CouponUnavailable
from tests.conftest import MakeUser
from tests.promotions.conftest import insert_order, make_coupon, unique_code

NOW = datetime.now(UTC)


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


async def redemptions(conn: Connection, code: str) -> int:
    coupon = await service.get_coupon(conn, code=code)
    assert coupon is not None
    return coupon.redemptions


async def test_created_coupon_is_stored_with_a_normalised_code(conn: Connection) -> None:
    code = unique_code("new")
    record = await make_coupon(
        conn, code=f"  {code.lower()} ", amount_off=usd("5.00"), min_subtotal=usd("20.00")
    )
    assert record.coupon.code == code.upper()
    stored = await service.get_coupon(conn, code=code.lower())
    assert stored == Coupon(code=code, amount_off=usd("5.00"), min_subtotal=usd("20.00"))


async def test_a_taken_code_is_refused_whatever_its_case(conn: Connection) -> None:
    record = await make_coupon(conn, percent_off=Decimal(10))
    with pytest.raises(CouponCodeTaken):
        await make_coupon(conn, code=record.coupon.code.lower(), percent_off=Decimal(20))


async def test_coupon_amounts_must_be_in_the_shop_currency(conn: Connection) -> None:
    coupon = Coupon(code=unique_code(), amount_off=Money.of("5.00", "EUR"))
    with pytest.raises(ValidationFailed) as caught:
        await service.create_coupon(conn, coupon=coupon, currency="USD")
    assert caught.value.errors == [{"field": "amount_off", "message": "must be in USD"}]


async def test_coupon_list_pages_newest_first_without_repeats(conn: Connection) -> None:
    await conn.execute("DELETE FROM coupons")
    made = [await make_coupon(conn, percent_off=Decimal(5)) for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        page = await service.list_coupons(conn, limit=2, cursor=cursor)
        seen += [record.coupon.code for record in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = [r.coupon.code for r in sorted(made, key=lambda r: (r.created_at, r.id))][::-1]
    assert seen == expected


async def test_a_forged_coupon_cursor_is_refused(conn: Connection) -> None:
    with pytest.raises(InvalidCursor):
        await service.list_coupons(conn, limit=2, cursor="WyJub3QgYSBkYXRlIiwgIngiXQ")


@pytest.mark.parametrize(
    ("fields", "subtotal", "reason"),
    [
        (
            {"percent_off": Decimal(10), "starts_at": NOW + timedelta(days=1)},
            "50.00",
            "not valid yet",
        ),
        ({"percent_off": Decimal(10), "ends_at": NOW - timedelta(seconds=1)}, "50.00", "expired"),
        ({"percent_off": Decimal(10), "min_subtotal": usd("60.00")}, "50.00", "at least"),
    ],
)
async def test_a_coupon_that_does_not_apply_is_coupon_invalid_with_the_reason(
    conn: Connection, fields: dict[str, object], subtotal: str, reason: str
) -> None:
    record = await make_coupon(conn, **fields)
    with pytest.raises(CouponInvalid, match=reason):
        await service.get_applicable_coupon(
            conn, code=record.coupon.code, subtotal=usd(subtotal), user_id=None, email=None, now=NOW
        )


async def test_an_unknown_code_is_coupon_invalid(conn: Connection) -> None:
    with pytest.raises(CouponInvalid, match="no coupon"):
        await service.get_applicable_coupon(
            conn, code="NOPE-NOT-HERE", subtotal=usd("10.00"), user_id=None, email=None, now=NOW
        )


async def test_a_used_up_coupon_is_invalid_when_applied_and_unavailable_at_checkout(
    conn: Connection,
) -> None:
    record = await make_coupon(conn, percent_off=Decimal(10), max_redemptions=1)
    await service.reserve_redemption(conn, code=record.coupon.code)
    arguments = dict(code=record.coupon.code, subtotal=usd("10.00"), user_id=None, email=None)
    with pytest.raises(CouponInvalid, match="used up"):
        await service.get_applicable_coupon(conn, now=NOW, **arguments)  # type: ignore[arg-type]
    with pytest.raises(CouponUnavailable):
        await service.get_applicable_coupon(
            conn,
            now=NOW,
            used_up_is_conflict=True,
            **arguments,  # type: ignore[arg-type]
        )


async def test_per_customer_limit_counts_the_users_orders_and_guests_by_email(
    conn: Connection, make_user: MakeUser
) -> None:
    user = await make_user()
    record = await make_coupon(conn, percent_off=Decimal(10), per_customer_limit=1)
    code = record.coupon.code
    await service.reserve_redemption(conn, code=code)
    order_id = await insert_order(conn, user_id=user.id, email=user.email)
    await service.record_redemption(
        conn, code=code, order_id=order_id, user_id=user.id, email=user.email.upper()
    )

    assert await service.customer_redemptions(conn, code=code, user_id=user.id, email=None) == 1
    assert await service.customer_redemptions(conn, code=code, user_id=None, email=user.email) == 1
    assert (
        await service.customer_redemptions(conn, code=code, user_id=None, email="x@example.com")
        == 0
    )
    with pytest.raises(CouponInvalid, match="already used"):
        await service.get_applicable_coupon(
            conn, code=code, subtotal=usd("10.00"), user_id=user.id, email=None, now=NOW
        )
    with pytest.raises(CouponInvalid, match="already used"):
        await service.get_applicable_coupon(
            conn, code=code, subtotal=usd("10.00"), user_id=None, email=user.email, now=NOW
        )
    other = await service.get_applicable_coupon(
        conn, code=code, subtotal=usd("10.00"), user_id=None, email="x@example.com", now=NOW
    )
    assert other.code == code


async def test_a_customers_holds_count_toward_the_per_customer_limit_at_reservation(
    conn: Connection, make_user: MakeUser
) -> None:
    user = await make_user()
    record = await make_coupon(conn, percent_off=Decimal(10), per_customer_limit=2)
    code = record.coupon.code

    def holding(other_holds: int, email: str = user.email) -> service.CustomerHolds:
        return service.CustomerHolds(user_id=user.id, email=email, other_holds=other_holds)

    with pytest.raises(CouponUnavailable, match="as often as it allows"):
        await service.reserve_redemption(conn, code=code, customer=holding(2))
    assert await redemptions(conn, code) == 0  # refused: nothing taken
    await service.reserve_redemption(conn, code=code, customer=holding(1))
    order_id = await insert_order(conn, user_id=user.id, email=user.email)
    await service.record_redemption(
        conn, code=code, order_id=order_id, user_id=user.id, email=user.email
    )
    # One order by this user (whatever the email given now) plus one hold: at the limit.
    with pytest.raises(CouponUnavailable):
        await service.reserve_redemption(conn, code=code, customer=holding(1, "new@example.com"))
    await service.reserve_redemption(conn, code=code, customer=holding(0))
    assert await redemptions(conn, code) == 2


async def test_recording_the_same_order_twice_counts_once(conn: Connection) -> None:
    record = await make_coupon(conn, percent_off=Decimal(10))
    order_id = await insert_order(conn, email="twice@example.com")
    for _ in range(2):
        await service.record_redemption(
            conn,
            code=record.coupon.code,
            order_id=order_id,
            user_id=None,
            email="twice@example.com",
        )
    count = await service.customer_redemptions(
        conn, code=record.coupon.code, user_id=None, email="twice@example.com"
    )
    assert count == 1


async def test_reserving_past_max_redemptions_is_coupon_unavailable(conn: Connection) -> None:
    record = await make_coupon(conn, percent_off=Decimal(10), max_redemptions=2)
    code = record.coupon.code
    await service.reserve_redemption(conn, code=code)
    await service.reserve_redemption(conn, code=code)
    with pytest.raises(CouponUnavailable):
        await service.reserve_redemption(conn, code=code)
    assert await redemptions(conn, code) == 2


async def test_a_released_redemption_can_be_taken_again(conn: Connection) -> None:
    record = await make_coupon(conn, percent_off=Decimal(10), max_redemptions=1)
    code = record.coupon.code
    await service.reserve_redemption(conn, code=code)
    await service.release_redemption(conn, code=code)
    assert await redemptions(conn, code) == 0
    await service.reserve_redemption(conn, code=code.lower())
    assert await redemptions(conn, code) == 1


async def test_releasing_never_takes_the_counter_below_zero(conn: Connection) -> None:
    record = await make_coupon(conn, percent_off=Decimal(10))
    await service.release_redemption(conn, code=record.coupon.code)
    assert await redemptions(conn, record.coupon.code) == 0


async def test_an_unlimited_coupon_counts_every_reservation(conn: Connection) -> None:
    record = await make_coupon(conn, amount_off=usd("1.00"))
    for _ in range(3):
        await service.reserve_redemption(conn, code=record.coupon.code)
    assert await redemptions(conn, record.coupon.code) == 3


async def test_reserving_an_unknown_coupon_is_coupon_unavailable(conn: Connection) -> None:
    with pytest.raises(CouponUnavailable):
        await service.reserve_redemption(conn, code="GONE-AWAY")
