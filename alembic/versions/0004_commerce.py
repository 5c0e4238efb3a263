"""Commerce: coupons, carts, checkout attempts, orders, payments, refunds, webhooks.

Money is in integer minor units (`*_minor bigint`) next to a `currency`. The
invariants the money path relies on are constraints here, so no code path can
break them: one order per cart, totals that add up, refunds never above the
total, coupon redemptions never above `max_redemptions`, one live checkout
attempt per cart.

Revision ID: 0004
Revises: 0002, 0003
Create Date: 2026-11-24
"""

from alembic import op

revision = "0004"
down_revision = ("0002", "0003")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE coupons (
        id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        code               text NOT NULL UNIQUE
                           CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{0,63}$'),
        percent_off        numeric(5, 2) CHECK (percent_off > 0 AND percent_off <= 100),
        amount_off_minor   bigint CHECK (amount_off_minor > 0),
        currency           char(3) NOT NULL,
        min_subtotal_minor bigint CHECK (min_subtotal_minor >= 0),
        max_redemptions    integer CHECK (max_redemptions > 0),
        per_customer_limit integer CHECK (per_customer_limit > 0),
        -- The guarded counter: redeeming is
        --   UPDATE coupons SET redemptions = redemptions + 1
        --   WHERE id = $1 AND (max_redemptions IS NULL OR redemptions < max_redemptions)
        -- and the CHECK below is the backstop no race can get past.
        redemptions        integer NOT NULL DEFAULT 0 CHECK (redemptions >= 0),
        starts_at          timestamptz,
        ends_at            timestamptz,
        created_at         timestamptz NOT NULL DEFAULT now(),
        updated_at         timestamptz NOT NULL DEFAULT now(),
        CHECK ((percent_off IS NULL) <> (amount_off_minor IS NULL)),
        CHECK (max_redemptions IS NULL OR redemptions <= max_redemptions),
        CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
    );
    CREATE INDEX coupons_newest ON coupons (created_at DESC, id DESC);

    CREATE TABLE carts (
        id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        -- NULL for a guest cart, reached with its token (stored as SHA-256 only).
        user_id          uuid REFERENCES users (id) ON DELETE CASCADE,
        guest_token_hash bytea UNIQUE CHECK (length(guest_token_hash) = 32),
        currency         char(3) NOT NULL,
        coupon_code      text REFERENCES coupons (code) ON UPDATE CASCADE ON DELETE SET NULL,
        status           text NOT NULL DEFAULT 'open'
                         CHECK (status IN ('open', 'checked_out', 'merged', 'expired')),
        -- Bumped by every change: optimistic concurrency for clients, and the
        -- cart row is what a change locks (FOR UPDATE) before touching items.
        version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
        shipping_country char(2) CHECK (shipping_country ~ '^[A-Z]{2}$'),
        shipping_method  text,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now(),
        CHECK (user_id IS NOT NULL OR guest_token_hash IS NOT NULL)
    );
    CREATE INDEX carts_user ON carts (user_id, updated_at DESC) WHERE user_id IS NOT NULL;
    -- The abandoned-cart sweep looks at open carts by age.
    CREATE INDEX carts_open_by_age ON carts (updated_at) WHERE status = 'open';

    CREATE TABLE cart_items (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        cart_id    uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
        sku        text NOT NULL REFERENCES variants (sku) ON UPDATE CASCADE,
        quantity   integer NOT NULL CHECK (quantity BETWEEN 1 AND 99),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (cart_id, sku)
    );
    CREATE INDEX cart_items_sku ON cart_items (sku);

    -- Stock reserved for a checkout while the payment is being taken. A
    -- 'reserved' attempt past expires_at is released by the sweeper (and any
    -- charge made under its payment key voided).
    CREATE TABLE checkout_attempts (
        id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        cart_id         uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
        idempotency_key text NOT NULL,
        -- The idempotency key sent to the payment gateway for this attempt.
        payment_key     text NOT NULL UNIQUE,
        reserved_lines  jsonb NOT NULL CHECK (jsonb_typeof(reserved_lines) = 'array'),
        amount_minor    bigint NOT NULL CHECK (amount_minor >= 0),
        currency        char(3) NOT NULL,
        coupon_code     text,
        status          text NOT NULL DEFAULT 'reserved'
                        CHECK (status IN ('reserved', 'confirmed', 'released')),
        payment_ref     text,
        expires_at      timestamptz NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now()
    );
    -- At most one live attempt per cart: a second concurrent checkout of the
    -- same cart fails on this index instead of reserving stock twice.
    CREATE UNIQUE INDEX checkout_attempts_one_live_per_cart ON checkout_attempts (cart_id)
        WHERE status = 'reserved';
    CREATE INDEX checkout_attempts_expiry ON checkout_attempts (expires_at)
        WHERE status = 'reserved';
    CREATE INDEX checkout_attempts_cart ON checkout_attempts (cart_id, created_at);

    -- Rendered CC-000123 by orders.domain.format_order_number.
    CREATE SEQUENCE order_numbers AS bigint START 1;

    CREATE TABLE orders (
        id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        number           bigint NOT NULL UNIQUE DEFAULT nextval('order_numbers'),
        -- One cart can never become two orders.
        cart_id          uuid NOT NULL UNIQUE REFERENCES carts (id),
        checkout_attempt_id uuid UNIQUE REFERENCES checkout_attempts (id),
        user_id          uuid REFERENCES users (id) ON DELETE SET NULL,
        email            text NOT NULL,
        status           text NOT NULL
                         CHECK (status IN ('paid', 'fulfilling', 'shipped', 'delivered',
                                           'cancelled', 'refunded')),
        currency         char(3) NOT NULL,
        subtotal_minor   bigint NOT NULL CHECK (subtotal_minor >= 0),
        discount_minor   bigint NOT NULL CHECK (discount_minor >= 0),
        shipping_minor   bigint NOT NULL CHECK (shipping_minor >= 0),
        tax_minor        bigint NOT NULL CHECK (tax_minor >= 0),
        total_minor      bigint NOT NULL,
        refunded_minor   bigint NOT NULL DEFAULT 0,
        tax_rate         numeric(7, 6) CHECK (tax_rate >= 0 AND tax_rate < 1),
        coupon_code      text,
        shipping_method  text NOT NULL,
        shipping_address jsonb NOT NULL CHECK (jsonb_typeof(shipping_address) = 'object'),
        carrier          text,
        tracking_number  text,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now(),
        CHECK (discount_minor <= subtotal_minor),
        CHECK (total_minor = subtotal_minor - discount_minor + shipping_minor + tax_minor),
        -- Refunds are added with a conditional update; this is the backstop.
        CHECK (refunded_minor >= 0 AND refunded_minor <= total_minor)
    );
    CREATE INDEX orders_user_newest ON orders (user_id, created_at DESC, id DESC);
    CREATE INDEX orders_newest ON orders (created_at DESC, id DESC);
    CREATE INDEX orders_status_newest ON orders (status, created_at DESC, id DESC);

    -- Frozen at checkout: what was bought, at the name and price it had then.
    -- No foreign key to variants, so the line outlives any catalog change.
    CREATE TABLE order_lines (
        id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        order_id         uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        position         integer NOT NULL CHECK (position >= 0),
        sku              text NOT NULL,
        name             text NOT NULL,
        unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
        quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 99),
        line_total_minor bigint NOT NULL,
        CHECK (line_total_minor = unit_price_minor * quantity),
        UNIQUE (order_id, sku),
        UNIQUE (order_id, position)
    );

    -- The audit trail: every status change (who, when, from, to, why).
    CREATE TABLE order_events (
        id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        -- Orders the events of an order, even when several share a timestamp.
        seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        actor_id    uuid REFERENCES users (id) ON DELETE SET NULL,
        actor_role  text NOT NULL CHECK (actor_role IN ('owner', 'staff', 'admin', 'system')),
        action      text NOT NULL,
        from_status text,
        to_status   text NOT NULL,
        reason      text,
        details     jsonb NOT NULL DEFAULT '{}',
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX order_events_order ON order_events (order_id, seq);

    CREATE TABLE payments (
        id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        order_id       uuid NOT NULL UNIQUE REFERENCES orders (id) ON DELETE CASCADE,
        gateway        text NOT NULL,
        -- The provider's charge id; NULL only for an order with nothing to charge.
        gateway_ref    text UNIQUE,
        status         text NOT NULL
                       CHECK (status IN ('authorized', 'captured', 'partially_refunded',
                                         'refunded', 'voided')),
        amount_minor   bigint NOT NULL CHECK (amount_minor >= 0),
        refunded_minor bigint NOT NULL DEFAULT 0,
        currency       char(3) NOT NULL,
        brand          text,
        last4          char(4) CHECK (last4 ~ '^[0-9]{4}$'),
        created_at     timestamptz NOT NULL DEFAULT now(),
        updated_at     timestamptz NOT NULL DEFAULT now(),
        CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor)
    );

    -- A refund is written 'pending' before the gateway is called (its id is the
    -- gateway idempotency key), then marked with the outcome.
    CREATE TABLE refunds (
        id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        order_id     uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        payment_id   uuid REFERENCES payments (id),
        amount_minor bigint NOT NULL CHECK (amount_minor > 0),
        currency     char(3) NOT NULL,
        reason       text NOT NULL,
        status       text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed')),
        gateway_ref  text UNIQUE,
        actor_id     uuid REFERENCES users (id) ON DELETE SET NULL,
        created_at   timestamptz NOT NULL DEFAULT now(),
        updated_at   timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX refunds_order ON refunds (order_id, created_at);

    -- Redeemed in the order's transaction, after the guarded counter update.
    CREATE TABLE coupon_redemptions (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        coupon_id  uuid NOT NULL REFERENCES coupons (id),
        order_id   uuid NOT NULL UNIQUE REFERENCES orders (id) ON DELETE CASCADE,
        user_id    uuid REFERENCES users (id) ON DELETE SET NULL,
        -- Lower-cased; the per-customer limit counts guests by email.
        email      text NOT NULL CHECK (email = lower(email)),
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX coupon_redemptions_user ON coupon_redemptions (coupon_id, user_id)
        WHERE user_id IS NOT NULL;
    CREATE INDEX coupon_redemptions_email ON coupon_redemptions (coupon_id, email);

    -- The sandbox payment provider's own books (adapters/sandbox_gateway.py).
    -- It writes them on its own connections, never in the caller's transaction.
    CREATE TABLE sandbox_charges (
        id              text PRIMARY KEY,
        idempotency_key text NOT NULL UNIQUE,
        token           text NOT NULL,
        amount_minor    bigint NOT NULL CHECK (amount_minor > 0),
        currency        char(3) NOT NULL,
        outcome         text NOT NULL CHECK (outcome IN ('succeeded', 'declined', 'failed')),
        decline_code    text,
        brand           text,
        last4           char(4),
        refunded_minor  bigint NOT NULL DEFAULT 0,
        voided          boolean NOT NULL DEFAULT false,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now(),
        CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
        CHECK (outcome = 'succeeded' OR (refunded_minor = 0 AND NOT voided))
    );
    CREATE TABLE sandbox_refunds (
        id              text PRIMARY KEY,
        charge_id       text NOT NULL REFERENCES sandbox_charges (id),
        idempotency_key text NOT NULL UNIQUE,
        kind            text NOT NULL CHECK (kind IN ('refund', 'void')),
        amount_minor    bigint NOT NULL CHECK (amount_minor >= 0),
        created_at      timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX sandbox_refunds_charge ON sandbox_refunds (charge_id);

    CREATE TABLE webhooks (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        url        text NOT NULL CHECK (url ~ '^https?://'),
        events     text[] NOT NULL CHECK (cardinality(events) > 0),
        -- Kept readable: every delivery is signed with it.
        secret     text NOT NULL,
        active     boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE webhook_deliveries (
        id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        webhook_id    uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event_id      uuid NOT NULL,
        event         text NOT NULL,
        payload       jsonb NOT NULL,
        status        text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
        attempt       integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
        status_code   integer,
        last_error    text,
        next_retry_at timestamptz,
        delivered_at  timestamptz,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now(),
        UNIQUE (webhook_id, event_id)
    );
    CREATE INDEX webhook_deliveries_newest ON webhook_deliveries
        (webhook_id, created_at DESC, id DESC);
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE webhook_deliveries;
    DROP TABLE webhooks;
    DROP TABLE sandbox_refunds;
    DROP TABLE sandbox_charges;
    DROP TABLE coupon_redemptions;
    DROP TABLE refunds;
    DROP TABLE payments;
    DROP TABLE order_events;
    DROP TABLE order_lines;
    DROP TABLE orders;
    DROP SEQUENCE order_numbers;
    DROP TABLE checkout_attempts;
    DROP TABLE cart_items;
    DROP TABLE carts;
    DROP TABLE coupons;
    """)
