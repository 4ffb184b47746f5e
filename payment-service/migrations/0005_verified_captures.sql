-- Money moves only for a verified order. A payment taken while the order service could not
-- be asked is `authorized` (nothing captured, no webhook) until the order service confirms
-- the order and amount (then `captured`) or refuses them (`voided`, with `void_reason`).
-- Each payment gets a global reference (`ref`), and a capture records the order's global
-- reference (`order_ref`): one capture per order *reference*, so a payment for order 1 of an
-- orders.db restored from a backup is not refused as "already paid" by the earlier order 1,
-- and its webhook cannot mark the wrong order 1 paid. Payments made before keep their id as
-- ref and no order_ref; among them one capture per order id still holds.
-- The table is rebuilt to widen the status check (foreign keys are off while migrations
-- run and checked before this one commits: the deliveries point at the same ids again).
CREATE TABLE payments_verified (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ref             TEXT    NOT NULL UNIQUE,
    order_id        INTEGER NOT NULL CHECK (order_id > 0),
    order_ref       TEXT,
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    status          TEXT    NOT NULL
                    CHECK (status IN ('captured', 'failed', 'authorized', 'voided')),
    failure_code    TEXT,
    void_reason     TEXT,
    card_brand      TEXT,
    card_last4      TEXT    CHECK (card_last4 IS NULL OR length(card_last4) = 4),
    card_exp_month  INTEGER,
    card_exp_year   INTEGER,
    order_verified  INTEGER NOT NULL CHECK (order_verified IN (0, 1)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO payments_verified
    (id, ref, order_id, amount_cents, status, failure_code, card_brand, card_last4,
     card_exp_month, card_exp_year, order_verified, created_at)
SELECT id, CAST(id AS TEXT), order_id, amount_cents, status, failure_code, card_brand,
       card_last4, card_exp_month, card_exp_year, order_verified, created_at
FROM payments;
DROP TABLE payments;
ALTER TABLE payments_verified RENAME TO payments;
CREATE UNIQUE INDEX one_capture_per_order_ref ON payments (order_ref)
    WHERE status = 'captured' AND order_ref IS NOT NULL;
CREATE UNIQUE INDEX one_capture_per_earlier_order ON payments (order_id)
    WHERE status = 'captured' AND order_ref IS NULL;
CREATE INDEX payments_by_order ON payments (order_id, id);
-- The authorization settler looks for payments still waiting for the order service.
CREATE INDEX payments_authorized ON payments (status, id) WHERE status = 'authorized';
