-- Orders, their lines and their status history. Amounts are integer cents.
-- catalog_verified is 0 when the order was accepted while the catalog could not be asked
-- (fail-open), so such orders can be found and checked later.
CREATE TABLE orders (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          TEXT    NOT NULL,
    total_cents      INTEGER NOT NULL CHECK (total_cents > 0),
    status           TEXT    NOT NULL CHECK (status IN
                         ('PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
    catalog_verified INTEGER NOT NULL CHECK (catalog_verified IN (0, 1)),
    payment_id       INTEGER,
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_by_status ON orders (status, id);

-- The price of each line is the one the order was placed at, not the catalog's later price.
CREATE TABLE order_items (
    order_id         INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no          INTEGER NOT NULL,
    product_id       INTEGER NOT NULL CHECK (product_id > 0),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents > 0),
    PRIMARY KEY (order_id, line_no)
) WITHOUT ROWID;

-- Every status an order has had, oldest first; written in the same transaction as the change.
CREATE TABLE order_status_history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status   TEXT    NOT NULL,
    at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX history_by_order ON order_status_history (order_id, id);
