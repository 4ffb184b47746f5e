//! Every SQL statement of the payment service, as plain functions over a connection.

use crate::cards::CardSummary;
use crate::domain::{Attempt, Delivery, DeliveryStatus, Payment, Refund, StoredCard};
use rusqlite::{Connection, OptionalExtension, Row, params};
use service_kit::domain::{Id, Page};
use service_kit::money::Cents;
use shop_contracts::PaymentStatus;
use shop_contracts::payments::{OrderMoney, PaymentsSummary};

/// A payment about to be written.
#[derive(Debug)]
pub struct NewPayment<'a> {
    /// Its global reference.
    pub reference: &'a str,
    pub order_id: Id,
    /// The order's global reference, when the order service confirmed the order.
    pub order_ref: Option<&'a str>,
    pub amount: Cents,
    pub status: PaymentStatus,
    /// The decline code of a failed one.
    pub failure_code: Option<&'static str>,
    pub card: Option<&'a CardSummary>,
    /// The user its order is filed under, when known.
    pub user_id: Option<&'a str>,
}

/// A delivery claimed for an attempt.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: String,
    pub order_id: i64,
    pub payload: String,
    /// The journey the payment belonged to.
    pub correlation_id: Option<String>,
}

const PAYMENT_SELECT: &str = "SELECT p.id, p.order_id, p.amount_cents, p.status, p.failure_code,
     p.card_brand, p.card_last4, p.card_exp_month, p.card_exp_year, p.order_verified,
     p.created_at, d.id, d.status, p.ref, p.order_ref, p.void_reason,
     (SELECT COALESCE(SUM(r.amount_cents), 0) FROM refunds r WHERE r.payment_id = p.id),
     p.user_id
     FROM payments p
     LEFT JOIN webhook_deliveries d ON d.payment_id = p.id AND d.refund_id IS NULL";

fn payment_from_row(row: &Row<'_>) -> rusqlite::Result<Payment> {
    let brand: Option<String> = row.get(5)?;
    let card = match brand {
        Some(brand) => Some(StoredCard {
            brand,
            last4: row.get(6)?,
            exp_month: row.get(7)?,
            exp_year: row.get(8)?,
        }),
        None => None,
    };
    Ok(Payment {
        id: row.get(0)?,
        order_id: row.get(1)?,
        amount: Cents::new(row.get(2)?),
        status: row.get(3)?,
        failure_code: row.get(4)?,
        card,
        order_verified: row.get(9)?,
        created_at: row.get(10)?,
        webhook_delivery_id: row.get(11)?,
        webhook_status: row.get(12)?,
        reference: row.get(13)?,
        order_ref: row.get(14)?,
        void_reason: row.get(15)?,
        refunded: Cents::new(row.get(16)?),
        user_id: row.get(17)?,
    })
}

const CAPTURE_OF: &str = "SELECT id FROM payments
     WHERE status = 'captured' AND order_ref IS NOT NULL AND order_ref = ?2
     UNION ALL
     SELECT id FROM payments
     WHERE status = 'captured' AND order_ref IS NULL AND order_id = ?1
     LIMIT 1";

/// The capture that already paid this order, if there is one: one with the same order
/// reference, or one made before references for the same order id. Two lookups, each by
/// its partial unique index (an `OR` of the two read every payment).
pub fn capture_of(
    conn: &Connection,
    order_id: Id,
    order_ref: Option<&str>,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(CAPTURE_OF)?
        .query_row(params![order_id.get(), order_ref], |r| r.get(0))
        .optional()
}

