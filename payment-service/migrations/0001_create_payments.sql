-- Payments, their webhook deliveries (a transactional outbox) and every delivery attempt.
-- (Rewritten before any release: nothing had applied the first draft of this file.)

-- A payment is captured or failed (declined, with its reason). An order is charged at most
-- once: the partial unique index refuses a second captured payment for the same order even
-- if two requests race. Only the brand, last four digits and expiry of a card are kept.
-- order_verified is 0 when the payment was taken while the order service could not be asked.
CREATE TABLE payments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        INTEGER NOT NULL CHECK (order_id > 0),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    status          TEXT    NOT NULL CHECK (status IN ('captured', 'failed')),
    failure_code    TEXT,
    card_brand      TEXT,
    card_last4      TEXT    CHECK (card_last4 IS NULL OR length(card_last4) = 4),
    card_exp_month  INTEGER,
    card_exp_year   INTEGER,
    order_verified  INTEGER NOT NULL CHECK (order_verified IN (0, 1)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX one_capture_per_order ON payments (order_id) WHERE status = 'captured';
CREATE INDEX payments_by_order ON payments (order_id, id);

-- One row per webhook message, written in the same transaction as the payment it announces,
-- so a committed payment always has its webhook on record. id is the webhook-id: the same on
-- every retry, so the receiver can process it once. payload is the exact signed body.
-- next_attempt_at_ms doubles as a claim: whoever attempts a delivery first pushes it into the
-- future, so the inline attempt and the background worker never send it at the same time.
CREATE TABLE webhook_deliveries (
    id                 TEXT    PRIMARY KEY,
    payment_id         INTEGER NOT NULL UNIQUE REFERENCES payments (id),
    order_id           INTEGER NOT NULL,
    payload            TEXT    NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts_in_round  INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error         TEXT,
    created_at_ms      INTEGER NOT NULL,
    delivered_at       TEXT
);
CREATE INDEX deliveries_due ON webhook_deliveries (status, next_attempt_at_ms);
CREATE INDEX deliveries_by_order ON webhook_deliveries (order_id);

-- Every attempt, successes too: when, what came back (a status code or an error), how long.
CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT    NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX attempts_by_delivery ON webhook_attempts (delivery_id, id);
