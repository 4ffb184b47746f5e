//! `/cart/{user_id}/checkout` and `/checkouts`: run a checkout, and see where one stands.

use crate::AppState;
use crate::carts;
use crate::checkout::{self, CheckoutInput, DirectLine, Ended, ProductKey};
use crate::domain::{Checkout, CheckoutLine, CheckoutStatus, Step, StepLog};
use crate::routes::cart::CartOf;
use crate::store;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::auth::Access;
use service_kit::domain::{Id, Page, Quantity, UserId};
use service_kit::error::ErrorBody;
use service_kit::extract::body_refusal;
use service_kit::extract::{Json, OptionalJsonBody, Path, Query};
use service_kit::listing::Listed;
use service_kit::money::Cents;
use service_kit::openapi::ProtectedErrors;
use service_kit::session;
use shop_contracts::card::{self, CardIn};
use shop_contracts::customer::{Customer, ShippingAddress};

/// `GET /checkouts?user_id=U&limit=&offset=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The shopper whose checkouts are listed.
    #[param(value_type = UserId, inline)]
    pub user_id: String,
    /// Rows wanted (1 to 200, default 50).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u32>,
}

/// A checkout as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckoutOut {
    pub id: i64,
    /// The checkout's global reference (a UUIDv7); its calls to other services are keyed by it.
    #[serde(rename = "ref")]
    pub reference: String,
    pub user_id: String,
    pub status: CheckoutStatus,
    /// The step under way, or where it ended.
    pub step: Step,
    pub steps: Vec<StepLog>,
    pub lines: Vec<CheckoutLine>,
    /// What is paid: the lines at the catalog's prices, less what a promo code took off
    /// once the order is placed.
    pub total: Option<Cents>,
    pub order_id: Option<i64>,
    pub payment_id: Option<i64>,
    pub failed_step: Option<Step>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub correlation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Opens the checkout's order with the storefront key (`X-Order-Token` on
    /// `GET /orders/by-token`), once it has one; null when the shop has no session secret.
    pub order_token: Option<String>,
}

impl From<Checkout> for CheckoutOut {
    fn from(c: Checkout) -> Self {
        CheckoutOut {
            id: c.id,
            reference: c.reference,
            user_id: c.user_id,
            status: c.status,
            step: c.step,
            steps: c.steps,
            lines: c.lines,
            total: c.total,
            order_id: c.order_id,
            payment_id: c.payment_id,
            failed_step: c.failed_step,
            failure_code: c.failure_code,
            failure_reason: c.failure_reason,
            correlation_id: c.correlation_id,
            created_at: c.created_at,
            updated_at: c.updated_at,
            order_token: None,
        }
    }
}

/// A checkout's failure, answered with the status of its meaning and its own code.
impl From<checkout::Failure> for ApiError {
    fn from(failure: checkout::Failure) -> ApiError {
        match failure {
            checkout::Failure::Declined { code, message } => ApiError::Declined { code, message },
            checkout::Failure::Conflict(message) => ApiError::Conflict(message),
            checkout::Failure::Invalid(message) => ApiError::Validation(message),
            checkout::Failure::NotFound(message) => ApiError::NotFound(message),
            checkout::Failure::Unavailable(message) => ApiError::Unavailable(message),
        }
    }
}

/// The optional body of a checkout: the card to pay with, and whom the order is for.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// Leave out to pay without a card (always approved).
    pub card: Option<CardIn>,
    /// Kept with the order.
    pub customer: Option<Customer>,
    /// Kept with the order.
    pub shipping_address: Option<ShippingAddress>,
    /// A promo code: the order service applies it (a 422 at the order step says why it
    /// does not apply) and the discounted total is what is paid.
    #[schema(example = "WELCOME10", max_length = 32)]
    pub promo_code: Option<String>,
}