/// Writes a payment; returns its id. It counts as verified when it carries the order's
/// reference (only the order service gives that).
pub fn insert_payment(conn: &Connection, payment: &NewPayment<'_>) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO payments (ref, order_id, order_ref, amount_cents, status, failure_code,
             card_brand, card_last4, card_exp_month, card_exp_year, order_verified, user_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        payment.reference,
        payment.order_id.get(),
        payment.order_ref,
        payment.amount.get(),
        payment.status,
        payment.failure_code,
        payment.card.map(|c| c.brand),
        payment.card.map(|c| c.last4.as_str()),
        payment.card.map(|c| c.exp_month),
        payment.card.map(|c| c.exp_year),
        payment.order_ref.is_some(),
        payment.user_id,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Authorized payments waiting for their order to be verified, oldest first.
pub fn authorized_payments(conn: &Connection, limit: i64) -> rusqlite::Result<Vec<Payment>> {
    conn.prepare_cached(&format!(
        "{PAYMENT_SELECT} WHERE p.status = 'authorized' ORDER BY p.id LIMIT ?1"
    ))?
    .query_map(params![limit], payment_from_row)?
    .collect()
}

/// Captures an authorized payment for the verified order `order_ref`; false when it is no
/// longer authorized.
pub fn capture_authorized(conn: &Connection, id: i64, order_ref: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE payments SET status = 'captured', order_ref = ?2, order_verified = 1
             WHERE id = ?1 AND status = 'authorized'",
        )?
        .execute(params![id, order_ref])?;
    Ok(changed == 1)
}

/// Voids an authorized payment with the reason; false when it is no longer authorized.
pub fn void_authorized(conn: &Connection, id: i64, reason: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE payments SET status = 'voided', void_reason = ?2
             WHERE id = ?1 AND status = 'authorized'",
        )?
        .execute(params![id, reason])?;
    Ok(changed == 1)
}

/// Writes a pending delivery announcing `payment_id`'s capture (or its refund
/// `refund_id`), not attempted before `next_attempt_at_ms` (a claim by whoever attempts it
/// first, or now for the worker).
pub fn insert_delivery(
    conn: &Connection,
    delivery: &DueDelivery,
    (payment_id, refund_id): (i64, Option<i64>),
    now_ms: i64,
    next_attempt_at_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries (id, payment_id, refund_id, order_id, payload, status,
             next_attempt_at_ms, created_at_ms, correlation_id)
         VALUES (?1, ?2, ?8, ?3, ?4, 'pending', ?5, ?6, ?7)",
    )?
    .execute(params![
        delivery.id,
        payment_id,
        delivery.order_id,
        delivery.payload,
        next_attempt_at_ms,
        now_ms,
        delivery.correlation_id,
        refund_id
    ])?;
    Ok(())
}

