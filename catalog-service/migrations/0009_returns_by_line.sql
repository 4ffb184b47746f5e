-- Goods come back by line: each unit a return puts back on sale is a row here, keyed by the
-- return's own global reference (so recording it again changes nothing) and the product.
-- A sold reservation keeps its status while some of its units come back; the stock audit
-- counts returned units from these rows. A whole reservation returned before (its order
-- cancelled after payment) becomes its rows under `<reference>:whole`.
CREATE TABLE stock_returns (
    return_ref     TEXT    NOT NULL,
    reference      TEXT    NOT NULL REFERENCES reservations (reference),
    product_id     INTEGER NOT NULL REFERENCES products (id),
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    reason         TEXT    NOT NULL,
    correlation_id TEXT,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (return_ref, product_id)
) WITHOUT ROWID;
CREATE INDEX stock_returns_by_reference ON stock_returns (reference, product_id);
CREATE INDEX stock_returns_by_product ON stock_returns (product_id);
INSERT INTO stock_returns (return_ref, reference, product_id, quantity, reason, created_at)
SELECT r.reference || ':whole', r.reference, l.product_id, l.quantity,
       COALESCE(r.reason, 'returned'), r.returned_at
FROM reservations r JOIN reservation_lines l ON l.reference = r.reference
WHERE r.returned_at IS NOT NULL;
