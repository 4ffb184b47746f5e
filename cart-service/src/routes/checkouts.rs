//! `/cart/{user_id}/checkout` and `/checkouts`: run a checkout, and see where one stands.

use crate::AppState;
use crate::checkout::{self, Ended};
use crate::domain::{Checkout, CheckoutLine, CheckoutStatus, Step, StepLog};
use crate::store;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::domain::{Page, UserId};
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, OptionalJsonBody, Path, Query};
use service_kit::money::Cents;
use service_kit::openapi::ProtectedErrors;
use shop_contracts::card::{self, CardBody, CardIn};

/// `GET /checkouts?user_id=U&limit=&offset=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The shopper whose checkouts are listed.
    #[param(value_type = UserId, inline)]
    pub user_id: String,
    /// Rows wanted (1 to 200, default 50).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u32>,
}

/// A checkout as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckoutOut {
    pub id: i64,
    /// The checkout's global reference (a UUIDv7); its calls to other services are keyed by it.
    #[serde(rename = "ref")]
    pub reference: String,
    pub user_id: String,
    pub status: CheckoutStatus,
    /// The step under way, or where it ended.
    pub step: Step,
    pub steps: Vec<StepLog>,
    pub lines: Vec<CheckoutLine>,
    pub total: Option<Cents>,
    pub order_id: Option<i64>,
    pub payment_id: Option<i64>,
    pub failed_step: Option<Step>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub correlation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Checkout> for CheckoutOut {
    fn from(c: Checkout) -> Self {
        CheckoutOut {
            id: c.id,
            reference: c.reference,
            user_id: c.user_id,
            status: c.status,
            step: c.step,
            steps: c.steps,
            lines: c.lines,
            total: c.total,
            order_id: c.order_id,
            payment_id: c.payment_id,
            failed_step: c.failed_step,
            failure_code: c.failure_code,
            failure_reason: c.failure_reason,
            correlation_id: c.correlation_id,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Reads the optional `{"card":{...}}` body and checks the card's form, so that a malformed
/// card is refused before an order is placed, not at the pay step with an order and a
/// reservation to undo. The card is passed on to the payment service and never kept.
fn card_from_body(body: &[u8]) -> Result<Option<CardIn>, ApiError> {
    let card = card::card_from_body(body)?;
    if let Some(card) = &card {
        card::check(card, service_kit::clock::current_year_month())?;
    }
    Ok(card)
}

/// Checks out the whole cart: validate, order, reserve, pay, commit, clear. A failed step
/// undoes the earlier ones. Send an `Idempotency-Key` header to make a retry safe.
#[utoipa::path(
    post,
    path = "/cart/{user_id}/checkout",
    params(
        ("user_id" = inline(UserId), Path, description = "The shopper"),
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 visible ASCII characters; a retry with the same key and body gets the first answer again", max_length = 255),
    ),
    request_body(content = Option<CardBody>, content_type = "application/json"),
    responses(
        (status = 201, description = "Completed: paid, stock taken, cart cleared", body = CheckoutOut),
        (status = 202, description = "Paid; the last steps finish in the background", body = CheckoutOut),
        (status = 400, description = "A malformed Idempotency-Key", body = ErrorBody),
        (status = 402, description = "The card was declined; the checkout was undone", body = ErrorBody),
        (status = 404, description = "A product of the cart is gone", body = ErrorBody),
        (status = 409, description = "A checkout of this user is running, stock ran out, or the key is in use", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "A body that is not sent as JSON", body = ErrorBody),
        (status = 422, description = "An empty cart, an invalid user id, card or body, or a key reused with another body", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn cart_checkout(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<(StatusCode, Json<CheckoutOut>), ApiError> {
    let user = UserId::parse(&user_id)?;
    let card = card_from_body(&body)?;
    match checkout::start(&state, user, card).await? {
        Ended::Completed(done) => Ok((StatusCode::CREATED, Json(done.into()))),
        Ended::Finishing(paid) => Ok((StatusCode::ACCEPTED, Json(paid.into()))),
        Ended::Failed(_, failure) => Err(failure.into()),
        Ended::Unsettled(_, message) => Err(ApiError::Unavailable(message)),
    }
}

/// One checkout with its step log.
#[utoipa::path(
    get,
    path = "/checkouts/{id}",
    params(("id" = i64, Path, description = "Checkout id")),
    responses(
        (status = 200, description = "The checkout", body = CheckoutOut),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No such checkout", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn checkouts_get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<CheckoutOut>, ApiError> {
    state
        .db
        .call(move |conn| Ok(store::get_checkout(conn, id)?))
        .await?
        .map(|found| Json(found.into()))
        .ok_or_else(|| ApiError::NotFound(format!("checkout {id} not found")))
}

/// A shopper's checkouts, newest first.
#[utoipa::path(
    get,
    path = "/checkouts",
    params(ListParams),
    responses(
        (status = 200, description = "Checkouts", body = [CheckoutOut]),
        (status = 400, description = "A missing parameter or one of the wrong type", body = ErrorBody),
        (status = 422, description = "An invalid user id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn checkouts_list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<Vec<CheckoutOut>>, ApiError> {
    let user = UserId::parse(&params.user_id)?;
    let page = Page {
        limit: params.limit,
        offset: params.offset,
    };
    let checkouts = state
        .db
        .call(move |conn| Ok(store::list_checkouts(conn, &user, page)?))
        .await?;
    Ok(Json(checkouts.into_iter().map(CheckoutOut::from).collect()))
}
