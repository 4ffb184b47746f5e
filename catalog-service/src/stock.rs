//! Stock operations: reserving an order's lines and settling the reservation (commit: sold;
//! release: back on sale). Each owns its transaction and the events it records; handlers
//! and the expiry sweep call these, never the store directly.

use crate::domain::{LineIn, Reservation, ReservationStatus, Transition, merge_lines, transition};
use crate::store::{self, Shortage};
use serde_json::json;
use service_kit::context::correlation_id;
use service_kit::db::{Db, StoreError, Undone};
use service_kit::domain::{Id, Invalid, Reference};
use service_kit::events;
use shop_contracts::catalog::{ReserveRefused, ReturnLines, ReturnedLine, SettleRefused};
use std::time::Duration;

/// What reserving for an order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Every line is now held.
    New(Reservation),
    /// The order already had this reservation; nothing changed.
    Existing(Reservation),
}

/// What to hold: the caller's key, the order it is for, its lines, and for how long
/// (`None`: until committed or released).
#[derive(Debug)]
pub struct ReserveRequest {
    pub reference: Reference,
    pub order_id: Id,
    pub lines: Vec<LineIn>,
    pub ttl: Option<Duration>,
}

/// Holds every line under the request's reference, or none: an unknown product is a 422,
/// a short one a 409 naming it (both recorded as `stock.failed`). Asking again under the
/// same reference with the same lines finds the reservation it already has; with other
/// lines (or for another order) it is a 409, never the reservation reused for lines it does
/// not hold.
pub async fn reserve(db: &Db, request: ReserveRequest) -> Result<Reserved, Undone<ReserveRefused>> {
    let ReserveRequest {
        reference,
        order_id,
        lines,
        ttl,
    } = request;
    let lines = merge_lines(lines)
        .map_err(|invalid| Undone::Refused(ReserveRefused::Invalid(invalid.0)))?;
    let expires_at_ms = ttl.map(service_kit::clock::unix_ms_after);
    let key = reference.clone();
    let outcome = db
        .write_with(move |tx| {
            if let Some(existing) = store::get_reservation(tx, &key)? {
                if existing.order_id != order_id.get() || !existing.holds(&lines) {
                    return Err(Undone::Refused(ReserveRefused::ReferenceReused(format!(
                        "reservation {key} already exists for other lines"
                    ))));
                }
                return Ok(Reserved::Existing(existing));
            }
            if let Err(shortage) = store::take_stock(tx, &lines)? {
                // Returning an error rolls back the lines already taken.
                return Err(Undone::Refused(match shortage {
                    Shortage::Unknown(product) => ReserveRefused::UnknownProduct(format!(
                        "product {product} is not in the catalog"
                    )),
                    Shortage::OutOfStock { product, available, asked } => ReserveRefused::OutOfStock(format!(
                        "out of stock: product {product} has {available} left, {asked} asked"
                    )),
                }));
            }
            store::insert_reservation(tx, &key, order_id, &lines, expires_at_ms)?;
            let payload = json!({
                "reference": key.as_str(),
                "order_id": order_id.get(),
                "lines": lines.iter().map(|(p, q)| json!({"product_id": p.get(), "quantity": q})).collect::<Vec<_>>(),
            });
            events::record(tx, "stock.reserved", correlation_id().as_deref(), &payload)?;
            let created = store::get_reservation(tx, &key)?
                .ok_or_else(|| StoreError::vanished("new reservation"))?;
            Ok(Reserved::New(created))
        })
        .await;
    // A refusal (not an outage) is kept as `stock.failed`, with its reason.
    if let Err(Undone::Refused(refused)) = &outcome {
        record_failure(db, reference, order_id, refused.to_string()).await;
    }
    outcome
}

