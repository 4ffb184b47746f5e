//! Payments and webhook deliveries as stored: the records the store reads and writes and
//! the operations and handlers pass around.

use service_kit::money::Cents;
use shop_contracts::orders::OrderView;
use shop_contracts::{OrderStatus, OrderStock, PaymentStatus};

/// One payment attempt (captured, failed, authorized or voided) with its webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: i64,
    /// Its global reference.
    pub reference: String,
    pub order_id: i64,
    /// The global reference of the order the order service confirmed (none while only
    /// authorized, and for payments made before references).
    pub order_ref: Option<String>,
    pub amount: Cents,
    pub status: PaymentStatus,
    /// Why it failed (a decline code), when it did.
    pub failure_code: Option<String>,
    /// Why an authorized payment was voided, when it was.
    pub void_reason: Option<String>,
    /// What has been refunded of it so far.
    pub refunded: Cents,
    /// What is kept of the card: never its number or CVC.
    pub card: Option<StoredCard>,
    /// False when the order service could not be asked before charging.
    pub order_verified: bool,
    pub webhook_delivery_id: Option<String>,
    pub webhook_status: Option<String>,
    pub created_at: String,
    /// The user its order is filed under (whose payment a shopper may see), when known.
    pub user_id: Option<String>,
}

/// Why an order cannot be paid: refused for good, whatever is asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotPayable {
    /// The order service does not know the order (404).
    UnknownOrder(String),
    /// It is paid already, or cancelled or refunded (409).
    Ended(String),
    /// The amount is not its total (422).
    WrongAmount(String),
}

impl NotPayable {
    /// The reason, in words (kept as a voided authorization's reason).
    pub fn message(&self) -> &str {
        match self {
            NotPayable::UnknownOrder(m) | NotPayable::Ended(m) | NotPayable::WrongAmount(m) => m,
        }
    }
}

/// What the order service's answer about an order says about paying it `amount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payability {
    /// A PENDING order holding its stock, whose total is exactly the amount: capture,
    /// recording the order's global ref.
    Payable(String),
    /// Refused for good.
    Refused(NotPayable),
    /// Not yet: the order's stock is still pending (no money for units that may not be
    /// there).
    NotYet(String),
}

/// Decides whether order `order_id` (as the order service answered: `None` when it does
/// not know it) can be paid `amount` now.
pub fn decide_payability(order_id: i64, amount: Cents, order: Option<&OrderView>) -> Payability {
    let Some(order) = order else {
        return Payability::Refused(NotPayable::UnknownOrder(format!(
            "order {order_id} not found"
        )));
    };
    if order.status.is_paid() {
        return Payability::Refused(NotPayable::Ended(format!(
            "order {order_id} is already paid"
        )));
    }
    if order.status != OrderStatus::Pending {
        return Payability::Refused(NotPayable::Ended(format!(
            "order {order_id} is {} and cannot be paid",
            order.status
        )));
    }
    if order.total != amount {
        return Payability::Refused(NotPayable::WrongAmount(format!(
            "amount {amount} does not match order total {}",
            order.total
        )));
    }
    if order.stock == OrderStock::Pending {
        return Payability::NotYet(format!(
            "order {order_id} does not hold its stock yet; try again shortly"
        ));
    }
    Payability::Payable(order.reference.clone())
}

/// Money given back from a captured payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: i64,
    /// Its global reference.
    pub reference: String,
    pub payment_id: i64,
    pub amount: Cents,
    pub reason: Option<String>,
    pub created_at: String,
    /// The goods came back: the order's units are to be returned to stock.
    pub restock: bool,
}

/// The part of a card that is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCard {
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
}

service_kit::text_enum! {
    /// Where a webhook delivery is: still being retried, acknowledged, or out of attempts.
    DeliveryStatus {
        Pending => "pending",
        Delivered => "delivered",
        Failed => "failed",
    }
}

impl DeliveryStatus {
    /// Reads the exact name a client sent as a filter: 422 for anything else.
    pub fn parse_filter(text: &str) -> Result<DeliveryStatus, service_kit::domain::Invalid> {
        DeliveryStatus::parse(text).ok_or_else(|| {
            service_kit::domain::Invalid("status must be pending, delivered or failed".into())
        })
    }
}

/// A webhook delivery and, when read one at a time, its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub payment_id: i64,
    pub order_id: i64,
    pub status: String,
    pub attempts_in_round: u32,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    /// The refund a `payment.refunded` notice carries; none for a `payment.succeeded` one.
    pub refund_id: Option<i64>,
    pub attempts: Option<Vec<Attempt>>,
}

/// One attempt at delivering a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempted_at: String,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: OrderStatus, stock: OrderStock, cents: i64) -> OrderView {
        OrderView {
            id: 7,
            total: Cents::new(cents),
            status,
            reference: "ord-7".into(),
            stock,
            user_id: None,
        }
    }

    #[test]
    fn only_a_pending_order_holding_its_stock_in_its_exact_total_is_payable() {
        let amount = Cents::new(999);
        let decide = |o: &OrderView| decide_payability(7, amount, Some(o));
        assert_eq!(
            decide(&order(OrderStatus::Pending, OrderStock::Held, 999)),
            Payability::Payable("ord-7".into())
        );
        assert!(matches!(
            decide(&order(OrderStatus::Pending, OrderStock::Pending, 999)),
            Payability::NotYet(_)
        ));
        assert!(matches!(
            decide(&order(OrderStatus::Pending, OrderStock::Held, 998)),
            Payability::Refused(NotPayable::WrongAmount(_))
        ));
        for ended in [
            OrderStatus::Paid,
            OrderStatus::Cancelled,
            OrderStatus::Refunded,
        ] {
            assert!(
                matches!(
                    decide(&order(ended, OrderStock::Held, 999)),
                    Payability::Refused(NotPayable::Ended(_))
                ),
                "{ended}"
            );
        }
        assert!(matches!(
            decide_payability(7, amount, None),
            Payability::Refused(NotPayable::UnknownOrder(_))
        ));
    }
}
