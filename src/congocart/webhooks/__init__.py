"""Outbound webhooks: subscriptions, signed event deliveries with retries."""
