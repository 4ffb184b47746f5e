//! Every SQL statement of the catalog, as plain functions over a connection.

use crate::domain::{
    AuditRow, Movement, Product, ProductSort, Reservation, ReservationLine, ReservationStatus,
    ValidFields,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use service_kit::domain::{Id, Page, Reference};
use service_kit::money::Cents;

/// A product's columns, with the units its open reservations hold (counted by triggers, see
/// migration 0008).
const PRODUCT_COLUMNS: &str = "id, name, description, price_cents, stock, created_at, updated_at,
     version, reserved, sku, category,
     EXISTS (SELECT 1 FROM product_images i WHERE i.product_id = products.id)";

fn product_from_row(row: &Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        price: Cents::new(row.get(3)?),
        stock: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        version: row.get(7)?,
        reserved: row.get(8)?,
        sku: row.get(9)?,
        category: row.get(10)?,
        has_image: row.get(11)?,
    })
}

/// Which products a list shows, and in what order.
#[derive(Debug, Clone)]
pub struct ProductFilter {
    /// Words in the name or description, or the SKU, any case.
    pub q: Option<String>,
    /// This category, any case.
    pub category: Option<String>,
    /// This SKU exactly.
    pub sku: Option<String>,
    pub min_price: Option<Cents>,
    pub max_price: Option<Cents>,
    /// Only products with units on sale.
    pub in_stock: bool,
    /// Only these products.
    pub ids: Option<Vec<Id>>,
    pub sort: ProductSort,
}

/// The condition of a product list, its parameters ?1 to ?8 as `list_products` binds them.
/// Asked for by ids (`?8`, a JSON array), the list reads those rows by key: a condition
/// `?8 IS NULL OR id IN (...)` would read every product, as SQLite plans one statement for
/// both cases.
fn list_filter(by_ids: bool) -> String {
    let ids = if by_ids {
        "id IN (SELECT value FROM json_each(?8))"
    } else {
        "?8 IS NULL"
    };
    format!(
        "{ids} AND deleted_at IS NULL
        AND (?1 IS NULL OR name LIKE ?1 ESCAPE '\\' OR description LIKE ?1 ESCAPE '\\'
             OR sku = ?2 COLLATE NOCASE)
        AND (?3 IS NULL OR category = ?3 COLLATE NOCASE)
        AND (?4 IS NULL OR sku = ?4)
        AND (?5 IS NULL OR price_cents >= ?5) AND (?6 IS NULL OR price_cents <= ?6)
        AND (?7 = 0 OR stock > 0)"
    )
}

/// Products on sale that `filter` lets through, one page of them, and how many there are
/// in all.
pub fn list_products(
    conn: &Connection,
    filter: &ProductFilter,
    page: Page,
) -> rusqlite::Result<(Vec<Product>, i64)> {
    let where_ = list_filter(filter.ids.is_some());
    let order = match filter.sort {
        ProductSort::Id => "id",
        ProductSort::Price => "price_cents, id",
        ProductSort::PriceDesc => "price_cents DESC, id",
        ProductSort::Name => "name COLLATE NOCASE, id",
        ProductSort::Newest => "id DESC",
    };
    let pattern = filter.q.as_deref().map(service_kit::db::contains_pattern);
    let ids = filter.ids.as_ref().map(|ids| {
        let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        serde_json::Value::from(ids).to_string()
    });
    let matching = params![
        pattern,
        filter.q,
        filter.category,
        filter.sku,
        filter.min_price.map(Cents::get),
        filter.max_price.map(Cents::get),
        filter.in_stock,
        ids,
    ];
    let total = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM products WHERE {where_}"))?
        .query_row(matching, |row| row.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE {where_}
         ORDER BY {order} LIMIT ?9 OFFSET ?10"
    ))?;
    let window = page.window();
    let paged = service_kit::db::with_page(matching, &window);
    let rows = stmt.query_map(paged.as_slice(), product_from_row)?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total))
}

/// The product (deleted or not) that has `sku`, if any.
pub fn product_with_sku(conn: &Connection, sku: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM products WHERE sku = ?1")?
        .query_row(params![sku], |row| row.get(0))
        .optional()
}

/// A product's image: its content type and bytes.
pub fn get_image(conn: &Connection, id: Id) -> rusqlite::Result<Option<(String, Vec<u8>)>> {
    conn.prepare_cached(
        "SELECT i.content_type, i.bytes FROM product_images i
           JOIN products p ON p.id = i.product_id
         WHERE i.product_id = ?1 AND p.deleted_at IS NULL",
    )?
    .query_row(params![id.get()], |row| Ok((row.get(0)?, row.get(1)?)))
    .optional()
}

