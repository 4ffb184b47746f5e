//! Orders as rules: statuses and the transitions a shop allows, and a new order's lines
//! validated and totalled in checked cents. Pure functions, unit-tested here.

use serde::Deserialize;
use service_kit::ApiError;
use service_kit::domain::{Id, Quantity, UserId};
use service_kit::money::Cents;

pub use shop_contracts::{OrderStatus, OrderStock};

/// An order as stored, with its lines and status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    /// Its global reference (UUIDv7; an older order's id as text).
    pub reference: String,
    pub user_id: String,
    pub items: Vec<OrderItem>,
    pub total: Cents,
    pub status: OrderStatus,
    /// False when the order was accepted while the catalog could not be asked.
    pub catalog_verified: bool,
    /// The payment that paid for it, once PAID.
    pub payment_id: Option<i64>,
    /// Where its stock is.
    pub stock: OrderStock,
    /// What the payment service has refunded of it.
    pub refunded: Cents,
    pub status_history: Vec<StatusEntry>,
    /// The journey that placed it.
    pub correlation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One line of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderItem {
    pub product_id: i64,
    pub quantity: i64,
    pub price: Cents,
    pub line_total: Cents,
}

/// One entry of an order's status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    pub status: OrderStatus,
    pub at: String,
    pub reason: Option<String>,
}

/// The books of `GET /orders/stats`: orders by status and the paid ones reconciled with
/// the captured payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub orders_by_status: std::collections::BTreeMap<&'static str, i64>,
    pub order_count: i64,
    pub paid_order_count: i64,
    pub revenue: Cents,
    /// Units sold per product, in paid orders.
    pub paid_units: std::collections::BTreeMap<i64, i64>,
    /// Orders a payment was captured for (paid, refunded, or cancelled with the capture
    /// given back).
    pub charged_order_count: i64,
    /// What the payment service counted; `None` when it could not be asked.
    pub captured: Option<shop_contracts::payments::PaymentsSummary>,
}

impl Stats {
    /// `matched` when the books agree: as many captures as charged orders, and captured
    /// money net of refunds equal to the revenue (paid orders net of their refunds);
    /// `mismatch` when not, `unavailable` when the payment service could not be asked.
    pub fn reconciliation_status(&self) -> &'static str {
        match &self.captured {
            None => "unavailable",
            Some(c)
                if c.captured_total.checked_sub(c.refunded_total) == Some(self.revenue)
                    && c.captured_count == self.charged_order_count =>
            {
                "matched"
            }
            Some(_) => "mismatch",
        }
    }
}

/// The order lifecycle, which this service owns; the status names themselves are the
/// contract in `shop-contracts`.
pub trait Lifecycle {
    /// Whether an order may move from this status to `next`.
    fn can_become(self, next: OrderStatus) -> bool;
}

impl Lifecycle for OrderStatus {
    /// The one place the lifecycle is written down: PENDING to PAID or CANCELLED, PAID to
    /// SHIPPED or CANCELLED (refunded in full, its units returned), SHIPPED to DELIVERED, and a paid order (PAID, SHIPPED or DELIVERED) to
    /// REFUNDED once refunded in full. Nothing moves backwards and nothing leaves
    /// CANCELLED or REFUNDED. PAID and REFUNDED are reached only through the webhook.
    fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Paid)
                | (Pending, Cancelled)
                | (Paid, Cancelled)
                | (Paid, Shipped)
                | (Shipped, Delivered)
                | (Paid | Shipped | Delivered, Refunded)
        )
    }
}

/// What happens when a payment webhook arrives for an order in a given status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// PENDING: the order becomes PAID.
    MarkPaid,
    /// Already paid (or later): nothing changes, the webhook is acknowledged.
    AlreadyPaid,
    /// CANCELLED: a payment for it is a conflict.
    Refused,
}

/// The webhook's effect, decided from the order's status alone. A late or repeated webhook
/// never moves an order backwards.
pub fn payment_outcome(status: OrderStatus) -> PaymentOutcome {
    if status.can_become(OrderStatus::Paid) {
        PaymentOutcome::MarkPaid
    } else if status.is_paid() {
        PaymentOutcome::AlreadyPaid
    } else {
        PaymentOutcome::Refused
    }
}

/// One line of the order body the testing guide sends: `{"product_id","quantity","price"}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct OrderLineIn {
    #[schema(minimum = 1)]
    pub product_id: i64,
    /// 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
    /// The catalog's unit price, as a decimal (999.99).
    pub price: Cents,
}

/// A validated order line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: Id,
    pub quantity: Quantity,
    pub unit_price: Cents,
}

/// A validated new order, total included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub user_id: UserId,
    pub lines: Vec<OrderLine>,
    pub total: Cents,
}

