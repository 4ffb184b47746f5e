//! Every SQL statement of the catalog, as plain functions over a connection.

use crate::routes::products::ProductOut;
use rusqlite::{Connection, OptionalExtension, Row, params};
use service_kit::domain::{Id, Page};
use service_kit::money::Cents;

const PRODUCT_COLUMNS: &str = "id, name, description, price_cents, stock, created_at, updated_at";

fn product_from_row(row: &Row<'_>) -> rusqlite::Result<ProductOut> {
    Ok(ProductOut {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        price: Cents::new(row.get(3)?),
        stock: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

/// Products on sale, by id.
pub fn list_products(conn: &Connection, page: Page) -> rusqlite::Result<Vec<ProductOut>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE deleted_at IS NULL
         ORDER BY id LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt.query_map(params![page.limit(), page.offset()], product_from_row)?;
    rows.collect()
}

/// One product on sale, if it exists.
pub fn get_product(conn: &Connection, id: Id) -> rusqlite::Result<Option<ProductOut>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ?1 AND deleted_at IS NULL"
    ))?;
    stmt.query_row(params![id.get()], product_from_row)
        .optional()
}
