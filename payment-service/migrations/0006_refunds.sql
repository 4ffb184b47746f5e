-- Money that moved can move back: a refund is a row of its own (full or partial, never more
-- than is left of the payment, optionally with the goods back in stock), with a global
-- reference, announced to the order service by
-- a signed `payment.refunded` webhook through the same outbox. A delivery now announces a
-- capture (refund_id NULL, one per payment, as before) or one refund. The deliveries table
-- is rebuilt to drop its one-per-payment constraint (foreign keys are off while migrations
-- run and checked before this one commits).
CREATE TABLE refunds (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ref          TEXT    NOT NULL UNIQUE,
    payment_id   INTEGER NOT NULL REFERENCES payments (id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    reason       TEXT,
    -- The goods came back: the order service returns the order's units to stock.
    restock      INTEGER NOT NULL DEFAULT 0 CHECK (restock IN (0, 1)),
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX refunds_by_payment ON refunds (payment_id, id);

CREATE TABLE webhook_deliveries_v2 (
    id                 TEXT    PRIMARY KEY,
    payment_id         INTEGER NOT NULL REFERENCES payments (id),
    refund_id          INTEGER UNIQUE REFERENCES refunds (id),
    order_id           INTEGER NOT NULL,
    payload            TEXT    NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts_in_round  INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error         TEXT,
    created_at_ms      INTEGER NOT NULL,
    delivered_at       TEXT,
    correlation_id     TEXT
);
INSERT INTO webhook_deliveries_v2
    (id, payment_id, order_id, payload, status, attempts_in_round, next_attempt_at_ms,
     last_error, created_at_ms, delivered_at, correlation_id)
SELECT id, payment_id, order_id, payload, status, attempts_in_round, next_attempt_at_ms,
       last_error, created_at_ms, delivered_at, correlation_id
FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_v2 RENAME TO webhook_deliveries;
CREATE UNIQUE INDEX one_capture_notice_per_payment ON webhook_deliveries (payment_id)
    WHERE refund_id IS NULL;
CREATE INDEX deliveries_due ON webhook_deliveries (status, next_attempt_at_ms);
CREATE INDEX deliveries_by_order ON webhook_deliveries (order_id);
