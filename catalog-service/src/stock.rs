//! Stock operations: reserving an order's lines and settling the reservation (commit: sold;
//! release: back on sale). Each owns its transaction and the events it records; handlers
//! and the expiry sweep call these, never the store directly.

use crate::domain::{LineIn, Reservation, ReservationStatus, Transition, merge_lines, transition};
use crate::store::{self, Shortage};
use serde_json::json;
use service_kit::ApiError;
use service_kit::db::Db;
use service_kit::domain::Id;
use service_kit::events;
use service_kit::http::correlation_id;
use std::time::Duration;

/// What reserving for an order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Every line is now held.
    New(Reservation),
    /// The order already had this reservation; nothing changed.
    Existing(Reservation),
}

/// Holds every line for `order_id`, or none: an unknown product is a 422, a short one a
/// 409 (both recorded as `stock.failed`). Asking again for the same order with the same
/// lines finds the reservation it already has; with other lines it is a 409, never the
/// reservation reused for lines it does not hold.
pub async fn reserve(
    db: &Db,
    order_id: Id,
    lines: Vec<LineIn>,
    ttl: Duration,
) -> Result<Reserved, ApiError> {
    let lines = merge_lines(lines)?;
    let expires_at_ms = service_kit::clock::unix_ms_after(ttl);
    let correlation = correlation_id();
    let cid = correlation.clone();
    let outcome = db
        .write(move |tx| {
            if let Some(existing) = store::get_reservation(tx, order_id)? {
                if !existing.holds(&lines) {
                    return Err(ApiError::Conflict(format!(
                        "order {order_id} already has a reservation for other lines"
                    )));
                }
                return Ok(Reserved::Existing(existing));
            }
            if let Err(shortage) = store::take_stock(tx, &lines)? {
                // Returning an error rolls back the lines already taken.
                return Err(match shortage {
                    Shortage::Unknown(product) => {
                        ApiError::Validation(format!("product {product} is not in the catalog"))
                    }
                    Shortage::OutOfStock { product, available, asked } => ApiError::Conflict(format!(
                        "out of stock: product {product} has {available} left, {asked} asked"
                    )),
                });
            }
            store::insert_reservation(tx, order_id, &lines, expires_at_ms)?;
            let payload = json!({
                "order_id": order_id.get(),
                "lines": lines.iter().map(|(p, q)| json!({"product_id": p.get(), "quantity": q})).collect::<Vec<_>>(),
            });
            events::record(tx, "stock.reserved", cid.as_deref(), &payload)?;
            let created = store::get_reservation(tx, order_id)?
                .ok_or_else(|| ApiError::internal("new reservation vanished"))?;
            Ok(Reserved::New(created))
        })
        .await;
    if let Err(err @ (ApiError::Conflict(_) | ApiError::Validation(_))) = &outcome {
        record_failure(db, order_id, err.to_string(), correlation).await;
    }
    outcome
}

/// `stock.failed`, in its own transaction: the failed reservation's rolled back.
async fn record_failure(db: &Db, order_id: Id, reason: String, correlation: Option<String>) {
    let recorded = db
        .write(move |tx| {
            let payload = json!({"order_id": order_id.get(), "reason": reason});
            Ok(events::record(
                tx,
                "stock.failed",
                correlation.as_deref(),
                &payload,
            )?)
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "could not record stock.failed");
    }
}

/// Commits or releases the reservation of `order_id` (`target`), recording
/// `stock.committed` or `stock.released`; asking for what is already so is a no-op, and
/// asking for the other end a 409.
pub async fn settle_reservation(
    db: &Db,
    order_id: Id,
    target: ReservationStatus,
    reason: Option<String>,
) -> Result<Reservation, ApiError> {
    let correlation = correlation_id();
    db.write(move |tx| {
        let current = store::get_reservation(tx, order_id)?
            .ok_or_else(|| ApiError::NotFound(format!("no reservation for order {order_id}")))?;
        match transition(current.status, target) {
            Transition::Apply => {
                store::settle_reservation(tx, order_id, target, reason.as_deref())?;
                let kind = match target {
                    ReservationStatus::Released => "stock.released",
                    _ => "stock.committed",
                };
                let payload = json!({"order_id": order_id.get(), "lines": current.lines.iter()
                    .map(|l| json!({"product_id": l.product_id, "quantity": l.quantity}))
                    .collect::<Vec<_>>(), "reason": reason});
                events::record(tx, kind, correlation.as_deref(), &payload)?;
            }
            Transition::AlreadyDone => {}
            Transition::Refuse => {
                return Err(ApiError::Conflict(format!(
                    "reservation for order {order_id} is {} and cannot become {}",
                    current.status.as_str(),
                    target.as_str()
                )));
            }
        }
        store::get_reservation(tx, order_id)?
            .ok_or_else(|| ApiError::internal("reservation vanished"))
    })
    .await
}
