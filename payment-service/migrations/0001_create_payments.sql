-- Payments. An order is charged at most once: the partial unique index refuses a second
-- captured payment for the same order even if two requests race.
-- order_verified is 0 when the payment was taken while the order service could not be
-- asked (fail-open); webhook_status says whether the order service has been told.
CREATE TABLE payments (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id             INTEGER NOT NULL CHECK (order_id > 0),
    amount_cents         INTEGER NOT NULL CHECK (amount_cents > 0),
    status               TEXT    NOT NULL CHECK (status IN ('captured', 'failed')),
    order_verified       INTEGER NOT NULL CHECK (order_verified IN (0, 1)),
    webhook_status       TEXT    NOT NULL CHECK (webhook_status IN ('pending', 'delivered')),
    webhook_delivered_at TEXT,
    created_at           TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX one_capture_per_order ON payments (order_id) WHERE status = 'captured';
CREATE INDEX payments_by_order ON payments (order_id, id);
