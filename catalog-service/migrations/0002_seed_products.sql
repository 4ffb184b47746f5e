-- The three demo products the testing guide's commands use. Product 1 costs 999.99, the
-- price in the guide's example order. Applied once, on first start.
INSERT INTO products (id, name, description, price_cents, stock) VALUES
    (1, 'Laptop', '14-inch laptop, 16 GB RAM, 512 GB SSD', 99999, 50),
    (2, 'Wireless Mouse', 'Ergonomic 2.4 GHz mouse', 2999, 200),
    (3, 'Mechanical Keyboard', 'Tenkeyless, brown switches', 8999, 100);
