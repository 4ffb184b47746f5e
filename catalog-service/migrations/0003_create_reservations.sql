-- Stock held for an order. Reserving takes the units off products.stock in the same
-- transaction (so stock is what is still for sale and can never go below 0); committing
-- keeps them off for good; releasing puts them back. One reservation per order: repeating a
-- reserve for the same order finds this row instead of taking stock twice.
CREATE TABLE reservations (
    order_id      INTEGER PRIMARY KEY,
    status        TEXT    NOT NULL CHECK (status IN ('reserved', 'committed', 'released')),
    expires_at_ms INTEGER NOT NULL,
    reason        TEXT,
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
-- The sweep looks for reservations still held past their expiry.
CREATE INDEX reservations_expiring ON reservations (status, expires_at_ms);

CREATE TABLE reservation_lines (
    order_id   INTEGER NOT NULL REFERENCES reservations (order_id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
) WITHOUT ROWID;
