-- The order service holds an order's stock under the order's global reference; the
-- checkout keeps that reference to commit or release the same reservation. Checkouts made
-- before have none and use their order id, the key their reservation was made under.
ALTER TABLE checkouts ADD COLUMN order_ref TEXT;
