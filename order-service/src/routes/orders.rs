//! `/orders`: place, list and read orders, and the payment webhook that marks one PAID.

use crate::AppState;
use crate::domain::{
    Customer, NewOrder, Order, OrderBody, OrderStatus, OrderStock, Shipment, ShippingAddress,
    Stats, StatusEntry,
};
use crate::lifecycle;
use crate::returns::{self, AskedReturn, Condition, OrderReturn, ReturnLine, ReturnStep};
use crate::store;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::auth::Access;
use service_kit::domain::{Id, Page, UserId};
use service_kit::error::ErrorBody;
use service_kit::extract::{Json, Path, Query, RawBody};
use service_kit::listing::Listed;
use service_kit::money::Cents;
use service_kit::openapi::ProtectedErrors;
use service_kit::webhook;
use shop_contracts::orders::StatusChange;
use shop_contracts::payments::PaymentNotice;
use std::collections::BTreeMap;

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderOut {
    pub id: i64,
    /// Its global reference: the key its stock is held under in the catalog.
    #[serde(rename = "ref")]
    pub reference: String,
    pub user_id: String,
    /// Who it is for, when the order said.
    pub customer: Option<Customer>,
    /// Where it goes, when the order said.
    pub shipping_address: Option<ShippingAddress>,
    /// How it travels, once SHIPPED with a carrier and tracking number.
    pub shipment: Option<ShipmentOut>,
    pub items: Vec<OrderItemOut>,
    /// The lines' sum.
    pub subtotal: Cents,
    /// What the promo code took off.
    pub discount: Cents,
    /// The promo code applied, if any.
    pub promo_code: Option<String>,
    /// What is paid: subtotal less discount.
    pub total: Cents,
    /// The currency of every amount here (ISO 4217: `SHOP_CURRENCY`).
    #[schema(example = "EUR")]
    pub currency: &'static str,
    pub status: OrderStatus,
    /// False when the order was accepted while the catalog could not be asked.
    pub catalog_verified: bool,
    /// The payment that paid for it, once PAID.
    pub payment_id: Option<i64>,
    /// What the payment service has refunded of it; refunded in full, a paid order is
    /// REFUNDED.
    pub refunded: Cents,
    /// Where its stock is: `pending` (the catalog not asked yet), `held`, `committed`
    /// (paid), `released` (cancelled), `untracked` (placed before orders held stock).
    pub stock: OrderStock,
    pub status_history: Vec<StatusChangeOut>,
    /// Goods that came back (`POST /orders/{id}/returns`), oldest first.
    pub returns: Vec<ReturnOut>,
    /// The `X-Request-Id` of the journey that placed it: the key to its events everywhere.
    pub correlation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// How a shipped order travels.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShipmentOut {
    pub carrier: String,
    pub tracking_number: String,
}

/// One line of an order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderItemOut {
    pub product_id: i64,
    /// The product's name and SKU when the order was placed (null if the catalog could not
    /// be asked then).
    pub name: Option<String>,
    pub sku: Option<String>,
    pub quantity: i64,
    pub price: Cents,
    pub line_total: Cents,
    /// How many of its units came back (by returns, in any condition).
    pub returned: i64,
}

/// Goods that came back, and what that moved.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReturnOut {
    pub id: i64,
    /// Its global reference: the key of its refund and of its units in the catalog.
    #[serde(rename = "ref")]
    pub reference: String,
    pub reason: String,
    pub lines: Vec<ReturnLineOut>,
    /// The money it gives back: the lines' value, less their share of a discount.
    pub refund: Cents,
    /// `pending` (to be asked), `done`, `none` (nothing left to refund) or `refused` (see
    /// `problem`).
    #[schema(value_type = String)]
    pub refund_state: ReturnStep,
    /// The payment service's refund, once done.
    pub refund_id: Option<i64>,
    /// Whether its sellable units are back on sale: `pending`, `done`, `none` (all damaged)
    /// or `refused`.
    #[schema(value_type = String)]
    pub restock_state: ReturnStep,
    /// Why a peer refused a half of it, for a person to look at.
    pub problem: Option<String>,
    pub created_at: String,
}

/// One line of a return.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnLineOut {
    #[schema(minimum = 1)]
    pub product_id: i64,
    /// 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
    /// `sellable` (back on sale) or `damaged` (not restocked).
    #[schema(value_type = String)]
    pub condition: Condition,
}

/// `POST /orders/{id}/returns` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnIn {
    /// 1 to 100 lines: which products, how many units, in what condition.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<ReturnLineOut>,
    /// Why they came back, 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

