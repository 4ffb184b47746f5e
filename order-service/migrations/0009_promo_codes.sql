-- Promo codes: created by an admin, applied when an order is placed. A redemption is a row
-- written in the same transaction as its order (writes are serialized, so the count read
-- before it is exact: a limit is never passed under concurrency) and given back, by
-- `released_at`, when the order is cancelled. An order keeps its subtotal (the lines), the
-- discount and the code; `total_cents` stays what is paid.
CREATE TABLE promo_codes (
    code             TEXT    PRIMARY KEY CHECK (code = upper(code) AND length(code) BETWEEN 1 AND 32),
    percent_off      INTEGER CHECK (percent_off BETWEEN 1 AND 100),
    amount_off_cents INTEGER CHECK (amount_off_cents > 0),
    min_total_cents  INTEGER NOT NULL DEFAULT 0 CHECK (min_total_cents >= 0),
    starts_at        TEXT,
    ends_at          TEXT,
    max_redemptions  INTEGER CHECK (max_redemptions >= 1),
    max_per_customer INTEGER CHECK (max_per_customer >= 1),
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    disabled_at      TEXT,
    CHECK ((percent_off IS NULL) <> (amount_off_cents IS NULL))
);

CREATE TABLE promo_redemptions (
    order_id    INTEGER PRIMARY KEY REFERENCES orders (id),
    code        TEXT    NOT NULL REFERENCES promo_codes (code),
    -- The customer's email, else `user:<user id>`: what the per-customer limit counts.
    customer    TEXT    NOT NULL,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    released_at TEXT
);
CREATE INDEX promo_redemptions_held ON promo_redemptions (code, customer)
    WHERE released_at IS NULL;

ALTER TABLE orders ADD COLUMN subtotal_cents INTEGER;
ALTER TABLE orders ADD COLUMN discount_cents INTEGER NOT NULL DEFAULT 0 CHECK (discount_cents >= 0);
ALTER TABLE orders ADD COLUMN promo_code TEXT;