/// Sets (or replaces) a product's image, and bumps the product's version.
pub fn put_image(
    conn: &Connection,
    id: Id,
    content_type: &str,
    bytes: &[u8],
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO product_images (product_id, content_type, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (product_id) DO UPDATE SET content_type = excluded.content_type,
             bytes = excluded.bytes,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    )?
    .execute(params![id.get(), content_type, bytes])?;
    conn.prepare_cached(
        "UPDATE products SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
    )?
    .execute(params![id.get()])?;
    Ok(())
}

/// One product on sale, if it exists.
pub fn get_product(conn: &Connection, id: Id) -> rusqlite::Result<Option<Product>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ?1 AND deleted_at IS NULL"
    ))?;
    stmt.query_row(params![id.get()], product_from_row)
        .optional()
}

/// Adds a product; returns it.
pub fn insert_product(conn: &Connection, fields: &ValidFields) -> rusqlite::Result<Product> {
    conn.prepare_cached(
        "INSERT INTO products (name, description, price_cents, stock, sku, category)
         VALUES (?1, ?2, ?3, ?4, NULLIF(?5, ''), NULLIF(?6, ''))",
    )?
    .execute(params![
        fields.name,
        fields.description.as_deref().unwrap_or(""),
        fields.price.map(Cents::get),
        fields.stock,
        fields.sku,
        fields.category,
    ])?;
    let id = Id::from_db(conn.last_insert_rowid());
    // Read back in the same transaction: the row is there unless SQLite lost it.
    get_product(conn, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Changes the fields given; `None` when the product is not on sale.
pub fn update_product(
    conn: &Connection,
    id: Id,
    fields: &ValidFields,
) -> rusqlite::Result<Option<Product>> {
    conn.prepare_cached(
        "UPDATE products SET name = COALESCE(?2, name),
             description = COALESCE(?3, description),
             price_cents = COALESCE(?4, price_cents),
             stock = COALESCE(?5, stock),
             sku = CASE WHEN ?6 IS NULL THEN sku ELSE NULLIF(?6, '') END,
             category = CASE WHEN ?7 IS NULL THEN category ELSE NULLIF(?7, '') END,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1 AND deleted_at IS NULL",
    )?
    .execute(params![
        id.get(),
        fields.name,
        fields.description,
        fields.price.map(Cents::get),
        fields.stock,
        fields.sku,
        fields.category,
    ])?;
    get_product(conn, id)
}

/// Adds `delta` units to a product's stock (takes them when negative) if it stays between 0
/// and `max`; returns the stock after, `None` when it would not.
pub fn apply_delta(
    conn: &Connection,
    id: Id,
    delta: i64,
    max: i64,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "UPDATE products SET stock = stock + ?2,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1 AND deleted_at IS NULL AND stock + ?2 BETWEEN 0 AND ?3
         RETURNING stock",
    )?
    .query_row(params![id.get(), delta, max], |row| row.get(0))
    .optional()
}

/// Writes a row of the stock ledger; returns it.
pub fn insert_movement(
    conn: &Connection,
    product: Id,
    delta: i64,
    reason: &str,
    stock_after: i64,
    correlation_id: Option<&str>,
) -> rusqlite::Result<Movement> {
    conn.prepare_cached(
        "INSERT INTO stock_movements (product_id, delta, reason, stock_after, correlation_id)
         VALUES (?1, ?2, ?3, ?4, ?5)
         RETURNING id, product_id, delta, reason, stock_after, created_at",
    )?
    .query_row(
        params![product.get(), delta, reason, stock_after, correlation_id],
        movement_from_row,
    )
}

fn movement_from_row(row: &Row<'_>) -> rusqlite::Result<Movement> {
    Ok(Movement {
        id: row.get(0)?,
        product_id: row.get(1)?,
        delta: row.get(2)?,
        reason: row.get(3)?,
        stock_after: row.get(4)?,
        created_at: row.get(5)?,
    })
}

/// A product's stock ledger, newest first.
pub fn list_movements(
    conn: &Connection,
    product: Id,
    page: Page,
) -> rusqlite::Result<(Vec<Movement>, i64)> {
    let total = conn
        .prepare_cached("SELECT COUNT(*) FROM stock_movements WHERE product_id = ?1")?
        .query_row(params![product.get()], |row| row.get(0))?;
    let movements = conn
        .prepare_cached(
            "SELECT id, product_id, delta, reason, stock_after, created_at FROM stock_movements
             WHERE product_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
        )?
        .query_map(
            params![product.get(), page.limit(), page.offset()],
            movement_from_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok((movements, total))
}

/// Hides a product from the catalog, keeping its row; false when it was not on sale.
pub fn delete_product(conn: &Connection, id: Id) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE products SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?1 AND deleted_at IS NULL",
        )?
        .execute(params![id.get()])?;
    Ok(changed == 1)
}

