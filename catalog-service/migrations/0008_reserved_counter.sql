-- The units a product's open reservations hold, kept on the product. Reading a product used
-- to sum every reservation line it ever had, which grew with every order and made reading
-- and reserving slower the longer the shop ran. Triggers keep the count in the same
-- transaction as the reservation that changes it, whatever statement changes it; the stock
-- audit still sums the lines and so checks the count.
ALTER TABLE products ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0);
-- The count follows reservations, so it is not a change an admin's If-Match should trip on:
-- the version now moves with every column but it (a column added later joins this list).
DROP TRIGGER products_version;
CREATE TRIGGER products_version
AFTER UPDATE OF name, description, price_cents, stock, created_at, updated_at, deleted_at,
    sku, category ON products
WHEN NEW.version = OLD.version
BEGIN
    UPDATE products SET version = OLD.version + 1 WHERE id = NEW.id;
END;
UPDATE products SET reserved = (
    SELECT COALESCE(SUM(l.quantity), 0) FROM reservation_lines l
      JOIN reservations r ON r.reference = l.reference
    WHERE l.product_id = products.id AND r.status = 'reserved');

CREATE TRIGGER reservation_line_holds_units AFTER INSERT ON reservation_lines
WHEN (SELECT status FROM reservations WHERE reference = NEW.reference) = 'reserved'
BEGIN
    UPDATE products SET reserved = reserved + NEW.quantity WHERE id = NEW.product_id;
END;

CREATE TRIGGER reservation_settled_frees_units AFTER UPDATE OF status ON reservations
WHEN OLD.status = 'reserved' AND NEW.status <> 'reserved'
BEGIN
    UPDATE products SET reserved = reserved - (
        SELECT l.quantity FROM reservation_lines l
        WHERE l.reference = NEW.reference AND l.product_id = products.id)
    WHERE id IN (SELECT product_id FROM reservation_lines WHERE reference = NEW.reference);
END;

CREATE TRIGGER reservation_reopened_holds_units AFTER UPDATE OF status ON reservations
WHEN OLD.status <> 'reserved' AND NEW.status = 'reserved'
BEGIN
    UPDATE products SET reserved = reserved + (
        SELECT l.quantity FROM reservation_lines l
        WHERE l.reference = NEW.reference AND l.product_id = products.id)
    WHERE id IN (SELECT product_id FROM reservation_lines WHERE reference = NEW.reference);
END;
