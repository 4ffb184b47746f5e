//! Order operations: placing an order, applying a payment webhook, moving an order along
//! its lifecycle, and the books. Each owns its transaction and the events the store
//! records with it; handlers call these and only parse and present.

use crate::AppState;
use crate::domain::{
    Lifecycle, NewOrder, NoticeEffect, Order, OrderStatus, PaymentFacts, ProductLabel, Shipment,
    Stats, decide_payment_notice,
};
use crate::money;
use crate::stock::{self, Settled};
use crate::store;
use service_kit::context::correlation_id;
use service_kit::db::{StoreError, Undone};
use service_kit::domain::Id;
use service_kit::money::Cents;
use service_kit::webhook;
use shop_contracts::catalog::CatalogClient;
use shop_contracts::catalog::ReserveRefused;
use shop_contracts::orders::{PlaceRefused, StatusChangeRefused};
use shop_contracts::payments::{NoticeRefused, PaymentNotice, PaymentsSummary};
use std::collections::BTreeMap;

/// Writes a new PENDING order after checking its prices with the catalog, then holds its
/// stock under the order's new `ref`: a line the catalog cannot supply cancels the order
/// (`out_of_stock: ...`) and is a 409 naming the product. When the catalog cannot be asked
/// the order is accepted unverified with its stock pending, for the stock keeper. The order
/// is written before the stock is asked for, so a crash in between leaves a pending order
/// the keeper finishes, never units held for no order.
///
/// `placed_under` is the client's Idempotency-Key (hashed) and is written with the order: a
/// retry that finds an order under it (its stored answer lost to a crash) answers with that
/// order again instead of placing a second one.
pub async fn place_order(
    state: &AppState,
    order: NewOrder,
    placed_under: Option<String>,
) -> Result<Order, Undone<PlaceRefused>> {
    if let Some(key) = placed_under.clone() {
        let found = state
            .db
            .read(move |conn| Ok(store::order_placed_under(conn, &key)?))
            .await?;
        if let Some(id) = found {
            return placed_before(state, id).await;
        }
    }
    let labels = check_against_catalog(&state.catalog, &order)
        .await
        .map_err(Undone::Refused)?;
    let reference = service_kit::domain::new_reference();
    let max_held = state.max_held_units;
    let placed = state
        .db
        .write_with(move |tx| -> Result<_, Undone<PlaceRefused>> {
            // Asked again in the write: a retry racing this one may have placed it since.
            if let Some(key) = placed_under.as_deref() {
                if let Some(id) = store::order_placed_under(tx, key)? {
                    return Ok(Err(id));
                }
            }
            let mut order = order;
            // Counted in the order's own transaction, so racing orders cannot both fit
            // under the cap.
            if let Some(refused) = over_hold_cap(tx, &order, max_held)? {
                return Err(Undone::Refused(refused));
            }
            // Checked, counted and written in the order's own transaction: writes take
            // turns, so no two orders can both take a code's last redemption.
            let redeemed = match order.promo_code.clone() {
                Some(code) => Some(redeem(tx, &mut order, &code)?),
                None => None,
            };
            let keys = (reference.as_str(), placed_under.as_deref());
            let id = store::insert_order(tx, keys, &order, &labels, correlation_id().as_deref())?;
            if let Some((code, (customer, user))) = redeemed {
                store::insert_redemption(tx, id, &code, (&customer, &user))?;
            }
            let placed = store::get_order(tx, id)?.ok_or_else(|| StoreError::vanished("order"))?;
            Ok(Ok(placed))
        })
        .await?;
    let placed = match placed {
        Ok(placed) => placed,
        Err(id) => return placed_before(state, id).await,
    };
    let id = Id::from_db(placed.id);
    if let Settled::Short(refusal) = stock::settle_order(state, placed).await? {
        let message = format!("order {id} cancelled: {}", refusal.message());
        return Err(Undone::Refused(match refusal {
            ReserveRefused::UnknownProduct(_) | ReserveRefused::Invalid(_) => {
                PlaceRefused::Invalid(message)
            }
            _ => PlaceRefused::OutOfStock(message),
        }));
    }
    Ok(stored(state, id).await?)
}

