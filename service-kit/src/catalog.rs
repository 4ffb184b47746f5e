//! The catalog as cart and order see it: a typed client over [`PeerClient`].

use crate::config::Secret;
use crate::domain::Id;
use crate::money::Cents;
use crate::peer::{PeerClient, PeerError, PeerResponse};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// What the catalog says about one product.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CatalogProduct {
    /// Product id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Current unit price.
    pub price: Cents,
    /// Units in stock.
    pub stock: i64,
}

/// Typed access to catalog-service.
#[derive(Debug, Clone)]
pub struct CatalogClient {
    peer: PeerClient,
}

impl CatalogClient {
    /// A client for the catalog at `base_url`.
    pub fn new(base_url: &str, api_key: Secret, timeout: Duration) -> Self {
        CatalogClient {
            peer: PeerClient::new("catalog-service", base_url, api_key, timeout),
        }
    }

    /// The product, `Ok(None)` if the catalog does not know it, `Err` if the catalog could
    /// not answer (down, slow, 5xx or garbage).
    pub async fn product(&self, id: Id) -> Result<Option<CatalogProduct>, PeerError> {
        let product: Option<CatalogProduct> = self.peer.get_json(format!("/products/{id}")).await?;
        match product {
            // A catalog that answers for a different id is not to be trusted.
            Some(p) if p.id != id.get() => Err(PeerError::Garbage {
                peer: self.peer.name(),
                detail: format!("asked for product {id}, got {}", p.id),
            }),
            other => Ok(other),
        }
    }
}

impl CatalogClient {
    /// `POST /reservations` for the order's lines (`(product_id, quantity)`); the catalog's
    /// answer as it is (201/200 held, 409 out of stock, 422 unknown product).
    pub async fn reserve(
        &self,
        order_id: i64,
        lines: &[(i64, i64)],
    ) -> Result<PeerResponse, PeerError> {
        let lines: Vec<_> = lines
            .iter()
            .map(|(product_id, quantity)| json!({"product_id": product_id, "quantity": quantity}))
            .collect();
        self.peer
            .post_json(
                "/reservations".to_string(),
                &json!({"order_id": order_id, "lines": lines}),
            )
            .await
    }

    /// `POST /reservations/{order_id}/commit`.
    pub async fn commit(&self, order_id: i64) -> Result<PeerResponse, PeerError> {
        self.peer
            .post_json(format!("/reservations/{order_id}/commit"), &json!({}))
            .await
    }

    /// `POST /reservations/{order_id}/release` with a reason.
    pub async fn release(&self, order_id: i64, reason: &str) -> Result<PeerResponse, PeerError> {
        self.peer
            .post_json(
                format!("/reservations/{order_id}/release"),
                &json!({"reason": reason}),
            )
            .await
    }
}
