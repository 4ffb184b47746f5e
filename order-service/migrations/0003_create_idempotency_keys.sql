-- Idempotency keys (IETF httpapi Idempotency-Key draft). One row per (API key, key).
-- scope is a hash of the API key that sent the request, so two clients never see each
-- other's answers and no key is stored. fingerprint is an HMAC of the request keyed by that
-- API key: a second request with the same key but another body is told apart without
-- keeping the body (which may hold a card number). The stored response is replayed as it is.
CREATE TABLE idempotency_keys (
    scope         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('in_flight', 'done')),
    status        INTEGER,
    content_type  TEXT,
    body          BLOB,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at_ms);
