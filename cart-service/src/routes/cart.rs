//! `/cart/{user_id}`: view, add to, change and clear a cart.

use crate::AppState;
use crate::carts;
use crate::domain::{CartLine, CartOut};
use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::auth::Access;
use service_kit::domain::{Id, Quantity, UserId};
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, Path, Query};
use service_kit::openapi::ProtectedErrors;

/// `?product_id=X&quantity=N` (quantity defaults to 1).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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

impl From<carts::CartRefused> for ApiError {
    fn from(refused: carts::CartRefused) -> ApiError {
        match refused {
            carts::CartRefused::NotFound(m) => ApiError::NotFound(m),
            carts::CartRefused::Invalid(m) => ApiError::Validation(m),
            carts::CartRefused::NoShopper(m) => ApiError::Unauthorized(m),
        }
    }
}

/// The cart a request's `{user_id}` names, as [`carts::owner`] decides for its caller: any
/// user for the admin; for a shopper only `me` (their session's cart, or the guest cart
/// of their `X-Cart-Token`).
#[derive(Debug)]
pub struct CartOf(pub UserId);

impl FromRequestParts<AppState> for CartOf {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<CartOf, ApiError> {
        let access = Access::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::BadRequest("no user id in the path".into()))?;
        let named = params
            .iter()
            .find(|(name, _)| *name == "user_id")
            .map(|(_, value)| value.to_string())
            .ok_or_else(|| ApiError::BadRequest("no user id in the path".into()))?;
        let token = parts
            .headers
            .get(carts::CART_TOKEN_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::trim);
        Ok(CartOf(carts::owner(state, &access, &named, token).await?))
    }
}

/// A new guest cart's token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GuestCartOut {
    /// Send it as `X-Cart-Token` with `/cart/me/...` (never in a path); after sign-in, send
    /// it once with the session and the guest's lines join the customer's cart.
    pub cart_token: String,
    /// Where the cart is.
    #[schema(example = "/cart/me")]
    pub cart: &'static str,
}

/// Opens a guest cart: the token that alone opens it (the shop keeps only its hash).
#[utoipa::path(
    post,
    path = "/carts",
    tag = "carts",
    responses(
        (status = 201, description = "A new, empty guest cart", body = GuestCartOut),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn carts_open(
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<GuestCartOut>), ApiError> {
    let cart_token = carts::open_guest_cart(&state).await?;
    Ok((
        StatusCode::CREATED,
        Json(GuestCartOut {
            cart_token,
            cart: "/cart/me",
        }),
    ))
}

/// A shopper's cart, priced by the catalog where it answered.
#[utoipa::path(
    get,
    path = "/cart/{user_id}",
    tag = "carts",
    params(("user_id" = inline(UserId), Path, description = "The shopper (a storefront caller: `me`)")),
    responses(
        (status = 200, description = "The cart (empty when the shopper has none)", body = CartOut),
        (status = 422, description = "An invalid user id, product id or quantity", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn cart_get(
    State(state): State<AppState>,
    CartOf(user): CartOf,
) -> Result<Json<CartOut>, ApiError> {
    Ok(Json(carts::view(&state, user).await?))
}

/// Adds units of a product; when the catalog cannot answer the line is added unverified.
#[utoipa::path(
    post,
    path = "/cart/{user_id}/add",
    tag = "carts",
    params(("user_id" = inline(UserId), Path, description = "The shopper (a storefront caller: `me`)"), AddParams),
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
    CartOf(user): CartOf,
    Query(params): Query<AddParams>,
) -> Result<Json<AddOut>, ApiError> {
    let product = Id::parse(params.product_id, "product_id")?;
    let quantity = Quantity::parse(params.quantity.unwrap_or(1))?;
    let (item, cart) = carts::add(&state, user, product, quantity).await?;
    Ok(Json(AddOut { item, cart }))
}

/// Sets the number of units of one line.
#[utoipa::path(
    put,
    path = "/cart/{user_id}/items/{product_id}",
    tag = "carts",
    params(("user_id" = inline(UserId), Path, description = "The shopper (a storefront caller: `me`)"), ("product_id" = i64, Path, description = "The product of the line", minimum = 1), QuantityParams),
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
    CartOf(user): CartOf,
    Path((_, product_id)): Path<(String, i64)>,
    Query(params): Query<QuantityParams>,
) -> Result<Json<CartOut>, ApiError> {
    let product = Id::parse(product_id, "product_id")?;
    let quantity = Quantity::parse(params.quantity)?;
    Ok(Json(
        carts::set_quantity(&state, user, product, quantity).await?,
    ))
}

/// Removes one line.
#[utoipa::path(
    delete,
    path = "/cart/{user_id}/items/{product_id}",
    tag = "carts",
    params(("user_id" = inline(UserId), Path, description = "The shopper (a storefront caller: `me`)"), ("product_id" = i64, Path, description = "The product of the line", minimum = 1)),
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
    CartOf(user): CartOf,
    Path((_, product_id)): Path<(String, i64)>,
) -> Result<Json<CartOut>, ApiError> {
    let product = Id::parse(product_id, "product_id")?;
    Ok(Json(carts::remove(&state, user, product).await?))
}

/// Empties the cart.
#[utoipa::path(
    delete,
    path = "/cart/{user_id}/clear",
    tag = "carts",
    params(("user_id" = inline(UserId), Path, description = "The shopper (a storefront caller: `me`)")),
    responses(
        (status = 200, description = "The empty cart", body = CartOut),
        (status = 422, description = "An invalid user id, product id or quantity", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn cart_clear(
    State(state): State<AppState>,
    CartOf(user): CartOf,
) -> Result<Json<CartOut>, ApiError> {
    Ok(Json(carts::clear(&state, user).await?))
}
