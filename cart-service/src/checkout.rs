//! The checkout saga: validate the cart against the catalog, place the order, reserve the
//! stock, take the payment, commit the reservation, clear the cart. The checkout row is
//! saved after every step, so a checkout can be shown while it runs and settled after a
//! crash.
//!
//! When a step fails, the earlier ones are undone in reverse: the order is cancelled first
//! (so a payment that arrives late is refused), then the reservation is released. The order
//! service is the judge of whether money was taken: if cancelling finds the order PAID, the
//! checkout goes forward instead. The cart is only touched once everything succeeded.

use crate::AppState;
use crate::domain::CartLine;
use crate::store;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use service_kit::ApiError;
use service_kit::domain::UserId;
use service_kit::money::Cents;
use service_kit::peer::{PeerError, PeerResponse};
use shop_contracts::orders::NewOrderLine;

/// The steps, in order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Validate,
    Order,
    Reserve,
    Pay,
    Commit,
    Clear,
    Done,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 7] = [
        Step::Validate,
        Step::Order,
        Step::Reserve,
        Step::Pay,
        Step::Commit,
        Step::Clear,
        Step::Done,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::Order => "order",
            Step::Reserve => "reserve",
            Step::Pay => "pay",
            Step::Commit => "commit",
            Step::Clear => "clear",
            Step::Done => "done",
        }
    }

    /// Reads a stored name.
    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One entry of a checkout's step log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepLog {
    pub step: Step,
    /// `done`, `failed`, `undone` or `undo_failed`.
    pub state: String,
    pub at: String,
    pub detail: Option<String>,
}

/// One line checked out: what the cart held, priced by the catalog once validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckoutLine {
    pub product_id: i64,
    pub quantity: i64,
    pub name: Option<String>,
    pub price: Option<Cents>,
}

/// A checkout as stored and as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckoutOut {
    pub id: i64,
    pub user_id: String,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// The step under way, or where it ended.
    pub step: Step,
    pub steps: Vec<StepLog>,
    pub lines: Vec<CheckoutLine>,
    pub total: Option<Cents>,
    pub order_id: Option<i64>,
    pub payment_id: Option<i64>,
    pub failed_step: Option<Step>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub correlation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl CheckoutOut {
    fn log(&mut self, step: Step, state: &str, detail: Option<String>) {
        self.steps.push(StepLog {
            step,
            state: state.to_string(),
            at: service_kit::clock::now_rfc3339(),
            detail,
        });
    }

    fn priced_lines(&self) -> Vec<NewOrderLine> {
        self.lines
            .iter()
            .map(|l| NewOrderLine {
                product_id: l.product_id,
                quantity: l.quantity,
                price: l.price.unwrap_or_default(),
            })
            .collect()
    }
}

/// How one attempt at the checkout ended, for the client.
type Answer = Result<(StatusCode, CheckoutOut), ApiError>;

fn order_key(id: i64) -> String {
    format!("checkout-{id}-order")
}

fn pay_key(id: i64) -> String {
    format!("checkout-{id}-pay")
}

/// Starts a checkout of the user's whole cart and runs it as far as it goes.
pub async fn start(state: &AppState, user: UserId, card: Option<Value>) -> Answer {
    let lookup = user.clone();
    let cart: Vec<CartLine> = state
        .db
        .call(move |conn| Ok(store::cart_lines(conn, &lookup)?))
        .await?;
    if cart.is_empty() {
        return Err(ApiError::Validation(format!("the cart of {user} is empty")));
    }
    let lines: Vec<CheckoutLine> = cart
        .iter()
        .map(|l| CheckoutLine {
            product_id: l.product_id,
            quantity: l.quantity,
            name: l.name.clone(),
            price: None,
        })
        .collect();
    let correlation = service_kit::http::correlation_id();
    let checkout = state
        .db
        .write(move |tx| {
            let id = store::insert_checkout(tx, &user, &lines, correlation.as_deref())?
                .ok_or_else(|| {
                    ApiError::Conflict(format!(
                        "a checkout for {user} is already running; see GET /checkouts?user_id={user}"
                    ))
                })?;
            store::get_checkout(tx, id)?.ok_or_else(|| ApiError::internal("new checkout vanished"))
        })
        .await?;
    run(state, checkout, card).await
}

