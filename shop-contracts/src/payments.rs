//! payment-service's side of the wire: a payment as another service reads it.

use crate::PaymentStatus;
use serde::Deserialize;

/// One entry of `GET /payments?order_id=`: only the fields a checkout relies on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentView {
    /// The payment's id.
    pub id: i64,
    /// Captured, or failed.
    pub status: PaymentStatus,
}
