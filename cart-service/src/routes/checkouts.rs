//! `/cart/{user_id}/checkout` and `/checkouts`: run a checkout, and see where one stands.

use crate::AppState;
use crate::checkout::{self, CheckoutOut};
use crate::store;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::ApiError;
use service_kit::domain::{Page, UserId};
use service_kit::extract::{Json, Path, Query};

/// `GET /checkouts?user_id=U&limit=&offset=`.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    pub user_id: String,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// Reads the optional `{"card":{...}}` body; the card is passed on to the payment service
/// and never kept. A parse error is not echoed: it could quote the number.
fn card_from_body(body: &[u8]) -> Result<Option<Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: Value = serde_json::from_slice(body).map_err(|_| {
        ApiError::Validation(
            r#"body must be {"card":{"number","exp_month","exp_year","cvc"}}"#.into(),
        )
    })?;
    Ok(parsed.get("card").map(|card| json!({"card": card})))
}

pub async fn cart_checkout(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<CheckoutOut>), ApiError> {
    let user = UserId::parse(&user_id)?;
    let card = card_from_body(&body)?;
    let (status, checkout) = checkout::start(&state, user, card).await?;
    Ok((status, Json(checkout)))
}

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
