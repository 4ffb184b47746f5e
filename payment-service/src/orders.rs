//! The order service as the payment service sees it: read an order, tell it it was paid.
//! Notifying goes through [`OrderClient::notify_paid`] alone, so how a webhook is delivered
//! can change in one place.

use serde::{Deserialize, Serialize};
use service_kit::config::Secret;
use service_kit::domain::Id;
use service_kit::money::Cents;
use service_kit::peer::{PeerClient, PeerError};
use std::time::Duration;

/// What a payment needs to know about an order.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderView {
    pub id: i64,
    pub total: Cents,
    pub status: String,
}

impl OrderView {
    /// True once the order has been paid for, whatever happened after.
    pub fn is_paid(&self) -> bool {
        matches!(self.status.as_str(), "PAID" | "SHIPPED" | "DELIVERED")
    }
}

#[derive(Debug, Serialize)]
struct PaymentNotice {
    payment_id: i64,
    amount: Cents,
}

/// Typed access to order-service.
#[derive(Debug, Clone)]
pub struct OrderClient {
    peer: PeerClient,
}

impl OrderClient {
    /// A client for the order service at `base_url`.
    pub fn new(base_url: &str, api_key: Secret, timeout: Duration) -> Self {
        OrderClient {
            peer: PeerClient::new("order-service", base_url, api_key, timeout),
        }
    }

    /// The order, `Ok(None)` if the order service does not know it.
    pub async fn order(&self, id: Id) -> Result<Option<OrderView>, PeerError> {
        let order: Option<OrderView> = self.peer.get_json(format!("/orders/{id}")).await?;
        match order {
            Some(o) if o.id != id.get() => Err(PeerError::Garbage {
                peer: self.peer.name(),
                detail: format!("asked for order {id}, got {}", o.id),
            }),
            other => Ok(other),
        }
    }

    /// Calls the order's payment webhook. Only a 2xx counts as delivered.
    pub async fn notify_paid(
        &self,
        order_id: Id,
        payment_id: i64,
        amount: Cents,
    ) -> Result<(), PeerError> {
        let response = self
            .peer
            .post_json(
                format!("/orders/{order_id}/payment"),
                &PaymentNotice { payment_id, amount },
            )
            .await?;
        match response.status {
            200..=299 => Ok(()),
            status => Err(PeerError::Status {
                peer: self.peer.name(),
                status,
            }),
        }
    }
}
