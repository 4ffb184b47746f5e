//! An order's stock: held with the catalog under the order's `ref` when it is placed,
//! committed once it is paid, released once it is cancelled or expires. Every step is
//! recorded on the order (`stock`), so whatever the catalog could not be told now, the stock
//! keeper tells it later; nothing is guessed and no unit is released by a timer while the
//! order can still be paid.

use crate::AppState;
use crate::domain::{Order, OrderStatus, OrderStock};
use crate::store;
use service_kit::context::correlation_id;
use service_kit::db::StoreError;
use service_kit::domain::Id;
use service_kit::peer::Outcome;
use shop_contracts::catalog::ReservationLine;
use shop_contracts::catalog::{ReserveRefused, SettleRefused};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The reason an order cancelled for want of stock carries (followed by the catalog's
/// words, which name the product).
pub const OUT_OF_STOCK: &str = "out_of_stock";
/// The reason an unpaid order cancelled after `--order-ttl` carries.
pub const EXPIRED: &str = "expired";

/// What settling an order's stock came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The stock matches the order's status (held, committed or released), or there was
    /// nothing to do.
    Settled(OrderStock),
    /// The catalog refused to hold the stock (a 409 naming the short product, or a 422 for
    /// an unknown one): the order was cancelled with reason `out_of_stock: ...`.
    Short(ReserveRefused),
    /// The catalog could not be asked (down, slow, 5xx, 429): the order keeps its stock
    /// state and the keeper tries again.
    Waiting(String),
}

/// Brings the stock of order `id` in line with its status: reserves a pending one (or
/// cancels the order when the catalog says it is short), commits a paid one, releases a
/// cancelled one. Safe to run twice at once: the catalog keys everything by the order's
/// ref, and each state change here is guarded by the state it comes from.
pub async fn settle(state: &AppState, id: Id) -> Result<Settled, StoreError> {
    match state.find_order(id).await? {
        Some(order) => settle_order(state, order).await,
        None => Ok(Settled::Waiting(format!("order {id} not found"))),
    }
}

/// [`settle`], starting from `order` as it was just read or written.
pub async fn settle_order(state: &AppState, mut order: Order) -> Result<Settled, StoreError> {
    // At most two catalog calls: a paid order still pending is reserved, then committed.
    for round in 0..2 {
        if round > 0 {
            let id = Id::from_db(order.id);
            let Some(now) = state.find_order(id).await? else {
                return Ok(Settled::Waiting(format!("order {id} not found")));
            };
            order = now;
        }
        let settled = match (order.stock, order.status) {
            // A refund brought the goods back: held units are released, sold ones returned.
            (OrderStock::Held, _) if order.restock => release(state, &order).await?,
            (OrderStock::Committed, _) if order.restock => return_units(state, &order).await?,
            (OrderStock::Pending, OrderStatus::Cancelled)
            | (OrderStock::Held, OrderStatus::Cancelled) => release(state, &order).await?,
            (OrderStock::Committed, OrderStatus::Cancelled) => return_units(state, &order).await?,
            (OrderStock::Pending, _) => hold(state, &order).await?,
            // Sold: paid (or refunded afterwards without the units coming back).
            (OrderStock::Held, status) if status.is_paid() || status == OrderStatus::Refunded => {
                commit(state, &order).await?
            }
            (stock, _) => return Ok(Settled::Settled(stock)),
        };
        match settled {
            Settled::Settled(OrderStock::Held) if order.status.is_paid() => continue,
            other => return Ok(other),
        }
    }
    Ok(Settled::Settled(OrderStock::Held))
}

fn lines(order: &Order) -> Vec<ReservationLine> {
    order
        .items
        .iter()
        .map(|item| ReservationLine {
            product_id: item.product_id,
            quantity: item.quantity,
        })
        .collect()
}

