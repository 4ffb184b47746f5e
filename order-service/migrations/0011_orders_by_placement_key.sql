-- An order remembers the Idempotency-Key it was placed under (a hash of the client's key
-- and the key sent, never either as such), in the order's own row and so in the order's
-- own transaction. The stored answer of a key is written after the order commits; when the
-- process dies in between, the key is freed at the next start and the client's retry runs
-- again: it finds this order instead of placing a second one that would hold stock too.
ALTER TABLE orders ADD COLUMN placed_under TEXT;
CREATE UNIQUE INDEX orders_by_placement_key ON orders (placed_under)
    WHERE placed_under IS NOT NULL;
