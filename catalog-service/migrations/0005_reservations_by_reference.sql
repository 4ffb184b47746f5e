-- Reservations are keyed by the caller's reference (an order's globally unique ref) instead
-- of an order id that is only unique inside one orders.db: a restored or second order
-- service can no longer find another order's reservation. The order id stays for people.
-- Rows made before keep their order id, as text, as their reference, so
-- `/reservations/{order_id}` still finds them. `expires_at_ms` NULL: held until committed or
-- released (an order service that settles its own orders asks for that).
CREATE TABLE reservations_by_reference (
    reference     TEXT    PRIMARY KEY,
    order_id      INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('reserved', 'committed', 'released')),
    expires_at_ms INTEGER,
    reason        TEXT,
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO reservations_by_reference
    (reference, order_id, status, expires_at_ms, reason, created_at, updated_at)
SELECT CAST(order_id AS TEXT), order_id, status, expires_at_ms, reason, created_at, updated_at
FROM reservations;

CREATE TABLE reservation_lines_by_reference (
    reference  TEXT    NOT NULL REFERENCES reservations_by_reference (reference),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reference, product_id)
) WITHOUT ROWID;
INSERT INTO reservation_lines_by_reference (reference, product_id, quantity)
SELECT CAST(order_id AS TEXT), product_id, quantity FROM reservation_lines;

DROP TABLE reservation_lines;
DROP TABLE reservations;
ALTER TABLE reservations_by_reference RENAME TO reservations;
ALTER TABLE reservation_lines_by_reference RENAME TO reservation_lines;
-- The sweep looks for reservations still held past their expiry.
CREATE INDEX reservations_expiring ON reservations (status, expires_at_ms);
CREATE INDEX reservations_by_order ON reservations (order_id);
