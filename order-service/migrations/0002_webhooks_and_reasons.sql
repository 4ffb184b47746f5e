-- Payment webhooks already processed, by webhook-id. Delivery is at least once, so the same
-- message may arrive again; finding its id here makes the repeat a no-op. Written in the same
-- transaction as the status change it caused.
CREATE TABLE processed_webhooks (
    webhook_id   TEXT    PRIMARY KEY,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    payment_id   INTEGER NOT NULL,
    processed_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) WITHOUT ROWID;

-- Why a status changed, when someone said (a cancellation's reason).
ALTER TABLE order_status_history ADD COLUMN reason TEXT;
