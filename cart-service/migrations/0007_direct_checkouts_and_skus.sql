-- A checkout may come in one call with its own lines (seed 001's `POST /checkout/process`)
-- instead of from the user's cart: such a checkout leaves the cart alone when it completes.
ALTER TABLE checkouts ADD COLUMN from_cart INTEGER NOT NULL DEFAULT 1 CHECK (from_cart IN (0, 1));
-- A cart line keeps the product's SKU beside its name, as the catalog said when it was added.
ALTER TABLE cart_items ADD COLUMN sku TEXT;
