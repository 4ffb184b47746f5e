//! The checkout as a state machine: validate the cart against the catalog, place the order,
//! reserve the stock, take the payment, commit the reservation, clear the cart. The
//! checkout row is saved after every step, so a checkout can be shown while it runs and
//! settled after a crash.
//!
//! Each step is one function returning a [`StepOutcome`]: done, refused (the peer did
//! nothing), or unknown (the peer may have acted). When a step fails, the earlier ones are
//! undone in reverse: the order is cancelled first (so a payment that arrives late is
//! refused), then the reservation is released. The order service is the judge of whether
//! money was taken: if cancelling finds the order PAID, the checkout goes forward instead.
//! An order step whose outcome is unknown is left running for the recovery loop, which
//! asks again with the same idempotency key. The cart is only touched once everything
//! succeeded. How a run ended is an [`Ended`]; only the HTTP edge turns it into a status.

use crate::AppState;
use crate::domain::{CartLine, Checkout, CheckoutLine, CheckoutStatus, Step, StepState};
use crate::store;
use serde_json::json;
use service_kit::db::{StoreError, Undone};
use service_kit::domain::{Id, Quantity, UserId};
use service_kit::money::Cents;
use service_kit::peer::Outcome;
use shop_contracts::card::CardIn;
use shop_contracts::catalog::{ReservationLine, ReserveRefused, SettleRefused};
use shop_contracts::customer::{Customer, ShippingAddress};
use shop_contracts::orders::{NewOrderLine, PlaceOrder, PlaceRefused, StatusChangeRefused};
use shop_contracts::payments::PayRefused;
use shop_contracts::{OrderStatus, PaymentStatus};
use std::time::Duration;

/// Why a checkout failed, in the terms the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The card was declined, with the payment service's decline code.
    Declined { code: &'static str, message: String },
    /// Stock ran out, or an order or key is in a state that forbids the step.
    Conflict(String),
    /// The cart cannot be checked out as it is (a product gone from sale, a total too large).
    Invalid(String),
    /// Something the checkout refers to does not exist.
    NotFound(String),
    /// A service the checkout cannot do without did not answer, or refused to.
    Unavailable(String),
}

impl Failure {
    /// The reason, in words.
    pub fn message(&self) -> &str {
        match self {
            Failure::Declined { message, .. }
            | Failure::Conflict(message)
            | Failure::Invalid(message)
            | Failure::NotFound(message)
            | Failure::Unavailable(message) => message,
        }
    }

    /// The code the failure is recorded and answered with (a decline's own code).
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Declined { code, .. } => code,
            Failure::Conflict(_) => "conflict",
            Failure::Invalid(_) => "validation_failed",
            Failure::NotFound(_) => "not_found",
            Failure::Unavailable(_) => "unavailable",
        }
    }

    /// The same failure with another message (the step and checkout named).
    pub fn reworded(self, message: String) -> Failure {
        match self {
            Failure::Declined { code, .. } => Failure::Declined { code, message },
            Failure::Conflict(_) => Failure::Conflict(message),
            Failure::Invalid(_) => Failure::Invalid(message),
            Failure::NotFound(_) => Failure::NotFound(message),
            Failure::Unavailable(_) => Failure::Unavailable(message),
        }
    }
}

/// What one step came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StepOutcome {
    /// Done; the checkout moves on.
    Done,
    /// Not done, and nothing of it happened at the peer.
    Refused(Failure),
    /// The peer may have done it: settle before giving up.
    Unknown(String),
}

impl<T, R: Into<Failure>> From<Outcome<T, R>> for StepOutcome {
    fn from(outcome: Outcome<T, R>) -> Self {
        match outcome {
            Outcome::Done(_) => StepOutcome::Done,
            Outcome::Refused(refusal) => StepOutcome::Refused(refusal.into()),
            Outcome::Unknown(detail) => StepOutcome::Unknown(detail),
        }
    }
}

// What each step's refusal means to the checkout's client: the peer's reason, kept with
// its meaning.

