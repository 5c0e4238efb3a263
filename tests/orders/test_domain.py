"""The order state machine, refunds and order numbers. Pure, no database."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from congocart.core.money import Money
from congocart.orders.domain import (
    TRANSITIONS,
    Actor,
    ActorNotPermitted,
    InvalidRefundAmount,
    OrderAction,
    OrderStatus,
    TransitionNotAllowed,
    format_order_number,
    next_status,
    parse_order_number,
    plan_refund,
)

S = OrderStatus
A = OrderAction

# api-contract.md, "Orders", written out independently of the module's table.
CONTRACT = {
    ("paid", "fulfill"): "fulfilling",
    ("paid", "ship"): "shipped",
    ("fulfilling", "ship"): "shipped",
    ("shipped", "deliver"): "delivered",
    ("paid", "cancel"): "cancelled",
    ("fulfilling", "cancel"): "cancelled",
    ("paid", "refund"): "refunded",
    ("fulfilling", "refund"): "refunded",
    ("shipped", "refund"): "refunded",
    ("delivered", "refund"): "refunded",
}


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def test_the_transition_table_is_exactly_the_contracts() -> None:
    assert {(str(s), str(a)): str(t) for (s, a), t in TRANSITIONS.items()} == CONTRACT


@pytest.mark.parametrize(("status", "action"), sorted(CONTRACT))
def test_staff_can_make_every_transition_in_the_table(status: str, action: str) -> None:
    for actor in (Actor.STAFF, Actor.ADMIN):
        assert next_status(S(status), A(action), actor=actor) == S(CONTRACT[(status, action)])


@pytest.mark.parametrize(
    ("status", "action"),
    [(s, a) for s, a in itertools.product(S, A) if (s, a) not in TRANSITIONS],
)
def test_every_transition_outside_the_table_is_refused(
    status: OrderStatus, action: OrderAction
) -> None:
    with pytest.raises(TransitionNotAllowed):
        next_status(status, action, actor=Actor.ADMIN)


@pytest.mark.parametrize("status", [S.PAID, S.FULFILLING])
def test_an_owner_may_cancel_before_shipping(status: OrderStatus) -> None:
    assert next_status(status, A.CANCEL, actor=Actor.OWNER) is S.CANCELLED


@pytest.mark.parametrize("status", [S.SHIPPED, S.DELIVERED, S.CANCELLED, S.REFUNDED])
def test_an_owner_cancelling_after_shipping_is_an_invalid_transition(status: OrderStatus) -> None:
    with pytest.raises(TransitionNotAllowed, match="cannot be cancelled"):
        next_status(status, A.CANCEL, actor=Actor.OWNER)


@pytest.mark.parametrize("action", [A.FULFILL, A.SHIP, A.DELIVER, A.REFUND])
def test_an_owner_cannot_run_back_office_actions(action: OrderAction) -> None:
    with pytest.raises(ActorNotPermitted):
        next_status(S.PAID, action, actor=Actor.OWNER)


def test_a_partial_refund_keeps_the_status() -> None:
    plan = plan_refund(
        status=S.SHIPPED,
        total=usd("100.00"),
        already_refunded=usd("0"),
        amount=usd("30.00"),
        actor=Actor.STAFF,
    )
    assert plan.status is S.SHIPPED
    assert plan.amount == usd("30.00")
    assert plan.refunded_total == usd("30.00")
    assert plan.remaining == usd("70.00")
    assert not plan.completes


def test_refunds_reaching_the_total_make_the_order_refunded() -> None:
    plan = plan_refund(
        status=S.DELIVERED,
        total=usd("100.00"),
        already_refunded=usd("30.00"),
        amount=usd("70.00"),
        actor=Actor.STAFF,
    )
    assert plan.status is S.REFUNDED
    assert plan.completes


def test_a_refund_without_an_amount_refunds_what_remains() -> None:
    plan = plan_refund(
        status=S.PAID,
        total=usd("48.78"),
        already_refunded=usd("8.78"),
        amount=None,
        actor=Actor.ADMIN,
    )
    assert plan.amount == usd("40.00")
    assert plan.status is S.REFUNDED


@pytest.mark.parametrize("amount", ["70.01", "0", "-1.00"])
def test_a_refund_that_is_not_positive_or_above_what_remains_is_refused(amount: str) -> None:
    with pytest.raises(InvalidRefundAmount):
        plan_refund(
            status=S.PAID,
            total=usd("100.00"),
            already_refunded=usd("30.00"),
            amount=usd(amount),
            actor=Actor.STAFF,
        )


@pytest.mark.parametrize(
    "amount", [Money(Decimal("1.005"), "USD"), Money.of("1.00", "EUR")], ids=["sub-cent", "EUR"]
)
def test_a_refund_of_a_fraction_of_a_cent_or_in_another_currency_is_refused(
    amount: Money,
) -> None:
    with pytest.raises(InvalidRefundAmount):
        plan_refund(
            status=S.PAID,
            total=usd("10.00"),
            already_refunded=usd("0"),
            amount=amount,
            actor=Actor.STAFF,
        )


@pytest.mark.parametrize("status", [S.CANCELLED, S.REFUNDED])
def test_a_cancelled_or_refunded_order_cannot_be_refunded(status: OrderStatus) -> None:
    with pytest.raises(TransitionNotAllowed):
        plan_refund(
            status=status,
            total=usd("10.00"),
            already_refunded=usd("0"),
            amount=usd("1.00"),
            actor=Actor.ADMIN,
        )


def test_only_staff_may_refund() -> None:
    with pytest.raises(ActorNotPermitted):
        plan_refund(
            status=S.PAID,
            total=usd("10.00"),
            already_refunded=usd("0"),
            amount=None,
            actor=Actor.OWNER,
        )


def test_order_numbers_have_at_least_six_digits() -> None:
    assert format_order_number(123) == "CC-000123"
    assert format_order_number(1_234_567) == "CC-1234567"
    with pytest.raises(ValueError, match="start at 1"):
        format_order_number(0)


@given(st.integers(1, 10**12))
def test_order_numbers_round_trip(value: int) -> None:
    assert parse_order_number(format_order_number(value)) == value


@pytest.mark.parametrize(
    "text", ["CC-123", "CC-000000", "XX-000123", "CC-0001234", "CC-12a456", ""]
)
def test_strings_that_are_not_order_numbers_parse_to_none(text: str) -> None:
    assert parse_order_number(text) is None


class OrderLifecycle(RuleBasedStateMachine):
    """Random actions by random actors never take an order outside the table."""

    def __init__(self) -> None:
        super().__init__()
        self.status = S.PAID
        self.total = 10_000
        self.refunded = 0
        self.history: list[OrderStatus] = [S.PAID]

    @rule(action=st.sampled_from(list(A)), actor=st.sampled_from(list(Actor)))
    def act(self, action: OrderAction, actor: Actor) -> None:
        before = self.status
        if action is A.REFUND:
            try:
                plan = plan_refund(
                    status=before,
                    total=Money.from_minor(self.total, "USD"),
                    already_refunded=Money.from_minor(self.refunded, "USD"),
                    amount=None,
                    actor=actor,
                )
            except (TransitionNotAllowed, ActorNotPermitted):
                assert (before, action) not in TRANSITIONS or actor is Actor.OWNER
                return
            self.refunded = plan.refunded_total.to_minor()
            self.status = plan.status
        else:
            try:
                self.status = next_status(before, action, actor=actor)
            except ActorNotPermitted:
                assert actor is Actor.OWNER
                assert action is not A.CANCEL
                return
            except TransitionNotAllowed:
                assert (before, action) not in TRANSITIONS or actor is Actor.OWNER
                return
        assert TRANSITIONS[(before, action)] == self.status
        self.history.append(self.status)

    @precondition(lambda self: self.status in (S.PAID, S.FULFILLING, S.SHIPPED, S.DELIVERED))
    @rule(amount=st.integers(1, 12_000))
    def partial_refund(self, amount: int) -> None:
        before = self.status
        try:
            plan = plan_refund(
                status=before,
                total=Money.from_minor(self.total, "USD"),
                already_refunded=Money.from_minor(self.refunded, "USD"),
                amount=Money.from_minor(amount, "USD"),
                actor=Actor.STAFF,
            )
        except InvalidRefundAmount:
            assert amount > self.total - self.refunded
            return
        self.refunded += amount
        assert plan.refunded_total.to_minor() == self.refunded
        self.status = plan.status
        if self.refunded < self.total:
            assert self.status is before
        else:
            assert self.status is S.REFUNDED
            self.history.append(self.status)

    @invariant()
    def refunds_never_exceed_the_total(self) -> None:
        assert 0 <= self.refunded <= self.total

    @invariant()
    def refunded_status_means_fully_refunded(self) -> None:
        assert (self.status is S.REFUNDED) == (self.refunded == self.total)

    @invariant()
    def every_step_taken_is_in_the_table(self) -> None:
        for before, after in itertools.pairwise(self.history):
            assert any(TRANSITIONS.get((before, a)) == after for a in A)

    @invariant()
    def terminal_statuses_are_never_left(self) -> None:
        for i, status in enumerate(self.history):
            if status in (S.CANCELLED, S.REFUNDED):
                assert i == len(self.history) - 1


TestOrderLifecycle = OrderLifecycle.TestCase
