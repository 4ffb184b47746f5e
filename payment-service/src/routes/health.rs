//! `GET /health` of payment-service: alive, and how far behind webhook delivery is.

use crate::AppState;
use crate::store;
use axum::extract::State;
use serde::Serialize;
use service_kit::ApiError;
use service_kit::extract::Json;

#[derive(Debug, Serialize)]
pub struct HealthOut {
    pub status: &'static str,
    pub service: &'static str,
    pub webhook_backlog: BacklogOut,
}

#[derive(Debug, Serialize)]
pub struct BacklogOut {
    /// Deliveries not yet acknowledged and still being retried.
    pub pending: i64,
    /// Deliveries that ran out of attempts and wait for a manual retry.
    pub failed: i64,
    /// Age of the oldest pending delivery, in seconds (0 when none).
    pub oldest_pending_age_seconds: i64,
}

pub async fn health(State(state): State<AppState>) -> Result<Json<HealthOut>, ApiError> {
    let (pending, failed, oldest) = state.db.call(|conn| Ok(store::backlog(conn)?)).await?;
    let now_ms = service_kit::clock::unix_now_ms();
    Ok(Json(HealthOut {
        status: "ok",
        service: crate::SERVICE,
        webhook_backlog: BacklogOut {
            pending,
            failed,
            oldest_pending_age_seconds: oldest.map_or(0, |t| ((now_ms - t) / 1000).max(0)),
        },
    }))
}
