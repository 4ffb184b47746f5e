//! Orders as rules: statuses and the transitions a shop allows, and a new order's lines
//! validated and totalled in checked cents. Pure functions, unit-tested here.

use serde::Deserialize;
use service_kit::domain::Invalid;
use service_kit::domain::{Id, Quantity, UserId};
use service_kit::money::Cents;
use shop_contracts::payments::{NoticeRefused, PaymentNotice};

pub use shop_contracts::customer::{Customer, ShippingAddress};
pub use shop_contracts::{OrderStatus, OrderStock};

/// An order as stored, with its lines and status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    /// Its global reference (UUIDv7; an older order's id as text).
    pub reference: String,
    pub user_id: String,
    pub customer: Option<Customer>,
    pub shipping_address: Option<ShippingAddress>,
    /// How it was sent, once SHIPPED with a carrier and tracking number.
    pub shipment: Option<Shipment>,
    pub items: Vec<OrderItem>,
    /// The lines' sum.
    pub subtotal: Cents,
    /// What its promo code took off.
    pub discount: Cents,
    pub promo_code: Option<String>,
    /// What is paid: subtotal less discount.
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
    /// A refund said the goods came back: its units go back on sale.
    pub restock: bool,
    pub status_history: Vec<StatusEntry>,
    /// The goods that came back, oldest first.
    pub returns: Vec<OrderReturn>,
    /// The journey that placed it.
    pub correlation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderItem {
    pub product_id: i64,
    /// The product's name and SKU when the order was placed (`None` if the catalog could
    /// not be asked then).
    pub name: Option<String>,
    pub sku: Option<String>,
    pub quantity: i64,
    pub price: Cents,
    pub line_total: Cents,
}

/// What the catalog called a product when an order was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductLabel {
    pub name: String,
    pub sku: Option<String>,
}

/// How a shipped order travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub carrier: String,
    pub tracking_number: String,
}

impl Shipment {
    /// The carrier and tracking number of a SHIPPED change: both or neither (a 422 naming
    /// the one missing), each 1 to 100 visible characters, and only when shipping.
    pub fn parse(
        target: OrderStatus,
        carrier: Option<String>,
        tracking_number: Option<String>,
    ) -> Result<Option<Shipment>, Invalid> {
        let field = |name: &str, raw: Option<String>| {
            raw.map(|raw| service_kit::domain::short_text(name, &raw, 100))
                .transpose()
        };
        let carrier = field("carrier", carrier)?;
        let tracking_number = field("tracking_number", tracking_number)?;
        match (carrier, tracking_number) {
            (None, None) => Ok(None),
            _ if target != OrderStatus::Shipped => Err(Invalid(
                "carrier and tracking_number go with status SHIPPED only".to_string(),
            )),
            (Some(carrier), Some(tracking_number)) => Ok(Some(Shipment {
                carrier,
                tracking_number,
            })),
            (None, Some(_)) => Err(Invalid(
                "carrier is needed with a tracking_number".to_string(),
            )),
            (Some(_), None) => Err(Invalid(
                "tracking_number is needed with a carrier".to_string(),
            )),
        }
    }
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
    /// On a mismatch, the orders behind it (at most [`MAX_MISMATCHES_LISTED`]).
    pub mismatched: Vec<Mismatch>,
    /// Paid orders per day placed, last 30 days.
    pub revenue_by_day: Vec<DaySales>,
    /// The products sold most.
    pub top_products: Vec<ProductSales>,
}

/// Paid orders placed on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySales {
    pub day: String,
    pub orders: i64,
    /// Their totals net of refunds.
    pub revenue: Cents,
}

/// One product's sales in paid orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSales {
    pub product_id: i64,
    /// Its name when last ordered.
    pub name: Option<String>,
    pub units: i64,
    /// At the prices ordered, before discounts.
    pub sales: Cents,
}

/// How many orders a reconciliation mismatch lists.
pub const MAX_MISMATCHES_LISTED: usize = 20;

/// An order whose money does not agree between the two services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub order_id: i64,
    /// What it should hold: its total net of refunds when paid, nothing otherwise.
    pub order_value: Cents,
    /// What its captured payments hold, net of refunds.
    pub captured_net: Cents,
}

/// An order as the books see it: id, ref, what it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderValue {
    pub id: i64,
    pub reference: String,
    pub value: Cents,
}