/// What a delivery announces: the payment, and the refund when it is a refund notice.
pub fn delivery_subject(
    conn: &Connection,
    delivery_id: &str,
) -> rusqlite::Result<Option<(i64, Option<i64>)>> {
    conn.prepare_cached("SELECT payment_id, refund_id FROM webhook_deliveries WHERE id = ?1")?
        .query_row(params![delivery_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Writes a refund of `payment_id`; returns its id.
pub fn insert_refund(
    conn: &Connection,
    reference: &str,
    payment_id: i64,
    amount: Cents,
    (reason, restock): (Option<&str>, bool),
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO refunds (ref, payment_id, amount_cents, reason, restock)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        reference,
        payment_id,
        amount.get(),
        reason,
        restock
    ])?;
    Ok(conn.last_insert_rowid())
}

const REFUND_SELECT: &str =
    "SELECT id, ref, payment_id, amount_cents, reason, created_at, restock FROM refunds";

fn refund_from_row(row: &Row<'_>) -> rusqlite::Result<Refund> {
    Ok(Refund {
        id: row.get(0)?,
        reference: row.get(1)?,
        payment_id: row.get(2)?,
        amount: Cents::new(row.get(3)?),
        reason: row.get(4)?,
        created_at: row.get(5)?,
        restock: row.get(6)?,
    })
}

/// One refund.
pub fn get_refund(conn: &Connection, id: i64) -> rusqlite::Result<Option<Refund>> {
    conn.prepare_cached(&format!("{REFUND_SELECT} WHERE id = ?1"))?
        .query_row(params![id], refund_from_row)
        .optional()
}

/// Payments with ids after `after` made in `[from, to)` (either end open), oldest first,
/// at most `limit`: a page of an export.
pub fn payments_after(
    conn: &Connection,
    after: i64,
    (from, to): (Option<&str>, Option<&str>),
    limit: i64,
) -> rusqlite::Result<Vec<Payment>> {
    conn.prepare_cached(&format!(
        "{PAYMENT_SELECT} WHERE p.id > ?1 AND (?2 IS NULL OR p.created_at >= ?2)
           AND (?3 IS NULL OR p.created_at < ?3) ORDER BY p.id LIMIT ?4"
    ))?
    .query_map(params![after, from, to, limit], payment_from_row)?
    .collect()
}

/// Refunds with ids after `after` made in `[from, to)`, oldest first, at most `limit`, each
/// with its payment's order.
pub fn refunds_after(
    conn: &Connection,
    after: i64,
    (from, to): (Option<&str>, Option<&str>),
    limit: i64,
) -> rusqlite::Result<Vec<(Refund, i64)>> {
    conn.prepare_cached(
        "SELECT r.id, r.ref, r.payment_id, r.amount_cents, r.reason, r.created_at, r.restock,
                p.order_id
         FROM refunds r JOIN payments p ON p.id = r.payment_id
         WHERE r.id > ?1 AND (?2 IS NULL OR r.created_at >= ?2) AND (?3 IS NULL OR r.created_at < ?3)
         ORDER BY r.id LIMIT ?4",
    )?
    .query_map(params![after, from, to, limit], |row| {
        Ok((refund_from_row(row)?, row.get(7)?))
    })?
    .collect()
}

/// A payment's refunds, oldest first.
pub fn refunds_of(conn: &Connection, payment_id: Id) -> rusqlite::Result<Vec<Refund>> {
    conn.prepare_cached(&format!(
        "{REFUND_SELECT} WHERE payment_id = ?1 ORDER BY id"
    ))?
    .query_map(params![payment_id.get()], refund_from_row)?
    .collect()
}

/// Claims up to `limit` pending deliveries that are due, pushing each one's next attempt to
/// `claimed_until_ms` so no one else attempts it meanwhile.
pub fn claim_due(
    conn: &Connection,
    now_ms: i64,
    claimed_until_ms: i64,
    limit: u32,
) -> rusqlite::Result<Vec<DueDelivery>> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET next_attempt_at_ms = ?2
         WHERE id IN (SELECT id FROM webhook_deliveries
                      WHERE status = 'pending' AND next_attempt_at_ms <= ?1
                      ORDER BY next_attempt_at_ms LIMIT ?3)
         RETURNING id, order_id, payload, correlation_id",
    )?
    .query_map(params![now_ms, claimed_until_ms, limit], |row| {
        Ok(DueDelivery {
            id: row.get(0)?,
            order_id: row.get(1)?,
            payload: row.get(2)?,
            correlation_id: row.get(3)?,
        })
    })?
    .collect()
}

/// Records one attempt and counts it; returns the attempts made in this round so far.
pub fn record_attempt(
    conn: &Connection,
    delivery_id: &str,
    status_code: Option<u16>,
    error: Option<&str>,
    duration_ms: i64,
) -> rusqlite::Result<u32> {
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (delivery_id, status_code, error, duration_ms)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![delivery_id, status_code, error, duration_ms])?;
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET attempts_in_round = attempts_in_round + 1
         WHERE id = ?1 RETURNING attempts_in_round",
    )?
    .query_row(params![delivery_id], |r| r.get(0))
}

/// Marks a delivery delivered.
pub fn mark_delivered(conn: &Connection, delivery_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = 'delivered', last_error = NULL,
             delivered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1",
    )?
    .execute(params![delivery_id])?;
    Ok(())
}

/// After a failed attempt: retry at `next_attempt_at_ms`, or give up (`None`) as `failed`.
pub fn mark_undelivered(
    conn: &Connection,
    delivery_id: &str,
    error: &str,
    next_attempt_at_ms: Option<i64>,
) -> rusqlite::Result<()> {
    match next_attempt_at_ms {
        Some(at) => conn
            .prepare_cached(
                "UPDATE webhook_deliveries SET last_error = ?2, next_attempt_at_ms = ?3 WHERE id = ?1",
            )?
            .execute(params![delivery_id, error, at])?,
        None => conn
            .prepare_cached(
                "UPDATE webhook_deliveries SET last_error = ?2, status = 'failed' WHERE id = ?1",
            )?
            .execute(params![delivery_id, error])?,
    };
    Ok(())
}

