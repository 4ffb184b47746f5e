//! order-service's side of the wire: what payment-service and cart-service send to it and
//! read from it.

use crate::{OrderStatus, OrderStock};
use serde::{Deserialize, Serialize};
use service_kit::config::Secret;
use service_kit::domain::Id;
use service_kit::idempotency::KEY_HEADER;
use service_kit::money::Cents;
use service_kit::peer::{Outcome, PeerClient, PeerError};
use service_kit::webhook::{
    ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSecret, signature_header, unix_now,
};
use std::time::Duration;

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
    /// The user it is filed under (a customer's or a guest's id).
    #[serde(default)]
    pub user_id: Option<String>,
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

/// The body of `PUT /orders/{id}/status`: a checkout sends it to undo its order, an admin
/// to ship, deliver or cancel one; the order service reads this type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// SHIPPED, DELIVERED or CANCELLED (any case); PAID and REFUNDED only come with a
    /// payment webhook. Cancelling a PAID order refunds it in full.
    #[serde(deserialize_with = "status_any_case")]
    #[schema(example = "SHIPPED")]
    pub status: OrderStatus,
    /// Why, kept in the order's history (the first 500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Only if the order is in this status now (409 otherwise): a checkout undoing its order
    /// cancels it only while it is PENDING, never a paid one (that would refund it).
    #[serde(
        default,
        deserialize_with = "some_status_any_case",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(example = "PENDING")]
    pub from: Option<OrderStatus>,
    /// With SHIPPED: who carries it (1 to 100 characters), given with `tracking_number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "DHL", max_length = 100)]
    pub carrier: Option<String>,
    /// With SHIPPED: the carrier's tracking number (1 to 100 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "JD014600006281230704", max_length = 100)]
    pub tracking_number: Option<String>,
}

/// A status as a person types it: any case (`shipped`), refused naming the choices.
fn status_any_case<'de, D: serde::Deserializer<'de>>(d: D) -> Result<OrderStatus, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

fn some_status_any_case<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<OrderStatus>, D::Error> {
    status_any_case(d).map(Some)
}

crate::refusals! {
    /// Why the order service changed no status (`PUT /orders/{id}/status`).
    pub enum StatusChangeRefused {
        /// No order has this id.
        NotFound = (404, "not_found"),
        /// The order is not in the status the change asked to start `from`.
        NotInStatus = (409, "not_in_status"),
        /// The lifecycle does not allow the change from the order's status.
        TransitionRefused = (409, "transition_refused"),
        /// The request breaks a rule (named in the message).
        Invalid = (422, "validation_failed"),
    }
}

crate::refusals! {
    /// Why the order service placed no order (`POST /orders`), or cancelled the one it
    /// placed for want of stock.
    pub enum PlaceRefused {
        /// The catalog has too few units of a line, or a line's product is no longer sold.
        OutOfStock = (409, "out_of_stock"),
        /// The order, a line, the customer, the address or the promo code breaks a rule.
        Invalid = (422, "validation_failed"),
        /// The Idempotency-Key was used for another request.
        KeyReused = (409, "conflict"),
        /// The storefront client (or customer) holds as many units unpaid as it may.
        HoldLimit = (409, "hold_limit"),
        /// The request could not be read (a malformed parameter or key).
        BadRequest = (400, "bad_request"),
    }
}

/// What the order service's answer to a payment notice (`POST /orders/{id}/payment`) means
/// for its delivery. The answer's status stays on the delivery's record; this is the one
/// place it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeAnswer {
    /// 2xx: applied (or applied already).
    Accepted,
    /// Refused because of the order (a status of [`crate::payments::NoticeRefused`]'s table:
    /// 404 unknown, 409 cancelled or another order, 422 another amount): asking again gets
    /// the same answer, and a refused capture's money goes back.
    RefusedForGood,
    /// Refused for another request-level reason a retry cannot fix (400, 413, ...), but that
    /// says nothing about the order: no money moves.
    Unreadable,
    /// 401 or 403: the webhook secret or the key does not match (being rotated, or set
    /// wrong); an operator fixes it, so the delivery keeps its retry schedule.
    SecretOrKeyRefused,
    /// 408, 429 or a 5xx: try later.
    NotNow,
}

