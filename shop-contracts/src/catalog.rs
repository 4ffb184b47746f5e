//! catalog-service's side of the wire, and its typed client: cart reads products and holds
//! stock for a checkout, order reads products to price an order.

use crate::ReservationStatus;
use serde::{Deserialize, Serialize};
use service_kit::config::Secret;
use service_kit::domain::Id;
use service_kit::money::Cents;
use service_kit::peer::{Outcome, PeerClient, PeerError};
use std::time::Duration;

/// `GET /products/{id}` as another service reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProductView {
    /// Product id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Stock-keeping unit, if it has one.
    #[serde(default)]
    pub sku: Option<String>,
    /// Current unit price.
    pub price: Cents,
    /// Units in stock.
    pub stock: i64,
}

/// One line of a reservation: a product and how many units of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationLine {
    /// The product.
    #[schema(minimum = 1)]
    pub product_id: i64,
    /// How many units: 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
}

/// The body of `POST /reservations`: the client sends it, the catalog reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationRequest {
    /// The key it is held under (the order's ref): reserving again under it finds the same
    /// reservation. Defaults to the order id written as text.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub reference: Option<String>,
    /// The order the stock is held for.
    #[schema(minimum = 1)]
    pub order_id: i64,
    /// Every line (1 to 100), all reserved or none.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<ReservationLine>,
    /// false: held until committed or released, never by the expiry sweep; default true.
    /// Always false from the shop's services: the order service settles every order it
    /// holds stock for (paid: committed; cancelled or expired: released), so the catalog's
    /// timer never releases the units of an order that is being paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<bool>,
}

/// A reservation as another service reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReservationView {
    /// The key it is held under.
    pub reference: String,
    /// The order it holds stock for.
    pub order_id: i64,
    /// Held, sold or given back.
    pub status: ReservationStatus,
}

