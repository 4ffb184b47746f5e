-- What a shop shows of a product besides its name and price: an optional SKU, unique among
-- all products (deleted ones too, so an order's SKU never names two products), so seed-style
-- ids such as `prod_001` resolve; an optional category; and one image (PNG, JPEG or WebP,
-- its content checked when uploaded), kept beside the product so listing products never
-- reads image bytes.
ALTER TABLE products ADD COLUMN sku TEXT;
ALTER TABLE products ADD COLUMN category TEXT;
CREATE UNIQUE INDEX products_by_sku ON products (sku) WHERE sku IS NOT NULL;
CREATE INDEX products_by_category ON products (category, id) WHERE category IS NOT NULL;

CREATE TABLE product_images (
    product_id   INTEGER PRIMARY KEY REFERENCES products (id),
    content_type TEXT    NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    bytes        BLOB    NOT NULL,
    updated_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