impl From<OrderReturn> for ReturnOut {
    fn from(r: OrderReturn) -> Self {
        ReturnOut {
            id: r.id,
            reference: r.reference,
            reason: r.reason,
            lines: r
                .lines
                .into_iter()
                .map(|l| ReturnLineOut {
                    product_id: l.product_id,
                    quantity: l.quantity,
                    condition: l.condition,
                })
                .collect(),
            refund: r.refund,
            refund_state: r.refund_state,
            refund_id: r.refund_id,
            restock_state: r.restock_state,
            problem: r.problem,
            created_at: r.created_at,
        }
    }
}

/// One entry of an order's status history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusChangeOut {
    pub status: OrderStatus,
    pub at: String,
    pub reason: Option<String>,
}

impl From<Order> for OrderOut {
    fn from(o: Order) -> Self {
        OrderOut {
            currency: service_kit::money::shop_currency(),
            id: o.id,
            reference: o.reference,
            user_id: o.user_id,
            customer: o.customer,
            shipping_address: o.shipping_address,
            shipment: o.shipment.map(|s| ShipmentOut {
                carrier: s.carrier,
                tracking_number: s.tracking_number,
            }),
            items: {
                // Units back per product, shown on its lines in order (a product on two
                // lines fills the first first).
                let mut back: std::collections::BTreeMap<i64, i64> = Default::default();
                for line in o.returns.iter().flat_map(|r| &r.lines) {
                    *back.entry(line.product_id).or_default() += line.quantity;
                }
                o.items
                    .into_iter()
                    .map(|i| {
                        let left = back.entry(i.product_id).or_default();
                        let returned = (*left).min(i.quantity);
                        *left -= returned;
                        OrderItemOut {
                            product_id: i.product_id,
                            name: i.name,
                            sku: i.sku,
                            quantity: i.quantity,
                            price: i.price,
                            line_total: i.line_total,
                            returned,
                        }
                    })
                    .collect()
            },
            subtotal: o.subtotal,
            discount: o.discount,
            promo_code: o.promo_code,
            total: o.total,
            status: o.status,
            catalog_verified: o.catalog_verified,
            payment_id: o.payment_id,
            stock: o.stock,
            refunded: o.refunded,
            status_history: o
                .status_history
                .into_iter()
                .map(StatusChangeOut::from)
                .collect(),
            returns: o.returns.into_iter().map(ReturnOut::from).collect(),
            correlation_id: o.correlation_id,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

impl From<StatusEntry> for StatusChangeOut {
    fn from(e: StatusEntry) -> Self {
        StatusChangeOut {
            status: e.status,
            at: e.at,
            reason: e.reason,
        }
    }
}

/// `POST /orders?user_id=U`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CreateParams {
    /// The shopper placing the order: required with the admin key; with the storefront key
    /// leave it out (the order is the signed-in customer's, else a new guest's).
    #[param(value_type = Option<UserId>, inline)]
    pub user_id: Option<String>,
    /// The storefront client (an IP address) the order is placed for, as a checkout names
    /// it; the admin key only (a shopper's own address is used for theirs).
    #[param(value_type = Option<String>, example = "127.0.0.2")]
    pub held_for: Option<String>,
}

/// A new order as its placer sees it: the order, and the token that opens it to whoever
/// holds it (a guest's receipt: send it as `X-Order-Token`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlacedOut {
    #[serde(flatten)]
    pub order: OrderOut,
    /// Opens this order (`GET /orders/by-token`, `GET /orders/{id}`) with the storefront
    /// key; null when the shop has no session secret.
    pub order_token: Option<String>,
}

/// Whether `access` may see `order`: the admin, the customer it is filed under, or whoever
/// sends its order token. Everyone else is told there is no such order.
fn may_see(state: &AppState, access: &Access, headers: &HeaderMap, order: &Order) -> bool {
    access.owns(&order.user_id)
        || state
            .sessions
            .as_ref()
            .and_then(|keys| keys.opened_order(headers))
            .is_some_and(|opened| opened == order.reference)
}

/// `GET /orders?user_id=&status=&limit=&offset=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this shopper's orders.
    #[param(value_type = Option<UserId>, inline)]
    pub user_id: Option<String>,
    /// Only orders in this status (PENDING, PAID, SHIPPED, DELIVERED, CANCELLED, REFUNDED;
    /// any case).
    pub status: Option<String>,
    /// Only orders whose customer has this email address (any case).
    #[param(max_length = 254)]
    pub email: Option<String>,
    /// Only orders placed at or after this time (RFC 3339).
    #[param(example = "2026-12-01T00:00:00Z")]
    pub created_after: Option<String>,
    /// Only orders placed before this time (RFC 3339).
    #[param(example = "2027-01-01T00:00:00Z")]
    pub created_before: Option<String>,
    /// An order id or ref, a user id or a customer's email, or words of a customer's name.
    #[param(max_length = 254)]
    pub q: Option<String>,
    /// Rows wanted (1 to 200, default 50).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u32>,
}