/// `stock.failed`, in its own transaction: the failed reservation's rolled back.
async fn record_failure(db: &Db, reference: Reference, order_id: Id, reason: String) {
    let recorded = db
        .write(move |tx| {
            let payload = json!({
                "reference": reference.as_str(), "order_id": order_id.get(), "reason": reason,
            });
            Ok(events::record(
                tx,
                "stock.failed",
                correlation_id().as_deref(),
                &payload,
            )?)
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "could not record stock.failed");
    }
}

/// The reservation `reference`, or the refusal that there is none.
fn existing(
    tx: &rusqlite::Connection,
    reference: &Reference,
) -> Result<Reservation, Undone<SettleRefused>> {
    store::get_reservation(tx, reference)?.ok_or_else(|| {
        Undone::Refused(SettleRefused::NotFound(format!(
            "no reservation {reference}"
        )))
    })
}

/// The reservation `reference` as the write that changed it left it.
fn reread(tx: &rusqlite::Connection, reference: &Reference) -> Result<Reservation, StoreError> {
    store::get_reservation(tx, reference)?.ok_or_else(|| StoreError::vanished("reservation"))
}

/// The payload of `stock.committed`, `stock.released` and `stock.returned`: the
/// reservation, its lines and why.
fn settled_payload(reservation: &Reservation, reason: Option<&str>) -> serde_json::Value {
    let lines: Vec<_> = reservation
        .lines
        .iter()
        .map(|l| json!({"product_id": l.product_id, "quantity": l.quantity}))
        .collect();
    json!({
        "reference": reservation.reference, "order_id": reservation.order_id,
        "lines": lines, "reason": reason,
    })
}

/// Puts the units of sold reservation `reference` that have not come back yet on sale
/// (`stock.returned`): its order was cancelled after it was paid. It becomes `released`
/// with the reason; units an earlier return by line put back are not put back again;
/// returning it again is a no-op; one still only reserved is a 409 (release it instead).
pub async fn return_units(
    db: &Db,
    reference: Reference,
    reason: Option<String>,
) -> Result<Reservation, Undone<SettleRefused>> {
    db.write_with(move |tx| {
        let current = existing(tx, &reference)?;
        match current.status {
            ReservationStatus::Committed => {
                let reason = reason.unwrap_or_else(|| "returned".to_string());
                let rest = format!("{reference}:rest");
                for line in &current.lines {
                    let left = line.quantity - line.returned;
                    if left > 0 {
                        let keys = (rest.as_str(), &reference);
                        store::insert_stock_return(
                            tx,
                            keys,
                            (line.product_id, left),
                            &reason,
                            correlation_id().as_deref(),
                        )?;
                    }
                }
                store::close_returned(tx, &reference, &reason)?;
                let payload = settled_payload(&current, Some(&reason));
                events::record(tx, "stock.returned", correlation_id().as_deref(), &payload)?;
            }
            ReservationStatus::Released => {}
            ReservationStatus::Reserved => {
                return Err(Undone::Refused(SettleRefused::NotSold(format!(
                    "reservation {reference} was never sold: release it instead"
                ))));
            }
        }
        Ok(reread(tx, &reference)?)
    })
    .await
}

