//! Giving money back: a refund of a captured payment, full or partial and never beyond what
//! is left of it, written with its event and its signed `payment.refunded` webhook in one
//! transaction. Asked for through the API, and made by the outbox itself when the order
//! service refuses a capture for good (the order was cancelled, or is not the one paid for).

use crate::AppState;
use crate::domain::Refund;
use crate::outbox::Outbox;
use crate::store::{self, DueDelivery};
use rusqlite::Connection;
use service_kit::db::{StoreError, Undone};
use service_kit::domain::Id;
use service_kit::money::Cents;
use shop_contracts::PaymentStatus;
use shop_contracts::payments::RefundRefused;

/// Records a refund of `payment_id` inside `tx`: `amount` (all that is left when `None`)
/// with `reason`, its `payment.refunded` event, and its webhook delivery (for the caller to
/// put in the outbox). A refusal (an unknown payment, one not captured or refunded in full,
/// more than is left) is the inner `Err`, decided before anything is written; the outer one
/// is the database's.
pub fn record(
    tx: &Connection,
    payment_id: Id,
    asked: &RefundAsked<'_>,
    correlation_id: Option<&str>,
) -> Result<Result<(Refund, DueDelivery), RefundRefused>, StoreError> {
    let RefundAsked {
        amount,
        reason,
        restock,
    } = *asked;
    let Some(payment) = store::get_payment(tx, payment_id)? else {
        return Ok(Err(RefundRefused::NotFound(format!(
            "payment {payment_id} not found"
        ))));
    };
    if payment.status != PaymentStatus::Captured {
        return Ok(Err(RefundRefused::NotCaptured(format!(
            "payment {payment_id} is {}: only a captured payment can be refunded",
            payment.status
        ))));
    }
    let left = payment
        .amount
        .checked_sub(payment.refunded)
        .ok_or_else(|| StoreError::Failed("refunds exceed their payment".into()))?;
    if left.get() == 0 {
        return Ok(Err(RefundRefused::RefundedInFull(format!(
            "payment {payment_id} is refunded in full already"
        ))));
    }
    let amount = amount.unwrap_or(left);
    if amount > left {
        return Ok(Err(RefundRefused::MoreThanLeft(format!(
            "only {left} of payment {payment_id} is left to refund, not {amount}"
        ))));
    }
    let refunded_total = payment
        .refunded
        .checked_add(amount)
        .ok_or_else(|| StoreError::Failed("refund total overflows".into()))?;
    let reference = service_kit::domain::new_reference();
    let refund_id = store::insert_refund(tx, &reference, payment.id, amount, (reason, restock))?;
    let payload = serde_json::json!({
        "payment_id": payment.id, "refund_id": refund_id, "ref": reference,
        "order_id": payment.order_id, "order_ref": payment.order_ref, "amount": amount,
        "refunded_total": refunded_total, "reason": reason, "restock": restock,
    });
    service_kit::events::record(tx, "payment.refunded", correlation_id, &payload)?;
    let about = (payment.id, payment.order_id, payment.order_ref.clone());
    let delivery = Outbox::new_refund_delivery(about, refund_id, (amount, refunded_total), restock);
    let refund =
        store::get_refund(tx, refund_id)?.ok_or_else(|| StoreError::vanished("new refund"))?;
    Ok(Ok((refund, delivery)))
}

/// What a refund is asked for: how much (all that is left when `None`), why, and whether
/// the goods came back (the order service then returns the order's units to stock).
#[derive(Debug, Clone, Copy)]
pub struct RefundAsked<'a> {
    pub amount: Option<Cents>,
    pub reason: Option<&'a str>,
    pub restock: bool,
}

/// Refunds what `asked` says of payment `payment_id` and tries its webhook at once; the
/// outbox worker retries it.
pub async fn refund(
    state: &AppState,
    payment_id: Id,
    amount: Option<Cents>,
    reason: Option<String>,
    restock: bool,
) -> Result<Refund, Undone<RefundRefused>> {
    let outbox = state.outbox.clone();
    let (refund, delivery) = state
        .db
        .write_with(move |tx| -> Result<_, Undone<RefundRefused>> {
            let asked = RefundAsked {
                amount,
                reason: reason.as_deref(),
                restock,
            };
            let (refund, delivery) = record(
                tx,
                payment_id,
                &asked,
                service_kit::context::correlation_id().as_deref(),
            )?
            .map_err(Undone::Refused)?;
            outbox.enqueue(tx, &delivery, (refund.payment_id, Some(refund.id)))?;
            Ok((refund, delivery))
        })
        .await?;
    state.counters.inc("refunds", &[]);
    state.outbox.attempt_first(delivery).await;
    Ok(refund)
}

/// When the order service refuses a capture notice for good because of the order (404
/// unknown, 409 cancelled or another order, 422 another amount), the money goes back: the
/// payment is refunded in full, in the transaction that records the refusal, and the refund
/// notice is left for the worker. A refusal of the request itself (401, 403: a secret or key
/// problem an operator fixes) is never final and refunds nothing.
pub fn give_back_refused_capture(
    tx: &rusqlite::Connection,
    delivery_id: &str,
    status: u16,
    correlation_id: Option<&str>,
) -> Result<(), StoreError> {
    let Some((payment_id, None)) = store::delivery_subject(tx, delivery_id)? else {
        return Ok(());
    };
    let reason = format!("order_refused: the order service refused the payment (HTTP {status})");
    let payment = Id::from_db(payment_id);
    let asked = RefundAsked {
        amount: None,
        reason: Some(&reason),
        // The order service keeps or releases its own stock.
        restock: false,
    };
    match record(tx, payment, &asked, correlation_id) {
        Ok(Ok((refund, notice))) => {
            tracing::warn!(
                payment_id,
                refund = refund.id,
                status,
                "capture refused by the order service; refunded in full"
            );
            let now = service_kit::clock::unix_now_ms();
            store::insert_delivery(tx, &notice, (payment_id, Some(refund.id)), now, now)?;
            Ok(())
        }
        // Refunded in full already (by hand, or by an earlier refusal): nothing left.
        Ok(Err(RefundRefused::RefundedInFull(_))) => Ok(()),
        // Not captured, or unknown: a capture refused for good that has nothing to give back.
        Ok(Err(refused)) => {
            tracing::error!(payment_id, reason = %refused.message(), "a refused capture could not be refunded");
            Ok(())
        }
        Err(err) => Err(err),
    }
}