async fn save(state: &AppState, checkout: &CheckoutOut) -> Result<(), ApiError> {
    let row = checkout.clone();
    state
        .db
        .write(move |tx| Ok(store::save_checkout(tx, &row)?))
        .await
}

/// Runs the steps from `validate` on.
async fn run(state: &AppState, mut co: CheckoutOut, card: Option<Value>) -> Answer {
    // Validate: every line against the catalog, at today's prices. No fail-open here.
    for line in &mut co.lines {
        let id = service_kit::domain::Id::from_db(line.product_id);
        match state.stock.product(id).await {
            Ok(Some(product)) => {
                line.name = Some(product.name);
                line.price = Some(product.price);
            }
            Ok(None) => {
                let reason = format!("product {} is no longer sold", line.product_id);
                return fail(state, co, Step::Validate, ApiError::Validation(reason)).await;
            }
            Err(err) => return fail(state, co, Step::Validate, unavailable(&err)).await,
        }
    }
    let line_totals = co
        .lines
        .iter()
        .map(|l| l.price.unwrap_or_default().checked_mul(l.quantity));
    let Some(total) = line_totals
        .collect::<Option<Vec<_>>>()
        .and_then(Cents::checked_sum)
    else {
        let too_large = ApiError::Validation("the cart total is too large".into());
        return fail(state, co, Step::Validate, too_large).await;
    };
    co.total = Some(total);
    co.log(Step::Validate, "done", None);
    co.step = Step::Order;
    save(state, &co).await?;

    // Order: placed at the validated prices.
    let placed = state
        .orders
        .create(&co.user_id, &co.priced_lines(), order_key(co.id))
        .await;
    match placed {
        Ok(answer) if answer.is_success() => {
            co.order_id = id_in(&answer);
            if co.order_id.is_none() {
                let garbled = ApiError::Unavailable("order service answered without an id".into());
                return fail(state, co, Step::Order, garbled).await;
            }
        }
        Ok(answer) if answer.status < 500 => {
            return fail(state, co, Step::Order, refused(&answer)).await;
        }
        Err(err @ PeerError::NotSent { .. }) => {
            return fail(state, co, Step::Order, unavailable(&err)).await;
        }
        outcome => {
            // The order may exist without our knowing its id. The recovery loop asks again
            // with the same idempotency key, finds it and cancels it.
            let detail = problem(outcome);
            co.log(Step::Order, "unsettled", Some(detail.clone()));
            save(state, &co).await?;
            return Err(ApiError::Unavailable(format!(
                "checkout {} is unsettled at step order: {detail}; it will be undone once the order service answers",
                co.id
            )));
        }
    }
    co.log(
        Step::Order,
        "done",
        co.order_id.map(|id| format!("order {id}")),
    );
    co.step = Step::Reserve;
    save(state, &co).await?;
    let order_id = co.order_id.unwrap_or_default();

    // Reserve: all lines or none.
    let lines: Vec<(i64, i64)> = co
        .lines
        .iter()
        .map(|l| (l.product_id, l.quantity))
        .collect();
    match state.stock.reserve(order_id, &lines).await {
        Ok(answer) if answer.is_success() => {}
        Ok(answer) => return fail(state, co, Step::Reserve, refused(&answer)).await,
        Err(err) => return fail(state, co, Step::Reserve, unavailable(&err)).await,
    }
    co.log(Step::Reserve, "done", None);
    co.step = Step::Pay;
    save(state, &co).await?;

    // Pay: the card goes straight through; only its outcome is kept.
    let paid = state
        .payments
        .pay(order_id, total, card.as_ref(), pay_key(co.id))
        .await;
    match paid {
        Ok(answer) if answer.is_success() => co.payment_id = id_in(&answer),
        Ok(answer) if answer.status < 500 => {
            return fail(state, co, Step::Pay, refused(&answer)).await;
        }
        outcome => {
            // No clear answer: the payment may or may not have been taken. Cancelling the
            // order settles it either way (see `undo`).
            let err = match outcome {
                Err(err) => unavailable(&err),
                Ok(answer) => refused(&answer),
            };
            return fail(state, co, Step::Pay, err).await;
        }
    }
    co.log(
        Step::Pay,
        "done",
        co.payment_id.map(|id| format!("payment {id}")),
    );
    co.step = Step::Commit;
    save(state, &co).await?;
    finish(state, co).await
}