impl From<PlaceRefused> for Failure {
    fn from(refused: PlaceRefused) -> Failure {
        match refused {
            PlaceRefused::OutOfStock(m)
            | PlaceRefused::KeyReused(m)
            | PlaceRefused::HoldLimit(m) => Failure::Conflict(m),
            PlaceRefused::Invalid(m) | PlaceRefused::BadRequest(m) => Failure::Invalid(m),
            PlaceRefused::NotSent(m) | PlaceRefused::Other { message: m, .. } => {
                Failure::Unavailable(m)
            }
        }
    }
}

impl From<ReserveRefused> for Failure {
    fn from(refused: ReserveRefused) -> Failure {
        match refused {
            ReserveRefused::OutOfStock(m) | ReserveRefused::ReferenceReused(m) => {
                Failure::Conflict(m)
            }
            ReserveRefused::UnknownProduct(m) | ReserveRefused::Invalid(m) => Failure::Invalid(m),
            ReserveRefused::NotSent(m) | ReserveRefused::Other { message: m, .. } => {
                Failure::Unavailable(m)
            }
        }
    }
}

impl From<PayRefused> for Failure {
    fn from(refused: PayRefused) -> Failure {
        match refused {
            PayRefused::Declined(decline, message) => Failure::Declined {
                code: decline.code(),
                message,
            },
            PayRefused::Conflict(m) => Failure::Conflict(m),
            PayRefused::Invalid(m) => Failure::Invalid(m),
            PayRefused::NotFound(m) => Failure::NotFound(m),
            PayRefused::NotSent(m) | PayRefused::Other(m) => Failure::Unavailable(m),
        }
    }
}

/// How a run of the checkout ended.
#[derive(Debug)]
pub enum Ended {
    /// Paid, stock taken, cart cleared.
    Completed(Checkout),
    /// Paid; committing the stock waits for the catalog (the recovery loop finishes it).
    Finishing(Checkout),
    /// A step failed and everything before it was undone.
    Failed(Checkout, Failure),
    /// A peer may have acted and cannot be asked yet: the recovery loop settles it.
    Unsettled(Checkout, String),
}

/// What undoing found.
enum Undo {
    /// Everything before the failed step is undone (or never happened).
    Undone,
    /// The order turned out to be paid: the checkout must go forward instead.
    Paid,
    /// A peer could not be reached, and giving up now could leave money taken for a
    /// cancelled order: the checkout stays running for the recovery loop.
    Unsettled(String),
}

/// What a shopper sends with a checkout, held in memory for the run and never saved: the
/// card goes to the payment service; whom the order is for, to the order service (which
/// keeps it with the order).
#[derive(Debug, Default)]
pub struct CheckoutInput {
    pub card: Option<CardIn>,
    pub customer: Option<Customer>,
    pub shipping_address: Option<ShippingAddress>,
    /// Applied by the order service, which answers with the discounted total to pay.
    pub promo_code: Option<String>,
    /// The storefront client the checkout runs for (its order's holds are that client's).
    /// Kept in memory only: a checkout recovered after a restart finds its order placed
    /// under its key, or places it as the admin's.
    pub held_for: Option<std::net::IpAddr>,
}

/// Starts a checkout of the user's whole cart and runs it as far as it goes. `Err` is an
/// empty cart, a checkout of the user already running, or our own database failing.
pub async fn start(
    state: &AppState,
    user: UserId,
    input: CheckoutInput,
) -> Result<Ended, Undone<Failure>> {
    begin(state, user, None, input).await
}

/// How a one-call checkout names a product: its id, or its SKU (seed-style `prod_001`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductKey {
    Id(Id),
    Sku(String),
}

/// One line of a one-call checkout: a product, how many, and the price the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectLine {
    pub product: ProductKey,
    pub quantity: Quantity,
    pub price: Cents,
}

