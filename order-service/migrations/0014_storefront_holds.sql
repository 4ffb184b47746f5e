-- An order placed through the storefront key remembers the client (its address) it was
-- placed for: such unpaid orders hold their stock for the shorter STOREFRONT_HOLD_TTL, and a
-- client (or a customer) may hold only MAX_HELD_UNITS units unpaid at once. Orders the
-- admin places have none and keep ORDER_TTL.
ALTER TABLE orders ADD COLUMN held_for TEXT;
CREATE INDEX orders_held_unpaid ON orders (held_for) WHERE status = 'PENDING' AND held_for IS NOT NULL;
CREATE INDEX orders_unpaid_by_user ON orders (user_id) WHERE status = 'PENDING';