impl ListParams {
    /// The filter and page these parameters ask for, each value checked (422 naming it).
    pub fn parse(self) -> Result<(store::OrderFilter, Page), ApiError> {
        let time = |name: &str, raw: Option<&str>| {
            raw.map(|raw| service_kit::clock::rfc3339_field(name, raw))
                .transpose()
        };
        let q = self
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_string);
        if q.as_ref().is_some_and(|q| q.chars().count() > 254) {
            return Err(ApiError::Validation(
                "q must be at most 254 characters".into(),
            ));
        }
        let filter = store::OrderFilter {
            user: self.user_id.as_deref().map(UserId::parse).transpose()?,
            status: self
                .status
                .as_deref()
                .map(str::parse::<OrderStatus>)
                .transpose()?,
            email: self
                .email
                .as_deref()
                .map(|raw| {
                    shop_contracts::customer::normalized_email(raw).ok_or_else(|| {
                        ApiError::Validation(
                            "email must be an address like name@example.com".into(),
                        )
                    })
                })
                .transpose()?,
            created_after: time("created_after", self.created_after.as_deref())?,
            created_before: time("created_before", self.created_before.as_deref())?,
            q,
        };
        let page = Page {
            limit: self.limit,
            offset: self.offset,
        };
        Ok((filter, page))
    }
}

impl From<lifecycle::WebhookRefused> for ApiError {
    fn from(refused: lifecycle::WebhookRefused) -> ApiError {
        use lifecycle::WebhookRefused;
        match refused {
            WebhookRefused::Unsigned(m) => ApiError::Unauthorized(m),
            WebhookRefused::Unreadable(m) => ApiError::BadRequest(m),
            WebhookRefused::Notice(notice) => notice.into(),
        }
    }
}

impl From<returns::ReturnRefused> for ApiError {
    fn from(refused: returns::ReturnRefused) -> ApiError {
        use returns::ReturnRefused;
        match refused {
            ReturnRefused::NotFound(m) => ApiError::NotFound(m),
            ReturnRefused::NotPaid(m)
            | ReturnRefused::NotSoldYet(m)
            | ReturnRefused::MoreThanBought(m) => ApiError::Conflict(m),
            ReturnRefused::Invalid(m) => ApiError::Validation(m),
        }
    }
}

/// `GET /orders/stats`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsOut {
    /// The currency of every amount here (ISO 4217).
    #[schema(example = "EUR")]
    pub currency: &'static str,
    #[schema(value_type = BTreeMap<String, i64>)]
    pub orders_by_status: BTreeMap<&'static str, i64>,
    pub order_count: i64,
    /// Orders that have been paid (PAID, SHIPPED, DELIVERED).
    pub paid_order_count: i64,
    /// Sum of the totals of paid orders, net of what was refunded of them.
    pub revenue: Cents,
    /// Units of each product (by id) in paid orders: what the catalog should have sold.
    #[schema(value_type = BTreeMap<String, i64>)]
    pub paid_units: BTreeMap<i64, i64>,
    /// Revenue over paid orders (rounded down to the cent).
    pub average_order_value: Cents,
    /// Paid orders per day placed (UTC), the last 30 days, days without any left out.
    pub revenue_by_day: Vec<DayOut>,
    /// The five products sold most in paid orders.
    pub top_products: Vec<TopProductOut>,
    pub reconciliation: ReconciliationOut,
}

/// One day of paid orders.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayOut {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub orders: i64,
    /// Their totals net of refunds.
    pub revenue: Cents,
}

/// A product as the books see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopProductOut {
    pub product_id: i64,
    /// Its name when last ordered.
    pub name: Option<String>,
    pub units: i64,
    /// Units at the prices ordered, before discounts.
    pub sales: Cents,
}