/// Starts a one-call checkout of `lines` (not of the cart, which it leaves alone) and runs
/// it as the cart's would, its validate step also demanding that each price is the
/// catalog's. SKUs are looked up first: an unknown one is a 422, a catalog that cannot be
/// asked a 503, and nothing is recorded either way.
pub async fn start_direct(
    state: &AppState,
    user: UserId,
    lines: Vec<DirectLine>,
    input: CheckoutInput,
) -> Result<Ended, Undone<Failure>> {
    let mut checkout_lines = Vec::with_capacity(lines.len());
    for line in lines {
        let product_id = match line.product {
            ProductKey::Id(id) => id.get(),
            ProductKey::Sku(sku) => match state.stock.product_with_sku(&sku).await {
                Ok(Some(product)) => product.id,
                Ok(None) => {
                    return Err(Undone::Refused(Failure::Invalid(format!(
                        "no product has the SKU {sku}"
                    ))));
                }
                Err(err) => return Err(Undone::Refused(Failure::Unavailable(err.to_string()))),
            },
        };
        checkout_lines.push(CheckoutLine {
            product_id,
            quantity: line.quantity.get(),
            name: None,
            price: None,
            asked_price: Some(line.price),
        });
    }
    begin(state, user, Some(checkout_lines), input).await
}

/// Records a checkout of `lines` (the user's cart when `None`) and runs it.
async fn begin(
    state: &AppState,
    user: UserId,
    lines: Option<Vec<CheckoutLine>>,
    input: CheckoutInput,
) -> Result<Ended, Undone<Failure>> {
    let reference = service_kit::domain::new_reference();
    // The cart is read in the same write transaction that records the checkout: a second
    // click either waits and finds this checkout running, or finds the cart it cleared,
    // never the lines of a cart already paid for.
    let checkout = state
        .db
        .write_with(move |tx| -> Result<_, Undone<Failure>> {
            let from_cart = lines.is_none();
            let lines = match lines {
                Some(lines) => lines,
                None => cart_checkout_lines(tx, &user)?,
            };
            let started = store::insert_checkout(
                tx,
                &user,
                &reference,
                (&lines, from_cart),
                service_kit::context::correlation_id().as_deref(),
            )?;
            let id = started.ok_or_else(|| {
                Undone::Refused(Failure::Conflict(format!(
                    "a checkout for {user} is already running; see GET /checkouts?user_id={user}"
                )))
            })?;
            Ok(store::get_checkout(tx, id)?.ok_or_else(|| StoreError::vanished("new checkout"))?)
        })
        .await?;
    let ended = Saga::new(state, checkout, input).run().await?;
    let (outcome, failed_step) = match &ended {
        Ended::Completed(_) => ("completed", None),
        Ended::Finishing(_) => ("finishing", None),
        Ended::Failed(co, _) => ("failed", co.failed_step),
        Ended::Unsettled(co, _) => ("unsettled", Some(co.step)),
    };
    let step = failed_step.map_or("", Step::as_str);
    state
        .counters
        .inc("checkouts", &[("outcome", outcome), ("failed_step", step)]);
    Ok(ended)
}

/// The user's cart as the lines of a checkout; a 422 when it is empty.
fn cart_checkout_lines(
    tx: &rusqlite::Connection,
    user: &UserId,
) -> Result<Vec<CheckoutLine>, Undone<Failure>> {
    let cart: Vec<CartLine> = store::cart_lines(tx, user)?;
    if cart.is_empty() {
        return Err(Undone::Refused(Failure::Invalid(format!(
            "the cart of {user} is empty"
        ))));
    }
    Ok(cart
        .into_iter()
        .map(|l| CheckoutLine {
            product_id: l.product_id,
            quantity: l.quantity,
            name: l.name,
            price: None,
            asked_price: None,
        })
        .collect())
}

