//! Money on a cancelled order goes back. A PAID order cancelled before it shipped is
//! refunded in full: the order service asks the payment service for a refund of all that
//! is left, under an idempotency key built from the order's global ref (so asking again,
//! after a timeout or from the keeper, never refunds twice). The refund's signed webhook
//! then records it on the order. Whatever cannot be asked now, the stock keeper asks later:
//! the state alone (CANCELLED, a payment, less refunded than paid) says it is due.

use crate::AppState;
use crate::domain::Order;
use crate::store;
use service_kit::db::StoreError;
use service_kit::peer::Outcome;
use shop_contracts::payments::RefundRefused;

/// Asks the payment service to refund what is left of cancelled `order`'s payment, if it
/// has one not yet refunded in full; returns whether that is now settled (refunded, or
/// nothing to refund). Not settled now, the keeper asks again.
pub async fn refund_cancelled(state: &AppState, order: &Order) -> bool {
    let Some(payment_id) = order.payment_id else {
        return true;
    };
    if order.refunded >= order.total {
        return true;
    }
    let id = order.id;
    let key = format!("order-{}-cancelled-refund", order.reference);
    let reason = "order_cancelled";
    match state.payments.refund_rest(payment_id, reason, key).await {
        Outcome::Done(refund) => {
            tracing::info!(
                order = id,
                payment_id,
                refund = refund.id,
                "cancelled order refunded"
            );
            true
        }
        // Refunded in full already (by hand, or an earlier ask whose answer was lost): the
        // refund's webhook tells the order.
        Outcome::Refused(RefundRefused::RefundedInFull(_)) => true,
        outcome @ (Outcome::Refused(_) | Outcome::Unknown(_)) => {
            let message = outcome.not_done().unwrap_or_default();
            tracing::warn!(order = id, payment_id, %message, "cancelled order not refunded yet; the keeper retries");
            false
        }
    }
}

/// Refunds every cancelled order that still holds money; returns how many it settled.
pub async fn refund_all_due(state: &AppState) -> Result<usize, StoreError> {
    let due = state
        .db
        .call(|conn| Ok(store::cancelled_holding_money(conn, 100)?))
        .await?;
    let mut settled = 0;
    for id in due {
        let Some(order) = state.find_order(id).await? else {
            continue;
        };
        if refund_cancelled(state, &order).await {
            settled += 1;
        }
    }
    Ok(settled)
}
