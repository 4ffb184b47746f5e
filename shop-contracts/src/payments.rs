//! payment-service's side of the wire: a payment as another service reads it.

use crate::PaymentStatus;
use serde::{Deserialize, Serialize};
use service_kit::money::Cents;

/// One entry of `GET /payments?order_id=`: only the fields a checkout relies on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentView {
    /// The payment's id.
    pub id: i64,
    /// Captured, or failed.
    pub status: PaymentStatus,
}

/// The body of `POST /pay` as a checkout sends it: the shopper's card, passed through and
/// never kept by the sender.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PayRequest<'a> {
    /// Left out to pay without a card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<&'a crate::card::CardIn>,
}

/// The `type` of the webhook payment-service sends when a payment is captured.
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";

/// The signed body of a payment webhook (`POST /orders/{id}/payment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentWebhook {
    /// What happened: [`PAYMENT_SUCCEEDED`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The payment.
    pub data: PaymentData,
}

/// `data` of a `payment.succeeded` webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentData {
    pub payment_id: i64,
    pub order_id: i64,
    pub amount: Cents,
}

impl PaymentWebhook {
    /// The notice that `payment_id` captured `amount` for `order_id`.
    pub fn succeeded(payment_id: i64, order_id: i64, amount: Cents) -> PaymentWebhook {
        PaymentWebhook {
            kind: PAYMENT_SUCCEEDED.to_string(),
            data: PaymentData {
                payment_id,
                order_id,
                amount,
            },
        }
    }
}

/// `GET /payments/summary`: what the order service reconciles paid orders against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentsSummary {
    /// Captured payments.
    pub captured_count: i64,
    /// Their total.
    pub captured_total: Cents,
}
