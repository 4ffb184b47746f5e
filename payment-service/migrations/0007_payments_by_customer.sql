-- Whose payment it is: the user its order is filed under (a customer's `cus_...` or a
-- guest's `guest_...`), so that a signed-in customer lists only their own payments.
-- Payments from before have none and are seen by the admin only.
ALTER TABLE payments ADD COLUMN user_id TEXT;
CREATE INDEX payments_by_user ON payments (user_id, id) WHERE user_id IS NOT NULL;
