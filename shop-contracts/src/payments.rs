//! payment-service's side of the wire, and its typed client: a checkout pays and asks
//! whether an order was captured, the order service reads the captured-payments summary.

use crate::PaymentStatus;
use serde::{Deserialize, Serialize};
use service_kit::config::Secret;
use service_kit::idempotency::KEY_HEADER;
use service_kit::money::Cents;
use service_kit::peer::{Outcome, PeerClient, PeerError, Refusal};
use std::time::Duration;

/// One entry of `GET /payments?order_id=`: only the fields a checkout relies on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentView {
    /// The payment's id.
    pub id: i64,
    /// Captured, failed, authorized (waiting for the order to be verified) or voided.
    pub status: PaymentStatus,
}

/// The body of `POST /pay` as a checkout sends it: the shopper's card, passed through and
/// never kept by the sender.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PayRequest<'a> {
    /// Left out to pay without a card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<&'a crate::card::CardIn>,
}

/// The signed body of a payment webhook (`POST /orders/{id}/payment`): on the wire
/// `{"type":"payment.succeeded","data":{...}}` or `{"type":"payment.refunded","data":{...}}`.
/// The receiver reads it without refusing fields it does not know: a newer payment service
/// may add some, and a notice refused as unreadable would never be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum PaymentNotice {
    /// A payment was captured.
    #[serde(rename = "payment.succeeded")]
    Succeeded(Captured),
    /// (Part of) a payment was refunded.
    #[serde(rename = "payment.refunded")]
    Refunded(Refunded),
}

/// `data` of a `payment.succeeded` notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Captured {
    pub payment_id: i64,
    pub order_id: i64,
    /// The global reference of the order the payment was verified against: the order
    /// service refuses the notice for an order with another ref (an order id reused after a
    /// restore). Absent in notices of payments made before references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_ref: Option<String>,
    /// What was captured.
    pub amount: Cents,
}

/// `data` of a `payment.refunded` notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refunded {
    pub payment_id: i64,
    pub order_id: i64,
    /// As in [`Captured`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_ref: Option<String>,
    /// What this refund gave back.
    pub amount: Cents,
    /// The refund announced.
    pub refund_id: i64,
    /// Everything refunded of the payment so far, this refund included: the receiver keeps
    /// the largest it has seen, so notices arriving out of order or twice never count a
    /// refund twice.
    pub refunded_total: Cents,
    /// Sent by payment services before returns by line (goods back); the order service
    /// ignores it: units come back through a return.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restock: bool,
}

impl PaymentNotice {
    /// The order the notice is about.
    pub fn order_id(&self) -> i64 {
        match self {
            PaymentNotice::Succeeded(c) => c.order_id,
            PaymentNotice::Refunded(r) => r.order_id,
        }
    }

    /// The payment the notice is about.
    pub fn payment_id(&self) -> i64 {
        match self {
            PaymentNotice::Succeeded(c) => c.payment_id,
            PaymentNotice::Refunded(r) => r.payment_id,
        }
    }

    /// The global reference of the order the payment was for, when the notice says.
    pub fn order_ref(&self) -> Option<&str> {
        match self {
            PaymentNotice::Succeeded(c) => c.order_ref.as_deref(),
            PaymentNotice::Refunded(r) => r.order_ref.as_deref(),
        }
    }
}

crate::refusals! {
    /// Why the order service did not apply a payment notice. Every one is about the order,
    /// so asking again gets the same answer: the payment service gives a refused capture's
    /// money back (see [`crate::orders::NoticeAnswer`]).
    pub enum NoticeRefused {
        /// No order has this id.
        OrderNotFound = (404, "not_found"),
        /// The payment is for another order: another ref (an order id reused after a
        /// restore).
        OtherOrder = (409, "other_order"),
        /// The notice names another order id than its URL.
        OtherOrderId = (422, "other_order_id"),
        /// The order cannot be paid any more (cancelled).
        NotPayable = (409, "not_payable"),
        /// The amount is not the order's total, or refunds would exceed it.
        WrongAmount = (422, "wrong_amount"),
    }
}

