"""Webhook rules: events, URLs, signatures, target addresses, back-off. Pure."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from congocart.config import Settings
from congocart.webhooks.domain import (
    EVENTS,
    RETRY_CAP,
    InvalidWebhookUrl,
    UnknownEvent,
    check_events,
    check_url,
    is_public_address,
    retry_delay,
    sign,
    verify,
)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_raw_body() -> None:
    body = b'{"id":"1","event":"order.paid"}'
    header = sign("whsec_x", timestamp=1700000000, body=body)
    expected = hmac.new(b"whsec_x", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


@given(body=st.binary(max_size=200), secret=st.text(min_size=1, max_size=40))
def test_a_signed_body_verifies_and_any_change_does_not(body: bytes, secret: str) -> None:
    header = sign(secret, timestamp=1000, body=body)
    assert verify(secret, header=header, body=body, now=1000)
    assert not verify(secret, header=header, body=body + b" ", now=1000)
    assert not verify(secret + "x", header=header, body=body, now=1000)


def test_an_old_or_malformed_signature_is_refused() -> None:
    header = sign("s", timestamp=1000, body=b"{}")
    assert not verify("s", header=header, body=b"{}", now=1000 + 301)
    assert not verify("s", header="v1=abc", body=b"{}", now=1000)
    assert not verify("s", header="t=x,v1=abc", body=b"{}", now=1000)
    assert not verify("s", header="", body=b"{}", now=1000)


def test_events_are_checked_against_the_known_list_and_deduplicated() -> None:
    assert check_events(["order.paid", "order.shipped", "order.paid"]) == [
        "order.paid",
        "order.shipped",
    ]
    assert set(EVENTS) == {
        "order.paid",
        "order.cancelled",
        "order.shipped",
        "order.delivered",
        "order.refunded",
    }
    with pytest.raises(UnknownEvent):
        check_events(["order.paid", "order.exploded"])
    with pytest.raises(UnknownEvent):
        check_events([])


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "example.com/hook",
        "http://",
        "https://user:pw@example.com/",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "javascript:alert(1)",
        "https://example.com/" + "a" * 2100,
    ],
)
def test_a_webhook_url_must_be_plain_http_or_https(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl):
        check_url(url)


def test_http_and_https_urls_are_accepted() -> None:
    assert check_url("https://example.com/hooks?x=1") == "https://example.com/hooks?x=1"
    assert check_url("http://127.0.0.1:8080/h") == "http://127.0.0.1:8080/h"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",  # noqa: S104 - an address under test, nothing binds to it
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "100.64.0.1",
        "not-an-ip",
    ],
)
def test_loopback_private_link_local_and_odd_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_internet_addresses_are_public(address: str) -> None:
    assert is_public_address(address)


def test_retries_back_off_exponentially_up_to_a_cap_with_jitter() -> None:
    highest = [retry_delay(n, rand=lambda: 0.999999) for n in range(1, 12)]
    lowest = [retry_delay(n, rand=lambda: 0.0) for n in range(1, 12)]
    assert [round(d.total_seconds()) for d in highest[:4]] == [30, 60, 120, 240]
    assert lowest[:4] == [timedelta(seconds=s) for s in (15, 30, 60, 120)]
    assert all(a <= b for a, b in itertools.pairwise(highest))
    assert max(highest) <= RETRY_CAP
    assert max(highest) > RETRY_CAP * 0.99
    assert retry_delay(3, base=timedelta(seconds=1), rand=lambda: 0.0) == timedelta(seconds=2)
    # Deliveries that failed together come back spread out.
    assert len({retry_delay(4) for _ in range(20)}) > 1


def test_private_targets_are_blocked_in_production_only_unless_configured() -> None:
    assert Settings(env="production").blocks_private_webhook_targets
    assert not Settings(env="test").blocks_private_webhook_targets
    assert not Settings(env="development").blocks_private_webhook_targets
    assert Settings(env="test", webhook_block_private_targets=True).blocks_private_webhook_targets
    assert not Settings(
        env="production", webhook_block_private_targets=False
    ).blocks_private_webhook_targets