/// Commit the reservation and clear the cart: the steps after the money was taken. They
/// only go forward; if the catalog cannot be reached the checkout stays `running` and the
/// recovery loop finishes it.
async fn finish(state: &AppState, mut co: CheckoutOut) -> Answer {
    let order_id = co.order_id.unwrap_or_default();
    match state.stock.commit(order_id).await {
        Ok(answer) if answer.is_success() => {}
        outcome => {
            let detail = problem(outcome);
            tracing::warn!(checkout = co.id, %detail, "payment taken but reservation not committed yet; will retry");
            co.log(Step::Commit, "pending", Some(detail));
            save(state, &co).await?;
            return Ok((StatusCode::ACCEPTED, co));
        }
    }
    co.log(Step::Commit, "done", None);
    co.step = Step::Clear;
    co.log(Step::Clear, "done", None);
    co.step = Step::Done;
    co.status = "completed".into();
    let row = co.clone();
    let done = state
        .db
        .write(move |tx| {
            store::clear_checked_out(tx, &row)?;
            store::save_checkout(tx, &row)?;
            let payload = json!({
                "checkout_id": row.id, "user_id": row.user_id, "order_id": row.order_id,
                "payment_id": row.payment_id, "total": row.total,
            });
            service_kit::events::record(
                tx,
                "checkout.completed",
                row.correlation_id.as_deref(),
                &payload,
            )?;
            store::get_checkout(tx, row.id)?.ok_or_else(|| ApiError::internal("checkout vanished"))
        })
        .await?;
    Ok((StatusCode::CREATED, done))
}

/// What undoing found.
enum Undo {
    /// Everything before the failed step is undone (or never happened).
    Undone,
    /// The order turned out to be paid: the checkout must go forward instead.
    Paid,
    /// A peer could not be reached, and giving up now could leave money taken for a
    /// cancelled order: the checkout stays `running` for the recovery loop.
    Unsettled(String),
}

/// Undoes the steps before `failed_at`, in reverse.
async fn undo(state: &AppState, co: &mut CheckoutOut, failed_at: Step, reason: &str) -> Undo {
    let Some(order_id) = co.order_id else {
        return Undo::Undone;
    };
    match state.orders.cancel(order_id, reason).await {
        Ok(answer) if answer.is_success() || answer.status == 404 => {
            co.log(
                Step::Order,
                "undone",
                Some(format!("order {order_id} cancelled")),
            );
        }
        Ok(answer) if answer.status == 409 => match state.orders.status(order_id).await {
            Ok(Some(status)) if status.is_paid() => {
                return Undo::Paid;
            }
            Ok(_) => co.log(
                Step::Order,
                "undone",
                Some(format!("order {order_id} already cancelled")),
            ),
            Err(err) => return Undo::Unsettled(err.to_string()),
        },
        outcome => {
            let detail = problem(outcome);
            // Before the payment step nothing can be charged: a PENDING order is harmless.
            if failed_at >= Step::Pay {
                return Undo::Unsettled(detail);
            }
            co.log(Step::Order, "undo_failed", Some(detail));
        }
    }
    if failed_at >= Step::Reserve {
        match state.stock.release(order_id, reason).await {
            Ok(answer) if answer.is_success() || answer.status == 404 => {
                co.log(Step::Reserve, "undone", Some("stock released".into()));
            }
            outcome => {
                let detail = problem(outcome);
                // The catalog's sweep releases an uncommitted reservation when it expires.
                co.log(
                    Step::Reserve,
                    "undo_failed",
                    Some(format!("{detail}; released at expiry")),
                );
            }
        }
    }
    Undo::Undone
}

