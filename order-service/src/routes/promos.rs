//! `/promo-codes`: the admin's promo codes (applied by `POST /orders` and checkouts).

use crate::AppState;
use crate::promotions::{Discount, PromoCode, PromoIn, normalized_code};
use crate::store;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde::Serialize;
use service_kit::ApiError;
use service_kit::domain::Page;
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, Path, Query};
use service_kit::listing::Listed;
use service_kit::money::Cents;
use service_kit::openapi::ProtectedErrors;

/// A promo code as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PromoOut {
    pub code: String,
    /// Percent off the subtotal (or null when `amount_off` is set).
    pub percent_off: Option<i64>,
    /// A fixed amount off (or null when `percent_off` is set).
    pub amount_off: Option<Cents>,
    /// The subtotal an order needs.
    pub min_total: Cents,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub max_redemptions: Option<i64>,
    pub max_per_customer: Option<i64>,
    /// Orders that redeemed it and were not cancelled.
    pub redeemed: i64,
    /// False once withdrawn.
    pub active: bool,
    pub created_at: String,
}

impl From<PromoCode> for PromoOut {
    fn from(p: PromoCode) -> Self {
        let (percent_off, amount_off) = match p.discount {
            Discount::Percent(percent) => (Some(percent), None),
            Discount::Amount(amount) => (None, Some(amount)),
        };
        PromoOut {
            code: p.code,
            percent_off,
            amount_off,
            min_total: p.min_total,
            starts_at: p.starts_at,
            ends_at: p.ends_at,
            max_redemptions: p.max_redemptions,
            max_per_customer: p.max_per_customer,
            redeemed: p.redeemed,
            active: !p.disabled,
            created_at: p.created_at,
        }
    }
}

/// Creates a promo code: percent or amount off, an optional minimum subtotal, validity
/// window and limits in all and per customer.
#[utoipa::path(
    post,
    path = "/promo-codes",
    tag = "promo codes",
    request_body = PromoIn,
    responses(
        (status = 201, description = "The new code", body = PromoOut),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 409, description = "The code exists already", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "An invalid field (named)", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn promos_create(
    State(state): State<AppState>,
    Json(asked): Json<PromoIn>,
) -> Result<(StatusCode, Json<PromoOut>), ApiError> {
    let promo = asked.validate()?;
    let created = state
        .db
        .write_with(move |tx| {
            if !store::insert_promo(tx, &promo)? {
                return Err(ApiError::Conflict(format!(
                    "promo code {} exists already",
                    promo.code
                )));
            }
            store::get_promo(tx, &promo.code)?
                .ok_or_else(|| ApiError::internal("new promo code vanished"))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Promo codes, newest first.
#[utoipa::path(
    get,
    path = "/promo-codes",
    tag = "promo codes",
    params(Page),
    responses(
        (status = 200, description = "Promo codes", body = [PromoOut],
            headers(("X-Total-Count" = i64, description = "How many match in all"),
                    ("Link" = String, description = "<...>; rel=\"next\" while more are left"))),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        (status = 422, description = "A parameter the route does not know, or a value that breaks a rule (named)", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn promos_list(
    State(state): State<AppState>,
    uri: Uri,
    Query(page): Query<Page>,
) -> Result<Listed<PromoOut>, ApiError> {
    let promos = state
        .db
        .call(move |conn| Ok(store::list_promos(conn, page)?))
        .await?;
    Ok(Listed::new(promos, page, uri).map(PromoOut::from))
}

/// One promo code, with how often it is redeemed.
#[utoipa::path(
    get,
    path = "/promo-codes/{code}",
    tag = "promo codes",
    params(("code" = String, Path, description = "The code, any case")),
    responses(
        (status = 200, description = "The code", body = PromoOut),
        (status = 404, description = "No such code", body = ErrorBody),
        (status = 422, description = "Not a code's form", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn promos_get(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<PromoOut>, ApiError> {
    let code = normalized_code(&code)?;
    let promo = state
        .db
        .call_with(move |conn| {
            store::get_promo(conn, &code)?
                .ok_or_else(|| ApiError::NotFound(format!("promo code {code} not found")))
        })
        .await?;
    Ok(Json(promo.into()))
}

/// Withdraws a promo code: no new order may use it; orders that did keep their discount.
#[utoipa::path(
    delete,
    path = "/promo-codes/{code}",
    tag = "promo codes",
    params(("code" = String, Path, description = "The code, any case")),
    responses(
        (status = 200, description = "The code, no longer active", body = PromoOut),
        (status = 404, description = "No such code", body = ErrorBody),
        (status = 422, description = "Not a code's form", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn promos_withdraw(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<PromoOut>, ApiError> {
    let code = normalized_code(&code)?;
    let promo = state
        .db
        .write_with(move |tx| {
            if !store::disable_promo(tx, &code)? {
                return Err(ApiError::NotFound(format!("promo code {code} not found")));
            }
            store::get_promo(tx, &code)?.ok_or_else(|| ApiError::internal("promo code vanished"))
        })
        .await?;
    Ok(Json(promo.into()))
}
