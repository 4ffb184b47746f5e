//! order-service's side of the wire: what payment-service and cart-service send to it and
//! read from it.

use crate::{OrderStatus, OrderStock};
use serde::{Deserialize, Serialize};
use service_kit::money::Cents;

/// `GET /orders/{id}` as another service reads it: only the fields it relies on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderView {
    /// The order's id.
    pub id: i64,
    /// What it costs, in cents.
    pub total: Cents,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// Its global reference: the key its stock is held under.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Where its stock is.
    pub stock: OrderStock,
}

/// The most lines an order may have; a cart holds no more, so a full cart can be ordered.
pub const MAX_ORDER_LINES: usize = 100;

/// One line of `POST /orders`: a product, how many, and the catalog price the caller saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NewOrderLine {
    /// The product.
    pub product_id: i64,
    /// How many.
    pub quantity: i64,
    /// Its price per unit, which must be the catalog's.
    pub price: Cents,
}

/// The body of `POST /orders` as an object: its lines and whom it is for (the bare array of
/// lines is the same order without them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaceOrder {
    /// The lines.
    pub items: Vec<NewOrderLine>,
    /// Who it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<crate::customer::Customer>,
    /// Where it goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<crate::customer::ShippingAddress>,
    /// A promo code for the order service to apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promo_code: Option<String>,
}

/// The body of `PUT /orders/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    /// The status asked for.
    pub status: OrderStatus,
    /// Why, kept in the order's history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Only from this status (409 otherwise): a checkout undoing its order cancels it only
    /// while it is PENDING, never a paid one (that would refund it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<OrderStatus>,
}
