//! `/products`: the catalog as clients see it.

use crate::AppState;
use crate::domain::{Product, ProductFields};
use crate::store;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use service_kit::ApiError;
use service_kit::domain::{Id, Page};
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, Path, Query};
use service_kit::money::Cents;
use service_kit::openapi::ProtectedErrors;

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductOut {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub price: Cents,
    pub stock: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Product> for ProductOut {
    fn from(p: Product) -> Self {
        ProductOut {
            id: p.id,
            name: p.name,
            description: p.description,
            price: p.price,
            stock: p.stock,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// Products on sale, by id.
#[utoipa::path(
    get,
    path = "/products",
    params(Page),
    responses(
        (status = 200, description = "Products", body = [ProductOut]),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn products_list(
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<ProductOut>>, ApiError> {
    let products = state
        .db
        .call(move |conn| Ok(store::list_products(conn, page)?))
        .await?;
    Ok(Json(products.into_iter().map(ProductOut::from).collect()))
}

/// One product on sale.
#[utoipa::path(
    get,
    path = "/products/{id}",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductOut),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No such product on sale", body = ErrorBody),
        (status = 422, description = "Not a positive id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
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
        .map(|found| Json(found.into()))
        .ok_or_else(|| ApiError::NotFound(format!("product {id} not found")))
}

/// Adds a product.
#[utoipa::path(
    post,
    path = "/products",
    request_body = ProductFields,
    responses(
        (status = 201, description = "The new product", body = ProductOut),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A missing or invalid field", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn products_create(
    State(state): State<AppState>,
    Json(fields): Json<ProductFields>,
) -> Result<(StatusCode, Json<ProductOut>), ApiError> {
    let fields = fields.validate(true)?;
    let product = state
        .db
        .write(move |tx| Ok(store::insert_product(tx, &fields)?))
        .await?;
    Ok((StatusCode::CREATED, Json(product.into())))
}

/// Changes a product's name, description, price or stock.
#[utoipa::path(
    put,
    path = "/products/{id}",
    params(("id" = i64, Path, description = "Product id")),
    request_body = ProductFields,
    responses(
        (status = 200, description = "The product as it is now", body = ProductOut),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 404, description = "No such product on sale", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "An invalid field", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn products_update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(fields): Json<ProductFields>,
) -> Result<Json<ProductOut>, ApiError> {
    let id = Id::parse(id, "product id")?;
    let fields = fields.validate(false)?;
    state
        .db
        .write(move |tx| Ok(store::update_product(tx, id, &fields)?))
        .await?
        .map(|updated| Json(updated.into()))
        .ok_or_else(|| ApiError::NotFound(format!("product {id} not found")))
}

/// Hides a product from the catalog; its row stays, so carts and orders that name it still
/// make sense.
#[utoipa::path(
    delete,
    path = "/products/{id}",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 204, description = "Hidden from the catalog"),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No such product on sale", body = ErrorBody),
        (status = 422, description = "Not a positive id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn products_delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let id = Id::parse(id, "product id")?;
    let deleted = state
        .db
        .write(move |tx| Ok(store::delete_product(tx, id)?))
        .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("product {id} not found")))
    }
}
