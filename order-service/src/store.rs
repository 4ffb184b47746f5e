//! Every SQL statement of the order service, as plain functions over a connection.

use crate::domain::{
    Customer, DaySales, NewOrder, Order, OrderItem, OrderStatus, OrderStock, OrderValue,
    ProductLabel, ProductSales, Shipment, StatusEntry,
};
use crate::domain::{OrderReturn, ReturnLine, ReturnPlan, ReturnStep};
use crate::promotions::{Discount, PromoCode, Redemptions};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;
use service_kit::domain::{Id, Page, UserId};
use service_kit::events;
use service_kit::money::Cents;

/// Writes a new PENDING order under `reference`, its stock `pending`, with its lines,
/// first history entry and `order.created` event; returns its id.
/// The order placed under the client's Idempotency-Key `placed_under` (see
/// [`service_kit::idempotency::owned_key`]), if any.
pub fn order_placed_under(conn: &Connection, placed_under: &str) -> rusqlite::Result<Option<Id>> {
    conn.prepare_cached("SELECT id FROM orders WHERE placed_under = ?1")?
        .query_row(params![placed_under], |row| row.get(0).map(Id::from_db))
        .optional()
}

pub fn insert_order(
    conn: &Connection,
    (reference, placed_under): (&str, Option<&str>),
    order: &NewOrder,
    labels: &ProductLabels,
    correlation_id: Option<&str>,
) -> rusqlite::Result<Id> {
    let catalog_verified = labels.is_some();
    let address = order
        .shipping_address
        .as_ref()
        .map(|a| serde_json::to_string(a).unwrap_or_default());
    conn.prepare_cached(
        "INSERT INTO orders (ref, user_id, total_cents, status, stock, catalog_verified,
                             correlation_id, customer_email, customer_name, shipping_address,
                             subtotal_cents, discount_cents, promo_code, placed_under, held_for)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        reference,
        order.user_id.as_str(),
        order.total.get(),
        OrderStatus::Pending,
        OrderStock::Pending,
        catalog_verified,
        correlation_id,
        order.customer.as_ref().map(|c| c.email.as_str()),
        order.customer.as_ref().and_then(|c| c.name.as_deref()),
        address,
        order.subtotal.get(),
        order.discount.get(),
        order.promo_code,
        placed_under,
        order.held_for,
    ])?;
    let id = Id::from_db(conn.last_insert_rowid());
    let mut insert_line = conn.prepare_cached(
        "INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price_cents,
                                  product_name, product_sku)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let label_of = |product: Id| labels.as_ref().and_then(|l| l.get(&product));
    let name_of = |product: Id| label_of(product).map(|l| l.name.as_str());
    for (line_no, line) in order.lines.iter().enumerate() {
        insert_line.execute(params![
            id.get(),
            line_no as i64 + 1,
            line.product_id.get(),
            line.quantity.get(),
            line.unit_price.get(),
            name_of(line.product_id),
            label_of(line.product_id).and_then(|l| l.sku.as_deref()),
        ])?;
    }
    record_status(conn, id, OrderStatus::Pending, None)?;
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|l| {
            json!({"product_id": l.product_id, "name": name_of(l.product_id),
                   "sku": label_of(l.product_id).and_then(|l| l.sku.as_deref()),
                   "quantity": l.quantity, "price": l.unit_price})
        })
        .collect();
    let payload = json!({
        "order_id": id, "ref": reference, "user_id": order.user_id, "total": order.total,
        "subtotal": order.subtotal, "discount": order.discount, "promo_code": order.promo_code,
        "lines": lines, "catalog_verified": catalog_verified,
        "customer": order.customer, "shipping_address": order.shipping_address,
    });
    events::record(conn, "order.created", correlation_id, &payload)?;
    Ok(id)
}

fn record_status(
    conn: &Connection,
    id: Id,
    status: OrderStatus,
    reason: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO order_status_history (order_id, status, reason) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id.get(), status, reason])?;
    Ok(())
}

/// Moves an order from `from` to `to` and records it in the history and as
/// `order.status_changed` (and `order.cancelled`). The `WHERE status` guard makes a
/// concurrent change a no-op; returns whether this call made the change.
pub fn change_status(
    conn: &Connection,
    id: Id,
    (from, to): (OrderStatus, OrderStatus),
    reason: Option<&str>,
    correlation_id: Option<&str>,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE orders SET status = ?3, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?1 AND status = ?2",
        )?
        .execute(params![id.get(), from, to])?;
    if changed == 1 {
        record_status(conn, id, to, reason)?;
        let payload = json!({"order_id": id, "from": from, "to": to, "reason": reason});
        events::record(conn, "order.status_changed", correlation_id, &payload)?;
        if to == OrderStatus::Cancelled {
            let payload = json!({"order_id": id, "reason": reason});
            events::record(conn, "order.cancelled", correlation_id, &payload)?;
            // A cancelled order gives its promo code's redemption back.
            conn.prepare_cached(
                "UPDATE promo_redemptions
                 SET released_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE order_id = ?1 AND released_at IS NULL",
            )?
            .execute(params![id.get()])?;
        }
    }
    Ok(changed == 1)
}

