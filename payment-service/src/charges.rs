//! Taking a payment: the order is verified with the order service, the card authorized, the
//! payment, its event and (once captured) its webhook delivery written in one transaction,
//! and the webhook tried at once. Money is captured only for an order the order service
//! confirmed payable in exactly the amount; when it cannot be asked the payment is only
//! `authorized`, and [`settle_authorized`] captures or voids it once it can. Handlers and
//! the settler call these and only parse and present.

use crate::AppState;
use crate::cards;
use crate::cards::Decline;
use crate::domain::{NotPayable, Payability, Payment, decide_payability};
use crate::outbox::Outbox;
use crate::store::{self, DueDelivery, NewPayment};
use service_kit::clock::current_year_month;
use service_kit::db::StoreError;
use service_kit::domain::Id;
use service_kit::domain::Invalid;
use service_kit::money::Cents;
use shop_contracts::PaymentStatus;
use shop_contracts::card::CardIn;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the order service says about paying an order `amount`.
#[derive(Debug)]
enum Verdict {
    /// It answered: what that means for the payment.
    Answered(Payability),
    /// It could not be asked (down, slow, 5xx, 429, garbage).
    CannotAsk(String),
}

async fn verify(state: &AppState, order_id: Id, amount: Cents) -> Verdict {
    match state.orders.order(order_id).await {
        Ok(order) => Verdict::Answered(decide_payability(order_id.get(), amount, order.as_ref())),
        Err(err) => Verdict::CannotAsk(err.to_string()),
    }
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

/// Why `/pay` took no money.
#[derive(Debug)]
pub enum PayRefused {
    /// The order cannot be paid: unknown, paid or ended, another total.
    Order(NotPayable),
    /// The order's stock is not held yet: try again shortly.
    NotYet(String),
    /// Another payment captured this order meanwhile.
    AlreadyCaptured(String),
    /// The card was declined: the payment is recorded as failed, the order left unpaid.
    Declined {
        decline: Decline,
        payment_id: i64,
        order_id: Id,
    },
}

/// `/pay`'s failures: a refusal (nothing taken), a card of the wrong form, or the database.
#[derive(Debug)]
pub enum PayError {
    Refused(PayRefused),
    Invalid(Invalid),
    Store(StoreError),
}

impl From<StoreError> for PayError {
    fn from(err: StoreError) -> Self {
        PayError::Store(err)
    }
}

impl From<Invalid> for PayError {
    fn from(invalid: Invalid) -> Self {
        PayError::Invalid(invalid)
    }
}

/// A payment about to be recorded: what was decided, before its one transaction.
struct Charge {
    order_id: Id,
    amount: Cents,
    status: PaymentStatus,
    order_ref: Option<String>,
    decline: Option<Decline>,
    card: Option<cards::CardSummary>,
    user_id: Option<String>,
}

/// The status a payment is recorded with: failed when declined, captured for an order the
/// order service confirmed, authorized when it could not be asked; `Err` when it refused.
fn decide_charge(
    verdict: Verdict,
    decline: Option<Decline>,
) -> Result<(PaymentStatus, Option<String>), PayRefused> {
    let (status, order_ref) = match verdict {
        Verdict::Answered(Payability::Payable(order_ref)) => {
            (PaymentStatus::Captured, Some(order_ref))
        }
        Verdict::Answered(Payability::Refused(why)) => return Err(PayRefused::Order(why)),
        Verdict::Answered(Payability::NotYet(why)) => return Err(PayRefused::NotYet(why)),
        Verdict::CannotAsk(_) => (PaymentStatus::Authorized, None),
    };
    Ok(match decline {
        Some(_) => (PaymentStatus::Failed, order_ref),
        None => (status, order_ref),
    })
}

/// Charges `amount` for `order_id` with `card` (or the default test card when none): see
/// [`PayRefused`] for what takes no money. When the order service cannot be asked nothing
/// is captured: the payment is recorded as authorized. One capture per order still holds.
pub async fn take_payment(
    state: &AppState,
    order_id: Id,
    amount: Cents,
    card: Option<CardIn>,
    payer: Option<String>,
) -> Result<Taken, PayError> {
    let authorization = card
        .map(|card| cards::authorize(&card, current_year_month()))
        .transpose()?;
    let (card, decline) = match authorization {
        Some((summary, decline)) => (Some(summary), decline),
        None => (None, None),
    };
    let verdict = verify(state, order_id, amount).await;
    if let Verdict::CannotAsk(why) = &verdict {
        tracing::warn!(%order_id, reason = %why, "order service cannot be asked; payment only authorized");
    }
    let (status, order_ref) = decide_charge(verdict, decline).map_err(PayError::Refused)?;
    let charge = Charge {
        order_id,
        amount,
        status,
        order_ref,
        decline,
        card,
        user_id: payer,
    };
    let outbox = state.outbox.clone();
    let (payment_id, delivery) = state
        .db
        .write_with(move |tx| record_charge(tx, &outbox, charge))
        .await?
        .map_err(PayError::Refused)?;
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
        let declined = PayRefused::Declined {
            decline,
            payment_id,
            order_id,
        };
        return Err(PayError::Refused(declined));
    }
    let payment = read_payment(state, payment_id).await?;
    Ok(match status {
        PaymentStatus::Authorized => Taken::Authorized(payment),
        _ => Taken::Captured(payment),
    })
}

