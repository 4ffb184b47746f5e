-- Admin stock changes are movements, not overwrites: each is a row of the stock ledger
-- (how many units came or went, why, and what was left), written with the change. Every
-- product has a version, bumped by any change to it (the trigger below, so no statement can
-- forget it): `PUT /products/{id}` may overwrite `stock` only with `If-Match` of the version
-- the admin read, so a form saved after checkouts took units cannot put them back on sale.
ALTER TABLE products ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
-- recursive_triggers is off: the trigger's own update does not fire it again.
CREATE TRIGGER products_version AFTER UPDATE ON products
WHEN NEW.version = OLD.version
BEGIN
    UPDATE products SET version = OLD.version + 1 WHERE id = NEW.id;
END;

CREATE TABLE stock_movements (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id     INTEGER NOT NULL REFERENCES products (id),
    delta          INTEGER NOT NULL CHECK (delta <> 0),
    reason         TEXT    NOT NULL,
    stock_after    INTEGER NOT NULL CHECK (stock_after >= 0),
    correlation_id TEXT,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX stock_movements_by_product ON stock_movements (product_id, id);
-- Reserved units per product are summed from the open reservations.
CREATE INDEX reservation_lines_by_product ON reservation_lines (product_id);
-- When a sold reservation's units came back (its order cancelled after payment).
ALTER TABLE reservations ADD COLUMN returned_at TEXT;
-- The ledger opens with the units each product holds now (on sale, reserved or sold), so
-- the stock audit can check on hand = ledger - sold + returned from here on.
INSERT INTO stock_movements (product_id, delta, reason, stock_after)
SELECT p.id, held, 'opening stock', p.stock
FROM (SELECT p.id AS id, p.stock AS stock,
             p.stock + COALESCE((SELECT SUM(l.quantity) FROM reservation_lines l
                                   JOIN reservations r ON r.reference = l.reference
                                 WHERE l.product_id = p.id
                                   AND r.status IN ('reserved', 'committed')), 0) AS held
      FROM products p) AS p
WHERE held > 0;