/// True when this webhook id has been processed before.
pub fn webhook_seen(conn: &Connection, webhook_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM processed_webhooks WHERE webhook_id = ?1")?
        .exists(params![webhook_id])
}

/// Remembers a processed webhook id.
pub fn remember_webhook(
    conn: &Connection,
    webhook_id: &str,
    order_id: Id,
    payment_id: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO processed_webhooks (webhook_id, order_id, payment_id) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![webhook_id, order_id.get(), payment_id])?;
    Ok(())
}

/// Order counts per status, with the total each status holds net of refunds.
pub fn status_totals(conn: &Connection) -> rusqlite::Result<Vec<(OrderStatus, i64, Cents)>> {
    conn.prepare_cached(
        "SELECT status, COUNT(*), COALESCE(SUM(total_cents - refunded_cents), 0)
         FROM orders GROUP BY status",
    )?
    .query_map([], |row| {
        Ok((row.get(0)?, row.get(1)?, Cents::new(row.get(2)?)))
    })?
    .collect()
}

/// The order's status, total and global reference, if it exists.
pub fn order_status(
    conn: &Connection,
    id: Id,
) -> rusqlite::Result<Option<(OrderStatus, Cents, String)>> {
    conn.prepare_cached("SELECT status, total_cents, ref FROM orders WHERE id = ?1")?
        .query_row(params![id.get()], |row| {
            let reference: Option<String> = row.get(2)?;
            Ok((
                row.get(0)?,
                Cents::new(row.get(1)?),
                reference.unwrap_or_default(),
            ))
        })
        .optional()
}

/// Records what the payment service has refunded of the order in all (`refunded_total`,
/// kept if larger than what is on record, so a repeated or late notice counts nothing
/// twice), which payment it came from if the order had none (a capture it refused), and
/// `order.refunded`.
pub fn record_refund(
    conn: &Connection,
    id: Id,
    (payment_id, refunded_total): (i64, Cents),
    (amount, restock): (Cents, bool),
    correlation_id: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE orders SET refunded_cents = MAX(refunded_cents, ?2),
             payment_id = COALESCE(payment_id, ?3), restock = MAX(restock, ?4),
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?1",
    )?
    .execute(params![id.get(), refunded_total.get(), payment_id, restock])?;
    let payload = json!({
        "order_id": id, "payment_id": payment_id, "amount": amount,
        "refunded_total": refunded_total, "restock": restock,
    });
    events::record(conn, "order.refunded", correlation_id, &payload)?;
    Ok(())
}

/// Moves a PENDING order to PAID, records which payment paid it and `order.paid`; false
/// when it was not PENDING (a concurrent webhook got there first).
pub fn mark_paid(
    conn: &Connection,
    id: Id,
    payment_id: i64,
    amount: Cents,
    correlation_id: Option<&str>,
) -> rusqlite::Result<bool> {
    let transition = (OrderStatus::Pending, OrderStatus::Paid);
    let changed = change_status(conn, id, transition, None, correlation_id)?;
    if changed {
        conn.prepare_cached("UPDATE orders SET payment_id = ?2 WHERE id = ?1")?
            .execute(params![id.get(), payment_id])?;
        let payload = json!({"order_id": id, "payment_id": payment_id, "amount": amount});
        events::record(conn, "order.paid", correlation_id, &payload)?;
    }
    Ok(changed)
}

/// The catalog's name and SKU of each product of a new order, by id; `None` when the
/// catalog could not be asked (the order is then accepted unverified).
pub type ProductLabels = Option<std::collections::BTreeMap<Id, ProductLabel>>;

/// Records how a SHIPPED order was sent, and `order.shipped` with it.
pub fn record_shipment(
    conn: &Connection,
    id: Id,
    shipment: &Shipment,
    correlation_id: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE orders SET carrier = ?2, tracking_number = ?3 WHERE id = ?1")?
        .execute(params![
            id.get(),
            shipment.carrier,
            shipment.tracking_number
        ])?;
    let payload = json!({
        "order_id": id, "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
    });
    events::record(conn, "order.shipped", correlation_id, &payload)?;
    Ok(())
}