/// Ends the checkout at `step` with `error`: undoes what came before and answers the error,
/// naming the step. If undoing finds the order paid, goes forward instead.
async fn fail(state: &AppState, mut co: CheckoutOut, step: Step, error: ApiError) -> Answer {
    let reason = error.to_string();
    match undo(state, &mut co, step, &reason).await {
        Undo::Paid => {
            if co.payment_id.is_none()
                && let Some(order_id) = co.order_id
            {
                co.payment_id = state.payments.captured_for(order_id).await.ok().flatten();
            }
            co.log(step, "done", Some("the order was paid after all".into()));
            co.step = Step::Commit;
            save(state, &co).await?;
            return finish(state, co).await;
        }
        Undo::Unsettled(detail) => {
            co.log(step, "unsettled", Some(format!("{reason}; {detail}")));
            save(state, &co).await?;
            return Err(ApiError::Unavailable(format!(
                "checkout {} is unsettled at step {}: {reason}; it will be completed or undone once the services answer",
                co.id,
                step.as_str()
            )));
        }
        Undo::Undone => {}
    }
    let code = error.status_and_code().1.to_string();
    co.log(step, "failed", Some(reason.clone()));
    co.status = "failed".into();
    co.step = step;
    co.failed_step = Some(step);
    co.failure_code = Some(code.clone());
    co.failure_reason = Some(reason.clone());
    let row = co.clone();
    state
        .db
        .write(move |tx| {
            store::save_checkout(tx, &row)?;
            let payload = json!({
                "checkout_id": row.id, "user_id": row.user_id, "order_id": row.order_id,
                "step": step, "code": code, "reason": reason,
            });
            Ok(service_kit::events::record(
                tx,
                "checkout.failed",
                row.correlation_id.as_deref(),
                &payload,
            )?)
        })
        .await?;
    let message = format!(
        "checkout {} failed at step {}: {error}",
        co.id,
        step.as_str()
    );
    Err(match error {
        ApiError::Declined { code, .. } => ApiError::Declined { code, message },
        ApiError::Conflict(_) => ApiError::Conflict(message),
        ApiError::Validation(_) => ApiError::Validation(message),
        ApiError::NotFound(_) => ApiError::NotFound(message),
        _ => ApiError::Unavailable(message),
    })
}

/// What went wrong with a peer call, in words: its error message, or why it did not answer.
fn problem(outcome: Result<PeerResponse, PeerError>) -> String {
    match outcome {
        Ok(answer) => answer.error().1,
        Err(err) => err.to_string(),
    }
}

/// The `id` of the order or payment a peer answered with.
fn id_in(answer: &PeerResponse) -> Option<i64> {
    serde_json::from_slice::<Value>(&answer.body).ok()?["id"].as_i64()
}

/// A service this checkout cannot do without did not answer: 503.
fn unavailable(err: &PeerError) -> ApiError {
    ApiError::Unavailable(err.to_string())
}

/// A peer refused the step: its own code and message, as our error.
fn refused(answer: &PeerResponse) -> ApiError {
    let (code, message) = answer.error();
    match answer.status {
        402 => ApiError::Declined {
            code: decline_code(&code),
            message,
        },
        409 => ApiError::Conflict(message),
        400 | 422 => ApiError::Validation(message),
        404 => ApiError::NotFound(message),
        _ => ApiError::Unavailable(message),
    }
}