/// The orders whose value differs from what their captured payments hold (payments are
/// matched by order ref, or by order id for those made before refs), by order id.
pub fn mismatched_orders(
    orders: &[OrderValue],
    payments: &[shop_contracts::payments::OrderMoney],
) -> Vec<Mismatch> {
    use std::collections::BTreeMap;
    // Keyed by order id, then whether the money is for an order ref this service does not
    // know (the same id in an orders.db restored from a backup): that is its own entry.
    let mut held: BTreeMap<(i64, bool), (Cents, Cents)> = BTreeMap::new();
    let by_ref: BTreeMap<&str, i64> = orders
        .iter()
        .map(|o| (o.reference.as_str(), o.id))
        .collect();
    for money in payments {
        let key = match &money.order_ref {
            Some(reference) => match by_ref.get(reference.as_str()) {
                Some(id) => (*id, false),
                None => (money.order_id, true),
            },
            None => (money.order_id, false),
        };
        let net = money
            .captured
            .checked_sub(money.refunded)
            .unwrap_or_default();
        let entry = held.entry(key).or_default();
        entry.1 = entry.1.checked_add(net).unwrap_or(entry.1);
    }
    for order in orders {
        held.entry((order.id, false)).or_default().0 = order.value;
    }
    held.into_iter()
        .filter(|(_, (value, net))| value != net)
        .map(|((order_id, _), (order_value, captured_net))| Mismatch {
            order_id,
            order_value,
            captured_net,
        })
        .take(MAX_MISMATCHES_LISTED)
        .collect()
}

impl Stats {
    /// Revenue over paid orders, in whole cents (rounded down); 0 with none.
    pub fn average_order_value(&self) -> Cents {
        match self.paid_order_count {
            0 => Cents::default(),
            n => Cents::new(self.revenue.get() / n),
        }
    }

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

// Returns by line (see `returns.rs` for what they move and how they settle).

service_kit::text_enum! {
    /// The state goods came back in.
    Condition {
        Sellable => "sellable",
        Damaged => "damaged",
    }
}

service_kit::text_enum! {
    /// Where one half of a return (its refund, its restock) stands: `pending` (to ask),
    /// `done`, `none` (nothing to move: no money left, or no sellable unit), `refused` (the
    /// peer said no for good; `problem` says why, for a person to look at).
    ReturnStep {
        Pending => "pending",
        Done => "done",
        Nothing => "none",
        Refused => "refused",
    }
}

/// One line of a return: units of a product that came back, and in what state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReturnLine {
    pub product_id: i64,
    pub quantity: i64,
    pub condition: Condition,
}

/// A recorded return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderReturn {
    pub id: i64,
    /// Its global reference: the key of its refund and of its units in the catalog.
    pub reference: String,
    pub order_id: i64,
    pub reason: String,
    pub lines: Vec<ReturnLine>,
    /// What it refunds.
    pub refund: Cents,
    pub refund_state: ReturnStep,
    /// The payment service's refund, once done.
    pub refund_id: Option<i64>,
    pub restock_state: ReturnStep,
    /// Why a half was refused, for a person.
    pub problem: Option<String>,
    pub created_at: String,
}

/// What a return asked for: its lines and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskedReturn {
    pub lines: Vec<ReturnLine>,
    pub reason: String,
}

/// What recording a return moves, as `returns::plan` decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPlan {
    /// The lines, one per product and condition.
    pub lines: Vec<ReturnLine>,
    /// The money to give back.
    pub refund: Cents,
    /// The units to put back on sale, per product.
    pub restock: Vec<(i64, i64)>,
}

/// What a payment notice is checked against: the order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFacts {
    pub status: OrderStatus,
    pub total: Cents,
    /// The order's global reference.
    pub reference: String,
}

/// What a payment notice does to its order, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeEffect {
    /// PENDING becomes PAID with this payment.
    MarkPaid { payment_id: i64, amount: Cents },
    /// Paid already (or later): nothing changes; the notice is acknowledged.
    AlreadyPaid,
    /// The order's refunds become `refunded_total` (this refund gave back `amount`);
    /// refunded in full, the paid order moves from `refunded_from` (its status now) to
    /// REFUNDED. Money only: units come back by line, through a return.
    RecordRefund {
        payment_id: i64,
        refunded_total: Cents,
        amount: Cents,
        refunded_from: Option<OrderStatus>,
    },
}

