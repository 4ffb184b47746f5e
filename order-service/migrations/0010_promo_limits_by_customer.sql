-- A promo code's per-customer limit counts the customer, never a spelling: the key is the
-- normalised email (lower case, no `+tag`), and a redemption also remembers the order's
-- user id, so one user id with three emails (or none) is still one customer.
ALTER TABLE promo_redemptions ADD COLUMN user_id TEXT;
UPDATE promo_redemptions
SET user_id = (SELECT o.user_id FROM orders o WHERE o.id = promo_redemptions.order_id);
CREATE INDEX promo_redemptions_held_by_user ON promo_redemptions (code, user_id)
    WHERE released_at IS NULL;
