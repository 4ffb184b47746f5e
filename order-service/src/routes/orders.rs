//! `/orders`: place, list and read orders, and the payment webhook that marks one PAID.

use crate::AppState;
use crate::domain::{NewOrder, OrderLineIn, OrderStatus, PaymentOutcome, payment_outcome};
use crate::store;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::catalog::CatalogClient;
use service_kit::domain::{Id, Page, UserId};
use service_kit::extract::{Json, Path, Query};
use service_kit::money::Cents;
use std::collections::BTreeMap;

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderOut {
    pub id: i64,
    pub user_id: String,
    pub items: Vec<OrderItemOut>,
    pub total: Cents,
    pub status: OrderStatus,
    /// False when the order was accepted while the catalog could not be asked.
    pub catalog_verified: bool,
    /// The payment that paid for it, once PAID.
    pub payment_id: Option<i64>,
    pub status_history: Vec<StatusChangeOut>,
    pub created_at: String,
    pub updated_at: String,
}

/// One line of an order.
#[derive(Debug, Clone, Serialize)]
pub struct OrderItemOut {
    pub product_id: i64,
    pub quantity: i64,
    pub price: Cents,
    pub line_total: Cents,
}

/// One entry of an order's status history.
#[derive(Debug, Clone, Serialize)]
pub struct StatusChangeOut {
    pub status: OrderStatus,
    pub at: String,
}

/// `POST /orders?user_id=U`.
#[derive(Debug, Deserialize)]
pub struct CreateParams {
    pub user_id: String,
}

/// `GET /orders?user_id=&status=&limit=&offset=`.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    pub user_id: Option<String>,
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// The payment webhook's optional body.
#[derive(Debug, Default, Deserialize)]
pub struct PaymentNotice {
    pub payment_id: Option<i64>,
    pub amount: Option<Cents>,
}

pub async fn orders_create(
    State(state): State<AppState>,
    Query(params): Query<CreateParams>,
    Json(lines): Json<Vec<OrderLineIn>>,
) -> Result<(StatusCode, Json<OrderOut>), ApiError> {
    let user = UserId::parse(&params.user_id)?;
    let order = NewOrder::parse(user, lines)?;
    let verified = check_against_catalog(&state.catalog, &order).await?;
    let created = state
        .db
        .write(move |tx| {
            let id = store::insert_order(tx, &order, verified)?;
            store::get_order(tx, id)?.ok_or_else(|| ApiError::internal("new order vanished"))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Confirms every line's product and price with the catalog. A client never sets its own
/// price: a mismatch is a 422. Returns false when the catalog could not answer and the order
/// goes ahead unverified (fail-open).
async fn check_against_catalog(
    catalog: &CatalogClient,
    order: &NewOrder,
) -> Result<bool, ApiError> {
    let mut prices: BTreeMap<Id, Vec<Cents>> = BTreeMap::new();
    for line in &order.lines {
        prices
            .entry(line.product_id)
            .or_default()
            .push(line.unit_price);
    }
    for (product_id, asked) in prices {
        match catalog.product(product_id).await {
            Ok(Some(product)) => {
                if let Some(wrong) = asked.iter().find(|price| **price != product.price) {
                    return Err(ApiError::Validation(format!(
                        "price of product {product_id} is {} in the catalog, not {wrong}",
                        product.price
                    )));
                }
            }
            Ok(None) => {
                return Err(ApiError::Validation(format!(
                    "product {product_id} does not exist in the catalog"
                )));
            }
            Err(err) => {
                tracing::warn!(error = %err, "catalog unavailable; accepting order unverified");
                return Ok(false);
            }
        }
    }
    Ok(true)
}

pub async fn orders_list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<Vec<OrderOut>>, ApiError> {
    let user = params.user_id.as_deref().map(UserId::parse).transpose()?;
    let status = params
        .status
        .as_deref()
        .map(str::parse::<OrderStatus>)
        .transpose()?;
    let page = Page {
        limit: params.limit,
        offset: params.offset,
    };
    let orders = state
        .db
        .call(move |conn| Ok(store::list_orders(conn, user.as_ref(), status, page)?))
        .await?;
    Ok(Json(orders))
}

pub async fn orders_get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<OrderOut>, ApiError> {
    let id = Id::parse(id, "order id")?;
    state
        .db
        .call(move |conn| Ok(store::get_order(conn, id)?))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("order {id} not found")))
}

/// The payment webhook: PENDING becomes PAID; an order already paid answers 200 unchanged;
/// a cancelled one is a 409.
pub async fn orders_payment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<OrderOut>, ApiError> {
    let id = Id::parse(id, "order id")?;
    let notice: PaymentNotice = if body.iter().all(u8::is_ascii_whitespace) {
        PaymentNotice::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("payment notice is not valid JSON: {e}")))?
    };
    let order = state
        .db
        .write(move |tx| {
            let (status, total) = store::order_status(tx, id)?
                .ok_or_else(|| ApiError::NotFound(format!("order {id} not found")))?;
            if let Some(amount) = notice.amount.filter(|amount| *amount != total) {
                return Err(ApiError::Validation(format!(
                    "payment of {amount} does not match order total {total}"
                )));
            }
            match payment_outcome(status) {
                PaymentOutcome::MarkPaid => {
                    store::mark_paid(tx, id, notice.payment_id)?;
                }
                PaymentOutcome::AlreadyPaid => {}
                PaymentOutcome::Refused => {
                    return Err(ApiError::Conflict(format!(
                        "order {id} is {status} and cannot be paid"
                    )));
                }
            }
            store::get_order(tx, id)?.ok_or_else(|| ApiError::internal("order vanished"))
        })
        .await?;
    Ok(Json(order))
}
