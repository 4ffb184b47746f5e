//! The order service as the payment service sees it: read an order before charging it, and
//! deliver signed payment webhooks to it.

use serde::Deserialize;
use service_kit::config::Secret;
use service_kit::domain::Id;
use service_kit::money::Cents;
use service_kit::peer::{PeerClient, PeerError};
use service_kit::webhook::{
    ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSecret, signature_header, unix_now,
};
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

    /// Sends one signed webhook to the order's payment endpoint, with a fresh timestamp and
    /// signature. Returns the status code the order service answered.
    pub async fn send_webhook(
        &self,
        order_id: i64,
        webhook_id: &str,
        payload: &str,
        secrets: &[WebhookSecret],
    ) -> Result<u16, PeerError> {
        let timestamp = unix_now();
        let signature = signature_header(secrets, webhook_id, timestamp, payload.as_bytes());
        let headers = vec![
            (ID_HEADER, webhook_id.to_string()),
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (SIGNATURE_HEADER, signature),
        ];
        let response = self
            .peer
            .post_signed(
                format!("/orders/{order_id}/payment"),
                payload.as_bytes().to_vec(),
                headers,
            )
            .await?;
        Ok(response.status)
    }
}
