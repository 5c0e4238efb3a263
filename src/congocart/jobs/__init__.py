"""The admin view of the background jobs (the outbox itself is `congocart.core.jobs`)."""