/// One order with its lines and history.
pub fn get_order(conn: &Connection, id: Id) -> rusqlite::Result<Option<Order>> {
    Ok(orders_with_ids(conn, &[id.get()])?.pop())
}

/// The order with global reference `reference`, if there is one.
pub fn order_by_ref(conn: &Connection, reference: &str) -> rusqlite::Result<Option<Order>> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM orders WHERE ref = ?1")?
        .query_row([reference], |row| row.get(0))
        .optional()?;
    Ok(match id {
        Some(id) => orders_with_ids(conn, &[id])?.pop(),
        None => None,
    })
}

/// The orders with these ids, in the order given (ids with no order are skipped): three
/// queries however many there are, not three per order.
fn orders_with_ids(conn: &Connection, ids: &[i64]) -> rusqlite::Result<Vec<Order>> {
    let ids_json = serde_json::Value::from(ids.to_vec()).to_string();
    let mut found: std::collections::HashMap<i64, Order> = conn
        .prepare_cached(
            "SELECT id, user_id, total_cents, status, catalog_verified, payment_id,
                    created_at, updated_at, correlation_id, ref, stock, refunded_cents, restock,
                    customer_email, customer_name, shipping_address, carrier, tracking_number,
                    subtotal_cents, discount_cents, promo_code
             FROM orders WHERE id IN (SELECT value FROM json_each(?1))",
        )?
        .query_map(params![ids_json], order_from_row)?
        .map(|order| order.map(|order| (order.id, order)))
        .collect::<rusqlite::Result<_>>()?;
    let mut items = conn.prepare_cached(
        "SELECT order_id, product_id, quantity, unit_price_cents, product_name, product_sku
         FROM order_items
         WHERE order_id IN (SELECT value FROM json_each(?1)) ORDER BY order_id, line_no",
    )?;
    for item in items.query_map(params![ids_json], |row| {
        let quantity: i64 = row.get(2)?;
        let price = Cents::new(row.get(3)?);
        let item = OrderItem {
            product_id: row.get(1)?,
            name: row.get(4)?,
            sku: row.get(5)?,
            quantity,
            price,
            // Bounded when the order was written: every line total fit then.
            line_total: price.checked_mul(quantity).unwrap_or(price),
        };
        Ok((row.get::<_, i64>(0)?, item))
    })? {
        let (order_id, item) = item?;
        if let Some(order) = found.get_mut(&order_id) {
            order.items.push(item);
        }
    }
    let mut history = conn.prepare_cached(
        "SELECT order_id, status, at, reason FROM order_status_history
         WHERE order_id IN (SELECT value FROM json_each(?1)) ORDER BY order_id, id",
    )?;
    for entry in history.query_map(params![ids_json], |row| {
        let entry = StatusEntry {
            status: row.get(1)?,
            at: row.get(2)?,
            reason: row.get(3)?,
        };
        Ok((row.get::<_, i64>(0)?, entry))
    })? {
        let (order_id, entry) = entry?;
        if let Some(order) = found.get_mut(&order_id) {
            order.status_history.push(entry);
        }
    }
    for found_return in returns_where(
        conn,
        "r.order_id IN (SELECT value FROM json_each(?1))",
        &ids_json,
    )? {
        if let Some(order) = found.get_mut(&found_return.order_id) {
            order.returns.push(found_return);
        }
    }
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// The returns `filter` selects (over `order_returns r`, with `?1` bound to `value`), each
/// with its lines, oldest first.
fn returns_where(
    conn: &Connection,
    filter: &str,
    value: &dyn rusqlite::ToSql,
) -> rusqlite::Result<Vec<OrderReturn>> {
    let sql = format!(
        "SELECT r.id, r.ref, r.order_id, r.reason, r.refund_cents, r.refund_state, r.refund_id,
                r.restock_state, r.problem, r.created_at, l.product_id, l.quantity, l.condition
         FROM order_returns r JOIN order_return_lines l ON l.return_id = r.id
         WHERE {filter} ORDER BY r.id, l.product_id, l.condition"
    );
    let mut returns: Vec<OrderReturn> = Vec::new();
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params![value])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let line = ReturnLine {
            product_id: row.get(10)?,
            quantity: row.get(11)?,
            condition: row.get(12)?,
        };
        match returns.last_mut() {
            Some(last) if last.id == id => last.lines.push(line),
            _ => returns.push(OrderReturn {
                id,
                reference: row.get(1)?,
                order_id: row.get(2)?,
                reason: row.get(3)?,
                refund: Cents::new(row.get(4)?),
                refund_state: row.get(5)?,
                refund_id: row.get(6)?,
                restock_state: row.get(7)?,
                problem: row.get(8)?,
                created_at: row.get(9)?,
                lines: vec![line],
            }),
        }
    }
    Ok(returns)
}