/// Why a line could not be reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortage {
    /// No such product on sale.
    Unknown(Id),
    /// Fewer units left than asked.
    OutOfStock {
        product: Id,
        available: i64,
        asked: i64,
    },
}

/// Takes every line's units off stock, or none: the first line that cannot be had is
/// returned and the caller's transaction must be rolled back. The `stock >= ?` guard in the
/// update is what keeps stock from going below zero under any concurrency.
pub fn take_stock(
    conn: &Connection,
    lines: &[(Id, i64)],
) -> rusqlite::Result<Result<(), Shortage>> {
    let mut take = conn.prepare_cached(
        "UPDATE products SET stock = stock - ?2,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1 AND deleted_at IS NULL AND stock >= ?2",
    )?;
    for (product, quantity) in lines {
        if take.execute(params![product.get(), quantity])? == 1 {
            continue;
        }
        return Ok(Err(match get_product(conn, *product)? {
            Some(p) => Shortage::OutOfStock {
                product: *product,
                available: p.stock,
                asked: *quantity,
            },
            None => Shortage::Unknown(*product),
        }));
    }
    Ok(Ok(()))
}

/// Writes a reservation and its lines; `expires_at_ms` `None` holds it until settled.
pub fn insert_reservation(
    conn: &Connection,
    reference: &Reference,
    order_id: Id,
    lines: &[(Id, i64)],
    expires_at_ms: Option<i64>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO reservations (reference, order_id, status, expires_at_ms)
         VALUES (?1, ?2, 'reserved', ?3)",
    )?
    .execute(params![reference.as_str(), order_id.get(), expires_at_ms])?;
    let mut line = conn.prepare_cached(
        "INSERT INTO reservation_lines (reference, product_id, quantity) VALUES (?1, ?2, ?3)",
    )?;
    for (product, quantity) in lines {
        line.execute(params![reference.as_str(), product.get(), quantity])?;
    }
    Ok(())
}

/// A reservation with its lines.
pub fn get_reservation(
    conn: &Connection,
    reference: &Reference,
) -> rusqlite::Result<Option<Reservation>> {
    let Some(mut reservation) = conn
        .prepare_cached(
            "SELECT reference, order_id, status, reason,
                    strftime('%Y-%m-%dT%H:%M:%fZ', expires_at_ms / 1000.0, 'unixepoch'),
                    created_at, updated_at
             FROM reservations WHERE reference = ?1",
        )?
        .query_row(params![reference.as_str()], |row| {
            Ok(Reservation {
                reference: row.get(0)?,
                order_id: row.get(1)?,
                status: row.get(2)?,
                reason: row.get(3)?,
                expires_at: row.get(4)?,
                created_at: row.get(5)?,
                updated_at: row.get(6)?,
                lines: Vec::new(),
            })
        })
        .optional()?
    else {
        return Ok(None);
    };
    reservation.lines = conn
        .prepare_cached(
            "SELECT l.product_id, l.quantity,
                    COALESCE((SELECT SUM(s.quantity) FROM stock_returns s
                              WHERE s.reference = l.reference AND s.product_id = l.product_id), 0)
             FROM reservation_lines l WHERE l.reference = ?1
             ORDER BY l.product_id",
        )?
        .query_map(params![reference.as_str()], |row| {
            Ok(ReservationLine {
                product_id: row.get(0)?,
                quantity: row.get(1)?,
                returned: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(reservation))
}

/// The lines recorded under return `return_ref` (of any reservation), by product.
pub fn lines_returned_under(
    conn: &Connection,
    return_ref: &str,
) -> rusqlite::Result<Vec<(String, i64, i64)>> {
    conn.prepare_cached(
        "SELECT reference, product_id, quantity FROM stock_returns WHERE return_ref = ?1
         ORDER BY product_id",
    )?
    .query_map(params![return_ref], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })?
    .collect()
}

/// Records that `quantity` units of `product_id` sold under `reference` came back with
/// return `return_ref`, and puts them back on sale.
pub fn insert_stock_return(
    conn: &Connection,
    (return_ref, reference): (&str, &Reference),
    (product_id, quantity): (i64, i64),
    reason: &str,
    correlation_id: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO stock_returns (return_ref, reference, product_id, quantity, reason,
                                    correlation_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        return_ref,
        reference.as_str(),
        product_id,
        quantity,
        reason,
        correlation_id
    ])?;
    conn.prepare_cached(
        "UPDATE products SET stock = stock + ?2,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1",
    )?
    .execute(params![product_id, quantity])?;
    Ok(())
}

/// Closes sold reservation `reference` as `released` with `reason` once all its units are
/// back (the caller put them back on sale by [`insert_stock_return`]).
pub fn close_returned(
    conn: &Connection,
    reference: &Reference,
    reason: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE reservations SET status = 'released', reason = ?2,
             returned_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE reference = ?1",
    )?
    .execute(params![reference.as_str(), reason])?;
    Ok(())
}