impl NoticeAnswer {
    /// The meaning of the order service's `status`.
    pub fn of(status: u16) -> NoticeAnswer {
        let about_the_order = crate::payments::NoticeRefused::TABLE
            .iter()
            .any(|(_, refused, _)| *refused == status);
        match status {
            200..=299 => NoticeAnswer::Accepted,
            _ if about_the_order => NoticeAnswer::RefusedForGood,
            401 | 403 => NoticeAnswer::SecretOrKeyRefused,
            408 | 429 => NoticeAnswer::NotNow,
            400..=499 => NoticeAnswer::Unreadable,
            _ => NoticeAnswer::NotNow,
        }
    }

    /// True when asking again cannot change the answer.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            NoticeAnswer::Accepted | NoticeAnswer::RefusedForGood | NoticeAnswer::Unreadable
        )
    }
}

/// Typed access to order-service, for the cart (place and cancel an order, read its status)
/// and the payment service (read an order before charging it, deliver signed notices).
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
    /// finds the same order instead of placing a second one; `held_for` names the storefront
    /// client (an address) it is placed for, whose holds are capped and shorter.
    pub async fn create(
        &self,
        (user_id, held_for): (&str, Option<std::net::IpAddr>),
        order: &PlaceOrder,
        idempotency_key: String,
    ) -> Outcome<OrderView, PlaceRefused> {
        let held_for = held_for
            .map(|ip| format!("&held_for={ip}"))
            .unwrap_or_default();
        self.peer
            .post(
                format!("/orders?user_id={user_id}{held_for}"),
                order,
                vec![(KEY_HEADER, idempotency_key)],
            )
            .await
            .refused_as()
    }

    /// `PUT /orders/{id}/status` to CANCELLED with a reason, only while it is PENDING:
    /// never a paid order (a checkout goes forward with that one).
    pub async fn cancel(
        &self,
        order_id: i64,
        reason: &str,
    ) -> Outcome<OrderView, StatusChangeRefused> {
        let change = StatusChange {
            status: OrderStatus::Cancelled,
            reason: Some(reason.to_string()),
            from: Some(OrderStatus::Pending),
            carrier: None,
            tracking_number: None,
        };
        self.peer
            .put(format!("/orders/{order_id}/status"), &change)
            .await
            .refused_as()
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

    /// The order's status, `Ok(None)` if the order service does not know it.
    pub async fn status(&self, order_id: i64) -> Result<Option<OrderStatus>, PeerError> {
        let order: Option<OrderView> = self.peer.get_json(format!("/orders/{order_id}")).await?;
        Ok(order.map(|o| o.status))
    }

    /// Sends one signed payment notice (`payload`, delivery `id`) to order `order_id`'s
    /// payment endpoint with a fresh timestamp and signature, under the journey's
    /// correlation id. Returns the status the order service answered (kept on the
    /// delivery's record; [`NoticeAnswer::of`] says what it means).
    pub async fn send_notice(
        &self,
        (id, order_id): (&str, i64),
        payload: &[u8],
        journey: Option<&str>,
        secrets: &[WebhookSecret],
    ) -> Result<u16, PeerError> {
        let timestamp = unix_now();
        let signature = signature_header(secrets, id, timestamp, payload);
        let mut headers = vec![
            (ID_HEADER, id.to_string()),
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (SIGNATURE_HEADER, signature),
        ];
        if let Some(journey) = journey {
            headers.push((service_kit::http::REQUEST_ID_HEADER, journey.to_string()));
        }
        let response = self
            .peer
            .post_raw(
                format!("/orders/{order_id}/payment"),
                payload.to_vec(),
                headers,
            )
            .await?;
        Ok(response.status)
    }
}

#[cfg(test)]
mod tests {
    use super::NoticeAnswer;

    #[test]
    fn a_notice_refused_because_of_the_order_is_final_and_a_secret_problem_is_not() {
        assert_eq!(NoticeAnswer::of(204), NoticeAnswer::Accepted);
        for status in [404, 409, 422] {
            assert_eq!(NoticeAnswer::of(status), NoticeAnswer::RefusedForGood);
            assert!(NoticeAnswer::of(status).is_final());
        }
        for status in [401, 403] {
            assert_eq!(NoticeAnswer::of(status), NoticeAnswer::SecretOrKeyRefused);
        }
        for status in [401, 403, 408, 429, 500, 503] {
            assert!(!NoticeAnswer::of(status).is_final(), "{status}");
        }
        assert_eq!(NoticeAnswer::of(400), NoticeAnswer::Unreadable);
        assert!(NoticeAnswer::of(400).is_final());
    }
}