impl From<Stats> for StatsOut {
    fn from(stats: Stats) -> Self {
        let status = stats.reconciliation_status();
        let average_order_value = stats.average_order_value();
        StatsOut {
            currency: service_kit::money::shop_currency(),
            average_order_value,
            revenue_by_day: stats
                .revenue_by_day
                .into_iter()
                .map(|d| DayOut {
                    day: d.day,
                    orders: d.orders,
                    revenue: d.revenue,
                })
                .collect(),
            top_products: stats
                .top_products
                .into_iter()
                .map(|p| TopProductOut {
                    product_id: p.product_id,
                    name: p.name,
                    units: p.units,
                    sales: p.sales,
                })
                .collect(),
            reconciliation: ReconciliationOut {
                paid_orders_total: stats.revenue,
                charged_order_count: stats.charged_order_count,
                captured_payments_total: stats.captured.map(|c| c.captured_total),
                captured_payments_count: stats.captured.map(|c| c.captured_count),
                refunded_total: stats.captured.map(|c| c.refunded_total),
                authorized_payments_count: stats.captured.map(|c| c.authorized_count),
                authorized_payments_total: stats.captured.map(|c| c.authorized_total),
                mismatched_orders: stats
                    .mismatched
                    .into_iter()
                    .map(|m| MismatchOut {
                        order_id: m.order_id,
                        order_value: m.order_value,
                        captured_net: m.captured_net,
                    })
                    .collect(),
                status,
            },
            orders_by_status: stats.orders_by_status,
            order_count: stats.order_count,
            paid_order_count: stats.paid_order_count,
            revenue: stats.revenue,
            paid_units: stats.paid_units,
        }
    }
}

/// Paid orders against the payments payment-service captured: the captured total net of
/// refunds must be the paid orders' total net of theirs, and there must be one capture per
/// charged order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReconciliationOut {
    /// Paid orders' totals, net of refunds.
    pub paid_orders_total: Cents,
    /// Orders a payment was captured for (paid, refunded, or cancelled and given back).
    pub charged_order_count: i64,
    pub captured_payments_total: Option<Cents>,
    pub captured_payments_count: Option<i64>,
    /// What the payment service refunded.
    pub refunded_total: Option<Cents>,
    /// Payments only authorized (their orders not verified yet): no money moved, shown
    /// apart from the books.
    pub authorized_payments_count: Option<i64>,
    pub authorized_payments_total: Option<Cents>,
    /// On a mismatch, the orders behind it (at most 20).
    pub mismatched_orders: Vec<MismatchOut>,
    /// `matched`, `mismatch` (a webhook may still be on its way) or `unavailable`.
    #[schema(value_type = String)]
    pub status: &'static str,
}

/// An order whose money the two services see differently.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MismatchOut {
    pub order_id: i64,
    /// What the order should hold: its total net of refunds while paid, else 0.
    pub order_value: Cents,
    /// What its captured payments hold, net of refunds.
    pub captured_net: Cents,
}

