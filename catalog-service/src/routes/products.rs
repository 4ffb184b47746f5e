//! `/products`: the catalog as clients see it.

use crate::AppState;
use crate::store;
use axum::extract::State;
use serde::Serialize;
use service_kit::ApiError;
use service_kit::domain::{Id, Page};
use service_kit::extract::{Json, Path, Query};
use service_kit::money::Cents;

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProductOut {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub price: Cents,
    pub stock: i64,
    pub created_at: String,
    pub updated_at: String,
}

pub async fn products_list(
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<ProductOut>>, ApiError> {
    let products = state
        .db
        .call(move |conn| Ok(store::list_products(conn, page)?))
        .await?;
    Ok(Json(products))
}

pub async fn products_get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<ProductOut>, ApiError> {
    let id = Id::parse(id, "product id")?;
    let product = state
        .db
        .call(move |conn| Ok(store::get_product(conn, id)?))
        .await?;
    product
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("product {id} not found")))
}
