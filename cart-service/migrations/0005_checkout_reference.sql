-- Every checkout gets a globally unique reference (a UUIDv7), and the idempotency keys it
-- sends to the order and payment services are built from it instead of the row id: a row
-- id starts again at 1 in a restored or new carts.db (or in a second cart service), and a
-- key built from it would replay another checkout's order and payment. Checkouts made
-- before this migration keep their row id as reference, so the keys they already sent (and
-- the recovery of one still running) stay the same.
ALTER TABLE checkouts ADD COLUMN ref TEXT;
UPDATE checkouts SET ref = CAST(id AS TEXT);
CREATE UNIQUE INDEX checkouts_by_ref ON checkouts (ref);