/// The most lines one order may have (a cart holds no more, so its checkout fits).
pub use shop_contracts::orders::MAX_ORDER_LINES as MAX_LINES;

impl NewOrder {
    /// Validates the lines and computes the total; any overflow is a 422.
    pub fn parse(user_id: UserId, lines: Vec<OrderLineIn>) -> Result<NewOrder, ApiError> {
        if lines.is_empty() {
            return Err(ApiError::Validation(
                "an order needs at least one line".to_string(),
            ));
        }
        if lines.len() > MAX_LINES {
            return Err(ApiError::Validation(format!(
                "an order has at most {MAX_LINES} lines"
            )));
        }
        let lines = lines
            .into_iter()
            .map(|line| {
                if line.price.get() <= 0 {
                    return Err(ApiError::Validation(format!(
                        "price of product {} must be positive",
                        line.product_id
                    )));
                }
                Ok(OrderLine {
                    product_id: Id::parse(line.product_id, "product_id")?,
                    quantity: Quantity::parse(line.quantity)?,
                    unit_price: line.price,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let too_large = || ApiError::Validation("order total is too large".to_string());
        let line_totals = lines
            .iter()
            .map(|l| {
                l.unit_price
                    .checked_mul(l.quantity.get())
                    .ok_or_else(too_large)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let total = Cents::checked_sum(line_totals).ok_or_else(too_large)?;
        Ok(NewOrder {
            user_id,
            lines,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;
    use service_kit::money::MAX_CENTS;

    fn line(product_id: i64, quantity: i64, cents: i64) -> OrderLineIn {
        OrderLineIn {
            product_id,
            quantity,
            price: Cents::new(cents),
        }
    }

    fn user() -> UserId {
        UserId::parse("user1").unwrap()
    }

    #[test]
    fn only_the_shop_lifecycle_transitions_are_allowed() {
        let allowed: Vec<(OrderStatus, OrderStatus)> = OrderStatus::ALL
            .iter()
            .flat_map(|from| OrderStatus::ALL.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Pending, Paid),
                (Pending, Cancelled),
                (Paid, Shipped),
                (Paid, Cancelled),
                (Paid, Refunded),
                (Shipped, Delivered),
                (Shipped, Refunded),
                (Delivered, Refunded),
            ]
        );
    }

    #[test]
    fn a_payment_never_moves_an_order_backwards() {
        assert_eq!(payment_outcome(Pending), PaymentOutcome::MarkPaid);
        for status in [Paid, Shipped, Delivered] {
            assert_eq!(payment_outcome(status), PaymentOutcome::AlreadyPaid);
        }
        assert_eq!(payment_outcome(Cancelled), PaymentOutcome::Refused);
        assert_eq!(
            payment_outcome(Refunded),
            PaymentOutcome::Refused,
            "a refunded order is not paid again"
        );
    }

    #[test]
    fn statuses_parse_from_their_names() {
        assert_eq!("PAID".parse::<OrderStatus>().unwrap(), Paid);
        assert_eq!("shipped".parse::<OrderStatus>().unwrap(), Shipped);
        assert!("LOST".parse::<OrderStatus>().is_err());
    }

    #[test]
    fn the_guide_order_totals_its_lines() {
        let order = NewOrder::parse(user(), vec![line(1, 1, 99_999), line(2, 3, 2_999)]).unwrap();
        assert_eq!(order.total, Cents::new(99_999 + 3 * 2_999));
        assert_eq!(order.lines.len(), 2);
    }

    #[test]
    fn bad_lines_are_refused() {
        assert!(NewOrder::parse(user(), vec![]).is_err());
        assert!(NewOrder::parse(user(), vec![line(1, 0, 100)]).is_err());
        assert!(NewOrder::parse(user(), vec![line(1, -1, 100)]).is_err());
        assert!(NewOrder::parse(user(), vec![line(0, 1, 100)]).is_err());
        assert!(NewOrder::parse(user(), vec![line(1, 1, 0)]).is_err());
        assert!(NewOrder::parse(user(), vec![line(1, 1, -5)]).is_err());
        assert!(NewOrder::parse(user(), vec![line(1, 1, 100); MAX_LINES + 1]).is_err());
    }

    #[test]
    fn a_total_that_would_overflow_is_refused() {
        let err = NewOrder::parse(user(), vec![line(1, 1000, MAX_CENTS)]);
        assert!(matches!(err, Err(ApiError::Validation(_))));
        let err = NewOrder::parse(user(), vec![line(1, 1, MAX_CENTS), line(2, 1, MAX_CENTS)]);
        assert!(matches!(err, Err(ApiError::Validation(_))));
    }
}