/// Return `id`, with its lines.
pub fn get_return(conn: &Connection, id: i64) -> rusqlite::Result<Option<OrderReturn>> {
    Ok(returns_where(conn, "r.id = ?1", &id)?.pop())
}

/// Writes a return of order `order_id` under `reference` as `planned`, its refund and its
/// restock `pending` (or `none` when there is nothing to move), with `order.returned`.
pub fn insert_return(
    conn: &Connection,
    (reference, order_id): (&str, Id),
    reason: &str,
    planned: &ReturnPlan,
    correlation_id: Option<&str>,
) -> rusqlite::Result<i64> {
    let pending_unless = |nothing: bool| {
        if nothing {
            ReturnStep::Nothing
        } else {
            ReturnStep::Pending
        }
    };
    conn.prepare_cached(
        "INSERT INTO order_returns (ref, order_id, reason, refund_cents, refund_state,
                                    restock_state, correlation_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        reference,
        order_id.get(),
        reason,
        planned.refund.get(),
        pending_unless(planned.refund.get() == 0),
        pending_unless(planned.restock.is_empty()),
        correlation_id,
    ])?;
    let id = conn.last_insert_rowid();
    let mut insert_line = conn.prepare_cached(
        "INSERT INTO order_return_lines (return_id, product_id, quantity, condition)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for line in &planned.lines {
        insert_line.execute(params![id, line.product_id, line.quantity, line.condition])?;
    }
    conn.prepare_cached(
        "UPDATE orders SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
    )?
    .execute(params![order_id.get()])?;
    let lines: Vec<_> = planned
        .lines
        .iter()
        .map(|l| json!({"product_id": l.product_id, "quantity": l.quantity, "condition": l.condition}))
        .collect();
    let payload = json!({
        "order_id": order_id, "return_ref": reference, "reason": reason,
        "refund": planned.refund, "lines": lines,
    });
    events::record(conn, "order.returned", correlation_id, &payload)?;
    Ok(id)
}

/// Records how return `id`'s refund ended.
pub fn set_return_refund(
    conn: &Connection,
    id: i64,
    step: ReturnStep,
    refund_id: Option<i64>,
    problem: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE order_returns SET refund_state = ?2, refund_id = COALESCE(?3, refund_id),
             problem = COALESCE(?4, problem)
         WHERE id = ?1 AND refund_state = 'pending'",
    )?
    .execute(params![id, step, refund_id, problem])?;
    Ok(())
}

/// Records how return `id`'s restock ended.
pub fn set_return_restock(
    conn: &Connection,
    id: i64,
    step: ReturnStep,
    problem: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE order_returns SET restock_state = ?2, problem = COALESCE(?3, problem)
         WHERE id = ?1 AND restock_state = 'pending'",
    )?
    .execute(params![id, step, problem])?;
    Ok(())
}

/// Returns with a refund or a restock still to ask for, oldest first.
pub fn returns_pending(conn: &Connection, limit: i64) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached(
        "SELECT id FROM order_returns
         WHERE refund_state = 'pending' OR restock_state = 'pending' ORDER BY id LIMIT ?1",
    )?
    .query_map(params![limit], |row| row.get(0))?
    .collect()
}

/// An order's own columns, as `orders_with_ids` selects them; its lines and history empty.
fn order_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Order> {
    let email: Option<String> = row.get(13)?;
    let name: Option<String> = row.get(14)?;
    let address: Option<String> = row.get(15)?;
    let carrier: Option<String> = row.get(16)?;
    let tracking_number: Option<String> = row.get(17)?;
    let total = Cents::new(row.get(2)?);
    let subtotal: Option<i64> = row.get(18)?;
    Ok(Order {
        // Orders from before promo codes: the subtotal is the total.
        subtotal: subtotal.map_or(total, Cents::new),
        discount: Cents::new(row.get(19)?),
        promo_code: row.get(20)?,
        customer: email.map(|email| Customer { email, name }),
        // Written by this service from a checked address; one that does not read
        // back (edited by hand) is left out rather than failing the order.
        shipping_address: address.and_then(|a| serde_json::from_str(&a).ok()),
        shipment: carrier
            .zip(tracking_number)
            .map(|(carrier, tracking_number)| Shipment {
                carrier,
                tracking_number,
            }),
        id: row.get(0)?,
        user_id: row.get(1)?,
        total,
        status: row.get(3)?,
        catalog_verified: row.get(4)?,
        payment_id: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
        correlation_id: row.get(8)?,
        reference: row.get(9)?,
        stock: row.get(10)?,
        refunded: Cents::new(row.get(11)?),
        restock: row.get(12)?,
        items: Vec::new(),
        status_history: Vec::new(),
        returns: Vec::new(),
    })
}

