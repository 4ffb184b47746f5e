//! `GET /payments/export.csv`: the payments and refunds of a period, as CSV.

use crate::AppState;
use crate::domain::{Payment, Refund};
use crate::store;
use axum::extract::State;
use axum::response::Response;
use service_kit::ApiError;
use service_kit::error::ErrorBody;
use service_kit::export::{self, Period, plain_field, record, text_field};
use service_kit::extract::Query;
use service_kit::openapi::ProtectedErrors;

const COLUMNS: &[&str] = &[
    "kind",
    "id",
    "ref",
    "payment_id",
    "order_id",
    "at",
    "status",
    "amount",
    "currency",
    "card_brand",
    "card_last4",
    "reason",
];

/// Where an export is: payments first, then refunds, each after an id.
#[derive(Debug, Clone, Copy)]
enum Cursor {
    Payments(i64),
    Refunds(i64),
}

const EXPORT_PAGE: i64 = 200;

fn payment_record(p: &Payment) -> String {
    let card = p.card.as_ref();
    record(&[
        plain_field("payment"),
        plain_field(&p.id.to_string()),
        plain_field(&p.reference),
        plain_field(&p.id.to_string()),
        plain_field(&p.order_id.to_string()),
        plain_field(&p.created_at),
        plain_field(p.status.as_str()),
        plain_field(&p.amount.to_string()),
        plain_field(service_kit::money::shop_currency()),
        text_field(card.map_or("", |c| c.brand.as_str())),
        text_field(card.map_or("", |c| c.last4.as_str())),
        text_field(
            p.failure_code
                .as_deref()
                .or(p.void_reason.as_deref())
                .unwrap_or(""),
        ),
    ])
}

fn refund_record((r, order_id): &(Refund, i64)) -> String {
    record(&[
        plain_field("refund"),
        plain_field(&r.id.to_string()),
        plain_field(&r.reference),
        plain_field(&r.payment_id.to_string()),
        plain_field(&order_id.to_string()),
        plain_field(&r.created_at),
        plain_field("refunded"),
        plain_field(&r.amount.to_string()),
        plain_field(service_kit::money::shop_currency()),
        String::new(),
        String::new(),
        text_field(r.reason.as_deref().unwrap_or("")),
    ])
}

/// The payments made and the refunds given in a period (RFC 4180, UTF-8, sent as it is
/// read): payments first, then refunds, each oldest first. The captured payments' amounts
/// sum to `/payments/summary`'s captured total, the refunds' to its refunded total. Cards
/// appear as brand and last four only.
#[utoipa::path(
    get,
    path = "/payments/export.csv",
    tag = "payments",
    params(Period),
    responses(
        (status = 200, description = "Payments and refunds as CSV", content_type = "text/csv", body = String),
        (status = 400, description = "A parameter of the wrong type", body = ErrorBody),
        (status = 422, description = "A time that is not RFC 3339, or an unknown parameter", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn payments_export(
    State(state): State<AppState>,
    Query(period): Query<Period>,
) -> Result<Response, ApiError> {
    let (from, to) = period.parse()?;
    let header = export::header(COLUMNS);
    let start = Cursor::Payments(0);
    Ok(export::csv_response(
        "payments.csv",
        header,
        start,
        move |cursor| {
            let (db, from, to) = (state.db.clone(), from.clone(), to.clone());
            async move {
                db.call(move |conn| {
                    let period = (from.as_deref(), to.as_deref());
                    Ok(match cursor {
                        Cursor::Payments(after) => {
                            let page = store::payments_after(conn, after, period, EXPORT_PAGE)?;
                            let next = match page.last() {
                                Some(last) if page.len() as i64 == EXPORT_PAGE => {
                                    Cursor::Payments(last.id)
                                }
                                _ => Cursor::Refunds(0),
                            };
                            (page.iter().map(payment_record).collect(), Some(next))
                        }
                        Cursor::Refunds(after) => {
                            let page = store::refunds_after(conn, after, period, EXPORT_PAGE)?;
                            let next = page
                                .last()
                                .filter(|_| page.len() as i64 == EXPORT_PAGE)
                                .map(|(last, _)| Cursor::Refunds(last.id));
                            (page.iter().map(refund_record).collect(), next)
                        }
                    })
                })
                .await
            }
        },
    ))
}
