//! `GET /orders/export.csv`: the orders of a period for an accountant, as CSV.

use crate::AppState;
use crate::domain::Order;
use crate::store;
use axum::extract::State;
use axum::response::Response;
use service_kit::ApiError;
use service_kit::error::ErrorBody;
use service_kit::export::{self, Period, plain_field, record, text_field};
use service_kit::extract::Query;
use service_kit::openapi::ProtectedErrors;

const COLUMNS: &[&str] = &[
    "order_id",
    "ref",
    "placed_at",
    "status",
    "user_id",
    "customer_email",
    "customer_name",
    "ship_to_city",
    "ship_to_postal_code",
    "ship_to_country",
    "product_id",
    "sku",
    "product",
    "quantity",
    "unit_price",
    "line_total",
    "order_subtotal",
    "order_discount",
    "promo_code",
    "order_total",
    "order_refunded",
    "currency",
];

/// An order's records: one per line; the order's own amounts only on its first, so each
/// money column sums to the period's total.
fn records(order: &Order) -> String {
    let customer = order.customer.as_ref();
    let address = order.shipping_address.as_ref();
    let mut out = String::new();
    for (n, item) in order.items.iter().enumerate() {
        let first = n == 0;
        let once = |value: String| if first { value } else { String::new() };
        out.push_str(&record(&[
            plain_field(&order.id.to_string()),
            plain_field(&order.reference),
            plain_field(&order.created_at),
            plain_field(order.status.as_str()),
            plain_field(&order.user_id),
            text_field(customer.map_or("", |c| c.email.as_str())),
            text_field(customer.and_then(|c| c.name.as_deref()).unwrap_or("")),
            text_field(address.map_or("", |a| a.city.as_str())),
            text_field(address.map_or("", |a| a.postal_code.as_str())),
            text_field(address.and_then(|a| a.country.as_deref()).unwrap_or("")),
            plain_field(&item.product_id.to_string()),
            text_field(item.sku.as_deref().unwrap_or("")),
            text_field(item.name.as_deref().unwrap_or("")),
            plain_field(&item.quantity.to_string()),
            plain_field(&item.price.to_string()),
            plain_field(&item.line_total.to_string()),
            once(order.subtotal.to_string()),
            once(order.discount.to_string()),
            once(text_field(order.promo_code.as_deref().unwrap_or(""))),
            once(order.total.to_string()),
            once(order.refunded.to_string()),
            plain_field(service_kit::money::shop_currency()),
        ]));
    }
    out
}

/// The orders placed in a period, oldest first, one record per line (RFC 4180, UTF-8,
/// sent as it is read). The paid orders' `order_total` less `order_refunded` sums to what
/// `/orders/stats` calls revenue.
#[utoipa::path(
    get,
    path = "/orders/export.csv",
    tag = "orders",
    params(Period),
    responses(
        (status = 200, description = "The orders as CSV", content_type = "text/csv", body = String),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        (status = 422, description = "A time that is not RFC 3339, or an unknown parameter", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn orders_export(
    State(state): State<AppState>,
    Query(period): Query<Period>,
) -> Result<Response, ApiError> {
    let (from, to) = period.parse()?;
    let header = export::header(COLUMNS);
    Ok(export::csv_response(
        "orders.csv",
        header,
        0,
        move |after: i64| {
            let (db, from, to) = (state.db.clone(), from.clone(), to.clone());
            async move {
                let orders = db
                    .call(move |conn| {
                        Ok(store::orders_after(
                            conn,
                            after,
                            (from.as_deref(), to.as_deref()),
                            EXPORT_PAGE,
                        )?)
                    })
                    .await?;
                let next = (orders.len() as i64 == EXPORT_PAGE)
                    .then(|| orders.last().map(|o| o.id))
                    .flatten();
                Ok((orders.iter().map(records).collect(), next))
            }
        },
    ))
}

/// Orders read per page of an export.
const EXPORT_PAGE: i64 = 200;