/// The refusal of a storefront order that would take its client (or customer) past
/// `max_held` units held unpaid; `None` when it fits, is the admin's, or there is no cap.
fn over_hold_cap(
    tx: &rusqlite::Connection,
    order: &NewOrder,
    max_held: i64,
) -> Result<Option<PlaceRefused>, StoreError> {
    let Some(client) = order.held_for.as_deref().filter(|_| max_held > 0) else {
        return Ok(None);
    };
    let customer = Some(order.user_id.as_str())
        .filter(|u| service_kit::session::is_id(u, service_kit::session::CUSTOMER_PREFIX));
    let (by_client, by_customer) = store::units_held(tx, client, customer)?;
    let held = by_client.max(by_customer);
    Ok((held + order.units() > max_held).then(|| {
        PlaceRefused::HoldLimit(format!(
            "{held} units are held in unpaid orders already and at most {max_held} may be: \
             pay for them, or let them expire, before ordering more"
        ))
    }))
}

/// What `order` would cost if it were placed now: its lines at the catalog's prices (a 422
/// for another price or an unknown product), less what its promo code takes off (a 422
/// saying why a code does not apply). Places nothing, holds nothing, redeems nothing.
pub async fn quote(state: &AppState, order: NewOrder) -> Result<NewOrder, Undone<PlaceRefused>> {
    let checked = check_against_catalog(&state.catalog, &order)
        .await
        .map_err(Undone::Refused)?;
    if checked.is_none() {
        return Err(Undone::Refused(PlaceRefused::Invalid(
            "the catalog cannot be asked now, so no price can be quoted; try again shortly".into(),
        )));
    }
    state
        .db
        .read_with(move |conn| -> Result<_, Undone<PlaceRefused>> {
            let mut order = order;
            if let Some(code) = order.promo_code.clone() {
                redeem(conn, &mut order, &code)?;
            }
            Ok(order)
        })
        .await
}

/// Order `id`, which this service just wrote or read: gone only through a bug.
async fn stored(state: &AppState, id: Id) -> Result<Order, StoreError> {
    state
        .find_order(id)
        .await?
        .ok_or_else(|| StoreError::vanished(&format!("order {id}")))
}

/// The answer for a retry that found order `id` placed under its key: the order, its stock
/// brought in line first, or the 409 it was cancelled with for want of stock.
async fn placed_before(state: &AppState, id: Id) -> Result<Order, Undone<PlaceRefused>> {
    tracing::info!(order = %id, "a retry found the order placed under its Idempotency-Key");
    let order = stored(state, id).await?;
    let order = match stock::settle_order(state, order.clone()).await? {
        Settled::Settled(now) if now != order.stock => stored(state, id).await?,
        _ => order,
    };
    if order.status == OrderStatus::Cancelled {
        let reason = order
            .status_history
            .last()
            .and_then(|entry| entry.reason.clone())
            .unwrap_or_else(|| "cancelled".into());
        let cancelled = PlaceRefused::OutOfStock(format!("order {id} cancelled: {reason}"));
        return Err(Undone::Refused(cancelled));
    }
    Ok(order)
}

/// Applies promo code `code` to `order` if it applies now (a 422 saying why not); returns the
/// code and the customer to record its redemption under.
fn redeem(
    tx: &rusqlite::Connection,
    order: &mut NewOrder,
    code: &str,
) -> Result<(String, (String, String)), Undone<PlaceRefused>> {
    let invalid = |why: String| Undone::Refused(PlaceRefused::Invalid(why));
    let promo = store::get_promo(tx, code)?
        .ok_or_else(|| invalid(format!("promo code {code} is unknown")))?;
    if promo.max_per_customer.is_some() && order.customer.is_none() {
        return Err(invalid(format!(
            "promo code {code} is limited per customer: the order needs the customer's email"
        )));
    }
    let customer = order.customer_key();
    let user = order.user_id.as_str().to_string();
    let redemptions = store::redemptions(tx, code, (&customer, &user))?;
    let now = service_kit::clock::now_millis_text();
    if let Some(reason) = promo.refusal(&now, order.subtotal, redemptions) {
        return Err(invalid(reason));
    }
    order.apply(&promo);
    Ok((promo.code, (customer, user)))
}

/// Checks that every line's price is the catalog's (one call for all the lines) and returns
/// each product's name and SKU: a 422 for an unknown product or another price, `Ok(None)`
/// when the catalog could not be asked.
async fn check_against_catalog(
    catalog: &CatalogClient,
    order: &NewOrder,
) -> Result<store::ProductLabels, PlaceRefused> {
    let mut labels = BTreeMap::new();
    let mut prices: BTreeMap<Id, Vec<Cents>> = BTreeMap::new();
    for line in &order.lines {
        prices
            .entry(line.product_id)
            .or_default()
            .push(line.unit_price);
    }
    let ids: Vec<Id> = prices.keys().copied().collect();
    let mut products = match catalog.products(&ids).await {
        Ok(products) => products,
        Err(err) => {
            tracing::warn!(error = %err, "catalog unavailable; accepting order unverified");
            return Ok(None);
        }
    };
    for (product_id, asked) in prices {
        let Some(product) = products.remove(&product_id) else {
            return Err(PlaceRefused::Invalid(format!(
                "product {product_id} does not exist in the catalog"
            )));
        };
        if let Some(wrong) = asked.iter().find(|price| **price != product.price) {
            return Err(PlaceRefused::Invalid(format!(
                "price of product {product_id} is {} in the catalog, not {wrong}",
                product.price
            )));
        }
        let label = ProductLabel {
            name: product.name,
            sku: product.sku,
        };
        labels.insert(product_id, label);
    }
    Ok(Some(labels))
}

