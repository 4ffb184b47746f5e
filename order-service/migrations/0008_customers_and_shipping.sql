-- Orders a shop can ship: whom an order is for (an optional customer email and name, and a
-- shipping address kept as the JSON object the client sent, once checked), how it was sent
-- (carrier and tracking number, given when it is marked SHIPPED), and each line's product
-- name and SKU as they were when the order was placed (orders from before have none).
ALTER TABLE orders ADD COLUMN customer_email TEXT;
ALTER TABLE orders ADD COLUMN customer_name TEXT;
ALTER TABLE orders ADD COLUMN shipping_address TEXT;
ALTER TABLE orders ADD COLUMN carrier TEXT;
ALTER TABLE orders ADD COLUMN tracking_number TEXT;
ALTER TABLE order_items ADD COLUMN product_name TEXT;
ALTER TABLE order_items ADD COLUMN product_sku TEXT;

-- `GET /orders?email=`: a customer's orders, newest first (an address's case is not
-- significant to the people who use it).
CREATE INDEX orders_by_customer_email ON orders (customer_email COLLATE NOCASE, id)
    WHERE customer_email IS NOT NULL;
