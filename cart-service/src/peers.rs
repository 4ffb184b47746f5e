//! The order and payment services as a checkout sees them: typed calls whose answers are
//! outcomes (done, refused, or unknown), so the checkout can tell "refused" from "not sure"
//! (see `checkout.rs`). The catalog's client is `shop_contracts::catalog::CatalogClient`.

use service_kit::config::Secret;
use service_kit::idempotency::KEY_HEADER;
use service_kit::money::Cents;
use service_kit::peer::{Outcome, PeerClient, PeerError};
use shop_contracts::card::CardIn;
use shop_contracts::orders::{NewOrderLine, OrderView, StatusChange};
use shop_contracts::payments::{PayRequest, PaymentView};
use shop_contracts::{OrderStatus, PaymentStatus};
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

    /// `POST /orders?user_id=U` with an idempotency key, so asking again after a lost answer
    /// finds the same order instead of placing a second one.
    pub async fn create(
        &self,
        user_id: &str,
        lines: &[NewOrderLine],
        idempotency_key: String,
    ) -> Outcome<OrderView> {
        self.peer
            .post(
                format!("/orders?user_id={user_id}"),
                &lines,
                vec![(KEY_HEADER, idempotency_key)],
            )
            .await
    }

    /// `PUT /orders/{id}/status` to CANCELLED with a reason.
    pub async fn cancel(&self, order_id: i64, reason: &str) -> Outcome<OrderView> {
        self.peer
            .put(
                format!("/orders/{order_id}/status"),
                &StatusChange {
                    status: OrderStatus::Cancelled,
                    reason: Some(reason.to_string()),
                },
            )
            .await
    }

    /// The order's status, `Ok(None)` if the order service does not know it.
    pub async fn status(&self, order_id: i64) -> Result<Option<OrderStatus>, PeerError> {
        let order: Option<OrderView> = self.peer.get_json(format!("/orders/{order_id}")).await?;
        Ok(order.map(|o| o.status))
    }
}

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

    /// `POST /pay` with the card as the client sent it (never stored here) and an
    /// idempotency key.
    pub async fn pay(
        &self,
        order_id: i64,
        amount: Cents,
        card: Option<&CardIn>,
        idempotency_key: String,
    ) -> Outcome<PaymentView> {
        let path = format!("/pay?order_id={order_id}&amount={amount}");
        let headers = vec![(KEY_HEADER, idempotency_key)];
        self.peer.post(path, &PayRequest { card }, headers).await
    }

    /// The captured payment for the order, if there is one.
    pub async fn captured_for(&self, order_id: i64) -> Result<Option<i64>, PeerError> {
        let payments: Option<Vec<PaymentView>> = self
            .peer
            .get_json(format!("/payments?order_id={order_id}"))
            .await?;
        Ok(payments
            .unwrap_or_default()
            .iter()
            .find(|p| p.status == PaymentStatus::Captured)
            .map(|p| p.id))
    }
}