/// Applies a payment webhook to order `id`: only a valid, fresh signature is heard (else
/// 401), and a body that is not a payment notice is a 400. What the notice does is decided
/// by [`decide_payment_notice`] from the order as stored (refusals: see
/// [`shop_contracts::payments::NoticeRefused`]), then applied; a webhook id seen before changes nothing.
pub async fn apply_payment_webhook(
    state: &AppState,
    id: Id,
    received: webhook::ReceivedHeaders<'_>,
    body: &[u8],
) -> Result<Order, Undone<WebhookRefused>> {
    let webhook_id = webhook::verify(&state.webhook_secrets, received, body, webhook::unix_now())
        .map_err(|e| Undone::Refused(WebhookRefused::Unsigned(format!("webhook refused: {e}"))))?
        .to_string();
    // Any parse failure is unreadable (a 400), never a refusal of the order: the payment
    // service gives a capture's money back only when the order refuses it.
    let notice: PaymentNotice = serde_json::from_slice(body).map_err(|e| {
        Undone::Refused(WebhookRefused::Unreadable(format!(
            "webhook body is not a payment notice: {e}"
        )))
    })?;
    let applied = state
        .db
        .write_with(move |tx| -> Result<_, Undone<WebhookRefused>> {
            if !store::webhook_seen(tx, &webhook_id)? {
                let order =
                    store::order_status(tx, id)?.map(|(status, total, reference)| PaymentFacts {
                        status,
                        total,
                        reference,
                    });
                let effect = decide_payment_notice(id.get(), order.as_ref(), &notice)
                    .map_err(|why| Undone::Refused(WebhookRefused::Notice(why)))?;
                apply_notice(tx, id, effect)?;
                store::remember_webhook(tx, &webhook_id, id, notice.payment_id())?;
            }
            let order = store::get_order(tx, id)?.ok_or_else(|| {
                Undone::Refused(WebhookRefused::Notice(NoticeRefused::OrderNotFound(
                    format!("order {id} not found"),
                )))
            })?;
            Ok(order)
        })
        .await?;
    Ok(settle_stock_now(state, applied).await?)
}

/// Why a payment webhook was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookRefused {
    /// No valid, fresh signature: the notice was not heard.
    Unsigned(String),
    /// Signed, but not a payment notice.
    Unreadable(String),
    /// A notice the order refuses (see the contract's table).
    Notice(NoticeRefused),
}

/// Writes what [`decide_payment_notice`] decided, in the notice's transaction.
fn apply_notice(tx: &rusqlite::Connection, id: Id, effect: NoticeEffect) -> rusqlite::Result<()> {
    let journey = correlation_id();
    match effect {
        NoticeEffect::MarkPaid { payment_id, amount } => {
            store::mark_paid(tx, id, payment_id, amount, journey.as_deref())?;
        }
        NoticeEffect::AlreadyPaid => {}
        NoticeEffect::RecordRefund {
            payment_id,
            refunded_total,
            amount,
            refunded_from,
        } => {
            // Money only: an older payment service's `restock` puts no units back.
            let returned = (amount, false);
            let refunded = (payment_id, refunded_total);
            store::record_refund(tx, id, refunded, returned, journey.as_deref())?;
            if let Some(status) = refunded_from {
                let transition = (status, OrderStatus::Refunded);
                let reason = Some("refunded in full");
                store::change_status(tx, id, transition, reason, journey.as_deref())?;
            }
        }
    }
    Ok(())
}

/// Tells the catalog what the order's new status means for its stock (commit when paid,
/// release when cancelled) and answers with the order as it is then. If the catalog cannot
/// be told now the stock keeper tells it later; the change itself stands either way.
async fn settle_stock_now(state: &AppState, order: Order) -> Result<Order, StoreError> {
    let id = Id::from_db(order.id);
    match stock::settle_order(state, order.clone()).await? {
        Settled::Settled(now) if now != order.stock => stored(state, id).await,
        _ => Ok(order),
    }
}