/// Settles checkouts left running by a crash (or by a peer that stopped answering): those
/// whose last save is older than `stale_before_ms`. Before the payment step they are undone;
/// once paid they are finished. Returns how many it settled.
pub async fn recover(state: &AppState, stale_before_ms: i64) -> Result<usize, StoreError> {
    let stuck = state
        .db
        .call(move |conn| Ok(store::running_checkouts(conn, stale_before_ms)?))
        .await?;
    let mut settled = 0;
    for co in stuck {
        let correlation = co.correlation_id.clone();
        let resumed = Saga::new(state, co, CheckoutInput::default()).resume();
        match service_kit::context::with_correlation_id(correlation, resumed).await? {
            Ended::Unsettled(co, reason) => {
                tracing::warn!(checkout = co.id, %reason, "checkout still unsettled");
            }
            Ended::Failed(co, failure) => {
                settled += 1;
                let reason = failure.message();
                tracing::info!(checkout = co.id, reason, "interrupted checkout undone");
            }
            Ended::Completed(_) | Ended::Finishing(_) => settled += 1,
        }
    }
    Ok(settled)
}

/// One checkout being run: its record, and what the shopper sent (held in memory only).
struct Saga<'a> {
    state: &'a AppState,
    co: Checkout,
    input: CheckoutInput,
}

impl<'a> Saga<'a> {
    fn new(state: &'a AppState, co: Checkout, input: CheckoutInput) -> Self {
        Saga { state, co, input }
    }

    /// The order's idempotency key: from the checkout's global reference, never its row id,
    /// so a restored carts.db or a second cart service cannot replay another's order.
    fn order_key(&self) -> String {
        format!("checkout-{}-order", self.co.reference)
    }

    fn pay_key(&self) -> String {
        format!("checkout-{}-pay", self.co.reference)
    }

    /// The order placed by this checkout (0 before the order step, never used then).
    fn order_id(&self) -> i64 {
        self.co.order_id.unwrap_or_default()
    }

    /// The key the order's stock is held under in the catalog: the order's global ref
    /// (a checkout from before orders had one: its order id, the key it reserved under).
    fn stock_key(&self) -> String {
        match &self.co.order_ref {
            Some(reference) => reference.clone(),
            None => self.order_id().to_string(),
        }
    }

    async fn save(&self) -> Result<(), StoreError> {
        let row = self.co.clone();
        self.state
            .db
            .write(move |tx| Ok(store::save_checkout(tx, &row)?))
            .await
    }

    /// Runs the steps from `validate` on.
    async fn run(mut self) -> Result<Ended, StoreError> {
        for step in [Step::Validate, Step::Order, Step::Reserve, Step::Pay] {
            let outcome = match step {
                Step::Validate => self.validate().await,
                Step::Order => self.place_order().await,
                Step::Reserve => self.reserve().await,
                _ => self.pay().await,
            };
            match outcome {
                StepOutcome::Done => {
                    let detail = self.done_detail(step);
                    self.co.log(step, StepState::Done, detail);
                    self.co.step = step.next();
                    self.save().await?;
                }
                StepOutcome::Refused(failure) => return self.fail(step, failure).await,
                // The order may exist without our knowing its id: the recovery loop asks
                // again with the same idempotency key, finds it and cancels it.
                StepOutcome::Unknown(detail) if step == Step::Order => {
                    return self.leave_unsettled(step, detail, "undone").await;
                }
                // The reservation or payment may have been made: undoing settles it (a
                // release by order id is safe either way; the order service judges a
                // payment).
                StepOutcome::Unknown(detail) => {
                    return self.fail(step, Failure::Unavailable(detail)).await;
                }
            }
        }
        self.finish().await
    }

    fn done_detail(&self, step: Step) -> Option<String> {
        match step {
            Step::Order => self.co.order_id.map(|id| format!("order {id}")),
            Step::Pay => self.co.payment_id.map(|id| format!("payment {id}")),
            _ => None,
        }
    }

