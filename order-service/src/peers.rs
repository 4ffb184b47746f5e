//! The payment service as the order service sees it: the captured-payments summary that the
//! stats reconcile against. (The catalog's client is `shop_contracts::catalog`.)

use service_kit::config::Secret;
use service_kit::peer::{PeerClient, PeerError};
use shop_contracts::payments::PaymentsSummary;
use std::time::Duration;

/// Typed access to payment-service.
#[derive(Debug, Clone)]
pub struct PaymentClient {
    peer: PeerClient,
}

impl PaymentClient {
    /// A client for the payment service at `base_url`.
    pub fn new(base_url: &str, api_key: Secret, timeout: Duration) -> Self {
        PaymentClient {
            peer: PeerClient::new("payment-service", base_url, api_key, timeout),
        }
    }

    /// `GET /payments/summary`: what was captured, per order; `Ok(None)` if the payment
    /// service has no such route.
    pub async fn summary(&self) -> Result<Option<PaymentsSummary>, PeerError> {
        self.peer.get_json("/payments/summary".into()).await
    }
}