/// Reads the optional body and checks the card's form, the customer and the address, so
/// that bad input is refused before an order is placed, not at a later step with an order
/// and a reservation to undo. The card is passed on to the payment service and never kept;
/// a parse error is not echoed (it could quote the card number).
fn checkout_input(body: &[u8]) -> Result<CheckoutInput, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CheckoutInput::default());
    }
    service_kit::extract::require_utf8(body)?;
    let body: CheckoutBody = serde_json::from_slice(body).map_err(|err| {
        body_refusal(
            &err,
            r#"body must be {"card":{"number":"...","exp_month":12,"exp_year":2030,"cvc":"123"},"customer":{"email":"..."},"shipping_address":{...},"promo_code":"..."}, each part optional"#,
        )
    })?;
    if let Some(card) = &body.card {
        card::check(card, service_kit::clock::current_year_month())?;
    }
    Ok(CheckoutInput {
        card: body.card,
        customer: body.customer.map(Customer::checked).transpose()?,
        shipping_address: body
            .shipping_address
            .map(ShippingAddress::checked)
            .transpose()?,
        promo_code: body.promo_code,
        held_for: None,
    })
}

/// Checks out the whole cart: validate, order, reserve, pay, commit, clear. A failed step
/// undoes the earlier ones. Send an `Idempotency-Key` header to make a retry safe.
#[utoipa::path(
    post,
    path = "/cart/{user_id}/checkout",
    tag = "checkouts",
    params(
        ("user_id" = inline(UserId), Path, description = "The shopper"),
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 visible ASCII characters; a retry with the same key and body gets the first answer again", max_length = 255),
    ),
    request_body(content = Option<CheckoutBody>, content_type = "application/json"),
    responses(
        (status = 201, description = "Completed: paid, stock taken, cart cleared", body = CheckoutOut),
        (status = 202, description = "Paid; the last steps finish in the background", body = CheckoutOut),
        (status = 400, description = "A malformed Idempotency-Key", body = ErrorBody),
        (status = 402, description = "The card was declined; the checkout was undone", body = ErrorBody),
        (status = 404, description = "A product of the cart is gone", body = ErrorBody),
        (status = 409, description = "A checkout of this user is running, stock ran out, or the key is in use", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "A body that is not sent as JSON", body = ErrorBody),
        (status = 422, description = "An empty cart, an invalid user id, card or body, or a key reused with another body", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn cart_checkout(
    State(state): State<AppState>,
    access: Access,
    CartOf(user): CartOf,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<(StatusCode, Json<CheckoutOut>), ApiError> {
    let mut input = checkout_input(&body)?;
    input.held_for = access.client();
    ended_answer(&state, checkout::start(&state, user, input).await?)
}

/// A checkout's answer: 201 completed, 202 paid and finishing, else its failure.
fn ended_answer(
    state: &AppState,
    ended: Ended,
) -> Result<(StatusCode, Json<CheckoutOut>), ApiError> {
    match ended {
        Ended::Completed(done) => Ok((StatusCode::CREATED, Json(shown(state, done)))),
        Ended::Finishing(paid) => Ok((StatusCode::ACCEPTED, Json(shown(state, paid)))),
        Ended::Failed(_, failure) => Err(failure.into()),
        Ended::Unsettled(_, message) => Err(ApiError::Unavailable(message)),
    }
}

/// A checkout as its owner sees it: with the token that opens its order.
fn shown(state: &AppState, checkout: Checkout) -> CheckoutOut {
    let order_token = match (&state.sessions, &checkout.order_ref) {
        (Some(keys), Some(order_ref)) => Some(keys.order_token(order_ref)),
        _ => None,
    };
    CheckoutOut {
        order_token,
        ..checkout.into()
    }
}

/// Whether `access` may see `checkout`: the admin, its customer, or the guest whose cart
/// token comes along. Everyone else is told there is no such checkout.
async fn may_see(
    state: &AppState,
    access: &Access,
    headers: &HeaderMap,
    checkout: &Checkout,
) -> Result<bool, ApiError> {
    if access.owns(&checkout.user_id) {
        return Ok(true);
    }
    let token = headers
        .get(carts::CART_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    Ok(carts::guest_of(state, token).await?.as_deref() == Some(checkout.user_id.as_str()))
}

/// One checkout with its step log.
#[utoipa::path(
    get,
    path = "/checkouts/{id}",
    tag = "checkouts",
    params(("id" = i64, Path, description = "Checkout id")),
    responses(
        (status = 200, description = "The checkout", body = CheckoutOut),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 404, description = "No such checkout", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn checkouts_get(
    State(state): State<AppState>,
    access: Access,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<CheckoutOut>, ApiError> {
    let not_found = || ApiError::NotFound(format!("checkout {id} not found"));
    let found = state
        .db
        .read(move |conn| Ok(store::get_checkout(conn, id)?))
        .await?
        .ok_or_else(not_found)?;
    if !may_see(&state, &access, &headers, &found).await? {
        return Err(not_found());
    }
    Ok(Json(shown(&state, found)))
}

/// A shopper's checkouts, newest first.
#[utoipa::path(
    get,
    path = "/checkouts",
    tag = "checkouts",
    params(ListParams),
    responses(
        (status = 200, description = "Checkouts", body = [CheckoutOut],
            headers(("X-Total-Count" = i64, description = "How many match in all"),
                    ("Link" = String, description = "<...>; rel=\"next\" while more are left"))),
        (status = 400, description = "A missing parameter or one of the wrong type", body = ErrorBody),
        (status = 422, description = "An invalid user id", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn checkouts_list(
    State(state): State<AppState>,
    access: Access,
    uri: Uri,
    Query(params): Query<ListParams>,
) -> Result<Listed<CheckoutOut>, ApiError> {
    let user = UserId::parse(&params.user_id)?;
    if !access.owns(user.as_str()) {
        return Err(ApiError::NotFound("no such customer".into()));
    }
    let page = Page {
        limit: params.limit,
        offset: params.offset,
    };
    let checkouts = state
        .db
        .call(move |conn| Ok(store::list_checkouts(conn, &user, page)?))
        .await?;
    Ok(Listed::new(checkouts, page, uri).map(|c| shown(&state, c)))
}

/// Seed 001's `POST /checkout/process` body: the lines, the card and whom it is for, in one
/// call, without a cart.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessBody {
    /// Whose checkout it is (as for `/cart/{user_id}`; the admin key only). Left out, it
    /// is the signed-in customer's, else a new guest's (`guest_...`): never the email, which
    /// would reach request paths and logs.
    pub user_id: Option<String>,
    /// 1 to 100 lines.
    pub items: Vec<ProcessItem>,
    /// The card; leave out to pay without one (always approved).
    pub payment_method: Option<PaymentMethod>,
    /// The customer's email (seed 001's field); or give `customer`.
    #[schema(example = "customer@example.com")]
    pub customer_email: Option<String>,
    pub customer: Option<Customer>,
    /// Seed 001's `{street, number, city, state, zip_code}`, or the shop's own address form.
    #[serde(default, deserialize_with = "address_by_shape")]
    pub shipping_address: Option<AddressIn>,
    #[schema(example = "WELCOME10", max_length = 32)]
    pub promo_code: Option<String>,
}

/// One line of a one-call checkout.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessItem {
    /// A product id (`2`) or a product's SKU (`"prod_001"`).
    #[schema(value_type = String, example = "prod_001")]
    pub product_id: ProductIdIn,
    /// 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
    /// The price the client saw; the catalog's must be the same (else 422).
    #[schema(value_type = f64, example = 99.90)]
    pub price: Cents,
}

/// A product named by id or by SKU.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ProductIdIn {
    Id(i64),
    Text(String),
}

/// Seed 001's `payment_method`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    /// `credit_card`, `debit_card` or `card`.
    #[serde(rename = "type", default)]
    #[schema(example = "credit_card")]
    pub kind: Option<String>,
    #[schema(example = "4242424242424242")]
    pub card_number: String,
    /// `MM/YY` (or `MM/YYYY`).
    #[schema(example = "12/30")]
    pub card_expiry: String,
    #[schema(example = "123")]
    pub card_cvv: String,
}

impl std::fmt::Debug for PaymentMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentMethod([redacted])")
    }
}

/// A shipping address in either form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AddressIn {
    Shop(ShippingAddress),
    Seed(SeedAddress),
}

/// Reads an [`AddressIn`] told apart by shape (the seed's form has a `street`, the shop's
/// `lines`), so that a misspelled field gets serde's message naming it rather than "did not
/// match any variant".
fn address_by_shape<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<AddressIn>, D::Error> {
    use serde::de::Error;
    let Some(value) = Option::<serde_json::Value>::deserialize(d)? else {
        return Ok(None);
    };
    let seed_form = value.get("street").is_some() || value.get("zip_code").is_some();
    if seed_form {
        serde_json::from_value(value).map(AddressIn::Seed)
    } else {
        serde_json::from_value(value).map(AddressIn::Shop)
    }
    .map(Some)
    .map_err(D::Error::custom)
}

/// Seed 001's shipping address.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedAddress {
    #[schema(example = "Rua das Flores")]
    pub street: String,
    #[schema(example = "123")]
    pub number: Option<String>,
    pub complement: Option<String>,
    #[schema(example = "São Paulo")]
    pub city: String,
    #[schema(example = "SP")]
    pub state: Option<String>,
    #[schema(example = "01234-567")]
    pub zip_code: String,
    /// ISO 3166-1 alpha-2, when known.
    pub country: Option<String>,
    /// Who receives it (default: the customer's name, if given).
    pub name: Option<String>,
}