/// Which orders a list shows.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub user: Option<UserId>,
    pub status: Option<OrderStatus>,
    /// The customer's email (any case).
    pub email: Option<String>,
    /// Placed at or after, and before, these times (stored timestamps' text form).
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    /// An order id, ref, user id or customer email, or words of the customer's name.
    pub q: Option<String>,
}

/// The orders `filter` lets through, newest first, one page of them, and how many there
/// are in all.
pub fn list_orders(
    conn: &Connection,
    filter: &OrderFilter,
    page: Page,
) -> rusqlite::Result<(Vec<Order>, i64)> {
    const WHERE: &str = "(?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR status = ?2)
        AND (?3 IS NULL OR customer_email = ?3 COLLATE NOCASE)
        AND (?4 IS NULL OR created_at >= ?4) AND (?5 IS NULL OR created_at < ?5)
        AND (?6 IS NULL OR CAST(id AS TEXT) = ?6 OR ref = ?6 OR user_id = ?6
             OR customer_email = ?6 COLLATE NOCASE OR customer_name LIKE ?7 ESCAPE '\\')";
    let name_pattern = filter.q.as_deref().map(service_kit::db::contains_pattern);
    let matching = params![
        filter.user.as_ref().map(UserId::as_str),
        filter.status,
        filter.email,
        filter.created_after,
        filter.created_before,
        filter.q,
        name_pattern,
    ];
    let total = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM orders WHERE {WHERE}"))?
        .query_row(matching, |row| row.get(0))?;
    let window = page.window();
    let ids: Vec<i64> = conn
        .prepare_cached(&format!(
            "SELECT id FROM orders WHERE {WHERE} ORDER BY id DESC LIMIT ?8 OFFSET ?9"
        ))?
        .query_map(
            service_kit::db::with_page(matching, &window).as_slice(),
            |row| row.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok((orders_with_ids(conn, &ids)?, total))
}

/// The orders with ids after `after` placed in `[from, to)` (either end open), oldest first,
/// at most `limit` of them: a page of an export.
pub fn orders_after(
    conn: &Connection,
    after: i64,
    (from, to): (Option<&str>, Option<&str>),
    limit: i64,
) -> rusqlite::Result<Vec<Order>> {
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM orders WHERE id > ?1 AND (?2 IS NULL OR created_at >= ?2)
               AND (?3 IS NULL OR created_at < ?3) ORDER BY id LIMIT ?4",
        )?
        .query_map(params![after, from, to, limit], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    orders_with_ids(conn, &ids)
}

/// What each order that was paid (or charged) should hold: its total net of refunds while
/// PAID, SHIPPED or DELIVERED, nothing once CANCELLED or REFUNDED.
pub fn order_values(conn: &Connection) -> rusqlite::Result<Vec<OrderValue>> {
    conn.prepare_cached(
        "SELECT id, ref, CASE WHEN status IN ('PAID', 'SHIPPED', 'DELIVERED')
                               THEN total_cents - refunded_cents ELSE 0 END
         FROM orders
         WHERE payment_id IS NOT NULL OR status IN ('PAID', 'SHIPPED', 'DELIVERED')",
    )?
    .query_map([], |row| {
        Ok(OrderValue {
            id: row.get(0)?,
            reference: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
            value: Cents::new(row.get(2)?),
        })
    })?
    .collect()
}

/// Orders a payment was captured for: paid ones, refunded ones, and cancelled ones whose
/// refused capture was given back.
pub fn charged_orders(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COUNT(*) FROM orders WHERE payment_id IS NOT NULL")?
        .query_row([], |row| row.get(0))
}

/// Paid orders (PAID, SHIPPED, DELIVERED) per day placed, over the last `days` days (UTC):
/// the day, how many, and their totals net of refunds.
pub fn revenue_by_day(conn: &Connection, days: u32) -> rusqlite::Result<Vec<DaySales>> {
    conn.prepare_cached(
        "SELECT substr(created_at, 1, 10) AS day, COUNT(*),
                COALESCE(SUM(total_cents - refunded_cents), 0)
         FROM orders
         WHERE status IN ('PAID', 'SHIPPED', 'DELIVERED')
           AND created_at >= strftime('%Y-%m-%d', 'now', printf('-%d days', ?1 - 1))
         GROUP BY day ORDER BY day",
    )?
    .query_map(params![days], |row| {
        Ok(DaySales {
            day: row.get(0)?,
            orders: row.get(1)?,
            revenue: Cents::new(row.get(2)?),
        })
    })?
    .collect()
}

/// The `limit` products sold most in paid orders: id, name as last ordered, units, and
/// sales at the prices ordered (before discounts).
pub fn top_products(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<ProductSales>> {
    conn.prepare_cached(
        "SELECT i.product_id, MAX(i.product_name), SUM(i.quantity),
                SUM(i.quantity * i.unit_price_cents)
         FROM order_items i JOIN orders o ON o.id = i.order_id
         WHERE o.status IN ('PAID', 'SHIPPED', 'DELIVERED')
         GROUP BY i.product_id ORDER BY SUM(i.quantity) DESC, i.product_id LIMIT ?1",
    )?
    .query_map(params![limit], |row| {
        Ok(ProductSales {
            product_id: row.get(0)?,
            name: row.get(1)?,
            units: row.get(2)?,
            sales: Cents::new(row.get(3)?),
        })
    })?
    .collect()
}

/// Units of each product in orders that have been paid (PAID, SHIPPED, DELIVERED).
pub fn paid_units(conn: &Connection) -> rusqlite::Result<Vec<(i64, i64)>> {
    conn.prepare_cached(
        "SELECT i.product_id, SUM(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id
         WHERE o.status IN ('PAID', 'SHIPPED', 'DELIVERED')
         GROUP BY i.product_id ORDER BY i.product_id",
    )?
    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
    .collect()
}

/// Records where an order's stock now is, if it is still `from` (the catalog's own events
/// tell what happened to the units); returns whether this call changed it.
pub fn set_stock(
    conn: &Connection,
    id: Id,
    (from, to): (OrderStock, OrderStock),
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE orders SET stock = ?3, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?1 AND stock = ?2",
        )?
        .execute(params![id.get(), from, to])?;
    Ok(changed == 1)
}

/// Orders whose stock does not match their status yet: pending (not yet reserved), held
/// but paid (to commit) or cancelled (to release), sold but cancelled or refunded with the
/// goods back (to return). Oldest first, at most `limit`.
pub fn stock_to_settle(conn: &Connection, limit: i64) -> rusqlite::Result<Vec<Id>> {
    conn.prepare_cached(
        "SELECT id FROM orders
         WHERE stock = 'pending' OR (stock = 'held' AND status != 'PENDING')
            OR (stock = 'committed' AND status = 'CANCELLED')
            OR (stock IN ('held', 'committed') AND restock = 1)
         ORDER BY id LIMIT ?1",
    )?
    .query_map(params![limit], |row| Ok(Id::from_db(row.get(0)?)))?
    .collect()
}

/// Cancelled orders a payment was captured for and not yet refunded in full (a PAID order
/// cancelled whose refund the payment service has not confirmed), oldest first.
pub fn cancelled_holding_money(conn: &Connection, limit: i64) -> rusqlite::Result<Vec<Id>> {
    conn.prepare_cached(
        "SELECT id FROM orders
         WHERE status = 'CANCELLED' AND payment_id IS NOT NULL
           AND refunded_cents < total_cents
         ORDER BY id LIMIT ?1",
    )?
    .query_map(params![limit], |row| Ok(Id::from_db(row.get(0)?)))?
    .collect()
}

/// PENDING orders that still hold (or wait for) stock past their time: placed more than
/// `ttl` ago, or `storefront_ttl` for those a storefront client holds.
pub fn unpaid_older_than(
    conn: &Connection,
    (ttl, storefront_ttl): (std::time::Duration, std::time::Duration),
    limit: i64,
) -> rusqlite::Result<Vec<Id>> {
    let age =
        |ttl: std::time::Duration| format!("-{}.{:03} seconds", ttl.as_secs(), ttl.subsec_millis());
    conn.prepare_cached(
        "SELECT id FROM orders
         WHERE status = 'PENDING' AND stock IN ('pending', 'held')
           AND created_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now',
                                      CASE WHEN held_for IS NULL THEN ?1 ELSE ?3 END)
         ORDER BY id LIMIT ?2",
    )?
    .query_map(params![age(ttl), limit, age(storefront_ttl)], |row| {
        Ok(Id::from_db(row.get(0)?))
    })?
    .collect()
}