/// A refusal that says something about the stock (short, other lines under the ref, an
/// unknown product), as opposed to one about the request (401, 403, 429: the catalog was
/// not really asked) or one never sent.
fn about_the_stock(refusal: &ReserveRefused) -> bool {
    !matches!(
        refusal,
        ReserveRefused::NotSent(_) | ReserveRefused::Other { .. }
    )
}

async fn hold(state: &AppState, order: &Order) -> Result<Settled, StoreError> {
    let id = Id::from_db(order.id);
    match state
        .catalog
        .reserve(&order.reference, order.id, &lines(order))
        .await
    {
        Outcome::Done(_) => {
            record(state, id, (OrderStock::Pending, OrderStock::Held), None).await?;
            Ok(Settled::Settled(OrderStock::Held))
        }
        Outcome::Refused(refusal) if about_the_stock(&refusal) => {
            if order.status.is_paid() {
                // Only an order paid while its stock was pending can get here; nothing is
                // sold twice (the catalog refused), and the keeper keeps asking.
                tracing::error!(order = order.id, reason = %refusal.message(), "a paid order's stock cannot be held");
                return Ok(Settled::Waiting(refusal.message().to_string()));
            }
            let reason = format!("{OUT_OF_STOCK}: {}", refusal.message());
            record(
                state,
                id,
                (OrderStock::Pending, OrderStock::Released),
                Some(reason),
            )
            .await?;
            Ok(Settled::Short(refusal))
        }
        Outcome::Refused(refusal) => {
            let message = refusal.message().to_string();
            tracing::warn!(order = order.id, %message, "catalog not told yet; the stock keeper retries");
            Ok(Settled::Waiting(message))
        }
        Outcome::Unknown(message) => {
            tracing::warn!(order = order.id, %message, "catalog not told yet; the stock keeper retries");
            Ok(Settled::Waiting(message))
        }
    }
}

async fn commit(state: &AppState, order: &Order) -> Result<Settled, StoreError> {
    match state.catalog.commit(&order.reference).await {
        Outcome::Done(_) => {
            let id = Id::from_db(order.id);
            record(state, id, (OrderStock::Held, OrderStock::Committed), None).await?;
            Ok(Settled::Settled(OrderStock::Committed))
        }
        outcome @ (Outcome::Refused(_) | Outcome::Unknown(_)) => {
            let message = outcome.not_done().unwrap_or_default();
            tracing::warn!(order = order.id, %message, "paid order's stock not committed yet; the stock keeper retries");
            Ok(Settled::Waiting(message))
        }
    }
}

/// A PAID order cancelled, or refunded with the goods back: its sold units go back on sale.
async fn return_units(state: &AppState, order: &Order) -> Result<Settled, StoreError> {
    let reason = if order.restock {
        "refunded, goods returned"
    } else {
        "order cancelled after payment"
    };
    match state.catalog.return_units(&order.reference, reason).await {
        Outcome::Done(_) => {
            let id = Id::from_db(order.id);
            record(
                state,
                id,
                (OrderStock::Committed, OrderStock::Released),
                None,
            )
            .await?;
            Ok(Settled::Settled(OrderStock::Released))
        }
        outcome @ (Outcome::Refused(_) | Outcome::Unknown(_)) => {
            let message = outcome.not_done().unwrap_or_default();
            tracing::warn!(order = order.id, %message, "cancelled order's units not returned yet; the stock keeper retries");
            Ok(Settled::Waiting(message))
        }
    }
}

async fn release(state: &AppState, order: &Order) -> Result<Settled, StoreError> {
    let reason = match order.status_history.last() {
        Some(entry) => entry
            .reason
            .clone()
            .unwrap_or_else(|| "order cancelled".into()),
        None => "order cancelled".into(),
    };
    match state.catalog.release(&order.reference, &reason).await {
        // 404: the catalog never held anything under this ref.
        Outcome::Done(_) => {}
        Outcome::Refused(SettleRefused::NotFound(_)) => {}
        outcome @ (Outcome::Refused(_) | Outcome::Unknown(_)) => {
            let message = outcome.not_done().unwrap_or_default();
            tracing::warn!(order = order.id, %message, "cancelled order's stock not released yet; the stock keeper retries");
            return Ok(Settled::Waiting(message));
        }
    }
    let id = Id::from_db(order.id);
    record(state, id, (order.stock, OrderStock::Released), None).await?;
    Ok(Settled::Settled(OrderStock::Released))
}

