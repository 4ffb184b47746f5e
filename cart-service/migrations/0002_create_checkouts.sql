-- Checkouts: one row per attempt, holding each step's state so a checkout can always be
-- shown, resumed or undone. lines is the cart as it was checked out (with the catalog's
-- prices once validated); steps is the step log, oldest first. A card is never stored.
-- At most one checkout per user runs at a time, so a retry cannot start a second charge
-- while the first is still being settled.
CREATE TABLE checkouts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    step           TEXT    NOT NULL,
    steps          TEXT    NOT NULL,
    lines          TEXT    NOT NULL,
    total_cents    INTEGER,
    order_id       INTEGER,
    payment_id     INTEGER,
    failed_step    TEXT,
    failure_code   TEXT,
    failure_reason TEXT,
    correlation_id TEXT,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at_ms  INTEGER NOT NULL
);
CREATE UNIQUE INDEX one_running_checkout_per_user ON checkouts (user_id) WHERE status = 'running';
CREATE INDEX checkouts_by_user ON checkouts (user_id, id);
CREATE INDEX checkouts_running ON checkouts (status, updated_at_ms);