/// Units held by unpaid orders placed for storefront client `client`, and by those of
/// customer `customer` (when one is signed in).
pub fn units_held(
    conn: &Connection,
    client: &str,
    customer: Option<&str>,
) -> rusqlite::Result<(i64, i64)> {
    let held = |sql: &str, key: &str| -> rusqlite::Result<i64> {
        conn.prepare_cached(sql)?.query_row([key], |row| row.get(0))
    };
    let by_client = held(
        "SELECT COALESCE(SUM(i.quantity), 0) FROM orders o JOIN order_items i ON i.order_id = o.id
         WHERE o.status = 'PENDING' AND o.held_for = ?1 AND o.stock IN ('pending', 'held')",
        client,
    )?;
    let by_customer = match customer {
        Some(customer) => held(
            "SELECT COALESCE(SUM(i.quantity), 0) FROM orders o JOIN order_items i ON i.order_id = o.id
             WHERE o.status = 'PENDING' AND o.user_id = ?1 AND o.stock IN ('pending', 'held')",
            customer,
        )?,
        None => 0,
    };
    Ok((by_client, by_customer))
}

const PROMO_COLUMNS: &str = "code, percent_off, amount_off_cents, min_total_cents, starts_at,
     ends_at, max_redemptions, max_per_customer, created_at, disabled_at IS NOT NULL,
     (SELECT COUNT(*) FROM promo_redemptions r
      WHERE r.code = promo_codes.code AND r.released_at IS NULL)";