/// Moves order `id` to `target` when the lifecycle allows it (409 otherwise), recording
/// the reason in its history and, when shipping, the carrier and tracking number. PAID is
/// only ever reached through a payment webhook.
pub async fn change_status(
    state: &AppState,
    id: Id,
    (from, target): (Option<OrderStatus>, OrderStatus),
    reason: Option<String>,
    shipment: Option<Shipment>,
) -> Result<Order, Undone<StatusChangeRefused>> {
    if target == OrderStatus::Paid || target == OrderStatus::Refunded {
        return Err(Undone::Refused(StatusChangeRefused::TransitionRefused(
            format!("an order becomes {target} only through a signed payment webhook"),
        )));
    }
    let changed = state
        .db
        .write_with(move |tx| {
            let (current, _, _) = store::order_status(tx, id)?.ok_or_else(|| {
                Undone::Refused(StatusChangeRefused::NotFound(format!(
                    "order {id} not found"
                )))
            })?;
            if from.is_some_and(|from| from != current) {
                return Err(Undone::Refused(StatusChangeRefused::NotInStatus(format!(
                    "order {id} is {current}, not {}",
                    from.map(OrderStatus::as_str).unwrap_or_default()
                ))));
            }
            if !current.can_become(target) {
                return Err(Undone::Refused(StatusChangeRefused::TransitionRefused(
                    format!("order {id} is {current} and cannot become {target}"),
                )));
            }
            let transition = (current, target);
            store::change_status(
                tx,
                id,
                transition,
                reason.as_deref(),
                correlation_id().as_deref(),
            )?;
            if let Some(shipment) = &shipment {
                store::record_shipment(tx, id, shipment, correlation_id().as_deref())?;
            }
            Ok(store::get_order(tx, id)?.ok_or_else(|| StoreError::vanished("order"))?)
        })
        .await?;
    if changed.status == OrderStatus::Cancelled {
        // A paid order cancelled: its money goes back now (or the keeper retries).
        money::refund_cancelled(state, &changed).await;
    }
    Ok(settle_stock_now(state, changed).await?)
}

/// Orders by status, revenue and units of paid orders, and what the payment service
/// captured (left out, not guessed, when it cannot be asked).
pub async fn stats(state: &AppState) -> Result<Stats, StoreError> {
    let (totals, paid_units, charged_order_count, (revenue_by_day, top_products)) = state
        .db
        .call(|conn| {
            Ok((
                store::status_totals(conn)?,
                store::paid_units(conn)?,
                store::charged_orders(conn)?,
                (
                    store::revenue_by_day(conn, 30)?,
                    store::top_products(conn, 5)?,
                ),
            ))
        })
        .await?;
    let mut orders_by_status: BTreeMap<&'static str, i64> =
        OrderStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut order_count = 0;
    let mut paid_order_count = 0;
    let mut paid_totals = Vec::new();
    for (status, count, total) in totals {
        orders_by_status.insert(status.as_str(), count);
        order_count += count;
        if status.is_paid() {
            paid_order_count += count;
            paid_totals.push(total);
        }
    }
    let revenue = Cents::checked_sum(paid_totals)
        .ok_or_else(|| StoreError::Failed("revenue overflows".into()))?;
    let captured: Option<PaymentsSummary> = match state.payments.summary().await {
        Ok(summary) => summary,
        Err(err) => {
            tracing::warn!(error = %err, "payment service unavailable; reconciliation incomplete");
            None
        }
    };
    let mut stats = Stats {
        orders_by_status,
        order_count,
        paid_order_count,
        revenue,
        paid_units: paid_units.into_iter().collect(),
        charged_order_count,
        captured,
        mismatched: Vec::new(),
        revenue_by_day,
        top_products,
    };
    if stats.reconciliation_status() == "mismatch" {
        stats.mismatched = orders_behind_the_mismatch(state).await?;
    }
    Ok(stats)
}

/// The orders whose money differs between the two services (empty when the payment
/// service cannot be asked for its side).
async fn orders_behind_the_mismatch(
    state: &AppState,
) -> Result<Vec<crate::domain::Mismatch>, StoreError> {
    let payments = match state.payments.money_by_order().await {
        Ok(payments) => payments,
        Err(err) => {
            tracing::warn!(error = %err, "payment service unavailable; mismatch not itemised");
            return Ok(Vec::new());
        }
    };
    let orders = state.db.call(|conn| Ok(store::order_values(conn)?)).await?;
    Ok(crate::domain::mismatched_orders(&orders, &payments))
}
