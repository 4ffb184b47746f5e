//! Goods that come back, by line. A return names the lines and units received, each
//! `sellable` (back on sale) or `damaged` (not restocked), and why. Deciding what it moves
//! is a pure function of the order and the return ([`plan`]): it refunds those lines'
//! value, their share of a discount taken off (so returning every line refunds exactly
//! what was paid), never more than is left, and restocks exactly the sellable units.
//!
//! It is recorded first, in one transaction, with its refund and its restock `pending`
//! (`order.returned`); then the payment service is asked for the refund (under a key made
//! from the return's global ref) and the catalog to put the sellable units back on sale
//! (under that ref), and each half is marked `done`. Whatever cannot be asked now, the
//! stock keeper asks again ([`settle_all`]): both ends key everything by the ref, so a unit
//! comes back once and a cent moves once however often they are asked. The order keeps its
//! status (PAID, SHIPPED, DELIVERED), its lines show how many units came back, and a return
//! that refunds what was left of the payment makes it REFUNDED through the refund's webhook.

use crate::AppState;
use crate::domain::{Order, OrderStatus, OrderStock};
// The records of a return live in `domain` (the store reads and writes them too).
pub use crate::domain::{AskedReturn, Condition, OrderReturn, ReturnLine, ReturnPlan, ReturnStep};
use crate::store;
use service_kit::context::correlation_id;
use service_kit::db::{StoreError, Undone};
use service_kit::domain::Id;
use service_kit::money::Cents;
use service_kit::peer::Outcome;
use shop_contracts::catalog::SettleRefused;
use shop_contracts::catalog::{ReturnLines, ReturnedLine};
use shop_contracts::payments::RefundRefused;
use std::collections::BTreeMap;

/// The most lines one return may name.
pub const MAX_RETURN_LINES: usize = 100;

/// What `asked` may move for `order`, or why it may not: only a paid order whose units were
/// sold (its stock committed) can take goods back; each product must be one it bought,
/// never more units than it bought less those already back. The refund is the returned
/// units' share of what was paid: `total × value / subtotal`, taken as the difference
/// between what all units back so far are worth and what those before were worth (each
/// rounded down), so the returns of every unit refund exactly the total; at most what is
/// left of the payment.
pub fn plan(order: &Order, asked: &AskedReturn) -> Result<ReturnPlan, ReturnRefused> {
    can_take_back(order)?;
    if asked.lines.is_empty() || asked.lines.len() > MAX_RETURN_LINES {
        return Err(ReturnRefused::Invalid(format!(
            "a return has 1 to {MAX_RETURN_LINES} lines"
        )));
    }
    let mut bought: BTreeMap<i64, (i64, Cents)> = BTreeMap::new();
    for item in &order.items {
        let entry = bought.entry(item.product_id).or_insert((0, item.price));
        entry.0 += item.quantity;
    }
    let mut back_before: BTreeMap<i64, i64> = BTreeMap::new();
    for line in order.returns.iter().flat_map(|r| &r.lines) {
        *back_before.entry(line.product_id).or_default() += line.quantity;
    }
    let (lines, asked_by_product) = merged_lines(order.id, asked, &bought)?;
    for (product, quantity) in &asked_by_product {
        let (count, _) = bought[product];
        let before = back_before.get(product).copied().unwrap_or_default();
        if before + quantity > count {
            return Err(ReturnRefused::MoreThanBought(format!(
                "order {} bought {count} of product {product} and {before} came back already: \
                 {quantity} more cannot",
                order.id
            )));
        }
    }
    let mut back_after = back_before.clone();
    for (product, quantity) in &asked_by_product {
        *back_after.entry(*product).or_default() += quantity;
    }
    let worth = |units: &BTreeMap<i64, i64>| -> i128 {
        units
            .iter()
            .map(|(product, quantity)| i128::from(bought[product].1.get()) * i128::from(*quantity))
            .sum()
    };
    let refund = refund_owed(order, worth(&back_before), worth(&back_after));
    let mut restock: BTreeMap<i64, i64> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.condition == Condition::Sellable) {
        *restock.entry(line.product_id).or_default() += line.quantity;
    }
    Ok(ReturnPlan {
        lines,
        refund,
        restock: restock.into_iter().collect(),
    })
}

/// Why a return was refused: nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnRefused {
    /// No order has this id.
    NotFound(String),
    /// Only a paid order's goods can come back.
    NotPaid(String),
    /// Its units are not sold yet (the stock is still being committed): ask again shortly.
    NotSoldYet(String),
    /// A line breaks a rule (a quantity, a product the order did not buy).
    Invalid(String),
    /// More units than were bought and have not come back yet.
    MoreThanBought(String),
}

