//! `/webhooks/deliveries`: every webhook delivery with every attempt, and a manual retry.

use crate::AppState;
use crate::domain::{Attempt, Delivery, DeliveryStatus};
use crate::outbox::RetryRefused;
use crate::store;
use axum::extract::State;
use axum::http::Uri;
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::domain::{Id, Page};
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, Path, Query};
use service_kit::listing::Listed;
use service_kit::openapi::ProtectedErrors;

/// A webhook delivery.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    /// The `webhook-id`.
    pub id: String,
    pub payment_id: i64,
    pub order_id: i64,
    /// Which notice it carries: `payment.succeeded` (a capture) or `payment.refunded`.
    #[schema(example = "payment.succeeded")]
    pub notice: &'static str,
    /// The refund a `payment.refunded` notice is about.
    pub refund_id: Option<i64>,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts since the delivery was created or last retried by hand.
    pub attempts_in_round: u32,
    /// When the next automatic attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    /// Every attempt, oldest first (on `GET /webhooks/deliveries/{id}` and after a retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<AttemptOut>>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    pub attempted_at: String,
    /// What the order service answered, if it answered.
    pub status_code: Option<u16>,
    /// Why there was no answer (refused, timed out, ...).
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        DeliveryOut {
            id: d.id,
            payment_id: d.payment_id,
            order_id: d.order_id,
            notice: if d.refund_id.is_some() {
                "payment.refunded"
            } else {
                "payment.succeeded"
            },
            refund_id: d.refund_id,
            status: d.status,
            attempts_in_round: d.attempts_in_round,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            attempts: d
                .attempts
                .map(|all| all.into_iter().map(AttemptOut::from).collect()),
        }
    }
}

impl From<Attempt> for AttemptOut {
    fn from(a: Attempt) -> Self {
        AttemptOut {
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
        }
    }
}

impl From<RetryRefused> for ApiError {
    fn from(refused: RetryRefused) -> ApiError {
        match refused {
            RetryRefused::NotFound(m) => ApiError::NotFound(m),
            RetryRefused::Delivered(m) => ApiError::Conflict(m),
        }
    }
}

/// `GET /webhooks/deliveries?status=&order_id=&limit=&offset=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Only this order's deliveries.
    #[param(minimum = 1)]
    pub order_id: Option<i64>,
    /// Rows wanted (1 to 200, default 50).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u32>,
}

/// Webhook deliveries, newest first.
#[utoipa::path(
    get,
    path = "/webhooks/deliveries",
    tag = "webhook deliveries",
    params(ListParams),
    responses(
        (status = 200, description = "Deliveries (without their attempts)", body = [DeliveryOut],
            headers(("X-Total-Count" = i64, description = "How many match in all"),
                    ("Link" = String, description = "<...>; rel=\"next\" while more are left"))),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        (status = 422, description = "An unknown status or not a positive order id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn deliveries_list(
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<ListParams>,
) -> Result<Listed<DeliveryOut>, ApiError> {
    let status = params.status.as_deref().map(DeliveryStatus::parse_filter);
    let status = status.transpose()?;
    let order_id = params.order_id.map(|id| Id::parse(id, "order_id"));
    let order_id = order_id.transpose()?;
    let page = Page {
        limit: params.limit,
        offset: params.offset,
    };
    let deliveries = state
        .db
        .call(move |conn| Ok(store::list_deliveries(conn, status, order_id, page)?))
        .await?;
    Ok(Listed::new(deliveries, page, uri).map(DeliveryOut::from))
}

async fn load(state: &AppState, id: String) -> Result<DeliveryOut, ApiError> {
    let shown = id.clone();
    state
        .db
        .call(move |conn| Ok(store::get_delivery(conn, &id)?))
        .await?
        .map(DeliveryOut::from)
        .ok_or_else(|| ApiError::NotFound(format!("delivery {shown} not found")))
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(ApiError::Validation("not a delivery id".into()));
    }
    Ok(())
}

/// One delivery with every attempt.
#[utoipa::path(
    get,
    path = "/webhooks/deliveries/{id}",
    tag = "webhook deliveries",
    params(("id" = String, Path, description = "The delivery's webhook-id", max_length = 64, pattern = r"^[A-Za-z0-9_]{1,64}$")),
    responses(
        (status = 200, description = "The delivery", body = DeliveryOut),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 422, description = "Not a delivery id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn deliveries_get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryOut>, ApiError> {
    check_id(&id)?;
    Ok(Json(load(&state, id).await?))
}

/// Starts a fresh round of attempts for a pending or failed delivery and makes the first
/// one now; answers with the delivery as it stands after that attempt.
#[utoipa::path(
    post,
    path = "/webhooks/deliveries/{id}/retry",
    tag = "webhook deliveries",
    params(("id" = String, Path, description = "The delivery's webhook-id", max_length = 64, pattern = r"^[A-Za-z0-9_]{1,64}$")),
    responses(
        (status = 200, description = "The delivery after the attempt", body = DeliveryOut),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 409, description = "Already delivered", body = ErrorBody),
        (status = 422, description = "Not a delivery id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn deliveries_retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryOut>, ApiError> {
    check_id(&id)?;
    state.outbox.retry_now(id.clone()).await?;
    Ok(Json(load(&state, id).await?))
}
