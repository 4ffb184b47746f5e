-- A guest's cart is opened by a token the shop hands out (POST /carts), kept here only as
-- its SHA-256. Its lines are filed under `user_id` (`guest_` and a UUIDv7 in hex), never a
-- name the caller picks. Once its guest signs in, its lines move into the customer's cart
-- and `merged_into` names that customer: the token opens nothing on its own after.
CREATE TABLE guest_carts (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    merged_into TEXT
) WITHOUT ROWID;