    /// Validate: every line against the catalog (one call for all of them), at today's
    /// prices. No fail-open here.
    async fn validate(&mut self) -> StepOutcome {
        let ids: Vec<Id> = self
            .co
            .lines
            .iter()
            .map(|line| Id::from_db(line.product_id))
            .collect();
        let products = match self.state.stock.products(&ids).await {
            Ok(products) => products,
            Err(err) => return StepOutcome::Refused(Failure::Unavailable(err.to_string())),
        };
        for line in &mut self.co.lines {
            let Some(product) = products.get(&Id::from_db(line.product_id)) else {
                let gone = format!("product {} is no longer sold", line.product_id);
                return StepOutcome::Refused(Failure::Invalid(gone));
            };
            if let Some(asked) = line.asked_price.filter(|asked| *asked != product.price) {
                let repriced = format!(
                    "price of product {} is {} in the catalog, not {asked}",
                    line.product_id, product.price
                );
                return StepOutcome::Refused(Failure::Invalid(repriced));
            }
            line.name = Some(product.name.clone());
            line.price = Some(product.price);
        }
        let line_totals = self
            .co
            .lines
            .iter()
            .map(|l| l.price.unwrap_or_default().checked_mul(l.quantity));
        match line_totals
            .collect::<Option<Vec<_>>>()
            .and_then(Cents::checked_sum)
        {
            Some(total) => {
                self.co.total = Some(total);
                StepOutcome::Done
            }
            None => StepOutcome::Refused(Failure::Invalid("the cart total is too large".into())),
        }
    }

    /// Order: placed at the validated prices, under this checkout's idempotency key.
    async fn place_order(&mut self) -> StepOutcome {
        let order = PlaceOrder {
            items: self
                .co
                .lines
                .iter()
                .map(|l| NewOrderLine {
                    product_id: l.product_id,
                    quantity: l.quantity,
                    price: l.price.unwrap_or_default(),
                })
                .collect(),
            customer: self.input.customer.clone(),
            shipping_address: self.input.shipping_address.clone(),
            promo_code: self.input.promo_code.clone(),
        };
        let placed = self
            .state
            .orders
            .create(
                (&self.co.user_id, self.input.held_for),
                &order,
                self.order_key(),
            )
            .await;
        if let Outcome::Done(order) = &placed {
            self.co.order_id = Some(order.id);
            self.co.order_ref = Some(order.reference.clone());
            // What is paid is the order's total: a promo code may have taken some off.
            self.co.total = Some(order.total);
        }
        placed.into()
    }