fn promo_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PromoCode> {
    let percent: Option<i64> = row.get(1)?;
    let amount: Option<i64> = row.get(2)?;
    Ok(PromoCode {
        code: row.get(0)?,
        discount: match (percent, amount) {
            (Some(percent), _) => Discount::Percent(percent),
            (None, amount) => Discount::Amount(Cents::new(amount.unwrap_or_default())),
        },
        min_total: Cents::new(row.get(3)?),
        starts_at: row.get(4)?,
        ends_at: row.get(5)?,
        max_redemptions: row.get(6)?,
        max_per_customer: row.get(7)?,
        created_at: row.get(8)?,
        disabled: row.get(9)?,
        redeemed: row.get(10)?,
    })
}

/// Stores a new promo code; false when the code exists already.
pub fn insert_promo(conn: &Connection, promo: &PromoCode) -> rusqlite::Result<bool> {
    let (percent, amount) = match promo.discount {
        Discount::Percent(percent) => (Some(percent), None),
        Discount::Amount(amount) => (None, Some(amount.get())),
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO promo_codes (code, percent_off, amount_off_cents, min_total_cents,
                 starts_at, ends_at, max_redemptions, max_per_customer)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (code) DO NOTHING",
        )?
        .execute(params![
            promo.code,
            percent,
            amount,
            promo.min_total.get(),
            promo.starts_at,
            promo.ends_at,
            promo.max_redemptions,
            promo.max_per_customer,
        ])?;
    Ok(inserted == 1)
}

/// Promo code `code` (upper case), with how often it is redeemed now.
pub fn get_promo(conn: &Connection, code: &str) -> rusqlite::Result<Option<PromoCode>> {
    conn.prepare_cached(&format!(
        "SELECT {PROMO_COLUMNS} FROM promo_codes WHERE code = ?1"
    ))?
    .query_row(params![code], promo_from_row)
    .optional()
}

/// Promo codes, newest first.
pub fn list_promos(conn: &Connection, page: Page) -> rusqlite::Result<(Vec<PromoCode>, i64)> {
    let total = conn
        .prepare_cached("SELECT COUNT(*) FROM promo_codes")?
        .query_row([], |row| row.get(0))?;
    let promos = conn
        .prepare_cached(&format!(
            "SELECT {PROMO_COLUMNS} FROM promo_codes ORDER BY created_at DESC, code
             LIMIT ?1 OFFSET ?2"
        ))?
        .query_map(params![page.limit(), page.offset()], promo_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((promos, total))
}

/// Withdraws a code from new orders; false when there is no such code.
pub fn disable_promo(conn: &Connection, code: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE promo_codes
             SET disabled_at = COALESCE(disabled_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             WHERE code = ?1",
        )?
        .execute(params![code])?;
    Ok(changed == 1)
}

/// How often `code` is redeemed by orders not cancelled: in all, and by `customer`.
pub fn redemptions(
    conn: &Connection,
    code: &str,
    (customer, user_id): (&str, &str),
) -> rusqlite::Result<Redemptions> {
    conn.prepare_cached(
        "SELECT COUNT(*), COALESCE(SUM(customer = ?2 OR user_id = ?3), 0) FROM promo_redemptions
         WHERE code = ?1 AND released_at IS NULL",
    )?
    .query_row(params![code, customer, user_id], |row| {
        Ok(Redemptions {
            total: row.get(0)?,
            by_customer: row.get(1)?,
        })
    })
}

/// Records that order `order_id` redeemed `code` for `customer`.
pub fn insert_redemption(
    conn: &Connection,
    order_id: Id,
    code: &str,
    (customer, user_id): (&str, &str),
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO promo_redemptions (order_id, code, customer, user_id) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![order_id.get(), code, customer, user_id])?;
    Ok(())
}

