//! `/cart/{user_id}/checkout` and `/checkouts`: run a checkout, and see where one stands.

use crate::AppState;
use crate::checkout::{self, CheckoutOut};
use crate::store;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::ApiError;
use service_kit::card::{self, CardBody};
use service_kit::domain::{Page, UserId};
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, OptionalJsonBody, Path, Query};
use service_kit::openapi::ProtectedErrors;

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

/// Reads the optional `{"card":{...}}` body and checks the card's form, so that a malformed
/// card is refused before an order is placed, not at the pay step with an order and a
/// reservation to undo. The card is passed on to the payment service and never kept.
fn card_from_body(body: &[u8]) -> Result<Option<Value>, ApiError> {
    let Some(card) = card::card_from_body(body)? else {
        return Ok(None);
    };
    card::check(&card, card::current_year_month())?;
    Ok(Some(json!({ "card": card })))
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
    let (status, checkout) = checkout::start(&state, user, card).await?;
    Ok((status, Json(checkout)))
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
        .map(Json)
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
    Ok(Json(checkouts))
}
