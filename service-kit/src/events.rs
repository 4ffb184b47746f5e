//! Domain events: each service records what happened in its own database, in the same
//! transaction as the change, and serves them as a feed at `GET /events`.

use crate::ApiError;
use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::extract::{Json, Query};
use axum::extract::State;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The events table, as a service copies it into its `migrations/` folder as its next
/// numbered file (see [`crate::migrations`]).
pub const SCHEMA: &str = include_str!("events.sql");

/// Records an event inside the caller's transaction.
pub fn record(
    conn: &Connection,
    kind: &str,
    correlation_id: Option<&str>,
    payload: &Value,
) -> rusqlite::Result<()> {
    let id = format!(
        "evt_{}",
        std::iter::repeat_with(fastrand::alphanumeric)
            .take(20)
            .collect::<String>()
    );
    conn.prepare_cached(
        "INSERT INTO events (id, type, at, correlation_id, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        kind,
        now_rfc3339(),
        correlation_id,
        payload.to_string()
    ])?;
    Ok(())
}

/// One event in the feed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventOut {
    /// Position in this service's feed.
    pub seq: i64,
    /// Unique id.
    pub id: String,
    /// `order.created`, `stock.reserved`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// When, RFC 3339 with microseconds.
    pub at: String,
    /// The `X-Request-Id` of the journey that caused it.
    pub correlation_id: Option<String>,
    /// What happened.
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// `GET /events?after=SEQ&limit=N&type=T&correlation_id=C&order_id=O`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// Only events after this sequence number.
    pub after: Option<i64>,
    /// At most this many (1 to 500, default 100).
    pub limit: Option<u32>,
    /// Only this type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Only this journey.
    pub correlation_id: Option<String>,
    /// Only events about this order (its `order_id` in the payload): an order's whole life,
    /// whichever request moved it.
    pub order_id: Option<i64>,
}

/// Events in sequence order, filtered.
pub fn list(conn: &Connection, params: &FeedParams) -> rusqlite::Result<Vec<EventOut>> {
    let limit = params.limit.unwrap_or(100).clamp(1, 500);
    conn.prepare_cached(
        "SELECT seq, id, type, at, correlation_id, payload FROM events
         WHERE seq > ?1 AND (?2 IS NULL OR type = ?2) AND (?3 IS NULL OR correlation_id = ?3)
           AND (?5 IS NULL OR json_extract(payload, '$.order_id') = ?5)
         ORDER BY seq LIMIT ?4",
    )?
    .query_map(
        params![
            params.after.unwrap_or(0),
            params.kind,
            params.correlation_id,
            limit,
            params.order_id
        ],
        |row| {
            let payload: String = row.get(5)?;
            Ok(EventOut {
                seq: row.get(0)?,
                id: row.get(1)?,
                kind: row.get(2)?,
                at: row.get(3)?,
                correlation_id: row.get(4)?,
                payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
            })
        },
    )?
    .collect()
}

/// The service's domain events, in sequence order.
#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    params(FeedParams),
    responses(
        (status = 200, description = "Events after `after`", body = [EventOut]),
        (status = 400, description = "A parameter of the wrong type", body = crate::error::ErrorBody),
        (status = 422, description = "A parameter the route does not know (named)", body = crate::error::ErrorBody),
        crate::openapi::ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn events_feed(
    State(db): State<Db>,
    Query(params): Query<FeedParams>,
) -> Result<Json<Vec<EventOut>>, ApiError> {
    let events = db.call(move |conn| Ok(list(conn, &params)?)).await?;
    Ok(Json(events))
}

/// The `GET /events` route over `db`, documented, to merge into a service's API router.
pub fn routes(db: Db) -> utoipa_axum::router::OpenApiRouter {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(crate::auth::admin(utoipa_axum::routes!(events_feed)))
        .with_state(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_listed_in_order_and_filtered() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        record(
            &conn,
            "order.created",
            Some("j1"),
            &serde_json::json!({"order_id": 1}),
        )
        .unwrap();
        record(
            &conn,
            "order.paid",
            Some("j1"),
            &serde_json::json!({"order_id": 1}),
        )
        .unwrap();
        record(
            &conn,
            "order.created",
            Some("j2"),
            &serde_json::json!({"order_id": 2}),
        )
        .unwrap();
        let all = |p: FeedParams| list(&conn, &p).unwrap();
        let none = FeedParams {
            after: None,
            limit: None,
            kind: None,
            correlation_id: None,
            order_id: None,
        };
        let every = all(none);
        assert_eq!(every.len(), 3);
        assert!(
            every
                .windows(2)
                .all(|w| w[0].seq < w[1].seq && w[0].at <= w[1].at)
        );
        assert_eq!(every[0].payload["order_id"], 1);
        let after = all(FeedParams {
            after: Some(every[0].seq),
            limit: Some(1),
            kind: None,
            correlation_id: None,
            order_id: None,
        });
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].kind, "order.paid");
        let created = all(FeedParams {
            after: None,
            limit: None,
            kind: Some("order.created".into()),
            correlation_id: None,
            order_id: None,
        });
        assert_eq!(created.len(), 2);
        let journey = all(FeedParams {
            after: None,
            limit: None,
            kind: None,
            correlation_id: Some("j2".into()),
            order_id: None,
        });
        assert_eq!(journey.len(), 1);
        let first_order = all(FeedParams {
            after: None,
            limit: None,
            kind: None,
            correlation_id: None,
            order_id: Some(1),
        });
        assert_eq!(
            first_order.len(),
            2,
            "both of order 1's events, whatever their journey"
        );
    }
}
