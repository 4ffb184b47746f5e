//! The order service as the payment service sees it: read an order before charging it, and
//! deliver signed payment webhooks to it.

use crate::store::DueDelivery;
use service_kit::config::Secret;
use service_kit::domain::Id;
use service_kit::peer::{PeerClient, PeerError};
use service_kit::webhook::{
    ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSecret, signature_header, unix_now,
};
use shop_contracts::orders::OrderView;
use std::time::Duration;

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
        delivery: &DueDelivery,
        secrets: &[WebhookSecret],
    ) -> Result<u16, PeerError> {
        let timestamp = unix_now();
        let body = delivery.payload.as_bytes();
        let signature = signature_header(secrets, &delivery.id, timestamp, body);
        let mut headers = vec![
            (ID_HEADER, delivery.id.clone()),
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (SIGNATURE_HEADER, signature),
        ];
        if let Some(journey) = &delivery.correlation_id {
            headers.push((service_kit::http::REQUEST_ID_HEADER, journey.clone()));
        }
        let response = self
            .peer
            .post_raw(
                format!("/orders/{}/payment", delivery.order_id),
                body.to_vec(),
                headers,
            )
            .await?;
        Ok(response.status)
    }
}
