"""Webhooks: the events we publish, how a delivery is signed, and when it is retried.

Pure: no framework, no database, no network.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit
from uuid import UUID

from congocart.core import backoff

# The events a webhook may subscribe to (api-contract.md, "Outbound webhooks").
EVENTS: tuple[str, ...] = (
    "order.paid",
    "order.cancelled",
    "order.shipped",
    "order.delivered",
    "order.refunded",
)

SIGNATURE_HEADER = "CongoCart-Signature"
# A delivery is tried this many times in all, then left `dead`.
MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=6)
URL_MAX_LENGTH = 2048


class WebhookSendFailed(Exception):
    """The request got no HTTP answer (refused, timed out, blocked target)."""


class WebhookSender(Protocol):
    """The port the delivery job sends through (`adapters.webhook_sender`)."""

    async def send(self, *, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST `body` to `url`; the answer's status code, or `WebhookSendFailed`."""
        ...


class UnknownEvent(ValueError):
    pass


class InvalidWebhookUrl(ValueError):
    pass


def check_events(events: Iterable[str]) -> list[str]:
    """The subscribed events, de-duplicated in first-seen order; unknown ones raise."""
    chosen = list(dict.fromkeys(events))
    if not chosen:
        raise UnknownEvent("subscribe to at least one event")
    unknown = [event for event in chosen if event not in EVENTS]
    if unknown:
        raise UnknownEvent(f"unknown events: {', '.join(unknown)}; known: {', '.join(EVENTS)}")
    return chosen


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host, without credentials in it."""
    if len(url) > URL_MAX_LENGTH:
        raise InvalidWebhookUrl(f"the URL is longer than {URL_MAX_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port out of range
    except ValueError as exc:
        raise InvalidWebhookUrl("the URL is malformed") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhookUrl("the URL must be http:// or https:// with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("the URL must not carry credentials")
    if port == 0:
        raise InvalidWebhookUrl("the URL's port must be 1..65535")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise InvalidWebhookUrl("the URL must not contain spaces or control characters")
    return url


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved or unspecified addresses.

    Production refuses to deliver to these, so a webhook cannot be aimed at the
    shop's own network (SSRF); tests and development deliver to 127.0.0.1.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def sign(secret: str, *, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex hmac_sha256(secret, "<t>.<raw body>")>`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, *, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: check the signature and that it is recent (replay window)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp=timestamp, body=body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


def retry_delay(
    attempt: int, *, base: timedelta = RETRY_BASE, rand: Callable[[], float] = random.random
) -> timedelta:
    """The wait after failed delivery attempt number `attempt` (1-based):
    base·2^(n-1), at most 6 h, times a random factor in [0.5, 1), so that the
    deliveries to a receiver that was down do not all come back at once.

    With the default base: 15 to 30 s, 30 to 60 s, 1 to 2 min, 2 to 4 min, ... (eight
    attempts span 30 min to 1 h).
    """
    return backoff.retry_delay(attempt, base=base, cap=RETRY_CAP, rand=rand)


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300


@dataclass(frozen=True, slots=True)
class Webhook:
    id: UUID
    url: str
    events: tuple[str, ...]
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewWebhook:
    """A webhook just created: the only time its secret is shown."""

    webhook: Webhook
    secret: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: UUID
    webhook_id: UUID
    event_id: UUID
    event: str
    status: str
    status_code: int | None
    attempt: int
    last_error: str | None
    next_retry_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
