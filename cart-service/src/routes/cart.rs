//! `/cart/{user_id}`: view, add to, change and clear a cart.

use crate::AppState;
use crate::domain::{CartLine, CartOut};
use crate::store;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::domain::{Id, Quantity, UserId};
use service_kit::extract::{Json, Path, Query};

/// `?product_id=X&quantity=N` (quantity defaults to 1).
#[derive(Debug, Deserialize)]
pub struct AddParams {
    pub product_id: i64,
    pub quantity: Option<i64>,
}

/// `?quantity=N`.
#[derive(Debug, Deserialize)]
pub struct QuantityParams {
    pub quantity: i64,
}

/// The answer to an add: the line as it is now, and the whole cart.
#[derive(Debug, Serialize)]
pub struct AddOut {
    pub item: CartLine,
    pub cart: CartOut,
}

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
