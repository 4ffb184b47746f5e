-- The X-Request-Id of the journey that placed the order, so its events can be gathered
-- from every service's feed.
ALTER TABLE orders ADD COLUMN correlation_id TEXT;
