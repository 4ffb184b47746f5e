//! Every SQL statement of the cart service, as plain functions over a connection.

use crate::domain::CartLine;
use rusqlite::{Connection, OptionalExtension, params};
use service_kit::catalog::CatalogProduct;
use service_kit::domain::{Id, Quantity, UserId};
use service_kit::money::Cents;

/// The user's cart lines, by product id.
pub fn cart_lines(conn: &Connection, user: &UserId) -> rusqlite::Result<Vec<CartLine>> {
    let mut stmt = conn.prepare_cached(
        "SELECT product_id, quantity, name, unit_price_cents, verified, added_at, updated_at
         FROM cart_items WHERE user_id = ?1 ORDER BY product_id",
    )?;
    let rows = stmt.query_map(params![user.as_str()], |row| {
        Ok(CartLine {
            product_id: row.get(0)?,
            quantity: row.get(1)?,
            name: row.get(2)?,
            unit_price: row.get::<_, Option<i64>>(3)?.map(Cents::new),
            line_total: None,
            verified: row.get(4)?,
            added_at: row.get(5)?,
            updated_at: row.get(6)?,
        })
    })?;
    rows.collect()
}

/// How many units of the product the cart holds now (0 when none).
pub fn line_quantity(conn: &Connection, user: &UserId, product: Id) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT quantity FROM cart_items WHERE user_id = ?1 AND product_id = ?2")?
        .query_row(params![user.as_str(), product.get()], |r| r.get(0))
        .optional()
        .map(|q| q.unwrap_or(0))
}

/// Adds units to a line, creating it if needed. With catalog data the line takes the
/// catalog's name and price and becomes verified; without, it keeps what it knew and is
/// marked unverified.
pub fn add_to_line(
    conn: &Connection,
    user: &UserId,
    product: Id,
    quantity: Quantity,
    catalog: Option<&CatalogProduct>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO cart_items (user_id, product_id, quantity, name, unit_price_cents, verified)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (user_id, product_id) DO UPDATE SET
             quantity = quantity + excluded.quantity,
             name = COALESCE(excluded.name, name),
             unit_price_cents = COALESCE(excluded.unit_price_cents, unit_price_cents),
             verified = excluded.verified,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    )?
    .execute(params![
        user.as_str(),
        product.get(),
        quantity.get(),
        catalog.map(|p| p.name.as_str()),
        catalog.map(|p| p.price.get()),
        catalog.is_some(),
    ])?;
    Ok(())
}

/// Sets a line's quantity. Returns false when the cart has no such line.
pub fn set_line_quantity(
    conn: &Connection,
    user: &UserId,
    product: Id,
    quantity: Quantity,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE cart_items SET quantity = ?3,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE user_id = ?1 AND product_id = ?2",
        )?
        .execute(params![user.as_str(), product.get(), quantity.get()])?;
    Ok(changed == 1)
}

/// Removes one line. Returns false when the cart had no such line.
pub fn remove_line(conn: &Connection, user: &UserId, product: Id) -> rusqlite::Result<bool> {
    let removed = conn
        .prepare_cached("DELETE FROM cart_items WHERE user_id = ?1 AND product_id = ?2")?
        .execute(params![user.as_str(), product.get()])?;
    Ok(removed == 1)
}

/// Empties the cart; returns how many lines it had.
pub fn clear_cart(conn: &Connection, user: &UserId) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM cart_items WHERE user_id = ?1")?
        .execute(params![user.as_str()])
}