impl std::fmt::Debug for SeedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeedAddress([personal data])")
    }
}

impl AddressIn {
    /// The shop's form of the address.
    fn into_shipping_address(self) -> ShippingAddress {
        match self {
            AddressIn::Shop(address) => address,
            AddressIn::Seed(seed) => {
                let street = match &seed.number {
                    Some(number) => format!("{}, {}", seed.street.trim(), number.trim()),
                    None => seed.street.clone(),
                };
                ShippingAddress {
                    name: seed.name,
                    lines: std::iter::once(street).chain(seed.complement).collect(),
                    city: seed.city,
                    region: seed.state,
                    postal_code: seed.zip_code,
                    country: seed.country,
                }
            }
        }
    }
}

impl PaymentMethod {
    /// The card in the shop's form; a 422 for another type or an expiry not `MM/YY`.
    fn into_card(self) -> Result<CardIn, ApiError> {
        if let Some(kind) = &self.kind
            && !["credit_card", "debit_card", "card"].contains(&kind.as_str())
        {
            return Err(ApiError::Validation(
                "payment_method.type must be credit_card, debit_card or card".into(),
            ));
        }
        let expiry = self
            .card_expiry
            .trim()
            .split_once('/')
            .and_then(|(month, year)| {
                Some((month.trim().parse().ok()?, year.trim().parse().ok()?))
            });
        let Some((exp_month, exp_year)) = expiry else {
            return Err(ApiError::Validation(
                "payment_method.card_expiry must be MM/YY".into(),
            ));
        };
        Ok(CardIn {
            number: self.card_number,
            exp_month,
            exp_year,
            cvc: self.card_cvv,
        })
    }
}

