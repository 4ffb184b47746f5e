//! Taking a payment: the order is checked with the order service, the card authorized, the
//! payment, its event and its webhook delivery written in one transaction, and the webhook
//! tried at once. Handlers call this and only parse and present.

use crate::AppState;
use crate::cards;
use crate::domain::Payment;
use crate::outbox::Outbox;
use crate::store::{self, NewPayment};
use service_kit::ApiError;
use service_kit::clock::current_year_month;
use service_kit::domain::Id;
use service_kit::money::Cents;
use shop_contracts::card::CardIn;
use shop_contracts::{OrderStatus, OrderStock};

/// Charges `amount` for `order_id` with `card` (or the default test card when none):
/// 402 when declined (recorded as failed, order left unpaid), 409 when the order is paid
/// or not payable, 422 when the amount is not its total, 404 when the order service does
/// not know it. When the order service cannot be asked the payment is taken unverified;
/// one captured payment per order still holds.
pub async fn take_payment(
    state: &AppState,
    order_id: Id,
    amount: Cents,
    card: Option<CardIn>,
) -> Result<Payment, ApiError> {
    let authorization = card
        .map(|card| cards::authorize(&card, current_year_month()))
        .transpose()?;
    let (card, decline) = match authorization {
        Some((summary, decline)) => (Some(summary), decline),
        None => (None, None),
    };
    let order_verified = check_order(state, order_id, amount).await?;

    let outbox = state.outbox.clone();
    let correlation = service_kit::http::correlation_id();
    let (payment_id, delivery) = state
        .db
        .write(move |tx| {
            if decline.is_none()
                && let Some(existing) = store::captured_for_order(tx, order_id)?
            {
                return Err(ApiError::Conflict(format!(
                    "order {order_id} is already paid by payment {existing}"
                )));
            }
            let payment_id = store::insert_payment(
                tx,
                &NewPayment {
                    order_id,
                    amount,
                    failure_code: decline.map(|d| d.code()),
                    card: card.as_ref(),
                    order_verified,
                },
            )?;
            let (kind, reason) = match decline {
                Some(d) => ("payment.failed", Some(d.code())),
                None => ("payment.authorized", None),
            };
            let payload = serde_json::json!({
                "payment_id": payment_id, "order_id": order_id, "amount": amount,
                "reason": reason, "card_brand": card.as_ref().map(|c| c.brand),
                "card_last4": card.as_ref().map(|c| c.last4.as_str()),
            });
            service_kit::events::record(tx, kind, correlation.as_deref(), &payload)?;
            let delivery = match decline {
                Some(_) => None,
                None => {
                    let delivery = Outbox::new_delivery(payment_id, order_id, amount);
                    outbox.enqueue(tx, &delivery, payment_id)?;
                    Some(delivery)
                }
            };
            Ok((payment_id, delivery))
        })
        .await?;

    if let Some(delivery) = delivery
        && let Err(err) = state.outbox.attempt(delivery).await
    {
        // The delivery is on record and claimed only for a short lease: the worker takes it.
        tracing::error!(payment_id, error = %err, "first webhook attempt could not be recorded");
    }
    if let Some(decline) = decline {
        return Err(ApiError::Declined {
            code: decline.code(),
            message: format!(
                "{}; payment {payment_id} recorded as failed and order {order_id} left unpaid",
                decline.message()
            ),
        });
    }
    state
        .db
        .call(move |conn| Ok(store::get_payment(conn, Id::from_db(payment_id))?))
        .await?
        .ok_or_else(|| ApiError::internal("new payment vanished"))
}

/// Whether the order service confirmed the order payable in exactly `amount`; `Ok(false)`
/// when it could not be asked (fail-open), an error when it refused.
async fn check_order(state: &AppState, order_id: Id, amount: Cents) -> Result<bool, ApiError> {
    match state.orders.order(order_id).await {
        Ok(Some(order)) => {
            if order.status.is_paid() {
                return Err(ApiError::Conflict(format!(
                    "order {order_id} is already paid"
                )));
            }
            if order.status != OrderStatus::Pending {
                return Err(ApiError::Conflict(format!(
                    "order {order_id} is {} and cannot be paid",
                    order.status
                )));
            }
            if order.stock == OrderStock::Pending {
                // Its stock is not held yet (the catalog was away when it was placed): no
                // money for units that may not be there.
                return Err(ApiError::Conflict(format!(
                    "order {order_id} does not hold its stock yet; try again shortly"
                )));
            }
            if order.total != amount {
                return Err(ApiError::Validation(format!(
                    "amount {amount} does not match order total {}",
                    order.total
                )));
            }
            Ok(true)
        }
        Ok(None) => Err(ApiError::NotFound(format!("order {order_id} not found"))),
        Err(err) => {
            // Fail-open: the payment is recorded and its webhook delivered once the order
            // service is back. The one-capture rule still stops a second charge.
            tracing::warn!(%order_id, error = %err, "order service unavailable; taking payment unverified");
            Ok(false)
        }
    }
}
