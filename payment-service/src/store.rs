//! Every SQL statement of the payment service, as plain functions over a connection.

use crate::routes::payments::PaymentOut;
use rusqlite::{Connection, OptionalExtension, Row, params};
use service_kit::domain::{Id, Page};
use service_kit::money::Cents;

const PAYMENT_COLUMNS: &str = "id, order_id, amount_cents, status, order_verified,
     webhook_status, webhook_delivered_at, created_at";

fn payment_from_row(row: &Row<'_>) -> rusqlite::Result<PaymentOut> {
    Ok(PaymentOut {
        id: row.get(0)?,
        order_id: row.get(1)?,
        amount: Cents::new(row.get(2)?),
        status: row.get(3)?,
        order_verified: row.get(4)?,
        webhook_status: row.get(5)?,
        webhook_delivered_at: row.get(6)?,
        created_at: row.get(7)?,
    })
}

/// The captured payment for an order, if there is one.
pub fn captured_for_order(conn: &Connection, order_id: Id) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM payments WHERE order_id = ?1 AND status = 'captured'")?
        .query_row(params![order_id.get()], |r| r.get(0))
        .optional()
}

/// Records a captured payment whose webhook is still to be delivered; returns its id.
pub fn insert_captured(
    conn: &Connection,
    order_id: Id,
    amount: Cents,
    order_verified: bool,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO payments (order_id, amount_cents, status, order_verified, webhook_status)
         VALUES (?1, ?2, 'captured', ?3, 'pending')",
    )?
    .execute(params![order_id.get(), amount.get(), order_verified])?;
    Ok(conn.last_insert_rowid())
}

/// Notes that the order service acknowledged the payment's webhook.
pub fn mark_webhook_delivered(conn: &Connection, payment_id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE payments SET webhook_status = 'delivered',
             webhook_delivered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1",
    )?
    .execute(params![payment_id])?;
    Ok(())
}

/// One payment.
pub fn get_payment(conn: &Connection, id: Id) -> rusqlite::Result<Option<PaymentOut>> {
    conn.prepare_cached(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?1"
    ))?
    .query_row(params![id.get()], payment_from_row)
    .optional()
}

/// Payments, newest first, optionally for one order.
pub fn list_payments(
    conn: &Connection,
    order_id: Option<Id>,
    page: Page,
) -> rusqlite::Result<Vec<PaymentOut>> {
    conn.prepare_cached(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE (?1 IS NULL OR order_id = ?1)
         ORDER BY id DESC LIMIT ?2 OFFSET ?3"
    ))?
    .query_map(
        params![order_id.map(Id::get), page.limit(), page.offset()],
        payment_from_row,
    )?
    .collect()
}