    /// Reserve: all lines or none, held for the order. The order service already asked the
    /// catalog under the order's ref when it placed it: this finds that reservation (or
    /// makes it, if the catalog was away then) and fails if the stock is not held.
    async fn reserve(&mut self) -> StepOutcome {
        let lines: Vec<ReservationLine> = self
            .co
            .lines
            .iter()
            .map(|l| ReservationLine {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect();
        self.state
            .stock
            .reserve(&self.stock_key(), self.order_id(), &lines)
            .await
            .into()
    }

    /// Pay: the card goes straight through; only the payment's id is kept. A payment the
    /// payment service could only authorize (it could not verify the order) is not money
    /// taken yet: the step waits for it to be captured or voided.
    async fn pay(&mut self) -> StepOutcome {
        let total = self.co.total.unwrap_or_default();
        let paid = self
            .state
            .payments
            .pay(
                (self.order_id(), &self.co.user_id),
                total,
                self.input.card.as_ref(),
                self.pay_key(),
            )
            .await;
        match paid {
            Outcome::Done(payment) => {
                self.co.payment_id = Some(payment.id);
                match payment.status {
                    PaymentStatus::Authorized => self.await_capture(payment.id).await,
                    _ => StepOutcome::Done,
                }
            }
            other => other.into(),
        }
    }

    /// Waits (one call's timeout at most) for the payment service to settle authorized
    /// payment `id`: captured is done, voided is a refusal; still authorized is an unknown
    /// outcome, which cancelling the order settles (the payment service then voids it).
    async fn await_capture(&self, id: i64) -> StepOutcome {
        let deadline = tokio::time::Instant::now() + self.state.capture_wait;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Ok(Some(payment)) = self.state.payments.payment(id).await {
                match payment.status {
                    PaymentStatus::Captured => return StepOutcome::Done,
                    PaymentStatus::Voided | PaymentStatus::Failed => {
                        let why = format!("payment {id} could not be verified and was voided");
                        return StepOutcome::Refused(Failure::Unavailable(why));
                    }
                    PaymentStatus::Authorized => {}
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return StepOutcome::Unknown(format!(
                    "payment {id} is authorized but the order could not be verified yet"
                ));
            }
        }
    }

    /// Commit the reservation and clear the cart: the steps after the money was taken. They
    /// only go forward, and only once the order says it is paid: a captured payment whose
    /// webhook has not reached the order yet (a secret being rotated, the order service
    /// away) is not a completed checkout but one finishing (202), as is one whose stock the
    /// catalog cannot commit yet; the recovery loop finishes both. An order cancelled
    /// meanwhile (its payment is given back by the payment service) fails the checkout.
    async fn finish(mut self) -> Result<Ended, StoreError> {
        let order_id = self.order_id();
        let waiting = match self.state.orders.status(order_id).await {
            Ok(Some(status)) if status.is_paid() || status == OrderStatus::Refunded => None,
            Ok(Some(OrderStatus::Cancelled)) => {
                let why = format!("order {order_id} was cancelled; its payment is given back");
                // Boxed: failing can find the order paid after all and finish again.
                return Box::pin(self.fail(Step::Pay, Failure::Conflict(why))).await;
            }
            Ok(Some(status)) => Some(format!(
                "payment taken; order {order_id} is {status} until its payment webhook arrives"
            )),
            Ok(None) => Some(format!("payment taken; order {order_id} not found yet")),
            Err(err) => Some(format!(
                "payment taken; the order service did not say: {err}"
            )),
        };
        if let Some(detail) = waiting {
            tracing::warn!(checkout = self.co.id, %detail, "checkout waits for its order to be paid");
            self.co.log(Step::Commit, StepState::Pending, Some(detail));
            self.co.step = Step::Commit;
            self.save().await?;
            return Ok(Ended::Finishing(self.co));
        }
        if let Some(detail) = self.state.stock.commit(&self.stock_key()).await.not_done() {
            tracing::warn!(checkout = self.co.id, %detail, "payment taken but reservation not committed yet; will retry");
            self.co.log(Step::Commit, StepState::Pending, Some(detail));
            self.save().await?;
            return Ok(Ended::Finishing(self.co));
        }
        self.co.log(Step::Commit, StepState::Done, None);
        let cleared = (!self.co.from_cart).then(|| "a one-call checkout: no cart".to_string());
        self.co.log(Step::Clear, StepState::Done, cleared);
        self.co.step = Step::Done;
        self.co.status = CheckoutStatus::Completed;
        let row = self.co;
        let done = self
            .state
            .db
            .write_with(move |tx| {
                if row.from_cart {
                    store::clear_checked_out(tx, &row)?;
                }
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
                store::get_checkout(tx, row.id)?.ok_or_else(|| StoreError::vanished("checkout"))
            })
            .await?;
        Ok(Ended::Completed(done))
    }

    /// Undo of the order step: cancel it. A 409 means it is no longer PENDING: the order
    /// service's status then says whether it was paid.
    async fn cancel_order(&mut self, reason: &str) -> Option<Undo> {
        let order_id = self.co.order_id?;
        let problem = match self.state.orders.cancel(order_id, reason).await {
            Outcome::Done(_) => None,
            Outcome::Refused(StatusChangeRefused::NotFound(_)) => None,
            // No longer PENDING: its status says whether it was paid.
            Outcome::Refused(
                StatusChangeRefused::NotInStatus(_) | StatusChangeRefused::TransitionRefused(_),
            ) => {
                return match self.state.orders.status(order_id).await {
                    Ok(Some(status)) if status.is_paid() => Some(Undo::Paid),
                    Ok(_) => {
                        let detail = format!("order {order_id} already cancelled");
                        self.co.log(Step::Order, StepState::Undone, Some(detail));
                        None
                    }
                    Err(err) => Some(Undo::Unsettled(err.to_string())),
                };
            }
            not_done => not_done.not_done(),
        };
        match problem {
            None => {
                let detail = format!("order {order_id} cancelled");
                self.co.log(Step::Order, StepState::Undone, Some(detail));
                None
            }
            // An order left PENDING holds its stock (and, once the payment step was reached,
            // could still be paid): the checkout stays running until the cancel is heard.
            Some(detail) => Some(Undo::Unsettled(detail)),
        }
    }

    /// Undo of the reserve step: release the stock. If the catalog cannot be told, its
    /// sweep releases the reservation when it expires.
    async fn release_stock(&mut self, reason: &str) {
        let (state, detail) = match self.state.stock.release(&self.stock_key(), reason).await {
            Outcome::Done(_) => (StepState::Undone, "stock released".to_string()),
            Outcome::Refused(SettleRefused::NotFound(_)) => {
                (StepState::Undone, "stock released".to_string())
            }
            not_done => (
                StepState::UndoFailed,
                format!(
                    "{}; released at expiry",
                    not_done.not_done().unwrap_or_default()
                ),
            ),
        };
        self.co.log(Step::Reserve, state, Some(detail));
    }

    /// Undoes the steps before `failed_at`, in reverse.
    async fn undo(&mut self, failed_at: Step, reason: &str) -> Undo {
        if let Some(found) = self.cancel_order(reason).await {
            return found;
        }
        if failed_at >= Step::Reserve && self.co.order_id.is_some() {
            self.release_stock(reason).await;
        }
        Undo::Undone
    }

    /// Ends the checkout at `step` with `failure`: undoes what came before and ends
    /// `Failed`. If undoing finds the order paid, goes forward instead.
    async fn fail(mut self, step: Step, failure: Failure) -> Result<Ended, StoreError> {
        let reason = failure.message().to_string();
        match self.undo(step, &reason).await {
            Undo::Paid => {
                if self.co.payment_id.is_none() {
                    let found = self.state.payments.captured_for(self.order_id()).await;
                    self.co.payment_id = found.ok().flatten();
                }
                let detail = Some("the order was paid after all".to_string());
                self.co.log(step, StepState::Done, detail);
                self.co.step = Step::Commit;
                self.save().await?;
                return self.finish().await;
            }
            Undo::Unsettled(detail) => {
                let detail = format!("{reason}; {detail}");
                return self
                    .leave_unsettled(step, detail, "completed or undone")
                    .await;
            }
            Undo::Undone => {}
        }
        let code = failure.code().to_string();
        self.co.log(step, StepState::Failed, Some(reason.clone()));
        self.co.status = CheckoutStatus::Failed;
        self.co.step = step;
        self.co.failed_step = Some(step);
        self.co.failure_code = Some(code.clone());
        self.co.failure_reason = Some(reason.clone());
        let row = self.co.clone();
        self.state
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
            "checkout {} failed at step {}: {}",
            self.co.id,
            step.as_str(),
            failure.message()
        );
        Ok(Ended::Failed(self.co, failure.reworded(message)))
    }

    /// Keeps the checkout running at `step` for the recovery loop, which will get it
    /// `settled` ("undone", or "completed or undone").
    async fn leave_unsettled(
        mut self,
        step: Step,
        detail: String,
        settled: &str,
    ) -> Result<Ended, StoreError> {
        self.co
            .log(step, StepState::Unsettled, Some(detail.clone()));
        self.save().await?;
        let message = format!(
            "checkout {} is unsettled at step {}: {detail}; it will be {settled} once the services answer",
            self.co.id,
            step.as_str()
        );
        Ok(Ended::Unsettled(self.co, message))
    }

    /// Settles a checkout found running after a crash or a silent peer.
    async fn resume(mut self) -> Result<Ended, StoreError> {
        tracing::info!(
            checkout = self.co.id,
            step = self.co.step.as_str(),
            "settling an interrupted checkout"
        );
        let interrupted = || Failure::Unavailable("the checkout was interrupted".into());
        match self.co.step {
            Step::Commit | Step::Clear | Step::Done => self.finish().await,
            // The order may have been placed before the crash: asking again with the same
            // idempotency key finds it (or places it), so it can be cancelled.
            Step::Order if self.co.order_id.is_none() => match self.place_order().await {
                StepOutcome::Done => self.fail(Step::Order, interrupted()).await,
                StepOutcome::Refused(Failure::Unavailable(detail))
                | StepOutcome::Unknown(detail) => {
                    let detail = format!("the order service did not answer: {detail}");
                    Ok(Ended::Unsettled(self.co, detail))
                }
                // Refused: no order was placed under this key.
                StepOutcome::Refused(_) => self.fail(Step::Order, interrupted()).await,
            },
            step => self.fail(step, interrupted()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use service_kit::peer::Refusal;

    #[test]
    fn a_peer_refusal_keeps_its_meaning() {
        let paid =
            |status, code| Failure::from(PayRefused::from(Refusal::answered(status, code, "why")));
        let declined = |code| Failure::Declined {
            code,
            message: "why".into(),
        };
        assert_eq!(
            paid(402, "insufficient_funds"),
            declined("insufficient_funds")
        );
        assert_eq!(paid(402, "something_new"), declined("card_declined"));
        assert_eq!(paid(409, "conflict"), Failure::Conflict("why".into()));
        assert_eq!(paid(404, "not_found"), Failure::NotFound("why".into()));
        let reserved = |status, code| {
            Failure::from(ReserveRefused::from(Refusal::answered(status, code, "why")))
        };
        assert_eq!(
            reserved(409, "out_of_stock"),
            Failure::Conflict("why".into())
        );
        assert_eq!(
            reserved(422, "unknown_product"),
            Failure::Invalid("why".into())
        );
        let placed = |status, code| {
            Failure::from(PlaceRefused::from(Refusal::answered(status, code, "why")))
        };
        assert_eq!(
            placed(422, "validation_failed"),
            Failure::Invalid("why".into())
        );
        assert_eq!(placed(409, "out_of_stock"), Failure::Conflict("why".into()));
        // Over a rate or not allowed: the service is not available to us.
        for status in [429, 401] {
            assert_eq!(paid(status, "x"), Failure::Unavailable("why".into()));
            assert_eq!(placed(status, "x"), Failure::Unavailable("why".into()));
        }
    }

    #[test]
    fn a_failure_keeps_its_code_when_reworded() {
        let declined = Failure::Declined {
            code: "expired_card",
            message: "why".into(),
        };
        let reworded = declined.reworded("checkout 1 failed at step pay: why".into());
        assert_eq!(reworded.message(), "checkout 1 failed at step pay: why");
        assert_eq!(reworded.code(), "expired_card");
        let codes = [
            (Failure::Conflict("c".into()), "conflict"),
            (Failure::Invalid("i".into()), "validation_failed"),
            (Failure::NotFound("n".into()), "not_found"),
            (Failure::Unavailable("u".into()), "unavailable"),
        ];
        for (failure, code) in codes {
            assert_eq!(failure.code(), code);
        }
    }

    #[test]
    fn a_step_outcome_follows_the_peer_outcome() {
        let done: Outcome<(), PayRefused> = Outcome::Done(());
        assert_eq!(StepOutcome::from(done), StepOutcome::Done);
        let unknown: Outcome<(), PayRefused> = Outcome::Unknown("timeout".into());
        assert_eq!(
            StepOutcome::from(unknown),
            StepOutcome::Unknown("timeout".into())
        );
        let refused: Outcome<(), ReserveRefused> = Outcome::Refused(ReserveRefused::from(
            Refusal::answered(409, "out_of_stock", "why"),
        ));
        assert_eq!(
            StepOutcome::from(refused),
            StepOutcome::Refused(Failure::Conflict("why".into()))
        );
    }
}