/// Per product on sale: units on sale, held by open reservations, sold (reservations
/// committed, returned ones included), returned (by line), and the ledger's sum.
pub fn stock_audit(conn: &Connection) -> rusqlite::Result<Vec<AuditRow>> {
    conn.prepare_cached(
        "SELECT p.id, p.name, p.stock,
             COALESCE((SELECT SUM(l.quantity) FROM reservation_lines l
                         JOIN reservations r ON r.reference = l.reference
                       WHERE l.product_id = p.id AND r.status = 'reserved'), 0),
             COALESCE((SELECT SUM(l.quantity) FROM reservation_lines l
                         JOIN reservations r ON r.reference = l.reference
                       WHERE l.product_id = p.id
                         AND (r.status = 'committed' OR r.returned_at IS NOT NULL)), 0),
             COALESCE((SELECT SUM(s.quantity) FROM stock_returns s WHERE s.product_id = p.id), 0),
             COALESCE((SELECT SUM(m.delta) FROM stock_movements m WHERE m.product_id = p.id), 0)
         FROM products p WHERE p.deleted_at IS NULL ORDER BY p.id",
    )?
    .query_map([], |row| {
        Ok(AuditRow {
            product_id: row.get(0)?,
            name: row.get(1)?,
            available: row.get(2)?,
            reserved: row.get(3)?,
            sold: row.get(4)?,
            returned: row.get(5)?,
            moved: row.get(6)?,
        })
    })?
    .collect()
}

/// Moves a reservation to `status`; a release also puts its units back on stock.
pub fn settle_reservation(
    conn: &Connection,
    reference: &Reference,
    status: ReservationStatus,
    reason: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE reservations SET status = ?2, reason = ?3,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE reference = ?1",
    )?
    .execute(params![reference.as_str(), status.as_str(), reason])?;
    if status == ReservationStatus::Released {
        conn.prepare_cached(
            "UPDATE products SET stock = stock + (
                 SELECT quantity FROM reservation_lines l
                 WHERE l.reference = ?1 AND l.product_id = products.id),
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id IN (SELECT product_id FROM reservation_lines WHERE reference = ?1)",
        )?
        .execute(params![reference.as_str()])?;
    }
    Ok(())
}

/// Reservations still held past their expiry (never those held until settled).
pub fn expired_reservations(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<Reference>> {
    conn.prepare_cached(
        "SELECT reference FROM reservations
         WHERE status = 'reserved' AND expires_at_ms <= ?1
         ORDER BY expires_at_ms LIMIT 100",
    )?
    .query_map(params![now_ms], |row| Ok(Reference::from_db(row.get(0)?)))?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_asked_for_by_id_are_read_by_key_not_by_reading_every_product() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrations().to_latest(&mut conn).unwrap();
        let sql = format!("SELECT id FROM products WHERE {}", list_filter(true));
        let nothing = None::<String>;
        let by_ids = params![
            nothing, nothing, nothing, nothing, nothing, nothing, false, "[1,2]"
        ];
        let plan = service_kit::testing::query_plan(&conn, &sql, by_ids);
        assert!(!plan.iter().any(|step| step == "SCAN products"), "{plan:?}");
        assert!(
            plan.iter().any(|step| step.starts_with("SEARCH products")),
            "{plan:?}"
        );
    }
}