/// The lines of a return, checked and merged one per product as a reservation's are.
fn merged(asked: &[ReturnedLine]) -> Result<Vec<(Id, i64)>, service_kit::domain::Invalid> {
    merge_lines(
        asked
            .iter()
            .map(|l| LineIn {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect(),
    )
}

/// What a return by line may put back, decided from the reservation and the (merged) lines
/// asked for alone: each line must be one the reservation sold, for no more units than were
/// sold and have not come back yet. `Ok` holds the lines, one per product.
pub fn returnable(
    reservation: &Reservation,
    lines: Vec<(Id, i64)>,
) -> Result<Vec<(i64, i64)>, SettleRefused> {
    let reference = &reservation.reference;
    if reservation.status != ReservationStatus::Committed {
        return Err(SettleRefused::NotSold(format!(
            "reservation {reference} is {}: only sold units can come back",
            reservation.status.as_str()
        )));
    }
    lines
        .into_iter()
        .map(|(product, quantity)| {
            let Some(sold) = reservation
                .lines
                .iter()
                .find(|l| l.product_id == product.get())
            else {
                return Err(SettleRefused::Invalid(format!(
                    "product {product} was not sold under reservation {reference}"
                )));
            };
            let left = sold.quantity - sold.returned;
            if quantity > left {
                return Err(SettleRefused::MoreThanSold(format!(
                    "{quantity} units of product {product} cannot come back: {} were sold under \
                     {reference} and {} came back already",
                    sold.quantity, sold.returned
                )));
            }
            Ok((product.get(), quantity))
        })
        .collect()
}

/// Puts the units of `returned` back on sale under sold reservation `reference`
/// (`stock.returned`, with the return's ref and lines). The reservation stays committed:
/// the rest of its units are still sold. Recording the same return again changes nothing;
/// its ref with other lines, or for another reservation, is a 409.
pub async fn return_lines(
    db: &Db,
    reference: Reference,
    returned: ReturnLines,
) -> Result<Reservation, Undone<SettleRefused>> {
    let invalid = |invalid: Invalid| Undone::Refused(SettleRefused::Invalid(invalid.0));
    let return_ref = Reference::parse(&returned.return_ref, "return_ref").map_err(invalid)?;
    let reason =
        service_kit::domain::short_text("reason", &returned.reason, 500).map_err(invalid)?;
    db.write_with(move |tx| {
        let current = existing(tx, &reference)?;
        let asked = merged(&returned.lines).map_err(invalid)?;
        let recorded = store::lines_returned_under(tx, return_ref.as_str())?;
        if !recorded.is_empty() {
            // Recorded already: the same lines again are a no-op.
            let same = recorded.len() == asked.len()
                && recorded.iter().zip(&asked).all(|((r, p, q), (ap, aq))| {
                    r == reference.as_str() && *p == ap.get() && q == aq
                });
            if !same {
                return Err(Undone::Refused(SettleRefused::ReferenceReused(format!(
                    "return {return_ref} was recorded for other lines"
                ))));
            }
            return Ok(current);
        }
        let lines = returnable(&current, asked).map_err(Undone::Refused)?;
        for (product, quantity) in &lines {
            let keys = (return_ref.as_str(), &reference);
            store::insert_stock_return(tx, keys, (*product, *quantity), &reason, correlation_id().as_deref())?;
        }
        let payload = json!({
            "reference": reference.as_str(), "order_id": current.order_id,
            "return_ref": return_ref.as_str(), "reason": reason,
            "lines": lines.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>(),
        });
        events::record(tx, "stock.returned", correlation_id().as_deref(), &payload)?;
        Ok(reread(tx, &reference)?)
    })
    .await
}

/// Commits or releases the reservation `reference` (`target`), recording
/// `stock.committed` or `stock.released`; asking for what is already so is a no-op, and
/// asking for the other end is refused (`AlreadySettled`: the sweep skips one committed
/// meanwhile).
pub async fn settle_reservation(
    db: &Db,
    reference: Reference,
    target: ReservationStatus,
    reason: Option<String>,
) -> Result<Reservation, Undone<SettleRefused>> {
    db.write_with(move |tx| {
        let current = existing(tx, &reference)?;
        match transition(current.status, target) {
            Transition::Apply => {
                store::settle_reservation(tx, &reference, target, reason.as_deref())?;
                let kind = match target {
                    ReservationStatus::Released => "stock.released",
                    _ => "stock.committed",
                };
                let payload = settled_payload(&current, reason.as_deref());
                events::record(tx, kind, correlation_id().as_deref(), &payload)?;
            }
            Transition::AlreadyDone => {}
            Transition::Refuse => {
                return Err(Undone::Refused(SettleRefused::AlreadySettled(format!(
                    "reservation {reference} is {} and cannot become {}",
                    current.status.as_str(),
                    target.as_str()
                ))));
            }
        }
        Ok(reread(tx, &reference)?)
    })
    .await
}