/// A refund as another service reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefundView {
    /// The refund's id.
    pub id: i64,
    /// What it gave back.
    pub amount: Cents,
}

/// The body of `POST /payments/{id}/refunds` as the order service sends it.
#[derive(Debug, Clone, Serialize)]
pub struct RefundRequest<'a> {
    /// How much; all that is left when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Cents>,
    /// Why, kept with the refund.
    pub reason: &'a str,
}

/// `GET /payments/summary`: what the order service reconciles paid orders against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentsSummary {
    /// Captured payments (refunded ones included).
    pub captured_count: i64,
    /// Their total.
    pub captured_total: Cents,
    /// What was refunded of them.
    #[serde(default)]
    pub refunded_total: Cents,
    /// Payments only authorized (the order not verified yet): no money moved.
    #[serde(default)]
    pub authorized_count: i64,
    /// Their total.
    #[serde(default)]
    pub authorized_total: Cents,
}

/// `GET /payments/by-order`: what the captured payments of one order hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderMoney {
    pub order_id: i64,
    /// The order's global reference (none for payments made before references).
    pub order_ref: Option<String>,
    /// Captured for it.
    pub captured: Cents,
    /// Refunded of that.
    pub refunded: Cents,
}

crate::refusals! {
    /// Why the payment service refunded nothing (`POST /payments/{id}/refunds`).
    pub enum RefundRefused {
        /// No payment has this id.
        NotFound = (404, "not_found"),
        /// Only a captured payment can be refunded.
        NotCaptured = (409, "not_captured"),
        /// Nothing is left to refund: refunded in full already.
        RefundedInFull = (409, "refunded_in_full"),
        /// More than is left to refund was asked for (the message says how much is left).
        MoreThanLeft = (422, "more_than_left"),
        /// The request breaks a rule (named in the message).
        Invalid = (422, "validation_failed"),
    }
}

/// Why the issuer refused a valid card: the decline codes a payment answers 402 with (as
/// Stripe names them), which a checkout passes on to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decline {
    /// Declined, no reason given.
    CardDeclined,
    /// Not enough money on the card.
    InsufficientFunds,
    /// The card has expired.
    ExpiredCard,
    /// The security code is wrong.
    IncorrectCvc,
}

impl Decline {
    /// Every decline.
    pub const ALL: [Decline; 4] = [
        Decline::CardDeclined,
        Decline::InsufficientFunds,
        Decline::ExpiredCard,
        Decline::IncorrectCvc,
    ];

    /// The decline code, as Stripe names it.
    pub fn code(self) -> &'static str {
        match self {
            Decline::CardDeclined => "card_declined",
            Decline::InsufficientFunds => "insufficient_funds",
            Decline::ExpiredCard => "expired_card",
            Decline::IncorrectCvc => "incorrect_cvc",
        }
    }

    /// The decline a code names; an unknown code is a plain decline.
    pub fn from_code(code: &str) -> Decline {
        Decline::ALL
            .into_iter()
            .find(|d| d.code() == code)
            .unwrap_or(Decline::CardDeclined)
    }

    /// A sentence for people.
    pub fn message(self) -> &'static str {
        match self {
            Decline::CardDeclined => "the card was declined",
            Decline::InsufficientFunds => "the card has insufficient funds",
            Decline::ExpiredCard => "the card has expired",
            Decline::IncorrectCvc => "the card's security code is incorrect",
        }
    }
}

/// Why the payment service took no money (`POST /pay`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayRefused {
    /// 402: the card was declined, for this reason.
    Declined(Decline, String),
    /// 409: the order cannot be paid (cancelled, paid already, another amount), or the
    /// Idempotency-Key was used for another request.
    Conflict(String),
    /// 400 or 422: the request or the card breaks a rule.
    Invalid(String),
    /// 404: the order service does not know the order.
    NotFound(String),
    /// The request never reached the payment service.
    NotSent(String),
    /// A refusal this contract does not name (401, 403, 429): nothing was taken.
    Other(String),
}