/// The optional body of `POST /reservations/{reference}/release` and `.../return`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// Why the stock goes back, kept with the reservation (its first 500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of `POST /reservations/{reference}/returns`: units of a sold reservation that
/// came back in sellable condition, by line, to go back on sale. Both ends read this type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnLines {
    /// The return's own globally unique key (an order return's `ref`): recording it again
    /// changes nothing.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub return_ref: String,
    /// 1 to 100 lines; each at most what was sold under the reservation and not yet back.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<ReturnedLine>,
    /// Why they came back, kept with the return (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// One product of a return and how many of its units go back on sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnedLine {
    #[schema(minimum = 1)]
    pub product_id: i64,
    /// 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
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
    pub async fn product(&self, id: Id) -> Result<Option<ProductView>, PeerError> {
        let product: Option<ProductView> = self.peer.get_json(format!("/products/{id}")).await?;
        match product {
            // A catalog that answers for a different id is not to be trusted.
            Some(p) if p.id != id.get() => Err(PeerError::Garbage {
                peer: self.peer.name(),
                detail: format!("asked for product {id}, got {}", p.id),
            }),
            other => Ok(other),
        }
    }

    /// The products among `ids` that the catalog sells, by id, in one call
    /// (`GET /products?ids=`, at most 200 ids); `Err` if the catalog could not answer.
    pub async fn products(
        &self,
        ids: &[Id],
    ) -> Result<std::collections::BTreeMap<Id, ProductView>, PeerError> {
        let listed: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let path = format!("/products?limit=200&ids={}", listed.join(","));
        let found: Vec<ProductView> = self.peer.get_json(path).await?.unwrap_or_default();
        let mut products = std::collections::BTreeMap::new();
        for product in found {
            match ids.iter().find(|id| id.get() == product.id) {
                Some(id) => products.insert(*id, product),
                // A catalog that answers with products not asked for is not to be trusted.
                None => {
                    return Err(PeerError::Garbage {
                        peer: self.peer.name(),
                        detail: format!("product {} was not asked for", product.id),
                    });
                }
            };
        }
        Ok(products)
    }

    /// The product that has `sku` (`GET /products?sku=`), `Ok(None)` if none has, `Err` if
    /// the catalog could not answer.
    pub async fn product_with_sku(&self, sku: &str) -> Result<Option<ProductView>, PeerError> {
        let query: String = form_urlencoded::byte_serialize(sku.as_bytes()).collect();
        let found: Option<Vec<ProductView>> =
            self.peer.get_json(format!("/products?sku={query}")).await?;
        Ok(found.unwrap_or_default().into_iter().next())
    }

    /// `POST /reservations`: every line held under `reference` for the order until it is
    /// committed or released, or none (refused with 409 when out of stock or when the
    /// reference holds other lines, 422 for an unknown product).
    pub async fn reserve(
        &self,
        reference: &str,
        order_id: i64,
        lines: &[ReservationLine],
    ) -> Outcome<ReservationView, ReserveRefused> {
        let request = ReservationRequest {
            reference: Some(reference.to_string()),
            order_id,
            lines: lines.to_vec(),
            expires: Some(false),
        };
        self.peer
            .post("/reservations".to_string(), &request, Vec::new())
            .await
            .refused_as()
    }

    /// `POST /reservations/{reference}/commit`: the held stock is sold.
    pub async fn commit(&self, reference: &str) -> Outcome<ReservationView, SettleRefused> {
        self.peer
            .post(
                format!("/reservations/{reference}/commit"),
                &serde_json::json!({}),
                Vec::new(),
            )
            .await
            .refused_as()
    }

    /// `POST /reservations/{reference}/return`: the units of a sold reservation go back on
    /// sale (its order was cancelled after it was paid).
    pub async fn return_units(
        &self,
        reference: &str,
        reason: &str,
    ) -> Outcome<ReservationView, SettleRefused> {
        self.peer
            .post(
                format!("/reservations/{reference}/return"),
                &ReleaseRequest {
                    reason: Some(reason.to_string()),
                },
                Vec::new(),
            )
            .await
            .refused_as()
    }

    /// `POST /reservations/{reference}/returns`: the units of `returned` (some lines of a
    /// sold reservation, in sellable condition) go back on sale, once per return.
    pub async fn return_lines(
        &self,
        reference: &str,
        returned: &ReturnLines,
    ) -> Outcome<ReservationView, SettleRefused> {
        self.peer
            .post(
                format!("/reservations/{reference}/returns"),
                returned,
                Vec::new(),
            )
            .await
            .refused_as()
    }

    /// `POST /reservations/{reference}/release`: the held stock goes back on sale.
    pub async fn release(
        &self,
        reference: &str,
        reason: &str,
    ) -> Outcome<ReservationView, SettleRefused> {
        self.peer
            .post(
                format!("/reservations/{reference}/release"),
                &ReleaseRequest {
                    reason: Some(reason.to_string()),
                },
                Vec::new(),
            )
            .await
            .refused_as()
    }
}

crate::refusals! {
    /// Why the catalog did not reserve an order's lines (`POST /reservations`): it held
    /// none of them.
    pub enum ReserveRefused {
        /// A line asks for more units than are left.
        OutOfStock = (409, "out_of_stock"),
        /// The reference holds a reservation of other lines or for another order.
        ReferenceReused = (409, "reference_reused"),
        /// A line names a product the catalog does not have.
        UnknownProduct = (422, "unknown_product"),
        /// The request breaks a rule (named in the message).
        Invalid = (422, "validation_failed"),
    }
}

crate::refusals! {
    /// Why the catalog did not commit, release or take back (some of) a reservation's units.
    pub enum SettleRefused {
        /// No reservation has this reference.
        NotFound = (404, "not_found"),
        /// The reservation was settled the other way already (committed, or released).
        AlreadySettled = (409, "already_settled"),
        /// Units can come back only from a sold (committed) reservation.
        NotSold = (409, "not_sold"),
        /// More units than were sold and have not come back yet.
        MoreThanSold = (409, "more_than_sold"),
        /// The return's reference was recorded for other lines.
        ReferenceReused = (409, "reference_reused"),
        /// The request breaks a rule (named in the message).
        Invalid = (422, "validation_failed"),
    }
}

/// Whether `text` is a SKU: 1 to 64 letters, digits, `_`, `-` or `.` (the catalog's rule,
/// which a one-call checkout also reads SKUs by).
pub fn is_sku(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
