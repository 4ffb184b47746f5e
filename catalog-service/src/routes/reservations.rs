//! `/reservations`: hold stock for an order, then commit it (sold) or release it (back on
//! sale). All lines or none; stock never below zero; one reservation per order.

use crate::AppState;
use crate::domain::{LineIn, ReservationStatus, Transition, merge_lines, transition};
use crate::store::{self, Shortage};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::ApiError;
use service_kit::domain::Id;
use service_kit::error::ErrorBody;
use service_kit::events;
use service_kit::extract::{Json, Path};
use service_kit::http::correlation_id;
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
    let lines = merge_lines(body.lines)?;
    let expires_at_ms = service_kit::clock::unix_ms_after(state.reservation_ttl);
    let correlation = correlation_id();
    let cid = correlation.clone();
    let outcome = state
        .db
        .write(move |tx| {
            if let Some(existing) = store::get_reservation(tx, order_id)? {
                return Ok((StatusCode::OK, existing));
            }
            if let Err(shortage) = store::take_stock(tx, &lines)? {
                // Returning an error rolls back the lines already taken.
                return Err(match shortage {
                    Shortage::Unknown(product) => {
                        ApiError::Validation(format!("product {product} is not in the catalog"))
                    }
                    Shortage::OutOfStock { product, available, asked } => ApiError::Conflict(format!(
                        "out of stock: product {product} has {available} left, {asked} asked"
                    )),
                });
            }
            store::insert_reservation(tx, order_id, &lines, expires_at_ms)?;
            let payload = json!({
                "order_id": order_id.get(),
                "lines": lines.iter().map(|(p, q)| json!({"product_id": p.get(), "quantity": q})).collect::<Vec<_>>(),
            });
            events::record(tx, "stock.reserved", cid.as_deref(), &payload)?;
            let created = store::get_reservation(tx, order_id)?
                .ok_or_else(|| ApiError::internal("new reservation vanished"))?;
            Ok((StatusCode::CREATED, created))
        })
        .await;
    match outcome {
        Ok((status, reservation)) => Ok((status, Json(reservation))),
        Err(err @ (ApiError::Conflict(_) | ApiError::Validation(_))) => {
            let reason = err.to_string();
            let recorded = state
                .db
                .write(move |tx| {
                    let payload = json!({"order_id": order_id.get(), "reason": reason});
                    Ok(events::record(
                        tx,
                        "stock.failed",
                        correlation.as_deref(),
                        &payload,
                    )?)
                })
                .await;
            if let Err(e) = recorded {
                tracing::error!(error = %e, "could not record stock.failed");
            }
            Err(err)
        }
        Err(err) => Err(err),
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
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no reservation for order {order_id}")))
}

/// Commits or releases a reservation (repeating either is a no-op; a release after a commit
/// or the other way round is 409), recording the event in the same transaction.
pub async fn settle(
    state: &AppState,
    order_id: Id,
    target: ReservationStatus,
    reason: Option<String>,
) -> Result<ReservationOut, ApiError> {
    let correlation = correlation_id();
    state
        .db
        .write(move |tx| {
            let current = store::get_reservation(tx, order_id)?.ok_or_else(|| {
                ApiError::NotFound(format!("no reservation for order {order_id}"))
            })?;
            match transition(current.status, target) {
                Transition::Apply => {
                    store::settle_reservation(tx, order_id, target, reason.as_deref())?;
                    let kind = match target {
                        ReservationStatus::Released => "stock.released",
                        _ => "stock.committed",
                    };
                    let payload = json!({"order_id": order_id.get(), "lines": current.lines.iter()
                        .map(|l| json!({"product_id": l.product_id, "quantity": l.quantity}))
                        .collect::<Vec<_>>(), "reason": reason});
                    events::record(tx, kind, correlation.as_deref(), &payload)?;
                }
                Transition::AlreadyDone => {}
                Transition::Refuse => {
                    return Err(ApiError::Conflict(format!(
                        "reservation for order {order_id} is {} and cannot become {}",
                        current.status.as_str(),
                        target.as_str()
                    )));
                }
            }
            store::get_reservation(tx, order_id)?
                .ok_or_else(|| ApiError::internal("reservation vanished"))
        })
        .await
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
    Ok(Json(
        settle(&state, order_id, ReservationStatus::Committed, None).await?,
    ))
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
    Ok(Json(
        settle(&state, order_id, ReservationStatus::Released, reason).await?,
    ))
}
