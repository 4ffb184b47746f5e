//! Taking a payment: the order is verified with the order service, the card authorized, the
//! payment, its event and (once captured) its webhook delivery written in one transaction,
//! and the webhook tried at once. Money is captured only for an order the order service
//! confirmed payable in exactly the amount; when it cannot be asked the payment is only
//! `authorized`, and [`settle_authorized`] captures or voids it once it can. Handlers and
//! the settler call these and only parse and present.

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
use shop_contracts::{OrderStatus, OrderStock, PaymentStatus};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the order service says about paying an order `amount`.
#[derive(Debug)]
enum Verdict {
    /// A PENDING order holding its stock, whose total is exactly the amount: capture,
    /// recording the order's global ref.
    Payable(String),
    /// Refused for good: unknown order (404), paid or cancelled (409), another total (422).
    Refused(ApiError),
    /// Not yet: the order's stock is still pending.
    NotYet(String),
    /// The order service could not be asked (down, slow, 5xx, 429, garbage).
    CannotAsk(String),
}

async fn verify(state: &AppState, order_id: Id, amount: Cents) -> Verdict {
    let order = match state.orders.order(order_id).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            return Verdict::Refused(ApiError::NotFound(format!("order {order_id} not found")));
        }
        Err(err) => return Verdict::CannotAsk(err.to_string()),
    };
    if order.status.is_paid() {
        return Verdict::Refused(ApiError::Conflict(format!(
            "order {order_id} is already paid"
        )));
    }
    if order.status != OrderStatus::Pending {
        return Verdict::Refused(ApiError::Conflict(format!(
            "order {order_id} is {} and cannot be paid",
            order.status
        )));
    }
    if order.total != amount {
        return Verdict::Refused(ApiError::Validation(format!(
            "amount {amount} does not match order total {}",
            order.total
        )));
    }
    if order.stock == OrderStock::Pending {
        // No money for units that may not be there.
        return Verdict::NotYet(format!(
            "order {order_id} does not hold its stock yet; try again shortly"
        ));
    }
    Verdict::Payable(order.reference)
}

/// How `/pay` ended.
#[derive(Debug)]
pub enum Taken {
    /// Captured for a verified order (200).
    Captured(Payment),
    /// Recorded as authorized: the order service could not be asked, nothing is captured
    /// until it confirms the order and amount (202).
    Authorized(Payment),
}