/// The payment service's decline codes, as the static codes our errors carry.
fn decline_code(code: &str) -> &'static str {
    match code {
        "insufficient_funds" => "insufficient_funds",
        "expired_card" => "expired_card",
        "incorrect_cvc" => "incorrect_cvc",
        _ => "card_declined",
    }
}

/// Settles checkouts left `running` by a crash (or by a peer that stopped answering): those
/// whose last save is older than `stale_before_ms`. Before the payment step they are undone;
/// once paid they are finished. Returns how many it settled.
pub async fn recover(state: &AppState, stale_before_ms: i64) -> Result<usize, ApiError> {
    let stuck = state
        .db
        .call(move |conn| Ok(store::running_checkouts(conn, stale_before_ms)?))
        .await?;
    let mut settled = 0;
    for co in stuck {
        let id = co.id;
        let outcome =
            service_kit::http::with_correlation_id(co.correlation_id.clone(), resume(state, co))
                .await;
        match outcome {
            Ok(_)
            | Err(ApiError::Conflict(_) | ApiError::Validation(_) | ApiError::Declined { .. }) => {
                settled += 1
            }
            Err(ApiError::Unavailable(reason)) if reason.contains("unsettled") => {
                tracing::warn!(checkout = id, %reason, "checkout still unsettled");
            }
            Err(err) => {
                settled += 1;
                tracing::info!(checkout = id, error = %err, "interrupted checkout undone");
            }
        }
    }
    Ok(settled)
}

async fn resume(state: &AppState, mut co: CheckoutOut) -> Answer {
    tracing::info!(
        checkout = co.id,
        step = co.step.as_str(),
        "settling an interrupted checkout"
    );
    let interrupted = || ApiError::Unavailable("the checkout was interrupted".into());
    match co.step {
        Step::Commit | Step::Clear | Step::Done => finish(state, co).await,
        Step::Order if co.order_id.is_none() => {
            // The order may have been placed before the crash: asking again with the same
            // idempotency key finds it (or places it), so it can be cancelled.
            let placed = state
                .orders
                .create(&co.user_id, &co.priced_lines(), order_key(co.id))
                .await;
            match placed {
                Ok(answer) if answer.is_success() => {
                    co.order_id = id_in(&answer);
                    fail(state, co, Step::Order, interrupted()).await
                }
                Ok(_) => fail(state, co, Step::Order, interrupted()).await,
                Err(err) => Err(ApiError::Unavailable(format!(
                    "checkout {} unsettled: {err}",
                    co.id
                ))),
            }
        }
        step => fail(state, co, step, interrupted()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_ordered_and_round_trip_their_names() {
        assert!(Step::Validate < Step::Order && Step::Order < Step::Reserve);
        assert!(Step::Reserve < Step::Pay && Step::Pay < Step::Commit);
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert!(Step::ALL.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(Step::parse("ship"), None);
    }

    #[test]
    fn a_peer_refusal_keeps_its_meaning() {
        let answer = |status: u16, code: &str| PeerResponse {
            status,
            body: json!({"error": {"code": code, "message": "why"}})
                .to_string()
                .into_bytes(),
        };
        assert!(matches!(
            refused(&answer(409, "conflict")),
            ApiError::Conflict(_)
        ));
        assert!(matches!(
            refused(&answer(422, "validation_failed")),
            ApiError::Validation(_)
        ));
        assert!(matches!(
            refused(&answer(402, "insufficient_funds")),
            ApiError::Declined {
                code: "insufficient_funds",
                ..
            }
        ));
        assert!(matches!(
            refused(&answer(402, "something_new")),
            ApiError::Declined {
                code: "card_declined",
                ..
            }
        ));
        assert!(matches!(
            refused(&answer(503, "unavailable")),
            ApiError::Unavailable(_)
        ));
    }
}
