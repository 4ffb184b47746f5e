-- Money that moved can move back: an order records what the payment service refunded of it
-- (`refunded_cents`, from its signed `payment.refunded` webhooks) and becomes REFUNDED once
-- refunded in full; a refund with `restock` returns its units to the catalog. The table is rebuilt to widen the status check (foreign keys are off
-- while migrations run and checked before this one commits: the lines, history and
-- processed webhooks point at the same ids again).
CREATE TABLE orders_with_refunds (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          TEXT    NOT NULL,
    total_cents      INTEGER NOT NULL CHECK (total_cents > 0),
    status           TEXT    NOT NULL CHECK (status IN
                         ('PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED', 'REFUNDED')),
    catalog_verified INTEGER NOT NULL CHECK (catalog_verified IN (0, 1)),
    payment_id       INTEGER,
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    correlation_id   TEXT,
    ref              TEXT,
    stock            TEXT    NOT NULL DEFAULT 'untracked'
                         CHECK (stock IN ('pending', 'held', 'committed', 'released', 'untracked')),
    refunded_cents   INTEGER NOT NULL DEFAULT 0
                         CHECK (refunded_cents >= 0 AND refunded_cents <= total_cents),
    -- A refund said the goods came back: the order's units go back on sale.
    restock          INTEGER NOT NULL DEFAULT 0 CHECK (restock IN (0, 1))
);
INSERT INTO orders_with_refunds
    (id, user_id, total_cents, status, catalog_verified, payment_id, created_at, updated_at,
     correlation_id, ref, stock)
SELECT id, user_id, total_cents, status, catalog_verified, payment_id, created_at, updated_at,
       correlation_id, ref, stock
FROM orders;
DROP TABLE orders;
ALTER TABLE orders_with_refunds RENAME TO orders;
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_by_status ON orders (status, id);
CREATE UNIQUE INDEX orders_by_ref ON orders (ref);
CREATE INDEX orders_by_stock ON orders (stock, status);
