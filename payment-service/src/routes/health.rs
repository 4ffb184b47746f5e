//! `GET /health` of payment-service: alive, and how far behind webhook delivery is.

use crate::AppState;
use crate::store;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use service_kit::ApiError;
use service_kit::db::Db;
use service_kit::error::ErrorBody;
use service_kit::extract::Json;
use service_kit::metrics::MetricsBuilder;

/// `GET /health` of payment-service.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthOut {
    /// `ok`.
    #[schema(value_type = String)]
    pub status: &'static str,
    #[schema(value_type = String)]
    pub service: &'static str,
    pub webhook_backlog: BacklogOut,
}

/// How far behind webhook delivery is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacklogOut {
    /// Deliveries not yet acknowledged and still being retried.
    pub pending: i64,
    /// Deliveries that ran out of attempts and wait for a manual retry.
    pub failed: i64,
    /// Age of the oldest pending delivery, in seconds (0 when none).
    pub oldest_pending_age_seconds: i64,
}

impl BacklogOut {
    /// The backlog from the outbox's (pending, failed, oldest pending since) as of now.
    fn now((pending, failed, oldest): (i64, i64, Option<i64>)) -> BacklogOut {
        let now_ms = service_kit::clock::unix_now_ms();
        BacklogOut {
            pending,
            failed,
            oldest_pending_age_seconds: oldest.map_or(0, |t| ((now_ms - t) / 1000).max(0)),
        }
    }
}

/// Liveness, with the webhook backlog: 200, or 503 while writes fail for lack of storage.
/// No key needed.
#[utoipa::path(
    get,
    path = "/health",
    tag = "probes",
    responses(
        (status = 200, description = "Alive and able to write", body = HealthOut),
        (status = 503, description = "Writes fail for lack of storage", body = ErrorBody),
    )
)]
pub async fn health(State(state): State<AppState>) -> Result<Json<HealthOut>, ApiError> {
    if let Some(problem) = state.db.check_storage().await {
        return Err(ApiError::Storage(problem));
    }
    let backlog = state.db.call(|conn| Ok(store::backlog(conn)?)).await?;
    Ok(Json(HealthOut {
        status: "ok",
        service: crate::SERVICE,
        webhook_backlog: BacklogOut::now(backlog),
    }))
}

/// `GET /ready`: the database answers at the right schema version (else 503), with the
/// webhook backlog alongside. No key needed.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "probes",
    responses(
        (status = 200, description = "Ready to serve", body = ReadyOut),
        (status = 503, description = "The database cannot be used yet", body = ReadyOut),
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<ReadyOut>) {
    let readiness =
        service_kit::http::readiness(crate::SERVICE, &state.db, crate::migrations).await;
    let backlog = state.db.call(|conn| Ok(store::backlog(conn)?)).await.ok();
    let webhook_backlog = backlog.map(BacklogOut::now);
    (
        readiness.status_code(),
        Json(ReadyOut {
            readiness,
            webhook_backlog,
        }),
    )
}

/// `GET /ready` of payment-service.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadyOut {
    #[serde(flatten)]
    pub readiness: service_kit::http::Readiness,
    pub webhook_backlog: Option<BacklogOut>,
}

/// Adds the webhook backlog to `/metrics` as three gauges, read from `db` before each
/// scrape.
pub fn backlog_gauges(metrics: &mut MetricsBuilder, db: Db) {
    let pending = metrics.gauge(
        "webhook_backlog_pending",
        "Webhook deliveries still being retried",
    );
    let failed = metrics.gauge(
        "webhook_backlog_failed",
        "Webhook deliveries that ran out of attempts",
    );
    let oldest = metrics.gauge(
        "webhook_backlog_oldest_pending_age_seconds",
        "Age of the oldest pending webhook delivery",
    );
    metrics.before_scrape(move || {
        let (db, pending, failed, oldest) =
            (db.clone(), pending.clone(), failed.clone(), oldest.clone());
        async move {
            let backlog = BacklogOut::now(db.call(|conn| Ok(store::backlog(conn)?)).await?);
            pending.set(backlog.pending);
            failed.set(backlog.failed);
            oldest.set(backlog.oldest_pending_age_seconds);
            Ok(())
        }
    });
}
