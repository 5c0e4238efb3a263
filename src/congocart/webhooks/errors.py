"""The webhooks feature's errors, as clients see them."""

from __future__ import annotations

from congocart.core.errors import CongoError


class WebhookNotFound(CongoError):
    status_code = 404
    code = "webhook_not_found"
    default_detail = "There is no such webhook."
