//! `/pay` and `/payments`: take a (simulated) payment for an order; its webhook goes into
//! the outbox in the same transaction and is tried at once.

use crate::AppState;
use crate::charges::{self, PayError, PayRefused, Taken};
use crate::domain::{NotPayable, Payment, Refund};
use crate::refunds;
use crate::store;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::auth::Access;
use service_kit::domain::{Id, Page, UserId};
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, OptionalJsonBody, Path, Query};
use service_kit::listing::{Listed, TOTAL_COUNT_HEADER};
use service_kit::money::Cents;
use service_kit::openapi::ProtectedErrors;
use shop_contracts::PaymentStatus;
use shop_contracts::card::{CardBody, card_from_body};
use shop_contracts::payments::{OrderMoney, PaymentsSummary};

/// A payment as the API shows it. A card appears only as brand, last four and expiry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentOut {
    pub id: i64,
    /// The currency of its amounts (ISO 4217).
    #[schema(example = "EUR")]
    pub currency: &'static str,
    /// Its global reference.
    #[serde(rename = "ref")]
    pub reference: String,
    pub order_id: i64,
    /// The global reference of the order the capture was verified against.
    pub order_ref: Option<String>,
    pub amount: Cents,
    /// `captured` (money taken for a verified order), `failed` (declined), `authorized`
    /// (taken while the order service could not be asked: nothing captured until it
    /// confirms the order and amount) or `voided` (the order service refused it).
    pub status: PaymentStatus,
    /// Why a failed payment was declined (`card_declined`, `insufficient_funds`, ...).
    pub failure_code: Option<String>,
    /// Why an authorized payment was voided.
    pub void_reason: Option<String>,
    /// What has been refunded of it (see `/payments/{id}/refunds`).
    pub refunded: Cents,
    pub card: Option<CardOut>,
    /// True once the order service confirmed the order and amount.
    pub order_verified: bool,
    /// The webhook that tells the order service (captured payments only).
    pub webhook_delivery_id: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub webhook_status: Option<String>,
    pub created_at: String,
}

/// What is kept of a card (a shopper sees its brand and last four only).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardOut {
    pub brand: String,
    pub last4: String,
    pub exp_month: Option<u32>,
    pub exp_year: Option<u32>,
}

impl PaymentOut {
    /// `payment` as `access` may see it: all of it for the admin; for its shopper, its card
    /// as brand and last four, and no webhook details.
    pub fn shown_to(payment: Payment, access: &Access) -> PaymentOut {
        let mut shown = PaymentOut::from(payment);
        if !access.is_admin() {
            if let Some(card) = &mut shown.card {
                card.exp_month = None;
                card.exp_year = None;
            }
            shown.webhook_delivery_id = None;
            shown.webhook_status = None;
        }
        shown
    }
}

impl From<Payment> for PaymentOut {
    fn from(p: Payment) -> Self {
        PaymentOut {
            id: p.id,
            currency: service_kit::money::shop_currency(),
            reference: p.reference,
            order_id: p.order_id,
            order_ref: p.order_ref,
            amount: p.amount,
            status: p.status,
            failure_code: p.failure_code,
            void_reason: p.void_reason,
            refunded: p.refunded,
            card: p.card.map(|c| CardOut {
                brand: c.brand,
                last4: c.last4,
                exp_month: Some(c.exp_month),
                exp_year: Some(c.exp_year),
            }),
            order_verified: p.order_verified,
            webhook_delivery_id: p.webhook_delivery_id,
            webhook_status: p.webhook_status,
            created_at: p.created_at,
        }
    }
}

/// `POST /pay?order_id=ID&amount=A`. The amount is read as text so it is parsed exactly.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayParams {
    /// The order paid for.
    #[param(minimum = 1)]
    pub order_id: i64,
    /// The order's total as a decimal (999.99).
    #[param(example = "999.99", pattern = r"^[0-9]{1,13}(\.[0-9]{1,2})?$")]
    pub amount: String,
    /// Whose payment it is (the user the order is filed under), as a checkout names it;
    /// the admin key only: a shopper's payment is filed under the owner of its order.
    #[param(value_type = Option<UserId>, inline)]
    pub user_id: Option<String>,
}

