//! Every SQL statement of the cart service, as plain functions over a connection, taking
//! and returning the records of `domain.rs`.

use crate::domain::{CartLine, Checkout, CheckoutLine, Step};
use rusqlite::{Connection, OptionalExtension, Row, params};
use service_kit::clock::unix_now_ms;
use service_kit::domain::{Id, Page, Quantity, UserId};
use service_kit::money::Cents;
use shop_contracts::catalog::ProductView;

/// The user's cart lines, by product id.
pub fn cart_lines(conn: &Connection, user: &UserId) -> rusqlite::Result<Vec<CartLine>> {
    let mut stmt = conn.prepare_cached(
        "SELECT product_id, quantity, name, unit_price_cents, verified, added_at, updated_at, sku
         FROM cart_items WHERE user_id = ?1 ORDER BY product_id",
    )?;
    let rows = stmt.query_map(params![user.as_str()], |row| {
        Ok(CartLine {
            product_id: row.get(0)?,
            quantity: row.get(1)?,
            name: row.get(2)?,
            sku: row.get(7)?,
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

/// How many lines the user's cart has.
pub fn line_count(conn: &Connection, user: &UserId) -> rusqlite::Result<usize> {
    conn.prepare_cached("SELECT COUNT(*) FROM cart_items WHERE user_id = ?1")?
        .query_row(params![user.as_str()], |r| r.get::<_, i64>(0))
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Adds units to a line, creating it if needed. With catalog data the line takes the
/// catalog's name and price and becomes verified; without, it keeps what it knew and is
/// marked unverified.
pub fn add_to_line(
    conn: &Connection,
    user: &UserId,
    product: Id,
    quantity: Quantity,
    catalog: Option<&ProductView>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO cart_items (user_id, product_id, quantity, name, unit_price_cents, verified,
                                 sku)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (user_id, product_id) DO UPDATE SET
             quantity = quantity + excluded.quantity,
             name = COALESCE(excluded.name, name),
             sku = CASE WHEN excluded.verified THEN excluded.sku ELSE sku END,
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
        catalog.and_then(|p| p.sku.as_deref()),
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

/// A new guest cart under the token hashed `token_hash`, its lines filed under `user`.
pub fn insert_guest_cart(conn: &Connection, token_hash: &str, user: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO guest_carts (token_hash, user_id, created_at)
         VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
    )?
    .execute(params![token_hash, user])?;
    Ok(())
}

/// The guest cart of the token hashed `token_hash`: its user id, and the customer it was
/// merged into, if it was.
pub fn guest_cart(
    conn: &Connection,
    token_hash: &str,
) -> rusqlite::Result<Option<(String, Option<String>)>> {
    conn.prepare_cached("SELECT user_id, merged_into FROM guest_carts WHERE token_hash = ?1")?
        .query_row([token_hash], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
}

/// Moves every line of `guest`'s cart into `customer`'s (units add up, to at most
/// `max_units` a line) and marks the guest cart merged into `customer`. Only a cart not
/// merged yet is moved: two requests racing to merge move it once.
pub fn merge_guest_cart(
    conn: &Connection,
    token_hash: &str,
    customer: &str,
    max_units: i64,
) -> rusqlite::Result<()> {
    let Some(guest) = conn
        .prepare_cached(
            "UPDATE guest_carts SET merged_into = ?2
             WHERE token_hash = ?1 AND merged_into IS NULL RETURNING user_id",
        )?
        .query_row(params![token_hash, customer], |row| row.get::<_, String>(0))
        .optional()?
    else {
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO cart_items (user_id, product_id, quantity, name, unit_price_cents, verified,
                                 sku, added_at, updated_at)
         SELECT ?2, product_id, quantity, name, unit_price_cents, verified, sku, added_at,
                strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         FROM cart_items WHERE user_id = ?1 AND true
         ON CONFLICT (user_id, product_id) DO UPDATE SET
             quantity = min(quantity + excluded.quantity, ?3),
             updated_at = excluded.updated_at",
    )?
    .execute(params![guest, customer, max_units])?;
    conn.prepare_cached("DELETE FROM cart_items WHERE user_id = ?1")?
        .execute([guest])?;
    Ok(())
}

const CHECKOUT_COLUMNS: &str = "id, user_id, status, step, steps, lines, total_cents, order_id,
     payment_id, failed_step, failure_code, failure_reason, correlation_id, created_at, updated_at,
     ref, order_ref, from_cart";

fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn step_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Step>> {
    Ok(row
        .get::<_, Option<String>>(index)?
        .and_then(|s| Step::parse(&s)))
}

fn checkout_from_row(row: &Row<'_>) -> rusqlite::Result<Checkout> {
    Ok(Checkout {
        id: row.get(0)?,
        user_id: row.get(1)?,
        status: row.get(2)?,
        step: step_column(row, 3)?.unwrap_or(Step::Validate),
        steps: json_column(row, 4)?,
        lines: json_column(row, 5)?,
        total: row.get::<_, Option<i64>>(6)?.map(Cents::new),
        order_id: row.get(7)?,
        payment_id: row.get(8)?,
        failed_step: step_column(row, 9)?,
        failure_code: row.get(10)?,
        failure_reason: row.get(11)?,
        correlation_id: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
        reference: row.get(15)?,
        order_ref: row.get(16)?,
        from_cart: row.get(17)?,
    })
}

/// Starts a checkout; `None` when the user already has one running.
pub fn insert_checkout(
    conn: &Connection,
    user: &UserId,
    reference: &str,
    (lines, from_cart): (&[CheckoutLine], bool),
    correlation_id: Option<&str>,
) -> rusqlite::Result<Option<i64>> {
    let lines = serde_json::to_string(lines).unwrap_or_else(|_| "[]".into());
    let inserted = conn
        .prepare_cached(
            "INSERT INTO checkouts (user_id, ref, status, step, steps, lines, correlation_id,
                                    updated_at_ms, from_cart)
             VALUES (?1, ?2, 'running', 'validate', '[]', ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            user.as_str(),
            reference,
            lines,
            correlation_id,
            unix_now_ms(),
            from_cart
        ]);
    match inserted {
        Ok(_) => Ok(Some(conn.last_insert_rowid())),
        Err(err) if err.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Writes every field of a checkout back.
pub fn save_checkout(conn: &Connection, co: &Checkout) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE checkouts SET status = ?2, step = ?3, steps = ?4, lines = ?5, total_cents = ?6,
             order_id = ?7, payment_id = ?8, failed_step = ?9, failure_code = ?10,
             failure_reason = ?11, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
             updated_at_ms = ?12, order_ref = ?13
         WHERE id = ?1",
    )?
    .execute(params![
        co.id,
        co.status,
        co.step.as_str(),
        serde_json::to_string(&co.steps).unwrap_or_else(|_| "[]".into()),
        serde_json::to_string(&co.lines).unwrap_or_else(|_| "[]".into()),
        co.total.map(Cents::get),
        co.order_id,
        co.payment_id,
        co.failed_step.map(Step::as_str),
        co.failure_code,
        co.failure_reason,
        unix_now_ms(),
        co.order_ref,
    ])?;
    Ok(())
}

/// One checkout.
pub fn get_checkout(conn: &Connection, id: i64) -> rusqlite::Result<Option<Checkout>> {
    conn.prepare_cached(&format!(
        "SELECT {CHECKOUT_COLUMNS} FROM checkouts WHERE id = ?1"
    ))?
    .query_row(params![id], checkout_from_row)
    .optional()
}

/// A user's checkouts, newest first.
pub fn list_checkouts(
    conn: &Connection,
    user: &UserId,
    page: Page,
) -> rusqlite::Result<(Vec<Checkout>, i64)> {
    let total = conn
        .prepare_cached("SELECT COUNT(*) FROM checkouts WHERE user_id = ?1")?
        .query_row(params![user.as_str()], |row| row.get(0))?;
    let checkouts = conn
        .prepare_cached(&format!(
            "SELECT {CHECKOUT_COLUMNS} FROM checkouts WHERE user_id = ?1
             ORDER BY id DESC LIMIT ?2 OFFSET ?3"
        ))?
        .query_map(
            params![user.as_str(), page.limit(), page.offset()],
            checkout_from_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok((checkouts, total))
}

/// Checkouts still running whose last save is older than `stale_before_ms`.
pub fn running_checkouts(
    conn: &Connection,
    stale_before_ms: i64,
) -> rusqlite::Result<Vec<Checkout>> {
    conn.prepare_cached(&format!(
        "SELECT {CHECKOUT_COLUMNS} FROM checkouts
         WHERE status = 'running' AND updated_at_ms < ?1 ORDER BY id LIMIT 100"
    ))?
    .query_map(params![stale_before_ms], checkout_from_row)?
    .collect()
}

/// Takes the checked-out units out of the cart, leaving anything added meanwhile.
pub fn clear_checked_out(conn: &Connection, co: &Checkout) -> rusqlite::Result<()> {
    let mut remove = conn.prepare_cached(
        "DELETE FROM cart_items WHERE user_id = ?1 AND product_id = ?2 AND quantity <= ?3",
    )?;
    let mut reduce = conn.prepare_cached(
        "UPDATE cart_items SET quantity = quantity - ?3,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE user_id = ?1 AND product_id = ?2 AND quantity > ?3",
    )?;
    for line in &co.lines {
        remove.execute(params![co.user_id, line.product_id, line.quantity])?;
        reduce.execute(params![co.user_id, line.product_id, line.quantity])?;
    }
    Ok(())
}