/// Starts a fresh round for a delivery that is not delivered, claimed until
/// `claimed_until_ms`. Returns the delivery's status before, `None` if it does not exist.
pub fn rearm(
    conn: &Connection,
    delivery_id: &str,
    claimed_until_ms: i64,
) -> rusqlite::Result<Option<(String, DueDelivery)>> {
    let found = conn
        .prepare_cached(
            "SELECT status, order_id, payload, correlation_id FROM webhook_deliveries WHERE id = ?1",
        )?
        .query_row(params![delivery_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                DueDelivery {
                    id: delivery_id.to_string(),
                    order_id: row.get(1)?,
                    payload: row.get(2)?,
                    correlation_id: row.get(3)?,
                },
            ))
        })
        .optional()?;
    if let Some((status, _)) = &found
        && status != "delivered"
    {
        conn.prepare_cached(
            "UPDATE webhook_deliveries SET status = 'pending', attempts_in_round = 0,
                 next_attempt_at_ms = ?2
             WHERE id = ?1",
        )?
        .execute(params![delivery_id, claimed_until_ms])?;
    }
    Ok(found)
}

/// One payment.
pub fn get_payment(conn: &Connection, id: Id) -> rusqlite::Result<Option<Payment>> {
    conn.prepare_cached(&format!("{PAYMENT_SELECT} WHERE p.id = ?1"))?
        .query_row(params![id.get()], payment_from_row)
        .optional()
}

/// Payments, newest first, optionally for one order.
pub fn list_payments(
    conn: &Connection,
    (order_id, user): (Option<Id>, Option<&str>),
    page: Page,
) -> rusqlite::Result<(Vec<Payment>, i64)> {
    let total = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM payments
             WHERE (?1 IS NULL OR order_id = ?1) AND (?2 IS NULL OR user_id = ?2)",
        )?
        .query_row(params![order_id.map(Id::get), user], |row| row.get(0))?;
    let payments = conn
        .prepare_cached(&format!(
            "{PAYMENT_SELECT} WHERE (?1 IS NULL OR p.order_id = ?1) AND (?4 IS NULL OR p.user_id = ?4)
             ORDER BY p.id DESC LIMIT ?2 OFFSET ?3"
        ))?
        .query_map(
            params![order_id.map(Id::get), page.limit(), page.offset(), user],
            payment_from_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok((payments, total))
}

/// The books of the payments: captured (count, total), refunded, and only authorized
/// (count, total).
pub fn summary(conn: &Connection) -> rusqlite::Result<PaymentsSummary> {
    conn.prepare_cached(
        "SELECT COUNT(*) FILTER (WHERE status = 'captured'),
                COALESCE(SUM(amount_cents) FILTER (WHERE status = 'captured'), 0),
                (SELECT COALESCE(SUM(amount_cents), 0) FROM refunds),
                COUNT(*) FILTER (WHERE status = 'authorized'),
                COALESCE(SUM(amount_cents) FILTER (WHERE status = 'authorized'), 0)
         FROM payments",
    )?
    .query_row([], |row| {
        Ok(PaymentsSummary {
            captured_count: row.get(0)?,
            captured_total: Cents::new(row.get(1)?),
            refunded_total: Cents::new(row.get(2)?),
            authorized_count: row.get(3)?,
            authorized_total: Cents::new(row.get(4)?),
        })
    })
}

