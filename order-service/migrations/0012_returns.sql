-- Goods come back by line. A return names the lines and units received, each in sellable
-- condition (back on sale) or damaged (not restocked), and the reason; it refunds those
-- lines' value (their share of any discount taken off) and puts back on sale exactly the
-- sellable units. It is written first, in one transaction, with its refund and its restock
-- each `pending`; the order service then asks the payment service (under a key made from
-- the return's global ref) and the catalog (under that ref), and marks each `done`. What
-- is still pending after a crash or an outage, the stock keeper asks again: both ends key
-- everything by the ref, so asking twice moves nothing twice.
CREATE TABLE order_returns (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ref            TEXT    NOT NULL UNIQUE,
    order_id       INTEGER NOT NULL REFERENCES orders (id),
    reason         TEXT    NOT NULL,
    refund_cents   INTEGER NOT NULL CHECK (refund_cents >= 0),
    refund_state   TEXT    NOT NULL CHECK (refund_state IN ('pending', 'done', 'none', 'refused')),
    restock_state  TEXT    NOT NULL CHECK (restock_state IN ('pending', 'done', 'none', 'refused')),
    refund_id      INTEGER,
    problem        TEXT,
    correlation_id TEXT,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX order_returns_by_order ON order_returns (order_id, id);
CREATE INDEX order_returns_due ON order_returns (id)
    WHERE refund_state = 'pending' OR restock_state = 'pending';

CREATE TABLE order_return_lines (
    return_id  INTEGER NOT NULL REFERENCES order_returns (id),
    product_id INTEGER NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    condition  TEXT    NOT NULL CHECK (condition IN ('sellable', 'damaged')),
    PRIMARY KEY (return_id, product_id, condition)
) WITHOUT ROWID;