/// Records `charge` in `tx`: the payment, its event and, when captured, its webhook
/// delivery in the outbox. A capture for an order another payment captured meanwhile is
/// refused before anything is written.
fn record_charge(
    tx: &rusqlite::Connection,
    outbox: &Outbox,
    charge: Charge,
) -> Result<Result<(i64, Option<DueDelivery>), PayRefused>, StoreError> {
    let Charge {
        order_id,
        amount,
        status,
        order_ref,
        decline,
        card,
        user_id,
    } = charge;
    if status == PaymentStatus::Captured
        && let Some(existing) = store::capture_of(tx, order_id, order_ref.as_deref())?
    {
        return Ok(Err(PayRefused::AlreadyCaptured(format!(
            "order {order_id} is already paid by payment {existing}"
        ))));
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
            user_id: user_id.as_deref(),
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
    let journey = service_kit::context::correlation_id();
    service_kit::events::record(tx, kind, journey.as_deref(), &payload)?;
    let delivery = match status {
        PaymentStatus::Captured => {
            let delivery = Outbox::new_delivery(payment_id, order_id, order_ref, amount);
            outbox.enqueue(tx, &delivery, (payment_id, None))?;
            Some(delivery)
        }
        _ => None,
    };
    Ok(Ok((payment_id, delivery)))
}

async fn read_payment(state: &AppState, payment_id: i64) -> Result<Payment, StoreError> {
    state
        .db
        .read(move |conn| Ok(store::get_payment(conn, Id::from_db(payment_id))?))
        .await?
        .ok_or_else(|| StoreError::vanished("payment"))
}

/// Settles the authorized payments: each is verified again; a payable order's is captured
/// (and its webhook sent), a refused one's voided with the reason; one whose order still
/// cannot be asked (or whose stock is pending) waits. Returns how many it settled.
pub async fn settle_authorized(state: &AppState) -> Result<usize, StoreError> {
    let waiting = state
        .db
        .call(|conn| Ok(store::authorized_payments(conn, 100)?))
        .await?;
    let mut settled = 0;
    for payment in waiting {
        let order_id = Id::from_db(payment.order_id);
        let outcome = match verify(state, order_id, payment.amount).await {
            Verdict::Answered(Payability::Payable(order_ref)) => Settlement::Capture(order_ref),
            Verdict::Answered(Payability::Refused(why)) => {
                Settlement::Void(why.message().to_string())
            }
            Verdict::Answered(Payability::NotYet(_)) | Verdict::CannotAsk(_) => continue,
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
) -> Result<(), StoreError> {
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