/// Reads and checks a one-call checkout: its lines, card, customer and address, all before
/// anything is recorded. Parse errors are not echoed (they could quote the card number).
fn process_input(
    body: &[u8],
) -> Result<(Option<String>, Vec<DirectLine>, CheckoutInput), ApiError> {
    service_kit::extract::require_utf8(body)?;
    let body: ProcessBody = serde_json::from_slice(body).map_err(|err| {
        body_refusal(
            &err,
            r#"body must be {"items":[{"product_id":"prod_001","quantity":2,"price":99.90}],"payment_method":{"type":"credit_card","card_number":"...","card_expiry":"MM/YY","card_cvv":"123"},"customer_email":"...","shipping_address":{...}}"#,
        )
    })?;
    if body.items.is_empty() || body.items.len() > shop_contracts::orders::MAX_ORDER_LINES {
        return Err(ApiError::Validation(format!(
            "items must have 1 to {} lines",
            shop_contracts::orders::MAX_ORDER_LINES
        )));
    }
    let lines = body
        .items
        .into_iter()
        .map(|item| {
            let product = match item.product_id {
                ProductIdIn::Id(id) => ProductKey::Id(Id::parse(id, "product_id")?),
                ProductIdIn::Text(text) => match text.trim().parse::<i64>() {
                    Ok(id) => ProductKey::Id(Id::parse(id, "product_id")?),
                    Err(_) => ProductKey::Sku(sku(&text)?),
                },
            };
            if item.price.get() <= 0 {
                return Err(ApiError::Validation(
                    "an item's price must be positive".into(),
                ));
            }
            Ok(DirectLine {
                product,
                quantity: Quantity::parse(item.quantity)?,
                price: item.price,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let card = body
        .payment_method
        .map(PaymentMethod::into_card)
        .transpose()?;
    if let Some(card) = &card {
        card::check(card, service_kit::clock::current_year_month())?;
    }
    let customer = match (body.customer, body.customer_email) {
        (Some(customer), _) => Some(customer),
        (None, Some(email)) => Some(Customer { email, name: None }),
        (None, None) => None,
    }
    .map(Customer::checked)
    .transpose()?;
    let shipping_address = body
        .shipping_address
        .map(|address| {
            let mut address = address.into_shipping_address();
            if address.name.is_none() {
                address.name = customer.as_ref().and_then(|c| c.name.clone());
            }
            address.checked()
        })
        .transpose()?;
    let input = CheckoutInput {
        card,
        customer,
        shipping_address,
        promo_code: body.promo_code,
        held_for: None,
    };
    Ok((body.user_id, lines, input))
}

/// A SKU as a one-call checkout names it.
fn sku(raw: &str) -> Result<String, ApiError> {
    let sku = raw.trim();
    if shop_contracts::catalog::is_sku(sku) {
        Ok(sku.to_string())
    } else {
        Err(ApiError::Validation(
            "product_id must be a product id or a SKU (letters, digits, '_', '-', '.')".into(),
        ))
    }
}

/// Seed 001's one-call checkout: the lines (by product id or SKU, at the catalog's prices:
/// 422 when one differs), the card, the customer's email and the shipping address, run as
/// a cart's checkout is (validate, order, reserve, pay, commit), with its record and undo,
/// and without touching any cart. Send an `Idempotency-Key` header to make a retry safe.
#[utoipa::path(
    post,
    path = "/checkout/process",
    tag = "checkouts",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 visible ASCII characters; a retry with the same key and body gets the first answer again", max_length = 255),
    ),
    request_body(content = ProcessBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Completed: paid and stock taken", body = CheckoutOut),
        (status = 202, description = "Paid; the last steps finish in the background", body = CheckoutOut),
        (status = 400, description = "Malformed body or Idempotency-Key", body = ErrorBody),
        (status = 402, description = "The card was declined; the checkout was undone", body = ErrorBody),
        (status = 404, description = "A product is gone", body = ErrorBody),
        (status = 409, description = "Stock ran out, a checkout of this user is running, or the key is in use", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not sent as JSON", body = ErrorBody),
        (status = 422, description = "A bad line, card, customer or address, an unknown SKU, a price that is not the catalog's, a promo code that does not apply", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn checkout_process(
    State(state): State<AppState>,
    access: Access,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<(StatusCode, Json<CheckoutOut>), ApiError> {
    let (asked_user, lines, mut input) = process_input(&body)?;
    input.held_for = access.client();
    let user = match (&access, asked_user) {
        // The admin may leave it out too: a guest's, as seed 001's calls are.
        (Access::Admin, None) => UserId::parse(&session::new_id(session::GUEST_PREFIX))?,
        (_, asked) => access.filing_user(asked.as_deref())?,
    };
    let ended = checkout::start_direct(&state, user, lines, input).await?;
    ended_answer(&state, ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkout::Failure;

    #[test]
    fn a_failure_is_answered_with_the_code_it_is_recorded_with() {
        let failures = [
            Failure::Declined {
                code: "expired_card",
                message: "m".into(),
            },
            Failure::Conflict("m".into()),
            Failure::Invalid("m".into()),
            Failure::NotFound("m".into()),
            Failure::Unavailable("m".into()),
        ];
        for failure in failures {
            let code = failure.code();
            assert_eq!(ApiError::from(failure).status_and_code().1, code);
        }
    }
}
