-- Domain events, written in the same transaction as the change they describe, so the feed
-- never shows something that did not happen nor misses something that did. seq orders one
-- service's events; at (microseconds, UTC) and correlation_id stitch feeds together.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    type           TEXT    NOT NULL,
    at             TEXT    NOT NULL,
    correlation_id TEXT,
    payload        TEXT    NOT NULL
);
CREATE INDEX events_by_type ON events (type, seq);
CREATE INDEX events_by_correlation ON events (correlation_id, seq);
