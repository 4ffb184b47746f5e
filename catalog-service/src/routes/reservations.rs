//! `/reservations`: hold stock for an order, then commit it (sold) or release it (back on
//! sale). All lines or none; stock never below zero; one reservation per order.

use crate::AppState;
use crate::domain::{LineIn, Reservation, ReservationStatus};
use crate::stock::{self, Reserved};
use crate::store;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::domain::Id;
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, Path};
use service_kit::openapi::ProtectedErrors;

/// A reservation as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReservationOut {
    pub order_id: i64,
    pub status: ReservationStatus,
    pub lines: Vec<ReservationLineOut>,
    /// Why it was released, when it was.
    pub reason: Option<String>,
    /// When the sweep releases it if it is still only reserved.
    pub expires_at: String,
    pub created_at: String,
    pub updated_at: String,
}

/// One reserved line.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReservationLineOut {
    pub product_id: i64,
    pub quantity: i64,
}

impl From<Reservation> for ReservationOut {
    fn from(r: Reservation) -> Self {
        ReservationOut {
            order_id: r.order_id,
            status: r.status,
            lines: r
                .lines
                .into_iter()
                .map(|l| ReservationLineOut {
                    product_id: l.product_id,
                    quantity: l.quantity,
                })
                .collect(),
            reason: r.reason,
            expires_at: r.expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `POST /reservations` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReserveIn {
    /// The order the stock is held for; reserving again for it finds the same reservation.
    #[schema(minimum = 1)]
    pub order_id: i64,
    /// 1 to 100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<LineIn>,
}

/// Optional body of a release.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ReleaseIn {
    pub reason: Option<String>,
}

/// Reserves every line or none, for one order.
#[utoipa::path(
    post,
    path = "/reservations",
    request_body = ReserveIn,
    responses(
        (status = 201, description = "Reserved", body = ReservationOut),
        (status = 200, description = "This order's reservation, already made", body = ReservationOut),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "Out of stock", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Unknown product or invalid line", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn reservations_create(
    State(state): State<AppState>,
    Json(body): Json<ReserveIn>,
) -> Result<(StatusCode, Json<ReservationOut>), ApiError> {
    let order_id = Id::parse(body.order_id, "order_id")?;
    match stock::reserve(&state.db, order_id, body.lines, state.reservation_ttl).await? {
        Reserved::New(made) => Ok((StatusCode::CREATED, Json(made.into()))),
        Reserved::Existing(found) => Ok((StatusCode::OK, Json(found.into()))),
    }
}

/// One order's reservation.
#[utoipa::path(
    get,
    path = "/reservations/{order_id}",
    params(("order_id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "The reservation", body = ReservationOut),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No reservation for the order", body = ErrorBody),
        (status = 422, description = "Not a positive id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn reservations_get(
    State(state): State<AppState>,
    Path(order_id): Path<i64>,
) -> Result<Json<ReservationOut>, ApiError> {
    let order_id = Id::parse(order_id, "order_id")?;
    state
        .db
        .call(move |conn| Ok(store::get_reservation(conn, order_id)?))
        .await?
        .map(|found| Json(found.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no reservation for order {order_id}")))
}

/// Commits a reservation: its stock is sold.
#[utoipa::path(
    post,
    path = "/reservations/{order_id}/commit",
    params(("order_id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "The reservation as it is now", body = ReservationOut),
        (status = 400, description = "Not a number or malformed body", body = ErrorBody),
        (status = 404, description = "No reservation for the order", body = ErrorBody),
        (status = 409, description = "Already settled the other way", body = ErrorBody),
        (status = 422, description = "Not a positive id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn reservations_commit(
    State(state): State<AppState>,
    Path(order_id): Path<i64>,
) -> Result<Json<ReservationOut>, ApiError> {
    let order_id = Id::parse(order_id, "order_id")?;
    let committed =
        stock::settle_reservation(&state.db, order_id, ReservationStatus::Committed, None).await?;
    Ok(Json(committed.into()))
}

/// Releases a reservation: its stock is back on sale.
#[utoipa::path(
    post,
    path = "/reservations/{order_id}/release",
    params(("order_id" = i64, Path, description = "Order id")),
    request_body(content = Option<ReleaseIn>, description = "Why (optional)"),
    responses(
        (status = 200, description = "The reservation as it is now", body = ReservationOut),
        (status = 400, description = "Not a number or malformed body", body = ErrorBody),
        (status = 404, description = "No reservation for the order", body = ErrorBody),
        (status = 409, description = "Already settled the other way", body = ErrorBody),
        (status = 422, description = "Not a positive id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn reservations_release(
    State(state): State<AppState>,
    Path(order_id): Path<i64>,
    body: Bytes,
) -> Result<Json<ReservationOut>, ApiError> {
    let order_id = Id::parse(order_id, "order_id")?;
    let release: ReleaseIn = if body.iter().all(u8::is_ascii_whitespace) {
        ReleaseIn::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("release body: {e}")))?
    };
    let reason = release.reason.map(|r| r.chars().take(500).collect());
    let released =
        stock::settle_reservation(&state.db, order_id, ReservationStatus::Released, reason).await?;
    Ok(Json(released.into()))
}
