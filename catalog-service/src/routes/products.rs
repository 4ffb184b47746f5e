//! `/products`: the catalog as clients see it.

use crate::AppState;
use crate::domain::{AuditRow, Movement, Product, ProductFields, ProductSort};
use crate::inventory;
use crate::store;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::domain::{Id, Page};
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, Path, Query, RawBody};
use service_kit::listing::Listed;
use service_kit::money::Cents;
use service_kit::openapi::ProtectedErrors;

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductOut {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// Its stock-keeping unit, unique among products.
    pub sku: Option<String>,
    pub category: Option<String>,
    /// Where its picture is (`/products/{id}/image`), if it has one.
    pub image_url: Option<String>,
    pub price: Cents,
    /// Units on sale (the same as `available`).
    pub stock: i64,
    /// Units on sale.
    pub available: i64,
    /// Units held by orders not yet paid: on hand, not for sale.
    pub reserved: i64,
    /// Units in the warehouse: available plus reserved.
    pub on_hand: i64,
    /// Bumped by every change; send it as `If-Match` to overwrite `stock`. Also the
    /// `ETag` of `GET /products/{id}`.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Product> for ProductOut {
    fn from(p: Product) -> Self {
        ProductOut {
            id: p.id,
            name: p.name,
            description: p.description,
            image_url: p.has_image.then(|| format!("/products/{}/image", p.id)),
            sku: p.sku,
            category: p.category,
            price: p.price,
            stock: p.stock,
            available: p.stock,
            reserved: p.reserved,
            on_hand: p.stock.saturating_add(p.reserved),
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// `GET /products?q=&category=&sku=&min_price=&max_price=&in_stock=&sort=&limit=&offset=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Words in the name or description (any case), or the SKU.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Only this category (any case).
    #[param(max_length = 100)]
    pub category: Option<String>,
    /// Only the product with this SKU.
    #[param(max_length = 64)]
    pub sku: Option<String>,
    /// Only products costing at least this much.
    #[param(value_type = Option<f64>, minimum = 0.0)]
    pub min_price: Option<Cents>,
    /// Only products costing at most this much.
    #[param(value_type = Option<f64>, minimum = 0.0)]
    pub max_price: Option<Cents>,
    /// `true`: only products with units on sale.
    pub in_stock: Option<bool>,
    /// Only these products: ids separated by commas, at most 200 (one call for an order's
    /// or a cart's lines).
    pub ids: Option<String>,
    /// `id` (default), `price`, `-price`, `name` or `newest`.
    #[param(inline)]
    pub sort: Option<ProductSort>,
    /// Rows wanted (1 to 200, default 50).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u32>,
}

/// Products on sale, by id unless `sort` says otherwise, filtered as asked. The body is
/// the page's bare array; `X-Total-Count` has how many match in all, and `Link` the next
/// page.
#[utoipa::path(
    get,
    path = "/products",
    tag = "products",
    params(ProductQuery),
    responses(
        (status = 200, description = "Products", body = [ProductOut],
            headers(("X-Total-Count" = i64, description = "How many products match in all"),
                    ("Link" = String, description = "<...>; rel=\"next\" while more are left"))),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        (status = 422, description = "A filter out of range", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn products_list(
    State(state): State<AppState>,
    uri: Uri,
    Query(query): Query<ProductQuery>,
) -> Result<Listed<ProductOut>, ApiError> {
    let (filter, page) = query.parse()?;
    let by_ids = filter.ids.is_some();
    let list =
        move |conn: &mut rusqlite::Connection| Ok(store::list_products(conn, &filter, page)?);
    // Products by id are read by key (an order's lines): a short read, done in place.
    let products = match by_ids {
        true => state.db.read(list).await?,
        false => state.db.call(list).await?,
    };
    Ok(Listed::new(products, page, uri).map(ProductOut::from))
}

impl ProductQuery {
    /// The filter and page this query asks for, each value checked (422 naming it).
    pub fn parse(self) -> Result<(store::ProductFilter, Page), ApiError> {
        let too_long = |name: &str, value: &Option<String>, max: usize| match value {
            Some(v) if v.chars().count() > max => Err(ApiError::Validation(format!(
                "{name} must be at most {max} characters"
            ))),
            _ => Ok(()),
        };
        too_long("q", &self.q, 100)?;
        too_long("category", &self.category, 100)?;
        too_long("sku", &self.sku, 64)?;
        if self.min_price.is_some_and(|p| p.get() < 0)
            || self.max_price.is_some_and(|p| p.get() < 0)
        {
            return Err(ApiError::Validation("prices cannot be negative".into()));
        }
        let blank_is_none =
            |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let filter = store::ProductFilter {
            q: blank_is_none(self.q),
            category: blank_is_none(self.category),
            sku: blank_is_none(self.sku),
            min_price: self.min_price,
            max_price: self.max_price,
            in_stock: self.in_stock.unwrap_or(false),
            ids: self.ids.as_deref().map(parse_ids).transpose()?,
            sort: self.sort.unwrap_or(ProductSort::Id),
        };
        let page = Page {
            limit: self.limit,
            offset: self.offset,
        };
        Ok((filter, page))
    }
}

impl From<inventory::ChangeRefused> for ApiError {
    fn from(refused: inventory::ChangeRefused) -> ApiError {
        use inventory::ChangeRefused;
        match refused {
            ChangeRefused::NotFound(m) => ApiError::NotFound(m),
            ChangeRefused::Conflict(m) => ApiError::Conflict(m),
            ChangeRefused::Invalid(m) => ApiError::Validation(m),
            ChangeRefused::Stale(m) => ApiError::PreconditionFailed(m),
            ChangeRefused::NeedsVersion(m) => ApiError::PreconditionRequired(m),
            ChangeRefused::TooLarge(m) => ApiError::PayloadTooLarge(m),
            ChangeRefused::BadVersion(m) => ApiError::BadRequest(m),
        }
    }
}

/// `1,2,3`: each a product id, at most [`MAX_IDS`] of them.
fn parse_ids(text: &str) -> Result<Vec<Id>, ApiError> {
    let ids = text
        .split(',')
        .map(|id| match id.trim().parse::<i64>() {
            Ok(id) => Id::parse(id, "product id"),
            Err(_) => Err(service_kit::domain::Invalid(
                "ids must be product ids separated by commas".into(),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() > MAX_IDS {
        return Err(ApiError::Validation(format!(
            "ids names at most {MAX_IDS} products"
        )));
    }
    Ok(ids)
}

/// How many products one `GET /products?ids=` may name: a page's most.
const MAX_IDS: usize = 200;

/// The picture of product `id`, as uploaded.
#[utoipa::path(
    get,
    path = "/products/{id}/image",
    tag = "products",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 200, description = "The image (PNG, JPEG or WebP)", content(
            (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/webp"))),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No such product on sale, or it has no image", body = ErrorBody),
        (status = 422, description = "Not a positive id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn image_get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    let id = Id::parse(id, "product id")?;
    let (content_type, bytes) = state
        .db
        .call(move |conn| Ok(store::get_image(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("product {id} has no image")))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=60".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    ))
}

/// Sets product `id`'s picture: the body is the image itself, PNG, JPEG or WebP (told by
/// its bytes, not by the header), at most 1 MiB.
#[utoipa::path(
    put,
    path = "/products/{id}/image",
    tag = "products",
    params(("id" = i64, Path, description = "Product id")),
    request_body(content = Vec<u8>, content_type = "image/png", description = "A PNG, JPEG or WebP image, at most 1 MiB"),
    responses(
        (status = 200, description = "The product, with its image_url", body = ProductOut),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No such product on sale", body = ErrorBody),
        (status = 413, description = "Larger than 1 MiB", body = ErrorBody),
        (status = 422, description = "Not a PNG, JPEG or WebP image, or not a positive id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn image_put(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawBody(bytes): RawBody,
) -> Result<Json<ProductOut>, ApiError> {
    let id = Id::parse(id, "product id")?;
    let product = inventory::set_image(&state.db, id, bytes.to_vec()).await?;
    Ok(Json(product.into()))
}

/// One product on sale.
#[utoipa::path(
    get,
    path = "/products/{id}",
    tag = "products",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductOut,
            headers(("ETag" = String, description = "The product's version, for If-Match"))),
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
) -> Result<([(header::HeaderName, String); 1], Json<ProductOut>), ApiError> {
    let id = Id::parse(id, "product id")?;
    let product = state
        .db
        .read(move |conn| Ok(store::get_product(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("product {id} not found")))?;
    let etag = format!("\"{}\"", product.version);
    Ok(([(header::ETAG, etag)], Json(product.into())))
}

/// Adds a product.
#[utoipa::path(
    post,
    path = "/products",
    tag = "products",
    request_body = ProductFields,
    responses(
        (status = 201, description = "The new product", body = ProductOut),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "The SKU is another product's", body = ErrorBody),
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
        .write_with(move |tx| inventory::create_product(tx, &fields))
        .await?;
    Ok((StatusCode::CREATED, Json(product.into())))
}

/// Changes a product's name, description or price; `stock` is an overwrite and is taken
/// only with `If-Match` naming the version read (428 without, 412 when stale), recorded as
/// a movement. Adding or taking units is `POST /products/{id}/stock`.
#[utoipa::path(
    put,
    path = "/products/{id}",
    tag = "products",
    params(("id" = i64, Path, description = "Product id"),
        ("If-Match" = Option<String>, Header, description = "The product's version as read, e.g. \"3\": the change is made only if nobody changed it since; needed to overwrite stock")),
    request_body = ProductFields,
    responses(
        (status = 200, description = "The product as it is now", body = ProductOut),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 404, description = "No such product on sale", body = ErrorBody),
        (status = 409, description = "A new stock below what is on sale and reserved can't be, or the SKU is another product's", body = ErrorBody),
        (status = 412, description = "If-Match names a version that is no longer current", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "An invalid field", body = ErrorBody),
        (status = 428, description = "stock sent without If-Match", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn products_update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(fields): Json<ProductFields>,
) -> Result<Json<ProductOut>, ApiError> {
    let id = Id::parse(id, "product id")?;
    let fields = fields.validate(false)?;
    let if_match = match headers.get(header::IF_MATCH) {
        Some(value) => Some(inventory::parse_if_match(value.to_str().unwrap_or(""))?),
        None => None,
    };
    let updated = inventory::update_product(&state.db, id, fields, if_match).await?;
    Ok(Json(updated.into()))
}

/// One row of the stock ledger.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MovementOut {
    pub id: i64,
    pub product_id: i64,
    /// Units that came in (positive) or went out.
    pub delta: i64,
    pub reason: String,
    /// Units on sale afterwards.
    pub stock_after: i64,
    pub created_at: String,
}

impl From<Movement> for MovementOut {
    fn from(m: Movement) -> Self {
        MovementOut {
            id: m.id,
            product_id: m.product_id,
            delta: m.delta,
            reason: m.reason,
            stock_after: m.stock_after,
            created_at: m.created_at,
        }
    }
}

/// `POST /products/{id}/stock` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveIn {
    /// Units in (a delivery: positive) or out (a count correction, damage: negative); not 0.
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    pub delta: i64,
    /// Why, kept in the ledger: 1 to 200 printable characters.
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
}

/// Moves units into or out of a product's stock, with a reason: a row of the stock ledger
/// and a `stock.moved` event. Units reserved by orders are never touched.
#[utoipa::path(
    post,
    path = "/products/{id}/stock",
    tag = "products",
    params(("id" = i64, Path, description = "Product id")),
    request_body = MoveIn,
    responses(
        (status = 201, description = "The movement, with the stock after it", body = MovementOut),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 404, description = "No such product on sale", body = ErrorBody),
        (status = 409, description = "Fewer units on sale than taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A delta of 0 or too large, or a bad reason", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn stock_move(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(asked): Json<MoveIn>,
) -> Result<(StatusCode, Json<MovementOut>), ApiError> {
    let id = Id::parse(id, "product id")?;
    let movement = inventory::move_stock(&state.db, id, asked.delta, asked.reason).await?;
    Ok((StatusCode::CREATED, Json(movement.into())))
}

/// A product's stock ledger, newest first.
#[utoipa::path(
    get,
    path = "/products/{id}/stock/movements",
    tag = "products",
    params(("id" = i64, Path, description = "Product id"), Page),
    responses(
        (status = 200, description = "Its movements", body = [MovementOut],
            headers(("X-Total-Count" = i64, description = "How many match in all"),
                    ("Link" = String, description = "<...>; rel=\"next\" while more are left"))),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No such product on sale", body = ErrorBody),
        (status = 422, description = "Not a positive id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn stock_movements(
    State(state): State<AppState>,
    uri: Uri,
    Path(id): Path<i64>,
    Query(page): Query<Page>,
) -> Result<Listed<MovementOut>, ApiError> {
    let id = Id::parse(id, "product id")?;
    let movements = state
        .db
        .call_with(move |conn| {
            if store::get_product(conn, id)?.is_none() {
                return Err(ApiError::NotFound(format!("product {id} not found")));
            }
            Ok(store::list_movements(conn, id, page)?)
        })
        .await?;
    Ok(Listed::new(movements, page, uri).map(MovementOut::from))
}

/// Hides a product from the catalog; its row stays, so carts and orders that name it still
/// make sense.
#[utoipa::path(
    delete,
    path = "/products/{id}",
    tag = "products",
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

/// One product's stock audit.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditOut {
    pub product_id: i64,
    pub name: String,
    /// Units on sale.
    pub available: i64,
    /// Held by open reservations (the sum of their lines).
    pub reserved: i64,
    /// Available plus reserved: what is in the warehouse.
    pub on_hand: i64,
    /// The stock ledger's sum: opening stock and every movement since.
    pub moved: i64,
    /// Units sold (committed reservations, returned ones included).
    pub sold: i64,
    /// Units sold and then returned.
    pub returned: i64,
    /// What should be on hand: moved − sold + returned.
    pub expected_on_hand: i64,
    /// Whether on hand is what it should be.
    pub balanced: bool,
}

impl From<AuditRow> for AuditOut {
    fn from(row: AuditRow) -> Self {
        AuditOut {
            on_hand: row.on_hand(),
            expected_on_hand: row.expected_on_hand(),
            balanced: row.on_hand() == row.expected_on_hand(),
            product_id: row.product_id,
            name: row.name,
            available: row.available,
            reserved: row.reserved,
            moved: row.moved,
            sold: row.sold,
            returned: row.returned,
        }
    }
}

/// The stock audit: per product on sale, on hand (available + reserved) against what the
/// ledger, the sales and the returns say (moved − sold + returned).
#[utoipa::path(
    get,
    path = "/stock/audit",
    tag = "products",
    responses(
        (status = 200, description = "Per product, by id", body = [AuditOut]),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn stock_audit(State(state): State<AppState>) -> Result<Json<Vec<AuditOut>>, ApiError> {
    let rows = state.db.call(|conn| Ok(store::stock_audit(conn)?)).await?;
    Ok(Json(rows.into_iter().map(AuditOut::from).collect()))
}
