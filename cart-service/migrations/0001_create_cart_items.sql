-- One row per product in a user's cart. A cart is just its lines: an unknown user has an
-- empty cart, and clearing a cart deletes its lines.
-- name and unit_price_cents are what the catalog said when the line was last added; they are
-- NULL when the catalog could not be asked (fail-open), and verified says which case it is.
CREATE TABLE cart_items (
    user_id          TEXT    NOT NULL,
    product_id       INTEGER NOT NULL CHECK (product_id > 0),
    quantity         INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    name             TEXT,
    unit_price_cents INTEGER CHECK (unit_price_cents > 0),
    verified         INTEGER NOT NULL CHECK (verified IN (0, 1)),
    added_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (user_id, product_id)
) WITHOUT ROWID;