/// `GET /payments?order_id=&limit=&offset=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this order's payments.
    #[param(minimum = 1)]
    pub order_id: Option<i64>,
    /// Rows wanted (1 to 200, default 50).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u32>,
}

/// Takes a simulated payment for an order; a captured one is told to the order service by
/// a signed webhook that is retried until it is acknowledged. When the order service cannot
/// be asked, nothing is captured: the payment is authorized (202) and captured or voided
/// once it answers.
#[utoipa::path(
    post,
    path = "/pay",
    tag = "payments",
    params(PayParams, ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 visible ASCII characters; a retry with the same key and body gets the first answer again", max_length = 255)),
    request_body(content = Option<CardBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "Captured", body = PaymentOut),
        (status = 202, description = "Authorized only: the order could not be verified yet; captured or voided once it is", body = PaymentOut),
        (status = 400, description = "A parameter of the wrong type or a malformed Idempotency-Key", body = ErrorBody),
        (status = 402, description = "Declined; recorded as failed", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "The order is paid or cancelled, its stock not held yet, or the key is in use", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "A body that is not sent as JSON", body = ErrorBody),
        (status = 422, description = "An invalid amount, card or body, an amount that is not the order total, or a key reused with another body", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn pay(
    State(state): State<AppState>,
    access: Access,
    headers: HeaderMap,
    Query(params): Query<PayParams>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<(StatusCode, Json<PaymentOut>), ApiError> {
    let order_id = Id::parse(params.order_id, "order_id")?;
    let payer = match &access {
        Access::Admin => params
            .user_id
            .as_deref()
            .map(UserId::parse)
            .transpose()?
            .map(|u| u.as_str().to_string()),
        Access::Shopper(_) if params.user_id.is_some() => {
            return Err(ApiError::Forbidden(
                "a shopper's payment is filed under its order's owner: leave user_id out".into(),
            ));
        }
        Access::Shopper(_) => Some(shoppers_order(&state, &access, &headers, order_id).await?),
    };
    let amount = Cents::parse_decimal(params.amount.trim())
        .map_err(|e| ApiError::Validation(format!("amount: {e}")))?;
    if amount.get() <= 0 {
        return Err(ApiError::Validation("amount must be positive".to_string()));
    }
    let card = card_from_body(&body)?;
    Ok(
        match charges::take_payment(&state, order_id, amount, card, payer).await? {
            Taken::Captured(payment) => (StatusCode::OK, Json(payment.into())),
            Taken::Authorized(payment) => (StatusCode::ACCEPTED, Json(payment.into())),
        },
    )
}

impl From<PayError> for ApiError {
    fn from(err: PayError) -> ApiError {
        match err {
            PayError::Store(err) => err.into(),
            PayError::Invalid(invalid) => invalid.into(),
            PayError::Refused(PayRefused::Order(NotPayable::UnknownOrder(m))) => {
                ApiError::NotFound(m)
            }
            PayError::Refused(PayRefused::Order(NotPayable::Ended(m)))
            | PayError::Refused(PayRefused::NotYet(m))
            | PayError::Refused(PayRefused::AlreadyCaptured(m)) => ApiError::Conflict(m),
            PayError::Refused(PayRefused::Order(NotPayable::WrongAmount(m))) => {
                ApiError::Validation(m)
            }
            PayError::Refused(PayRefused::Declined {
                decline,
                payment_id,
                order_id,
            }) => ApiError::Declined {
                code: decline.code(),
                message: format!(
                    "{}; payment {payment_id} recorded as failed and order {order_id} left unpaid",
                    decline.message()
                ),
            },
        }
    }
}

/// Payments, newest first.
#[utoipa::path(
    get,
    path = "/payments",
    tag = "payments",
    params(ListParams),
    responses(
        (status = 200, description = "Payments", body = [PaymentOut],
            headers(("X-Total-Count" = i64, description = "How many match in all"),
                    ("Link" = String, description = "<...>; rel=\"next\" while more are left"))),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        (status = 422, description = "Not a positive order id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn payments_list(
    State(state): State<AppState>,
    access: Access,
    uri: Uri,
    Query(params): Query<ListParams>,
) -> Result<Listed<PaymentOut>, ApiError> {
    let user = access.customer().map(str::to_string);
    let order_id = params
        .order_id
        .map(|id| Id::parse(id, "order_id"))
        .transpose()?;
    let page = Page {
        limit: params.limit,
        offset: params.offset,
    };
    let payments = state
        .db
        .call(move |conn| {
            Ok(store::list_payments(
                conn,
                (order_id, user.as_deref()),
                page,
            )?)
        })
        .await?;
    let shown = move |p: Payment| PaymentOut::shown_to(p, &access);
    Ok(Listed::new(payments, page, uri).map(shown))
}

/// One payment.
#[utoipa::path(
    get,
    path = "/payments/{id}",
    tag = "payments",
    params(("id" = i64, Path, description = "Payment id")),
    responses(
        (status = 200, description = "The payment", body = PaymentOut),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No such payment", body = ErrorBody),
        (status = 422, description = "Not a positive id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn payments_get(
    State(state): State<AppState>,
    access: Access,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<PaymentOut>, ApiError> {
    let id = Id::parse(id, "payment id")?;
    let opened = state
        .sessions
        .as_ref()
        .and_then(|keys| keys.opened_order(&headers));
    state
        .db
        .read(move |conn| Ok(store::get_payment(conn, id)?))
        .await?
        .filter(|found| {
            found.user_id.as_deref().is_some_and(|u| access.owns(u))
                || access.is_admin()
                || (opened.is_some() && found.order_ref == opened)
        })
        .map(|found| Json(PaymentOut::shown_to(found, &access)))
        .ok_or_else(|| ApiError::NotFound(format!("payment {id} not found")))
}

/// The owner of order `order_id` when `access` (a shopper) may pay it: their own order, or
/// the one their `X-Order-Token` opens. Anyone else's is "no such order"; when the order
/// service cannot be asked a shopper cannot pay (nobody can tell whose the order is).
async fn shoppers_order(
    state: &AppState,
    access: &Access,
    headers: &HeaderMap,
    order_id: Id,
) -> Result<String, ApiError> {
    let not_found = || ApiError::NotFound(format!("order {order_id} not found"));
    let order = state
        .orders
        .order(order_id)
        .await
        .map_err(|err| ApiError::Unavailable(format!("the order cannot be checked now: {err}")))?
        .ok_or_else(not_found)?;
    let owner = order.user_id.clone().ok_or_else(not_found)?;
    let opened = state
        .sessions
        .as_ref()
        .and_then(|keys| keys.opened_order(headers));
    if access.owns(&owner) || opened.as_deref() == Some(order.reference.as_str()) {
        Ok(owner)
    } else {
        Err(not_found())
    }
}

/// Count and total of captured payments (and of their refunds, and of payments only
/// authorized), for reconciliation.
#[utoipa::path(
    get,
    path = "/payments/summary",
    tag = "payments",
    responses(
        (status = 200, description = "Captured payments", body = PaymentsSummary),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn payments_summary(
    State(state): State<AppState>,
) -> Result<Json<PaymentsSummary>, ApiError> {
    Ok(Json(state.db.call(|conn| Ok(store::summary(conn)?)).await?))
}

/// What the captured payments hold per order (captured, refunded), so the order service can
/// name the orders behind a reconciliation mismatch.
#[utoipa::path(
    get,
    path = "/payments/by-order",
    tag = "payments",
    responses(
        (status = 200, description = "Per order, by order id", body = [OrderMoney]),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn payments_by_order(
    State(state): State<AppState>,
) -> Result<Json<Vec<OrderMoney>>, ApiError> {
    Ok(Json(
        state
            .db
            .call(|conn| Ok(store::money_by_order(conn)?))
            .await?,
    ))
}

/// Money given back from a payment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefundOut {
    pub id: i64,
    /// The currency of its amount (ISO 4217).
    #[schema(example = "EUR")]
    pub currency: &'static str,
    /// Its global reference.
    #[serde(rename = "ref")]
    pub reference: String,
    pub payment_id: i64,
    pub amount: Cents,
    pub reason: Option<String>,
    /// The goods came back: the order's units are returned to stock.
    pub restock: bool,
    pub created_at: String,
}

impl From<Refund> for RefundOut {
    fn from(r: Refund) -> Self {
        RefundOut {
            id: r.id,
            currency: service_kit::money::shop_currency(),
            reference: r.reference,
            payment_id: r.payment_id,
            amount: r.amount,
            reason: r.reason,
            restock: r.restock,
            created_at: r.created_at,
        }
    }
}

/// Optional body of a refund: how much (all that is left when absent) and why.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundIn {
    /// A decimal above 0, at most what is left of the payment.
    #[schema(value_type = Option<f64>, example = 10.00)]
    pub amount: Option<Cents>,
    /// Up to 500 characters, kept with the refund.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
    /// Only false (the default): a refund puts no units back on sale. Goods that came back
    /// are recorded by line with `POST /orders/{id}/returns` on the order service, which
    /// refunds their value and restocks exactly the sellable units; `true` is a 422 saying so.
    pub restock: Option<bool>,
}

impl RefundIn {
    /// The optional body of a refund, each field checked (a 422 naming it).
    fn parse(body: &[u8]) -> Result<RefundIn, ApiError> {
        let asked: RefundIn = if body.iter().all(u8::is_ascii_whitespace) {
            RefundIn::default()
        } else {
            service_kit::extract::require_utf8(body)?;
            serde_json::from_slice(body)
                .map_err(|e| ApiError::Validation(format!("refund body: {e}")))?
        };
        if asked.amount.is_some_and(|a| a.get() <= 0) {
            return Err(ApiError::Validation("amount must be positive".into()));
        }
        if asked
            .reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > 500)
        {
            return Err(ApiError::Validation(
                "reason is at most 500 characters".into(),
            ));
        }
        if asked.restock == Some(true) {
            return Err(ApiError::Validation(
                "a refund puts no units back on sale: record the lines that came back with \
                 POST /orders/{id}/returns on the order service, which refunds them too"
                    .into(),
            ));
        }
        Ok(asked)
    }
}

/// Refunds a captured payment, in full or in part (never beyond what is left); the order
/// service is told by a signed `payment.refunded` webhook through the outbox.
#[utoipa::path(
    post,
    path = "/payments/{id}/refunds",
    tag = "payments",
    params(("id" = i64, Path, description = "Payment id"), ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 visible ASCII characters; a retry with the same key and body gets the first answer again", max_length = 255)),
    request_body(content = Option<RefundIn>, content_type = "application/json"),
    responses(
        (status = 201, description = "Refunded", body = RefundOut),
        (status = 400, description = "Not a number, or a malformed Idempotency-Key", body = ErrorBody),
        (status = 404, description = "No such payment", body = ErrorBody),
        (status = 409, description = "Not a captured payment, refunded in full already, or the key is in use", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "A body that is not sent as JSON", body = ErrorBody),
        (status = 422, description = "Not a positive id, an invalid body, more than is left, or a key reused with another body", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn refunds_create(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<(StatusCode, Json<RefundOut>), ApiError> {
    let id = Id::parse(id, "payment id")?;
    let asked = RefundIn::parse(&body)?;
    let restock = false;
    let refund = refunds::refund(&state, id, asked.amount, asked.reason, restock).await?;
    Ok((StatusCode::CREATED, Json(refund.into())))
}

/// A payment's refunds, oldest first: all of them (a payment has few), their number in
/// `X-Total-Count` like every list.
#[utoipa::path(
    get,
    path = "/payments/{id}/refunds",
    tag = "payments",
    params(("id" = i64, Path, description = "Payment id")),
    responses(
        (status = 200, description = "Its refunds", body = [RefundOut],
            headers(("X-Total-Count" = i64, description = "How many refunds it has"))),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No such payment", body = ErrorBody),
        (status = 422, description = "Not a positive id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn refunds_list(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<([(&'static str, String); 1], Json<Vec<RefundOut>>), ApiError> {
    let id = Id::parse(id, "payment id")?;
    let refunds = state
        .db
        .call_with(move |conn| {
            if store::get_payment(conn, id)?.is_none() {
                return Err(ApiError::NotFound(format!("payment {id} not found")));
            }
            Ok(store::refunds_of(conn, id)?)
        })
        .await?;
    let total = [(TOTAL_COUNT_HEADER, refunds.len().to_string())];
    Ok((
        total,
        Json(refunds.into_iter().map(RefundOut::from).collect()),
    ))
}