/// What the captured payments hold, per order (and order reference), by order id.
pub fn money_by_order(conn: &Connection) -> rusqlite::Result<Vec<OrderMoney>> {
    conn.prepare_cached(
        "SELECT p.order_id, p.order_ref, SUM(p.amount_cents),
                SUM((SELECT COALESCE(SUM(r.amount_cents), 0) FROM refunds r
                     WHERE r.payment_id = p.id))
         FROM payments p WHERE p.status = 'captured'
         GROUP BY p.order_id, p.order_ref ORDER BY p.order_id",
    )?
    .query_map([], |row| {
        Ok(OrderMoney {
            order_id: row.get(0)?,
            order_ref: row.get(1)?,
            captured: Cents::new(row.get(2)?),
            refunded: Cents::new(row.get(3)?),
        })
    })?
    .collect()
}

const DELIVERY_SELECT: &str = "SELECT id, payment_id, order_id, status, attempts_in_round,
     CASE WHEN status = 'pending'
          THEN strftime('%Y-%m-%dT%H:%M:%fZ', next_attempt_at_ms / 1000.0, 'unixepoch') END,
     last_error, strftime('%Y-%m-%dT%H:%M:%fZ', created_at_ms / 1000.0, 'unixepoch'),
     delivered_at, refund_id
     FROM webhook_deliveries";

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: row.get(0)?,
        payment_id: row.get(1)?,
        order_id: row.get(2)?,
        status: row.get(3)?,
        attempts_in_round: row.get(4)?,
        next_attempt_at: row.get(5)?,
        last_error: row.get(6)?,
        created_at: row.get(7)?,
        delivered_at: row.get(8)?,
        refund_id: row.get(9)?,
        attempts: None,
    })
}

/// One delivery with every attempt, oldest first.
pub fn get_delivery(conn: &Connection, id: &str) -> rusqlite::Result<Option<Delivery>> {
    let Some(mut delivery) = conn
        .prepare_cached(&format!("{DELIVERY_SELECT} WHERE id = ?1"))?
        .query_row(params![id], delivery_from_row)
        .optional()?
    else {
        return Ok(None);
    };
    let attempts = conn
        .prepare_cached(
            "SELECT attempted_at, status_code, error, duration_ms FROM webhook_attempts
             WHERE delivery_id = ?1 ORDER BY id",
        )?
        .query_map(params![id], |row| {
            Ok(Attempt {
                attempted_at: row.get(0)?,
                status_code: row.get(1)?,
                error: row.get(2)?,
                duration_ms: row.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    delivery.attempts = Some(attempts);
    Ok(Some(delivery))
}

/// Deliveries, newest first, optionally by status and/or order.
pub fn list_deliveries(
    conn: &Connection,
    status: Option<DeliveryStatus>,
    order_id: Option<Id>,
    page: Page,
) -> rusqlite::Result<(Vec<Delivery>, i64)> {
    let total = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM webhook_deliveries
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR order_id = ?2)",
        )?
        .query_row(params![status, order_id.map(Id::get)], |row| row.get(0))?;
    let deliveries = conn
        .prepare_cached(&format!(
            "{DELIVERY_SELECT} WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR order_id = ?2)
             ORDER BY created_at_ms DESC, id LIMIT ?3 OFFSET ?4"
        ))?
        .query_map(
            params![status, order_id.map(Id::get), page.limit(), page.offset()],
            delivery_from_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok((deliveries, total))
}

/// Pending and failed delivery counts, and when the oldest pending one was created.
pub fn backlog(conn: &Connection) -> rusqlite::Result<(i64, i64, Option<i64>)> {
    // Two queries, each answered from the (status, ...) index rather than a table scan.
    let (pending, oldest) = conn
        .prepare_cached(
            "SELECT COUNT(*), MIN(created_at_ms) FROM webhook_deliveries WHERE status = 'pending'",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let failed = conn
        .prepare_cached("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'failed'")?
        .query_row([], |row| row.get(0))?;
    Ok((pending, failed, oldest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_is_looked_up_by_index_not_by_reading_every_payment() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrations().to_latest(&mut conn).unwrap();
        let plan = service_kit::testing::query_plan(&conn, CAPTURE_OF, params![1, "ref"]);
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN")),
            "{plan:?}"
        );
        assert_eq!(
            plan.iter()
                .filter(|s| s.starts_with("SEARCH payments USING"))
                .count(),
            2,
            "{plan:?}"
        );
    }
}