/// Decides what payment `notice`, received at order `url_id`'s endpoint, does to that
/// order (`None`: not found). It must name the same order id and, when it says, the same
/// ref (the same id on another order is an orders.db restored from a backup); a capture
/// must be for the exact total and a late or repeated one never moves an order backwards;
/// refunds never exceed the total.
pub fn decide_payment_notice(
    url_id: i64,
    order: Option<&PaymentFacts>,
    notice: &PaymentNotice,
) -> Result<NoticeEffect, NoticeRefused> {
    if notice.order_id() != url_id {
        return Err(NoticeRefused::OtherOrderId(format!(
            "webhook is for order {}, not {url_id}",
            notice.order_id()
        )));
    }
    let Some(order) = order else {
        return Err(NoticeRefused::OrderNotFound(format!(
            "order {url_id} not found"
        )));
    };
    if let Some(paid_for) = notice.order_ref() {
        if paid_for != order.reference {
            return Err(NoticeRefused::OtherOrder(format!(
                "the payment is for order ref {paid_for}, not order {url_id} ({})",
                order.reference
            )));
        }
    }
    let total = order.total;
    match notice {
        PaymentNotice::Refunded(refund) => {
            if refund.refunded_total > total {
                return Err(NoticeRefused::WrongAmount(format!(
                    "refunds of {} exceed order total {total}",
                    refund.refunded_total
                )));
            }
            Ok(NoticeEffect::RecordRefund {
                payment_id: refund.payment_id,
                refunded_total: refund.refunded_total,
                amount: refund.amount,
                refunded_from: (refund.refunded_total == total
                    && order.status.can_become(OrderStatus::Refunded))
                .then_some(order.status),
            })
        }
        PaymentNotice::Succeeded(capture) => {
            if capture.amount != total {
                return Err(NoticeRefused::WrongAmount(format!(
                    "payment of {} does not match order total {total}",
                    capture.amount
                )));
            }
            match payment_outcome(order.status) {
                PaymentOutcome::MarkPaid => Ok(NoticeEffect::MarkPaid {
                    payment_id: capture.payment_id,
                    amount: capture.amount,
                }),
                PaymentOutcome::AlreadyPaid => Ok(NoticeEffect::AlreadyPaid),
                PaymentOutcome::Refused => Err(NoticeRefused::NotPayable(format!(
                    "order {url_id} is {} and cannot be paid",
                    order.status
                ))),
            }
        }
    }
}

/// One line of the order body the testing guide sends: `{"product_id","quantity","price"}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineIn {
    #[schema(minimum = 1)]
    pub product_id: i64,
    /// 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
    /// The catalog's unit price, as a decimal (999.99).
    pub price: Cents,
}

/// The body of `POST /orders` as an object: the lines, and whom the order is for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderIn {
    /// 1 to 100 lines.
    pub items: Vec<OrderLineIn>,
    pub customer: Option<Customer>,
    pub shipping_address: Option<ShippingAddress>,
    /// A promo code to apply (422 saying why when it does not apply).
    #[schema(example = "WELCOME10", max_length = 32)]
    pub promo_code: Option<String>,
}

/// The body of `POST /orders`: the seed's bare array of lines, or an [`OrderIn`].
#[derive(Debug, Clone)]
pub enum OrderBody {
    Lines(Vec<OrderLineIn>),
    Order(Box<OrderIn>),
}

impl<'de> Deserialize<'de> for OrderBody {
    /// Told apart by shape, so a bad line still gets serde's message naming its field.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        match value {
            serde_json::Value::Array(_) => serde_json::from_value(value)
                .map(OrderBody::Lines)
                .map_err(D::Error::custom),
            serde_json::Value::Object(_) => serde_json::from_value(value)
                .map(|order| OrderBody::Order(Box::new(order)))
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "expected an array of lines or an object with \"items\"",
            )),
        }
    }
}

impl utoipa::PartialSchema for OrderBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
        OneOfBuilder::new()
            .item(ArrayBuilder::new().items(Ref::from_schema_name("OrderLineIn")))
            .item(Ref::from_schema_name("OrderIn"))
            .description(Some(
                "The lines alone (as the testing guide sends them), or an object with the \
                 lines as `items` and the optional customer and shipping address.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for OrderBody {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("OrderLineIn".to_string(), OrderLineIn::schema()));
        schemas.push(("OrderIn".to_string(), OrderIn::schema()));
        <OrderIn as utoipa::ToSchema>::schemas(schemas);
    }
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
    /// The lines' sum.
    pub subtotal: Cents,
    /// What the promo code takes off, once applied.
    pub discount: Cents,
    /// The code asked for, in upper case.
    pub promo_code: Option<String>,
    /// What is to be paid: subtotal less discount.
    pub total: Cents,
    pub customer: Option<Customer>,
    pub shipping_address: Option<ShippingAddress>,
    /// The storefront client (its address) it is placed for, if it is: its stock is held
    /// for the shorter storefront time, within the client's cap.
    pub held_for: Option<String>,
}

/// The most lines one order may have (a cart holds no more, so its checkout fits).
pub use shop_contracts::orders::MAX_ORDER_LINES as MAX_LINES;