/// Places an order: the bare array of lines, or an object with them as `items` and the
/// optional `customer` and `shipping_address`. Every line's price must be the catalog's;
/// when the catalog cannot answer the order is accepted unverified. Send an
/// `Idempotency-Key` to make a retry safe.
#[utoipa::path(
    post,
    path = "/orders",
    tag = "orders",
    params(CreateParams, ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 visible ASCII characters; a retry with the same key and body gets the first answer again", max_length = 255)),
    request_body = OrderBody,
    responses(
        (status = 201, description = "The new order, PENDING", body = OrderOut),
        (status = 400, description = "Malformed JSON, parameter or Idempotency-Key", body = ErrorBody),
        (status = 409, description = "The same Idempotency-Key is in use", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "An invalid user id, line, customer or address field (named), or a price that is not the catalog's", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn orders_create(
    State(state): State<AppState>,
    access: Access,
    Query(params): Query<CreateParams>,
    headers: HeaderMap,
    Json(body): Json<OrderBody>,
) -> Result<(StatusCode, Json<PlacedOut>), ApiError> {
    let user = access.filing_user(params.user_id.as_deref())?;
    let held_for = match (&access, params.held_for.as_deref()) {
        (Access::Shopper(_), None) => access.client(),
        (Access::Shopper(_), Some(_)) => {
            return Err(ApiError::Forbidden(
                "held_for is named by the services only: leave it out".into(),
            ));
        }
        (Access::Admin, Some(raw)) => Some(
            raw.trim()
                .parse::<std::net::IpAddr>()
                .map_err(|_| ApiError::Validation("held_for must be an IP address".into()))?,
        ),
        (Access::Admin, None) => None,
    };
    let mut order = NewOrder::from_body(user, body)?;
    order.held_for = held_for.map(|ip| ip.to_string());
    let placed_under = service_kit::idempotency::owned_key(&headers);
    let placed = lifecycle::place_order(&state, order, placed_under).await?;
    let order_token = state
        .sessions
        .as_ref()
        .map(|keys| keys.order_token(&placed.reference));
    let order = placed.into();
    Ok((StatusCode::CREATED, Json(PlacedOut { order, order_token })))
}

/// Orders, newest first, filtered as asked. The body is the page's bare array;
/// `X-Total-Count` has how many match in all, and `Link` the next page.
#[utoipa::path(
    get,
    path = "/orders",
    tag = "orders",
    params(ListParams),
    responses(
        (status = 200, description = "Orders", body = [OrderOut],
            headers(("X-Total-Count" = i64, description = "How many orders match in all"),
                    ("Link" = String, description = "<...>; rel=\"next\" while more are left"))),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        (status = 422, description = "An invalid user id, status, email, time or search", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn orders_list(
    State(state): State<AppState>,
    access: Access,
    uri: Uri,
    Query(params): Query<ListParams>,
) -> Result<Listed<OrderOut>, ApiError> {
    let (mut filter, page) = params.parse()?;
    if let Some(customer) = access.customer() {
        // A customer lists their own orders; naming anyone else finds nobody.
        if filter.user.as_ref().is_some_and(|u| u.as_str() != customer) {
            return Err(ApiError::NotFound("no such customer".into()));
        }
        filter.user = Some(UserId::parse(customer)?);
    }
    let orders = state
        .db
        .call(move |conn| Ok(store::list_orders(conn, &filter, page)?))
        .await?;
    Ok(Listed::new(orders, page, uri).map(OrderOut::from))
}

/// One order with its status history.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "orders",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderOut),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 422, description = "Not a positive id", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn orders_get(
    State(state): State<AppState>,
    access: Access,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<OrderOut>, ApiError> {
    let id = Id::parse(id, "order id")?;
    state
        .db
        .call(move |conn| Ok(store::get_order(conn, id)?))
        .await?
        .filter(|found| may_see(&state, &access, &headers, found))
        .map(|found| Json(found.into()))
        .ok_or_else(|| ApiError::NotFound(format!("order {id} not found")))
}

/// What an order would cost now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuoteOut {
    /// The lines at the catalog's prices.
    pub subtotal: Cents,
    /// What the promo code takes off.
    pub discount: Cents,
    /// The code that applies, if one was asked for.
    pub promo_code: Option<String>,
    /// What would be paid.
    pub total: Cents,
}

/// Prices an order without placing it: the lines must carry the catalog's prices, and a
/// promo code is checked as placing the order would check it (a 422 says why it does not
/// apply). Places, holds and redeems nothing: the storefront shows the total before paying.
#[utoipa::path(
    post,
    path = "/orders/quote",
    tag = "orders",
    request_body = OrderBody,
    responses(
        (status = 200, description = "What the order would cost", body = QuoteOut),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "An invalid line, a price that is not the catalog's, a promo code that does not apply, or the catalog unreachable", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn orders_quote(
    State(state): State<AppState>,
    access: Access,
    Json(body): Json<OrderBody>,
) -> Result<Json<QuoteOut>, ApiError> {
    let user = match access.customer() {
        Some(customer) => UserId::parse(customer)?,
        None => UserId::parse("quote")?,
    };
    let order = NewOrder::from_body(user, body)?;
    let quoted = lifecycle::quote(&state, order).await?;
    Ok(Json(QuoteOut {
        subtotal: quoted.subtotal,
        discount: quoted.discount,
        promo_code: quoted.promo_code,
        total: quoted.total,
    }))
}

/// The order a guest's order token opens (sent as `X-Order-Token`, never in the path).
#[utoipa::path(
    get,
    path = "/orders/by-token",
    tag = "orders",
    params(("X-Order-Token" = String, Header, description = "The order_token answered when the order was placed")),
    responses(
        (status = 200, description = "The order", body = OrderOut),
        (status = 404, description = "The token opens no order", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn orders_by_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<OrderOut>, ApiError> {
    let not_found = || ApiError::NotFound("this order token opens no order".into());
    let reference = state
        .sessions
        .as_ref()
        .and_then(|keys| keys.opened_order(&headers))
        .ok_or_else(not_found)?;
    state
        .db
        .call(move |conn| Ok(store::order_by_ref(conn, &reference)?))
        .await?
        .map(|found| Json(found.into()))
        .ok_or_else(not_found)
}

/// The payment webhook. Accepted only with a valid Standard Webhooks signature and a fresh
/// timestamp (else 401, nothing changed). PENDING becomes PAID; an order already paid answers
/// 200 unchanged; a cancelled one is 409. A webhook id seen before is a no-op 200.
#[utoipa::path(
    post,
    path = "/orders/{id}/payment",
    tag = "orders",
    params(("id" = i64, Path, description = "Order id"),
        ("webhook-id" = String, Header, description = "Standard Webhooks message id"),
        ("webhook-timestamp" = String, Header, description = "Unix seconds, within 5 minutes of now"),
        ("webhook-signature" = String, Header, description = "v1,<base64 HMAC-SHA256>; several may be sent")),
    request_body = PaymentNotice,
    responses(
        (status = 200, description = "The order, PAID", body = OrderOut),
        (status = 400, description = "Not a number, or a body that is not a payment notice", body = ErrorBody),
        (status = 401, description = "Missing or wrong X-API-Key, or a missing, wrong or stale signature", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "The order was cancelled", body = ErrorBody),
        (status = 422, description = "Another type, order or amount", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn orders_payment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<OrderOut>, ApiError> {
    let id = Id::parse(id, "order id")?;
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let received = webhook::ReceivedHeaders {
        id: header(webhook::ID_HEADER),
        timestamp: header(webhook::TIMESTAMP_HEADER),
        signature: header(webhook::SIGNATURE_HEADER),
    };
    let order = lifecycle::apply_payment_webhook(&state, id, received, &body).await?;
    Ok(Json(order.into()))
}

#[utoipa::path(
    put,
    path = "/orders/{id}/status",
    tag = "orders",
    params(("id" = i64, Path, description = "Order id")),
    request_body = StatusChange,
    responses(
        (status = 200, description = "The order as it is now", body = OrderOut),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "A transition the lifecycle does not allow", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "An unknown status, not a positive id, or a carrier without a tracking number (or the other way round, or either without SHIPPED)", body = ErrorBody),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn orders_status_update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(change): Json<StatusChange>,
) -> Result<Json<OrderOut>, ApiError> {
    let id = Id::parse(id, "order id")?;
    let (target, from) = (change.status, change.from);
    let reason = change.reason.map(|r| r.chars().take(500).collect());
    let shipment = Shipment::parse(target, change.carrier, change.tracking_number)?;
    let order = lifecycle::change_status(&state, id, (from, target), reason, shipment).await?;
    Ok(Json(order.into()))
}

#[utoipa::path(
    get,
    path = "/orders/stats",
    tag = "orders",
    responses(
        (status = 200, description = "Counts, revenue and reconciliation", body = StatsOut),

        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn orders_stats(State(state): State<AppState>) -> Result<Json<StatsOut>, ApiError> {
    Ok(Json(lifecycle::stats(&state).await?.into()))
}

/// Records goods that came back, by line: each line's units `sellable` (back on sale) or
/// `damaged` (not restocked). Refunds those lines' value (their share of a discount taken
/// off; at most what is left of the payment), puts exactly the sellable units back on sale
/// and shows the return on the order; the order keeps its status (a return that refunds
/// all that was left makes it REFUNDED). The refund and the restock are asked for at once;
/// one that cannot be asked now is `pending` and asked again by the stock keeper.
#[utoipa::path(
    post,
    path = "/orders/{id}/returns",
    tag = "orders",
    params(("id" = i64, Path, description = "Order id")),
    request_body = ReturnIn,
    responses(
        (status = 201, description = "The order with the return recorded", body = OrderOut),
        (status = 400, description = "Malformed JSON or path, or an unknown field", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "The order is not paid or its stock not sold yet, or more units than it bought less those back already", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A product the order did not buy, a bad quantity, condition or reason", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn orders_returns_create(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(body): Json<ReturnIn>,
) -> Result<(StatusCode, Json<OrderOut>), ApiError> {
    let id = Id::parse(id, "order id")?;
    let asked = AskedReturn {
        lines: body
            .lines
            .into_iter()
            .map(|l| ReturnLine {
                product_id: l.product_id,
                quantity: l.quantity,
                condition: l.condition,
            })
            .collect(),
        reason: body.reason,
    };
    let order = returns::record(&state, id, asked).await?;
    Ok((StatusCode::CREATED, Json(order.into())))
}