impl From<Refusal> for PayRefused {
    fn from(refusal: Refusal) -> Self {
        let status = refusal.status();
        let Refusal { code, message, .. } = refusal;
        match status {
            Some(402) => PayRefused::Declined(Decline::from_code(&code), message),
            Some(409) => PayRefused::Conflict(message),
            Some(400 | 422) => PayRefused::Invalid(message),
            Some(404) => PayRefused::NotFound(message),
            None => PayRefused::NotSent(message),
            Some(_) => PayRefused::Other(message),
        }
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

    /// `POST /pay` for order `order_id` of user `user_id` (whose payment it is filed as),
    /// with the card as the client sent it (never stored by the sender) and an idempotency
    /// key.
    pub async fn pay(
        &self,
        (order_id, user_id): (i64, &str),
        amount: Cents,
        card: Option<&crate::card::CardIn>,
        idempotency_key: String,
    ) -> Outcome<PaymentView, PayRefused> {
        // A user id is letters, digits, '_', '-' and '.': nothing to escape in a query.
        let path = format!("/pay?order_id={order_id}&amount={amount}&user_id={user_id}");
        let headers = vec![(KEY_HEADER, idempotency_key)];
        self.peer
            .post(path, &PayRequest { card }, headers)
            .await
            .refused_as()
    }

    /// The captured payment for the order, if there is one.
    pub async fn captured_for(&self, order_id: i64) -> Result<Option<i64>, PeerError> {
        let payments = self.payments_for(order_id).await?;
        Ok(payments
            .iter()
            .find(|p| p.status == PaymentStatus::Captured)
            .map(|p| p.id))
    }

    /// A payment that holds money for the order or may still take it (captured, or
    /// authorized and waiting for the order to be verified), if there is one.
    pub async fn holding_money_for(&self, order_id: i64) -> Result<Option<i64>, PeerError> {
        let payments = self.payments_for(order_id).await?;
        Ok(payments
            .iter()
            .find(|p| {
                matches!(
                    p.status,
                    PaymentStatus::Captured | PaymentStatus::Authorized
                )
            })
            .map(|p| p.id))
    }

    async fn payments_for(&self, order_id: i64) -> Result<Vec<PaymentView>, PeerError> {
        let payments: Option<Vec<PaymentView>> = self
            .peer
            .get_json(format!("/payments?order_id={order_id}"))
            .await?;
        Ok(payments.unwrap_or_default())
    }

    /// `POST /payments/{id}/refunds`: all that is left of the payment, under
    /// `idempotency_key` (asking again with it refunds nothing more).
    pub async fn refund_rest(
        &self,
        payment_id: i64,
        reason: &str,
        idempotency_key: String,
    ) -> Outcome<RefundView, RefundRefused> {
        self.refund(payment_id, None, reason, idempotency_key).await
    }

    /// `POST /payments/{id}/refunds` of `amount` (all that is left when `None`), under an
    /// idempotency key, so asking again never refunds twice.
    pub async fn refund(
        &self,
        payment_id: i64,
        amount: Option<Cents>,
        reason: &str,
        idempotency_key: String,
    ) -> Outcome<RefundView, RefundRefused> {
        let headers = vec![(KEY_HEADER, idempotency_key)];
        let path = format!("/payments/{payment_id}/refunds");
        self.peer
            .post(path, &RefundRequest { amount, reason }, headers)
            .await
            .refused_as()
    }

    /// `GET /payments/{id}`: the payment as it is now, `Ok(None)` if unknown.
    pub async fn payment(&self, id: i64) -> Result<Option<PaymentView>, PeerError> {
        self.peer.get_json(format!("/payments/{id}")).await
    }

    /// `GET /payments/by-order`: the money captured payments hold, per order.
    pub async fn money_by_order(&self) -> Result<Vec<OrderMoney>, PeerError> {
        let money: Option<Vec<OrderMoney>> =
            self.peer.get_json("/payments/by-order".into()).await?;
        Ok(money.unwrap_or_default())
    }

    /// `GET /payments/summary`: what was captured; `Ok(None)` if the payment service has no
    /// such route.
    pub async fn summary(&self) -> Result<Option<PaymentsSummary>, PeerError> {
        self.peer.get_json("/payments/summary".into()).await
    }
}
