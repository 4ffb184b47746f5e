-- Each order gets a globally unique reference, the key its stock is held under in the
-- catalog (and that no restored orders.db or second order service can hand out again), and
-- the state of that stock. Orders placed before keep their id, as text, as their ref: the
-- key the catalog's reservations for them were made under. They are `untracked`: the
-- checkout that placed them settled their stock itself.
ALTER TABLE orders ADD COLUMN ref TEXT;
UPDATE orders SET ref = CAST(id AS TEXT);
CREATE UNIQUE INDEX orders_by_ref ON orders (ref);
ALTER TABLE orders ADD COLUMN stock TEXT NOT NULL DEFAULT 'untracked'
    CHECK (stock IN ('pending', 'held', 'committed', 'released', 'untracked'));
-- The stock keeper looks for orders whose stock does not yet match their status.
CREATE INDEX orders_by_stock ON orders (stock, status);