/// Only a paid order whose units were sold (its stock committed) can take goods back.
fn can_take_back(order: &Order) -> Result<(), ReturnRefused> {
    let id = order.id;
    let paid = matches!(
        order.status,
        OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered | OrderStatus::Refunded
    );
    if !paid || order.payment_id.is_none() {
        return Err(ReturnRefused::NotPaid(format!(
            "order {id} is {}: only a paid order's goods can come back",
            order.status
        )));
    }
    if !matches!(order.stock, OrderStock::Committed | OrderStock::Untracked) {
        return Err(ReturnRefused::NotSoldYet(format!(
            "order {id}'s stock is {}, not sold yet: ask again in a moment",
            order.stock.as_str()
        )));
    }
    Ok(())
}

/// The asked lines merged one per product and condition, and the units asked per product;
/// each line must be 1 to 1000 units of a product the order bought.
fn merged_lines(
    id: i64,
    asked: &AskedReturn,
    bought: &BTreeMap<i64, (i64, Cents)>,
) -> Result<(Vec<ReturnLine>, BTreeMap<i64, i64>), ReturnRefused> {
    let mut merged: BTreeMap<(i64, &'static str), (Condition, i64)> = BTreeMap::new();
    let mut asked_by_product: BTreeMap<i64, i64> = BTreeMap::new();
    for line in &asked.lines {
        if !(1..=1000).contains(&line.quantity) {
            return Err(ReturnRefused::Invalid(
                "a return line's quantity is 1 to 1000".into(),
            ));
        }
        if !bought.contains_key(&line.product_id) {
            return Err(ReturnRefused::Invalid(format!(
                "order {id} has no line for product {}",
                line.product_id
            )));
        }
        let key = (line.product_id, line.condition.as_str());
        merged.entry(key).or_insert((line.condition, 0)).1 += line.quantity;
        *asked_by_product.entry(line.product_id).or_default() += line.quantity;
    }
    let lines = merged
        .iter()
        .map(|(&(product_id, _), &(condition, quantity))| ReturnLine {
            product_id,
            quantity,
            condition,
        })
        .collect();
    Ok((lines, asked_by_product))
}

/// The refund owed when the units back go from `worth_before` to `worth_after` (at their
/// prices): the difference of their shares of the total paid (`total × worth / subtotal`,
/// each rounded down; all units back is the whole total), at most what is left to refund.
fn refund_owed(order: &Order, worth_before: i128, worth_after: i128) -> Cents {
    let share = |worth: i128| -> i128 {
        let subtotal = i128::from(order.subtotal.get()).max(1);
        let total = i128::from(order.total.get());
        if worth >= subtotal {
            total
        } else {
            worth * total / subtotal
        }
    };
    let owed = share(worth_after) - share(worth_before);
    let left = i128::from(order.total.get() - order.refunded.get()).max(0);
    Cents::new(i64::try_from(owed.clamp(0, left)).unwrap_or_default())
}

/// Records a return of order `id` as [`plan`] decides it (in one transaction with
/// `order.returned`), then settles it with the payment service and the catalog; answers
/// with the order as it is then. What cannot be settled now the stock keeper settles.
pub async fn record(
    state: &AppState,
    id: Id,
    asked: AskedReturn,
) -> Result<Order, Undone<ReturnRefused>> {
    let not_found =
        move || Undone::Refused(ReturnRefused::NotFound(format!("order {id} not found")));
    let reason = service_kit::domain::short_text("reason", &asked.reason, 500)
        .map_err(|invalid| Undone::Refused(ReturnRefused::Invalid(invalid.0)))?;
    let reference = service_kit::domain::new_reference();
    let recorded = state
        .db
        .write_with(move |tx| -> Result<_, Undone<ReturnRefused>> {
            let order = store::get_order(tx, id)?.ok_or_else(not_found)?;
            let planned = plan(&order, &asked).map_err(Undone::Refused)?;
            let return_id = store::insert_return(
                tx,
                (&reference, id),
                &reason,
                &planned,
                correlation_id().as_deref(),
            )?;
            let recorded = store::get_return(tx, return_id)?
                .ok_or_else(|| StoreError::Failed("return not written".into()))?;
            Ok((recorded, order))
        })
        .await?;
    let (recorded, order) = recorded;
    settle_loaded(state, &recorded, &order).await?;
    state.find_order(id).await?.ok_or_else(not_found)
}

/// Asks the payment service and the catalog for what return `return_id` still has
/// pending; returns whether nothing is pending any more.
pub async fn settle(state: &AppState, return_id: i64) -> Result<bool, StoreError> {
    let Some((found, order)) = state
        .db
        .read(move |conn| {
            let Some(found) = store::get_return(conn, return_id)? else {
                return Ok(None);
            };
            let order = store::get_order(conn, Id::from_db(found.order_id))?;
            Ok(order.map(|order| (found, order)))
        })
        .await?
    else {
        return Ok(true);
    };
    settle_loaded(state, &found, &order).await
}

/// [`settle`], for return `found` of `order` as just read or written.
async fn settle_loaded(
    state: &AppState,
    found: &OrderReturn,
    order: &Order,
) -> Result<bool, StoreError> {
    let mut settled = true;
    if found.refund_state == ReturnStep::Pending {
        settled &= refund(state, found, order).await?;
    }
    if found.restock_state == ReturnStep::Pending {
        settled &= restock(state, found, order).await?;
    }
    Ok(settled)
}

async fn refund(state: &AppState, found: &OrderReturn, order: &Order) -> Result<bool, StoreError> {
    let Some(payment_id) = order.payment_id else {
        return Ok(false);
    };
    let key = format!("return-{}-refund", found.reference);
    let reason = format!("returned: {}", found.reason);
    let answer = state
        .payments
        .refund(payment_id, Some(found.refund), &reason, key)
        .await;
    let (step, refund_id, problem) = match answer {
        Outcome::Done(refund) => (ReturnStep::Done, Some(refund.id), None),
        // Nothing left (refunded in full meanwhile), less left than this return refunds, or
        // no such payment: asking again gets the same answer, so a person looks at it.
        Outcome::Refused(
            refusal @ (RefundRefused::RefundedInFull(_)
            | RefundRefused::MoreThanLeft(_)
            | RefundRefused::NotCaptured(_)
            | RefundRefused::NotFound(_)
            | RefundRefused::Invalid(_)),
        ) => {
            tracing::error!(order = order.id, ret = %found.reference, reason = %refusal, "a return's refund was refused");
            (ReturnStep::Refused, None, Some(refusal.to_string()))
        }
        outcome @ (Outcome::Refused(_) | Outcome::Unknown(_)) => {
            let message = outcome.not_done().unwrap_or_default();
            tracing::warn!(order = order.id, ret = %found.reference, %message, "a return's refund not asked yet; the keeper retries");
            return Ok(false);
        }
    };
    let id = found.id;
    state
        .db
        .write(move |tx| {
            Ok(store::set_return_refund(
                tx,
                id,
                step,
                refund_id,
                problem.as_deref(),
            )?)
        })
        .await?;
    Ok(true)
}

async fn restock(state: &AppState, found: &OrderReturn, order: &Order) -> Result<bool, StoreError> {
    let mut lines: BTreeMap<i64, i64> = BTreeMap::new();
    for line in found
        .lines
        .iter()
        .filter(|l| l.condition == Condition::Sellable)
    {
        *lines.entry(line.product_id).or_default() += line.quantity;
    }
    let returned = ReturnLines {
        return_ref: found.reference.clone(),
        lines: lines
            .into_iter()
            .map(|(product_id, quantity)| ReturnedLine {
                product_id,
                quantity,
            })
            .collect(),
        reason: found.reason.clone(),
    };
    let (step, problem) = match state
        .catalog
        .return_lines(&order.reference, &returned)
        .await
    {
        Outcome::Done(_) => (ReturnStep::Done, None),
        // The catalog named why (no such sale, not sold, more than sold, the return's ref
        // reused): asking again gets the same answer.
        Outcome::Refused(refusal)
            if !matches!(
                refusal,
                SettleRefused::NotSent(_) | SettleRefused::Other { .. }
            ) =>
        {
            tracing::error!(order = order.id, ret = %found.reference, reason = %refusal, "a return's units were refused by the catalog");
            (ReturnStep::Refused, Some(refusal.to_string()))
        }
        outcome @ (Outcome::Refused(_) | Outcome::Unknown(_)) => {
            let message = outcome.not_done().unwrap_or_default();
            tracing::warn!(order = order.id, ret = %found.reference, %message, "a return's units not back on sale yet; the keeper retries");
            return Ok(false);
        }
    };
    let id = found.id;
    state
        .db
        .write(move |tx| Ok(store::set_return_restock(tx, id, step, problem.as_deref())?))
        .await?;
    Ok(true)
}

/// Settles every return with a half still pending; returns how many it finished.
pub async fn settle_all(state: &AppState) -> Result<usize, StoreError> {
    let due = state
        .db
        .call(|conn| Ok(store::returns_pending(conn, 100)?))
        .await?;
    let mut settled = 0;
    for return_id in due {
        if settle(state, return_id).await? {
            settled += 1;
        }
    }
    Ok(settled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderItem;

    /// A paid, sold order of 3 mugs at 10.00 and 1 lamp at 29.99 (59.99), 10% off: 53.99.
    fn order() -> Order {
        let item = |product_id, quantity, price: i64| OrderItem {
            product_id,
            name: None,
            sku: None,
            quantity,
            price: Cents::new(price),
            line_total: Cents::new(price * quantity),
        };
        Order {
            id: 7,
            reference: "ref-7".into(),
            user_id: "u".into(),
            customer: None,
            shipping_address: None,
            shipment: None,
            items: vec![item(1, 3, 1000), item(2, 1, 2999)],
            subtotal: Cents::new(5999),
            discount: Cents::new(600),
            promo_code: Some("TEN".into()),
            total: Cents::new(5399),
            status: OrderStatus::Delivered,
            catalog_verified: true,
            payment_id: Some(3),
            stock: OrderStock::Committed,
            refunded: Cents::new(0),
            restock: false,
            status_history: Vec::new(),
            returns: Vec::new(),
            correlation_id: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn asked(lines: &[(i64, i64, Condition)]) -> AskedReturn {
        AskedReturn {
            lines: lines
                .iter()
                .map(|&(product_id, quantity, condition)| ReturnLine {
                    product_id,
                    quantity,
                    condition,
                })
                .collect(),
            reason: "back".into(),
        }
    }

    /// Applies `planned` to `order` as recording it would.
    fn recorded(order: &mut Order, planned: &ReturnPlan) {
        order.refunded = Cents::new(order.refunded.get() + planned.refund.get());
        order.returns.push(OrderReturn {
            id: order.returns.len() as i64 + 1,
            reference: String::new(),
            order_id: order.id,
            reason: String::new(),
            lines: planned.lines.clone(),
            refund: planned.refund,
            refund_state: ReturnStep::Done,
            refund_id: None,
            restock_state: ReturnStep::Done,
            problem: None,
            created_at: String::new(),
        });
    }

    #[test]
    fn returns_refund_their_share_of_the_discount_and_every_unit_back_refunds_exactly_the_total() {
        use Condition::*;
        let mut order = order();
        let mut refunds = Vec::new();
        for lines in [
            vec![(1, 1, Sellable)],
            vec![(1, 1, Damaged), (2, 1, Sellable)],
            vec![(1, 1, Sellable)],
        ] {
            let planned = plan(&order, &asked(&lines)).unwrap();
            refunds.push(planned.refund.get());
            recorded(&mut order, &planned);
        }
        // 10.00 of 59.99 is worth 9.00 of 53.99 (rounded down); the rest adds up exactly.
        assert_eq!(refunds[0], 899);
        assert_eq!(refunds.iter().sum::<i64>(), 5399, "{refunds:?}");
        let more = plan(&order, &asked(&[(1, 1, Sellable)])).unwrap_err();
        assert!(
            matches!(&more, ReturnRefused::MoreThanBought(m) if m.contains("came back already")),
            "{more:?}"
        );
    }

    #[test]
    fn only_sellable_units_are_restocked_and_never_more_than_is_left_is_refunded() {
        use Condition::*;
        let mut order = order();
        order.refunded = Cents::new(5000);
        let planned = plan(
            &order,
            &asked(&[(1, 2, Damaged), (1, 1, Sellable), (2, 1, Sellable)]),
        )
        .unwrap();
        assert_eq!(planned.restock, vec![(1, 1), (2, 1)]);
        assert_eq!(
            planned.refund,
            Cents::new(399),
            "what is left of the payment"
        );
    }

    #[test]
    fn goods_come_back_only_from_a_paid_order_whose_units_were_sold_and_only_what_it_bought() {
        use Condition::*;
        let mut pending = order();
        pending.status = OrderStatus::Pending;
        assert!(plan(&pending, &asked(&[(1, 1, Sellable)])).is_err());
        let mut held = order();
        held.stock = OrderStock::Held;
        assert!(plan(&held, &asked(&[(1, 1, Sellable)])).is_err());
        let order = order();
        for bad in [
            vec![(9, 1, Sellable)],
            vec![(1, 4, Sellable)],
            vec![(1, 0, Sellable)],
            vec![],
        ] {
            assert!(plan(&order, &asked(&bad)).is_err(), "{bad:?}");
        }
    }
}
