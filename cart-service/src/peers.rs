//! The order service as a checkout sees it: typed calls whose answers are outcomes (done,
//! refused, or unknown), so the checkout can tell "refused" from "not sure" (see
//! `checkout.rs`). The catalog's and payment service's clients are in `shop_contracts`.

use service_kit::config::Secret;
use service_kit::idempotency::KEY_HEADER;
use service_kit::peer::{Outcome, PeerClient, PeerError};
use shop_contracts::OrderStatus;
use shop_contracts::orders::{OrderView, PlaceOrder, StatusChange};
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
        order: &PlaceOrder,
        idempotency_key: String,
    ) -> Outcome<OrderView> {
        self.peer
            .post(
                format!("/orders?user_id={user_id}"),
                order,
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
                    // Never a paid order: the checkout goes forward with that one.
                    from: Some(OrderStatus::Pending),
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
