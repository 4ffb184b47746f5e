-- The X-Request-Id of the journey that made the payment, sent again with every attempt of
-- its webhook so the order service's events carry the same correlation id.
ALTER TABLE webhook_deliveries ADD COLUMN correlation_id TEXT;