impl NewOrder {
    /// Validates either form of the body: lines, total (any overflow is a 422), customer and
    /// shipping address.
    pub fn from_body(user_id: UserId, body: OrderBody) -> Result<NewOrder, Invalid> {
        match body {
            OrderBody::Lines(lines) => NewOrder::parse(user_id, lines),
            OrderBody::Order(order) => Ok(NewOrder {
                promo_code: order
                    .promo_code
                    .as_deref()
                    .map(crate::promotions::normalized_code)
                    .transpose()?,
                customer: order.customer.map(Customer::checked).transpose()?,
                shipping_address: order
                    .shipping_address
                    .map(ShippingAddress::checked)
                    .transpose()?,
                ..NewOrder::parse(user_id, order.items)?
            }),
        }
    }

    /// Validates the lines and computes the total; any overflow is a 422.
    pub fn parse(user_id: UserId, lines: Vec<OrderLineIn>) -> Result<NewOrder, Invalid> {
        if lines.is_empty() {
            return Err(Invalid("an order needs at least one line".to_string()));
        }
        if lines.len() > MAX_LINES {
            return Err(Invalid(format!("an order has at most {MAX_LINES} lines")));
        }
        let lines = lines
            .into_iter()
            .map(|line| {
                if line.price.get() <= 0 {
                    return Err(Invalid(format!(
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
        let too_large = || Invalid("order total is too large".to_string());
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
            subtotal: total,
            discount: Cents::default(),
            promo_code: None,
            total,
            customer: None,
            shipping_address: None,
            held_for: None,
        })
    }

    /// How many units the order holds.
    pub fn units(&self) -> i64 {
        self.lines.iter().map(|l| l.quantity.get()).sum()
    }

    /// Who the order is for, as a promo code's per-customer limit counts: their normalised
    /// email ([`normalised_email`]), else their user id.
    pub fn customer_key(&self) -> String {
        match &self.customer {
            Some(customer) => normalised_email(&customer.email),
            None => format!("user:{}", self.user_id.as_str()),
        }
    }

    /// Takes `promo`'s discount off the subtotal (its checks already passed).
    pub fn apply(&mut self, promo: &crate::promotions::PromoCode) {
        self.discount = promo.discount_on(self.subtotal);
        self.total = self
            .subtotal
            .checked_sub(self.discount)
            .unwrap_or(self.subtotal);
        self.promo_code = Some(promo.code.clone());
    }
}

/// One customer's email however it is typed: trimmed, in lower case, without a `+tag` in
/// its local part (`Ada+promo@Example.com` is `ada@example.com`), so a per-customer limit
/// counts the mailbox, not the spelling.
pub fn normalised_email(email: &str) -> String {
    let email = email.trim().to_lowercase();
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split_once('+').map_or(local, |(mailbox, _)| mailbox);
            format!("{local}@{domain}")
        }
        None => email,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_contracts::payments::{Captured, Refunded};

    fn facts(status: OrderStatus) -> PaymentFacts {
        PaymentFacts {
            status,
            total: Cents::new(99_999),
            reference: "ord-a".into(),
        }
    }

    fn capture(order_ref: Option<&str>, cents: i64) -> PaymentNotice {
        PaymentNotice::Succeeded(Captured {
            payment_id: 9,
            order_id: 1,
            order_ref: order_ref.map(str::to_string),
            amount: Cents::new(cents),
        })
    }

    fn refund(refunded_total: i64) -> PaymentNotice {
        PaymentNotice::Refunded(Refunded {
            payment_id: 9,
            order_id: 1,
            order_ref: Some("ord-a".into()),
            amount: Cents::new(1_000),
            refund_id: 3,
            refunded_total: Cents::new(refunded_total),
            restock: true,
        })
    }

    #[test]
    fn a_capture_of_the_exact_total_pays_a_pending_order_once_and_never_moves_one_back() {
        let pending = facts(OrderStatus::Pending);
        assert_eq!(
            decide_payment_notice(1, Some(&pending), &capture(Some("ord-a"), 99_999)),
            Ok(NoticeEffect::MarkPaid {
                payment_id: 9,
                amount: Cents::new(99_999)
            })
        );
        // A notice of a payment made before references carries none.
        assert!(decide_payment_notice(1, Some(&pending), &capture(None, 99_999)).is_ok());
        for later in [
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
        ] {
            assert_eq!(
                decide_payment_notice(1, Some(&facts(later)), &capture(None, 99_999)),
                Ok(NoticeEffect::AlreadyPaid),
                "{later}"
            );
        }
        for ended in [OrderStatus::Cancelled, OrderStatus::Refunded] {
            assert!(
                matches!(
                    decide_payment_notice(1, Some(&facts(ended)), &capture(None, 99_999)),
                    Err(NoticeRefused::NotPayable(_))
                ),
                "{ended}"
            );
        }
    }

    #[test]
    fn a_notice_for_another_order_amount_or_ref_is_refused_for_good() {
        let pending = facts(OrderStatus::Pending);
        let refused = |url_id, order: Option<&PaymentFacts>, notice: &PaymentNotice| {
            decide_payment_notice(url_id, order, notice).unwrap_err()
        };
        let right = capture(Some("ord-a"), 99_999);
        assert!(matches!(
            refused(2, Some(&pending), &right),
            NoticeRefused::OtherOrderId(_)
        ));
        assert!(matches!(
            refused(1, None, &right),
            NoticeRefused::OrderNotFound(_)
        ));
        assert!(matches!(
            refused(1, Some(&pending), &capture(Some("ord-b"), 99_999)),
            NoticeRefused::OtherOrder(_)
        ));
        assert!(matches!(
            refused(1, Some(&pending), &capture(Some("ord-a"), 99_998)),
            NoticeRefused::WrongAmount(_)
        ));
        assert!(matches!(
            refused(1, Some(&facts(OrderStatus::Paid)), &refund(100_000)),
            NoticeRefused::WrongAmount(_)
        ));
    }

    #[test]
    fn a_refund_records_money_only_and_refunded_in_full_a_paid_order_becomes_refunded() {
        let paid = facts(OrderStatus::Paid);
        let effect =
            |order: &PaymentFacts, total| decide_payment_notice(1, Some(order), &refund(total));
        assert_eq!(
            effect(&paid, 5_000),
            Ok(NoticeEffect::RecordRefund {
                payment_id: 9,
                refunded_total: Cents::new(5_000),
                amount: Cents::new(1_000),
                refunded_from: None
            })
        );
        assert!(matches!(
            effect(&paid, 99_999),
            Ok(NoticeEffect::RecordRefund {
                refunded_from: Some(OrderStatus::Paid),
                ..
            })
        ));
        // A cancelled order refunded in full stays CANCELLED (it cannot become REFUNDED).
        assert!(matches!(
            effect(&facts(OrderStatus::Cancelled), 99_999),
            Ok(NoticeEffect::RecordRefund {
                refunded_from: None,
                ..
            })
        ));
    }

    #[test]
    fn an_email_is_one_customer_however_it_is_typed() {
        for typed in [
            "ada@example.com",
            " Ada@Example.COM ",
            "ada+promo@example.com",
            "ADA+2@example.com",
        ] {
            assert_eq!(normalised_email(typed), "ada@example.com", "{typed}");
        }
        assert_ne!(normalised_email("bob@example.com"), "ada@example.com");
    }
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
    fn a_mismatch_names_the_orders_whose_money_differs() {
        use shop_contracts::payments::OrderMoney;
        let order = |id: i64, value: i64| OrderValue {
            id,
            reference: format!("ref-{id}"),
            value: Cents::new(value),
        };
        let money = |id: i64, reference: Option<&str>, captured: i64, refunded: i64| OrderMoney {
            order_id: id,
            order_ref: reference.map(str::to_string),
            captured: Cents::new(captured),
            refunded: Cents::new(refunded),
        };
        let orders = [order(1, 1000), order(2, 0), order(3, 500), order(4, 700)];
        let payments = [
            money(1, Some("ref-1"), 1000, 0),  // paid, captured: fine
            money(2, Some("ref-2"), 800, 800), // cancelled, refunded in full: fine
            money(3, Some("ref-3"), 800, 0),   // 300 more captured than the order holds
            // order 4 is PAID with no capture (a hand-signed webhook)
            money(4, Some("ref-of-a-restored-db"), 250, 0), // another order 4's money
            money(5, None, 100, 0), // a payment from before refs, no such order
        ];
        let found: Vec<(i64, i64, i64)> = mismatched_orders(&orders, &payments)
            .into_iter()
            .map(|m| (m.order_id, m.order_value.get(), m.captured_net.get()))
            .collect();
        assert_eq!(
            found,
            [(3, 500, 800), (4, 700, 0), (4, 0, 250), (5, 0, 100)]
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
        assert!(matches!(err, Err(Invalid(_))));
        let err = NewOrder::parse(user(), vec![line(1, 1, MAX_CENTS), line(2, 1, MAX_CENTS)]);
        assert!(matches!(err, Err(Invalid(_))));
    }
}
