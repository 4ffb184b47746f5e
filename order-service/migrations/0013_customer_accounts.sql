-- Customer accounts and their sessions. A customer's id (`cus_` and a UUIDv7 in hex) is
-- the user id their carts and orders are filed under; their email is kept as given and
-- compared in lower case (`email_key`, unique); the password only as an argon2id PHC string.
CREATE TABLE customers (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    name          TEXT,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- A refresh token is kept only as its SHA-256; ending a session (sign-out, a password
-- change or reset, a refresh that replaces it) sets `ended_at`, after which it opens nothing.
CREATE TABLE customer_sessions (
    token_hash  TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    created_at  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    TEXT
);
CREATE INDEX customer_sessions_by_customer ON customer_sessions (customer_id)
    WHERE ended_at IS NULL;

-- A password reset token (issued by an admin until the shop sends mail), kept as its
-- SHA-256, used once.
CREATE TABLE password_resets (
    token_hash  TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    created_at  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     TEXT
);