// Customers and their sessions (`customers.rs`).

/// Writes a customer unless one has the email key already; whether it wrote one.
pub fn insert_customer_unless_known(
    tx: &Connection,
    id: &str,
    (email, email_key): (&str, &str),
    name: Option<&str>,
    password_hash: &str,
) -> rusqlite::Result<bool> {
    let now = service_kit::clock::now_rfc3339();
    let written = tx
        .prepare_cached(
            "INSERT INTO customers (id, email, email_key, name, password_hash, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (email_key) DO NOTHING",
        )?
        .execute(params![id, email, email_key, name, password_hash, now])?;
    Ok(written == 1)
}

fn account_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<crate::customers::CustomerAccount> {
    Ok(crate::customers::CustomerAccount {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        created_at: row.get(3)?,
    })
}

/// The customer with `email_key` and their password hash.
pub fn customer_by_email_key(
    conn: &Connection,
    email_key: &str,
) -> rusqlite::Result<Option<(crate::customers::CustomerAccount, String)>> {
    conn.prepare_cached(
        "SELECT id, email, name, created_at, password_hash FROM customers WHERE email_key = ?1",
    )?
    .query_row([email_key], |row| Ok((account_from(row)?, row.get(4)?)))
    .optional()
}

/// Customer `id`.
pub fn customer_by_id(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<crate::customers::CustomerAccount>> {
    conn.prepare_cached("SELECT id, email, name, created_at FROM customers WHERE id = ?1")?
        .query_row([id], account_from)
        .optional()
}

/// Customer `id`'s password hash.
pub fn password_hash_of(conn: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT password_hash FROM customers WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()
}

/// Sets customer `id`'s password hash.
pub fn set_password(tx: &Connection, id: &str, password_hash: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE customers SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![
            id,
            password_hash,
            service_kit::clock::now_rfc3339()
        ])?;
    Ok(())
}

/// What a customer's stored token opens: a session (a refresh token) or a password reset.
#[derive(Debug, Clone, Copy)]
pub enum CustomerToken {
    Session,
    Reset,
}

/// A new token of `kind` for `customer`, stored as its hash `token_hash`, good until
/// `expires_at` (Unix seconds).
pub fn insert_customer_token(
    tx: &Connection,
    kind: CustomerToken,
    (token_hash, customer): (&str, &str),
    expires_at: i64,
) -> rusqlite::Result<()> {
    let table = match kind {
        CustomerToken::Session => "customer_sessions",
        CustomerToken::Reset => "password_resets",
    };
    tx.prepare_cached(&format!(
        "INSERT INTO {table} (token_hash, customer_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)"
    ))?
    .execute(params![
        token_hash,
        customer,
        service_kit::clock::now_rfc3339(),
        expires_at
    ])?;
    Ok(())
}

/// The customer of the session hashed `token_hash`, if it has not ended or expired by `now`.
pub fn live_session(
    tx: &Connection,
    token_hash: &str,
    now: i64,
) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached(
        "SELECT customer_id FROM customer_sessions
         WHERE token_hash = ?1 AND ended_at IS NULL AND expires_at > ?2",
    )?
    .query_row(params![token_hash, now], |row| row.get(0))
    .optional()
}

/// Ends the session hashed `token_hash`.
pub fn end_session(tx: &Connection, token_hash: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE customer_sessions SET ended_at = ?2 WHERE token_hash = ?1 AND ended_at IS NULL",
    )?
    .execute(params![token_hash, service_kit::clock::now_rfc3339()])?;
    Ok(())
}

/// Ends every session of `customer`.
pub fn end_sessions_of(tx: &Connection, customer: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE customer_sessions SET ended_at = ?2 WHERE customer_id = ?1 AND ended_at IS NULL",
    )?
    .execute(params![customer, service_kit::clock::now_rfc3339()])?;
    Ok(())
}

/// Uses the reset token hashed `token_hash` if it is unused and unexpired at `now`; the
/// customer it resets.
pub fn use_reset(tx: &Connection, token_hash: &str, now: i64) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached(
        "UPDATE password_resets SET used_at = ?3
         WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING customer_id",
    )?
    .query_row(
        params![token_hash, now, service_kit::clock::now_rfc3339()],
        |row| row.get(0),
    )
    .optional()
}
