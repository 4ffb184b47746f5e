//! Payments and webhook deliveries as stored: the records the store reads and writes and
//! the operations and handlers pass around.

use service_kit::money::Cents;
use shop_contracts::PaymentStatus;

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
    pub fn parse_filter(text: &str) -> Result<DeliveryStatus, service_kit::ApiError> {
        DeliveryStatus::parse(text).ok_or_else(|| {
            service_kit::ApiError::Validation("status must be pending, delivered or failed".into())
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
