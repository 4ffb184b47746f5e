//! `/cart/{user_id}`: view, add to, change and clear a cart.

use crate::AppState;
use crate::domain::{CartLine, CartOut};
use crate::store;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::domain::{Id, Quantity, UserId};
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, Path, Query};
use service_kit::openapi::ProtectedErrors;

/// `?product_id=X&quantity=N` (quantity defaults to 1).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AddParams {
    /// The catalog's product id.
    #[param(minimum = 1)]
    pub product_id: i64,
    /// Units to add (1 to 1000, default 1).
    #[param(minimum = 1, maximum = 1000)]
    pub quantity: Option<i64>,
}

/// `?quantity=N`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuantityParams {
    /// The line's new number of units (1 to 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub quantity: i64,
}

/// The answer to an add: the line as it is now, and the whole cart.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AddOut {
    pub item: CartLine,
    pub cart: CartOut,
}

/// A shopper's cart, priced by the catalog where it answered.
#[utoipa::path(
    get,
    path = "/cart/{user_id}",
    params(("user_id" = inline(UserId), Path, description = "The shopper")),
    responses(
        (status = 200, description = "The cart (empty when the shopper has none)", body = CartOut),
        (status = 422, description = "An invalid user id, product id or quantity", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn cart_get(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<CartOut>, ApiError> {
    let user = UserId::parse(&user_id)?;
    let cart = state
        .db
        .call(move |conn| CartOut::from_lines(user.as_str(), store::cart_lines(conn, &user)?))
        .await?;
    Ok(Json(cart))
}

/// Adds units of a product; when the catalog cannot answer the line is added unverified.
#[utoipa::path(
    post,
    path = "/cart/{user_id}/add",
    params(("user_id" = inline(UserId), Path, description = "The shopper"), AddParams),
    responses(
        (status = 200, description = "The line and the whole cart", body = AddOut),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        (status = 404, description = "The catalog has no such product", body = ErrorBody),
        (status = 422, description = "An invalid id or quantity, or a line or total too large", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn cart_add(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Query(params): Query<AddParams>,
) -> Result<Json<AddOut>, ApiError> {
    let user = UserId::parse(&user_id)?;
    let product = Id::parse(params.product_id, "product_id")?;
    let quantity = Quantity::parse(params.quantity.unwrap_or(1))?;

    let known = match state.catalog.product(product).await {
        Ok(Some(found)) => Some(found),
        Ok(None) => {
            return Err(ApiError::NotFound(format!(
                "product {product} not found in catalog"
            )));
        }
        Err(err) => {
            // Fail-open: nothing is charged when a cart changes, so a catalog outage must
            // not stop shopping. The line is marked unverified and checked at checkout.
            tracing::warn!(%product, error = %err, "catalog unavailable; adding item unverified");
            None
        }
    };

    let cart = state
        .db
        .write(move |tx| {
            let current = store::line_quantity(tx, &user, product)?;
            if current + quantity.get() > Quantity::MAX {
                return Err(ApiError::Validation(format!(
                    "a cart line holds at most {} units; this one has {current}",
                    Quantity::MAX
                )));
            }
            store::add_to_line(tx, &user, product, quantity, known.as_ref())?;
            CartOut::from_lines(user.as_str(), store::cart_lines(tx, &user)?)
        })
        .await?;
    let item = cart
        .items
        .iter()
        .find(|line| line.product_id == product.get())
        .cloned()
        .ok_or_else(|| ApiError::internal("added line missing from cart"))?;
    Ok(Json(AddOut { item, cart }))
}

/// Sets the number of units of one line.
#[utoipa::path(
    put,
    path = "/cart/{user_id}/items/{product_id}",
    params(("user_id" = inline(UserId), Path, description = "The shopper"), ("product_id" = i64, Path, description = "The product of the line", minimum = 1), QuantityParams),
    responses(
        (status = 200, description = "The cart as it is now", body = CartOut),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        (status = 404, description = "The product is not in the cart", body = ErrorBody),
        (status = 422, description = "An invalid id or quantity, or a total too large", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn items_update(
    State(state): State<AppState>,
    Path((user_id, product_id)): Path<(String, i64)>,
    Query(params): Query<QuantityParams>,
) -> Result<Json<CartOut>, ApiError> {
    let user = UserId::parse(&user_id)?;
    let product = Id::parse(product_id, "product_id")?;
    let quantity = Quantity::parse(params.quantity)?;
    let cart = state
        .db
        .write(move |tx| {
            if !store::set_line_quantity(tx, &user, product, quantity)? {
                return Err(ApiError::NotFound(format!(
                    "product {product} is not in the cart"
                )));
            }
            CartOut::from_lines(user.as_str(), store::cart_lines(tx, &user)?)
        })
        .await?;
    Ok(Json(cart))
}

/// Removes one line.
#[utoipa::path(
    delete,
    path = "/cart/{user_id}/items/{product_id}",
    params(("user_id" = inline(UserId), Path, description = "The shopper"), ("product_id" = i64, Path, description = "The product of the line", minimum = 1)),
    responses(
        (status = 200, description = "The cart as it is now", body = CartOut),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        (status = 404, description = "The product is not in the cart", body = ErrorBody),
        (status = 422, description = "An invalid user id, product id or quantity", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn items_remove(
    State(state): State<AppState>,
    Path((user_id, product_id)): Path<(String, i64)>,
) -> Result<Json<CartOut>, ApiError> {
    let user = UserId::parse(&user_id)?;
    let product = Id::parse(product_id, "product_id")?;
    let cart = state
        .db
        .write(move |tx| {
            if !store::remove_line(tx, &user, product)? {
                return Err(ApiError::NotFound(format!(
                    "product {product} is not in the cart"
                )));
            }
            CartOut::from_lines(user.as_str(), store::cart_lines(tx, &user)?)
        })
        .await?;
    Ok(Json(cart))
}

/// Empties the cart.
#[utoipa::path(
    delete,
    path = "/cart/{user_id}/clear",
    params(("user_id" = inline(UserId), Path, description = "The shopper")),
    responses(
        (status = 200, description = "The empty cart", body = CartOut),
        (status = 422, description = "An invalid user id, product id or quantity", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn cart_clear(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<CartOut>, ApiError> {
    let user = UserId::parse(&user_id)?;
    let cart = state
        .db
        .write(move |tx| {
            store::clear_cart(tx, &user)?;
            CartOut::from_lines(user.as_str(), Vec::new())
        })
        .await?;
    Ok(Json(cart))
}