/// Charges `amount` for `order_id` with `card` (or the default test card when none):
/// 402 when declined (recorded as failed, order left unpaid), 409 when the order is paid,
/// not payable or its stock is not held yet, 422 when the amount is not its total, 404 when
/// the order service does not know it. When the order service cannot be asked nothing is
/// captured: the payment is recorded as authorized. One capture per order still holds.
pub async fn take_payment(
    state: &AppState,
    order_id: Id,
    amount: Cents,
    card: Option<CardIn>,
) -> Result<Taken, ApiError> {
    let authorization = card
        .map(|card| cards::authorize(&card, current_year_month()))
        .transpose()?;
    let (card, decline) = match authorization {
        Some((summary, decline)) => (Some(summary), decline),
        None => (None, None),
    };
    let (status, order_ref) = match verify(state, order_id, amount).await {
        Verdict::Payable(order_ref) => (PaymentStatus::Captured, Some(order_ref)),
        Verdict::Refused(err) => return Err(err),
        Verdict::NotYet(why) => return Err(ApiError::Conflict(why)),
        Verdict::CannotAsk(why) => {
            tracing::warn!(%order_id, reason = %why, "order service cannot be asked; payment only authorized");
            (PaymentStatus::Authorized, None)
        }
    };
    let status = if decline.is_some() {
        PaymentStatus::Failed
    } else {
        status
    };

    let outbox = state.outbox.clone();
    let (payment_id, delivery) = state
        .db
        .write(move |tx| {
            if status == PaymentStatus::Captured
                && let Some(existing) = store::capture_of(tx, order_id, order_ref.as_deref())?
            {
                return Err(ApiError::Conflict(format!(
                    "order {order_id} is already paid by payment {existing}"
                )));
            }
            let reference = service_kit::domain::new_reference();
            let payment_id = store::insert_payment(
                tx,
                &NewPayment {
                    reference: &reference,
                    order_id,
                    order_ref: order_ref.as_deref(),
                    amount,
                    status,
                    failure_code: decline.map(|d| d.code()),
                    card: card.as_ref(),
                },
            )?;
            let kind = match status {
                PaymentStatus::Failed => "payment.failed",
                PaymentStatus::Authorized => "payment.authorized",
                _ => "payment.captured",
            };
            let payload = serde_json::json!({
                "payment_id": payment_id, "ref": reference, "order_id": order_id,
                "order_ref": order_ref, "amount": amount,
                "reason": decline.map(|d| d.code()), "card_brand": card.as_ref().map(|c| c.brand),
                "card_last4": card.as_ref().map(|c| c.last4.as_str()),
            });
            service_kit::events::record(
                tx,
                kind,
                service_kit::context::correlation_id().as_deref(),
                &payload,
            )?;
            let delivery = match status {
                PaymentStatus::Captured => {
                    let delivery = Outbox::new_delivery(payment_id, order_id, order_ref, amount);
                    outbox.enqueue(tx, &delivery, (payment_id, None))?;
                    Some(delivery)
                }
                _ => None,
            };
            Ok((payment_id, delivery))
        })
        .await?;

    state.counters.inc(
        "payments",
        &[
            ("outcome", status.as_str()),
            ("decline_code", decline.map_or("", |d| d.code())),
        ],
    );
    if let Some(delivery) = delivery {
        state.outbox.attempt_first(delivery).await;
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
    let payment = read_payment(state, payment_id).await?;
    Ok(match status {
        PaymentStatus::Authorized => Taken::Authorized(payment),
        _ => Taken::Captured(payment),
    })
}

async fn read_payment(state: &AppState, payment_id: i64) -> Result<Payment, ApiError> {
    state
        .db
        .read(move |conn| Ok(store::get_payment(conn, Id::from_db(payment_id))?))
        .await?
        .ok_or_else(|| ApiError::internal("payment vanished"))
}

/// Settles the authorized payments: each is verified again; a payable order's is captured
/// (and its webhook sent), a refused one's voided with the reason; one whose order still
/// cannot be asked (or whose stock is pending) waits. Returns how many it settled.
pub async fn settle_authorized(state: &AppState) -> Result<usize, ApiError> {
    let waiting = state
        .db
        .call(|conn| Ok(store::authorized_payments(conn, 100)?))
        .await?;
    let mut settled = 0;
    for payment in waiting {
        let order_id = Id::from_db(payment.order_id);
        let outcome = match verify(state, order_id, payment.amount).await {
            Verdict::Payable(order_ref) => Settlement::Capture(order_ref),
            Verdict::Refused(err) => Settlement::Void(err.to_string()),
            Verdict::NotYet(_) | Verdict::CannotAsk(_) => continue,
        };
        settle_one(state, &payment, outcome).await?;
        settled += 1;
    }
    Ok(settled)
}

enum Settlement {
    Capture(String),
    Void(String),
}

async fn settle_one(
    state: &AppState,
    payment: &Payment,
    settlement: Settlement,
) -> Result<(), ApiError> {
    let (payment_id, order_id, amount) =
        (payment.id, Id::from_db(payment.order_id), payment.amount);
    let outbox = state.outbox.clone();
    let delivery = state
        .db
        .write(move |tx| {
            let settlement = match settlement {
                Settlement::Capture(order_ref) => {
                    match store::capture_of(tx, order_id, Some(&order_ref))? {
                        Some(existing) => Settlement::Void(format!(
                            "order {order_id} is already paid by payment {existing}"
                        )),
                        None => Settlement::Capture(order_ref),
                    }
                }
                void => void,
            };
            let (kind, payload, delivery) = match settlement {
                Settlement::Capture(order_ref) => {
                    if !store::capture_authorized(tx, payment_id, &order_ref)? {
                        return Ok(None);
                    }
                    let delivery =
                        Outbox::new_delivery(payment_id, order_id, Some(order_ref.clone()), amount);
                    outbox.enqueue(tx, &delivery, (payment_id, None))?;
                    let payload = serde_json::json!({
                        "payment_id": payment_id, "order_id": order_id, "order_ref": order_ref,
                        "amount": amount,
                    });
                    ("payment.captured", payload, Some(delivery))
                }
                Settlement::Void(reason) => {
                    if !store::void_authorized(tx, payment_id, &reason)? {
                        return Ok(None);
                    }
                    let payload = serde_json::json!({
                        "payment_id": payment_id, "order_id": order_id, "amount": amount,
                        "reason": reason,
                    });
                    ("payment.voided", payload, None)
                }
            };
            service_kit::events::record(
                tx,
                kind,
                service_kit::context::correlation_id().as_deref(),
                &payload,
            )?;
            Ok(delivery)
        })
        .await?;
    if let Some(delivery) = delivery {
        state.outbox.attempt_first(delivery).await;
    }
    Ok(())
}

/// The authorization settler: every `every`, settles what the order service can now
/// answer for, until `stop`.
pub async fn settle_worker(state: AppState, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        match settle_authorized(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(settled = n, "authorized payments settled"),
            Err(err) => tracing::error!(error = %err, "authorization settler failed"),
        }
    }
}
