//! `/reservations`: hold stock for an order, then commit it (sold) or release it (back on
//! sale). All lines or none; stock never below zero; one reservation per reference (an
//! order's global ref; the order id as text when none is given).

use crate::AppState;
use crate::domain::{Reservation, ReservationStatus};
use crate::stock::{self, ReserveRequest, Reserved};
use crate::store;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use service_kit::ApiError;
use service_kit::domain::{Id, Reference};
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, Path};
use service_kit::openapi::ProtectedErrors;
use shop_contracts::catalog::{ReleaseRequest, ReservationRequest, ReturnLines};

/// A reservation as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReservationOut {
    /// The key it was made under.
    pub reference: String,
    pub order_id: i64,
    pub status: ReservationStatus,
    pub lines: Vec<ReservationLineOut>,
    /// Why it was released, when it was.
    pub reason: Option<String>,
    /// When the sweep releases it if it is still only reserved; null: held until committed
    /// or released.
    pub expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One reserved line.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReservationLineOut {
    pub product_id: i64,
    pub quantity: i64,
    /// How many of its units came back and are on sale again.
    pub returned: i64,
}

impl From<Reservation> for ReservationOut {
    fn from(r: Reservation) -> Self {
        ReservationOut {
            reference: r.reference,
            order_id: r.order_id,
            status: r.status,
            lines: r
                .lines
                .into_iter()
                .map(|l| ReservationLineOut {
                    product_id: l.product_id,
                    quantity: l.quantity,
                    returned: l.returned,
                })
                .collect(),
            reason: r.reason,
            expires_at: r.expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The optional `{"reason"}` of a release or return (its first 500 characters).
fn reason_of(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let asked: ReleaseRequest = service_kit::extract::parse_json(body, "release body")?;
    Ok(asked.reason.map(|r| r.chars().take(500).collect()))
}

/// Reserves every line or none, for one order, under one reference.
#[utoipa::path(
    post,
    path = "/reservations",
    tag = "reservations",
    request_body = ReservationRequest,
    responses(
        (status = 201, description = "Reserved", body = ReservationOut),
        (status = 200, description = "This reference's reservation, already made", body = ReservationOut),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "Out of stock, or the reference holds other lines", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Unknown product or invalid line", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn reservations_create(
    State(state): State<AppState>,
    Json(body): Json<ReservationRequest>,
) -> Result<(StatusCode, Json<ReservationOut>), ApiError> {
    let order_id = Id::parse(body.order_id, "order_id")?;
    let reference = match &body.reference {
        Some(given) => Reference::parse(given, "reference")?,
        None => Reference::from_db(order_id.to_string()),
    };
    let request = ReserveRequest {
        reference,
        order_id,
        lines: body.lines,
        ttl: body
            .expires
            .unwrap_or(true)
            .then_some(state.reservation_ttl),
    };
    match stock::reserve(&state.db, request).await? {
        Reserved::New(made) => Ok((StatusCode::CREATED, Json(made.into()))),
        Reserved::Existing(found) => Ok((StatusCode::OK, Json(found.into()))),
    }
}

/// One reservation.
#[utoipa::path(
    get,
    path = "/reservations/{reference}",
    tag = "reservations",
    params(("reference" = String, Path, description = "The reservation's reference (an order's ref, or its id)")),
    responses(
        (status = 200, description = "The reservation", body = ReservationOut),
        (status = 400, description = "Malformed path", body = ErrorBody),
        (status = 404, description = "No reservation under the reference", body = ErrorBody),
        (status = 422, description = "Not a reference", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn reservations_get(
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<ReservationOut>, ApiError> {
    let reference = Reference::parse(&reference, "reference")?;
    let key = reference.clone();
    state
        .db
        .call(move |conn| Ok(store::get_reservation(conn, &key)?))
        .await?
        .map(|found| Json(found.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no reservation {reference}")))
}

/// Commits a reservation: its stock is sold.
#[utoipa::path(
    post,
    path = "/reservations/{reference}/commit",
    tag = "reservations",
    params(("reference" = String, Path, description = "The reservation's reference (an order's ref, or its id)")),
    responses(
        (status = 200, description = "The reservation as it is now", body = ReservationOut),
        (status = 400, description = "Malformed path or body", body = ErrorBody),
        (status = 404, description = "No reservation under the reference", body = ErrorBody),
        (status = 409, description = "Already settled the other way", body = ErrorBody),
        (status = 422, description = "Not a reference", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn reservations_commit(
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<ReservationOut>, ApiError> {
    let reference = Reference::parse(&reference, "reference")?;
    let committed =
        stock::settle_reservation(&state.db, reference, ReservationStatus::Committed, None).await?;
    Ok(Json(committed.into()))
}

/// Releases a reservation: its stock is back on sale.
#[utoipa::path(
    post,
    path = "/reservations/{reference}/release",
    tag = "reservations",
    params(("reference" = String, Path, description = "The reservation's reference (an order's ref, or its id)")),
    request_body(content = Option<ReleaseRequest>, description = "Why (optional)"),
    responses(
        (status = 200, description = "The reservation as it is now", body = ReservationOut),
        (status = 400, description = "Malformed path or body", body = ErrorBody),
        (status = 404, description = "No reservation under the reference", body = ErrorBody),
        (status = 409, description = "Already settled the other way", body = ErrorBody),
        (status = 422, description = "Not a reference", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn reservations_release(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    body: Bytes,
) -> Result<Json<ReservationOut>, ApiError> {
    let reference = Reference::parse(&reference, "reference")?;
    let reason = reason_of(&body)?;
    let released =
        stock::settle_reservation(&state.db, reference, ReservationStatus::Released, reason)
            .await?;
    Ok(Json(released.into()))
}

/// Returns the units of a sold (committed) reservation to sale: its order was cancelled
/// after it was paid. Returning again is a no-op.
#[utoipa::path(
    post,
    path = "/reservations/{reference}/return",
    tag = "reservations",
    params(("reference" = String, Path, description = "The reservation's reference (an order's ref, or its id)")),
    request_body(content = Option<ReleaseRequest>, description = "Why (optional)"),
    responses(
        (status = 200, description = "The reservation as it is now", body = ReservationOut),
        (status = 400, description = "Malformed path or body", body = ErrorBody),
        (status = 404, description = "No reservation under the reference", body = ErrorBody),
        (status = 409, description = "Never sold (still reserved): release it instead", body = ErrorBody),
        (status = 422, description = "Not a reference", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn reservations_return(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    body: Bytes,
) -> Result<Json<ReservationOut>, ApiError> {
    let reference = Reference::parse(&reference, "reference")?;
    let reason = reason_of(&body)?;
    let returned = stock::return_units(&state.db, reference, reason).await?;
    Ok(Json(returned.into()))
}

/// Puts some units of a sold reservation back on sale, by line: those a return received
/// in sellable condition. The reservation stays committed (its other units are still sold);
/// the same return again changes nothing.
#[utoipa::path(
    post,
    path = "/reservations/{reference}/returns",
    tag = "reservations",
    params(("reference" = String, Path, description = "The reservation's reference (an order's ref, or its id)")),
    request_body = ReturnLines,
    responses(
        (status = 200, description = "The reservation as it is now, each line with the units returned", body = ReservationOut),
        (status = 400, description = "Malformed path or body, or an unknown field", body = ErrorBody),
        (status = 404, description = "No reservation under the reference", body = ErrorBody),
        (status = 409, description = "Not sold (reserved or released), more units than were sold and are not back yet, or the return's ref recorded for other lines", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not a reference, a product the reservation did not sell, or an invalid line or reason", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn reservations_return_lines(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    Json(body): Json<ReturnLines>,
) -> Result<Json<ReservationOut>, ApiError> {
    let reference = Reference::parse(&reference, "reference")?;
    let returned = stock::return_lines(&state.db, reference, body).await?;
    Ok(Json(returned.into()))
}