/// Writes the stock's new state; with `cancel_reason`, cancels the (PENDING) order in the
/// same transaction.
async fn record(
    state: &AppState,
    id: Id,
    change: (OrderStock, OrderStock),
    cancel_reason: Option<String>,
) -> Result<(), StoreError> {
    state
        .db
        .write(move |tx| {
            if store::set_stock(tx, id, change)? {
                if let Some(reason) = &cancel_reason {
                    let transition = (OrderStatus::Pending, OrderStatus::Cancelled);
                    store::change_status(
                        tx,
                        id,
                        transition,
                        Some(reason),
                        correlation_id().as_deref(),
                    )?;
                }
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// Cancels (reason `expired`) the PENDING orders placed more than `ttl` ago (its second
/// part for those a storefront client holds), and releases
/// their stock; an order the payment service has a payment for (captured, or authorized and
/// waiting to be verified), or cannot rule one out, is left for its webhook. Returns how many it cancelled.
pub async fn expire_unpaid(
    state: &AppState,
    ttl: (Duration, Duration),
) -> Result<usize, StoreError> {
    let due = state
        .db
        .call(move |conn| Ok(store::unpaid_older_than(conn, ttl, 100)?))
        .await?;
    let mut expired = 0;
    for id in due {
        match state.payments.holding_money_for(id.get()).await {
            Ok(None) => {}
            Ok(Some(payment)) => {
                tracing::info!(order = %id, payment, "unpaid past its time but paid: waiting for the webhook");
                continue;
            }
            Err(err) => {
                tracing::warn!(order = %id, error = %err, "cannot rule out a payment; not expiring yet");
                continue;
            }
        }
        let cancelled = state
            .db
            .write(move |tx| {
                let transition = (OrderStatus::Pending, OrderStatus::Cancelled);
                Ok(store::change_status(
                    tx,
                    id,
                    transition,
                    Some(EXPIRED),
                    correlation_id().as_deref(),
                )?)
            })
            .await?;
        if cancelled {
            expired += 1;
            settle(state, id).await?;
        }
    }
    Ok(expired)
}

/// Settles every order whose stock does not match its status yet; returns how many it
/// brought in line.
pub async fn settle_all(state: &AppState) -> Result<usize, StoreError> {
    let due = state
        .db
        .call(|conn| Ok(store::stock_to_settle(conn, 100)?))
        .await?;
    let mut settled = 0;
    for id in due {
        if !matches!(settle(state, id).await?, Settled::Waiting(_)) {
            settled += 1;
        }
    }
    Ok(settled)
}

/// The stock keeper: every `every`, settles what is due with the catalog, expires unpaid
/// orders (when `order_ttl` is set), asks for what returns still have pending (refunds,
/// units back on sale) and for the refunds cancelled paid orders are owed, until `stop`.
pub async fn keep(
    state: AppState,
    every: Duration,
    order_ttl: Option<(Duration, Duration)>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        if let Some(ttl) = order_ttl {
            match expire_unpaid(&state, ttl).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "cancelled unpaid orders past their time"),
                Err(err) => tracing::error!(error = %err, "order expiry failed"),
            }
        }
        match settle_all(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(settled = n, "order stock settled with the catalog"),
            Err(err) => tracing::error!(error = %err, "stock keeper failed"),
        }
        match crate::returns::settle_all(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                settled = n,
                "returns settled with the payment service and the catalog"
            ),
            Err(err) => tracing::error!(error = %err, "settling returns failed"),
        }
        match crate::money::refund_all_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(refunded = n, "cancelled orders refunded"),
            Err(err) => tracing::error!(error = %err, "refunding cancelled orders failed"),
        }
    }
}
