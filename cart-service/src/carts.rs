//! The cart operations: each owns its transaction and answers with the cart as it is after
//! it. Adding asks the catalog first and fails open when it cannot answer (no money is at
//! stake yet: the line is marked unverified and checked at checkout).

use crate::AppState;
use crate::domain::{CartLine, CartOut};
use crate::store;
use service_kit::auth::Access;
use service_kit::db::{StoreError, Undone};
use service_kit::domain::Invalid;
use service_kit::domain::{Id, Quantity, UserId};
use service_kit::session;
use shop_contracts::orders::MAX_ORDER_LINES;

/// The user's cart, priced where the catalog answered.
pub async fn view(state: &AppState, user: UserId) -> Result<CartOut, Undone<CartRefused>> {
    state
        .db
        .read_with(move |conn| -> Result<_, Undone<CartRefused>> {
            cart_of(&user, store::cart_lines(conn, &user)?)
        })
        .await
}

/// Adds `quantity` units of `product`: 404 when the catalog does not know it; unverified
/// when the catalog cannot answer; 422 past [`Quantity::MAX`] units on the line. Returns the
/// line and the whole cart. A new line past [`MAX_ORDER_LINES`] is a 422: its checkout
/// could not place the order.
pub async fn add(
    state: &AppState,
    user: UserId,
    product: Id,
    quantity: Quantity,
) -> Result<(CartLine, CartOut), Undone<CartRefused>> {
    let known = match state.catalog.product(product).await {
        Ok(Some(found)) => Some(found),
        Ok(None) => {
            let unknown = format!("product {product} not found in catalog");
            return Err(Undone::Refused(CartRefused::NotFound(unknown)));
        }
        Err(err) => {
            tracing::warn!(%product, error = %err, "catalog unavailable; adding item unverified");
            None
        }
    };
    let cart = state
        .db
        .write_with(move |tx| {
            let current = store::line_quantity(tx, &user, product)?;
            if current == 0 && store::line_count(tx, &user)? >= MAX_ORDER_LINES {
                return Err(refused_invalid(format!(
                    "a cart holds at most {MAX_ORDER_LINES} lines (as many as an order)"
                )));
            }
            if current + quantity.get() > Quantity::MAX {
                return Err(refused_invalid(format!(
                    "a cart line holds at most {} units; this one has {current}",
                    Quantity::MAX
                )));
            }
            store::add_to_line(tx, &user, product, quantity, known.as_ref())?;
            cart_of(&user, store::cart_lines(tx, &user)?)
        })
        .await?;
    let line = cart.items.iter().find(|l| l.product_id == product.get());
    let line = line
        .cloned()
        .ok_or_else(|| StoreError::Failed("added line missing from cart".into()))?;
    Ok((line, cart))
}

/// Sets a line's units (404 when the cart has no such line).
pub async fn set_quantity(
    state: &AppState,
    user: UserId,
    product: Id,
    quantity: Quantity,
) -> Result<CartOut, Undone<CartRefused>> {
    state
        .db
        .write_with(move |tx| {
            if !store::set_line_quantity(tx, &user, product, quantity)? {
                return Err(not_in_cart(product));
            }
            cart_of(&user, store::cart_lines(tx, &user)?)
        })
        .await
}

/// Removes a line (404 when the cart has no such line).
pub async fn remove(
    state: &AppState,
    user: UserId,
    product: Id,
) -> Result<CartOut, Undone<CartRefused>> {
    state
        .db
        .write_with(move |tx| {
            if !store::remove_line(tx, &user, product)? {
                return Err(not_in_cart(product));
            }
            cart_of(&user, store::cart_lines(tx, &user)?)
        })
        .await
}

/// Empties the cart.
pub async fn clear(state: &AppState, user: UserId) -> Result<CartOut, Undone<CartRefused>> {
    state
        .db
        .write_with(move |tx| {
            store::clear_cart(tx, &user)?;
            cart_of(&user, Vec::new())
        })
        .await
}

fn not_in_cart(product: Id) -> Undone<CartRefused> {
    Undone::Refused(CartRefused::NotFound(format!(
        "product {product} is not in the cart"
    )))
}

fn refused_invalid(why: String) -> Undone<CartRefused> {
    Undone::Refused(CartRefused::Invalid(why))
}

/// Why a cart change was refused: the cart is as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartRefused {
    /// The catalog does not know the product, or the cart has no such line, or the cart is
    /// not the caller's (which is never told apart from none).
    NotFound(String),
    /// A rule is broken (too many lines or units, a total too large).
    Invalid(String),
    /// A shopper sent neither a session nor a cart token.
    NoShopper(String),
}

/// The path segment a shopper names their own cart by.
pub const OWN_CART: &str = "me";

/// The header a guest sends their cart token in (never the path: paths are logged).
pub const CART_TOKEN_HEADER: &str = "x-cart-token";

/// Opens a guest cart: a new unguessable token (the caller keeps it; the shop keeps only
/// its hash) for a cart filed under a new guest id.
pub async fn open_guest_cart(state: &AppState) -> Result<String, StoreError> {
    let token = session::random_token("ct_");
    let hashed = session::token_hash(&token);
    let user = session::new_id(session::GUEST_PREFIX);
    state
        .db
        .write(move |tx| Ok(store::insert_guest_cart(tx, &hashed, &user)?))
        .await?;
    Ok(token)
}

/// Whose cart `/cart/{named}` is for this caller ([`decide_cart_owner`] for a shopper). The admin names any user. A shopper
/// names only [`OWN_CART`]: with a session, the customer's cart (a guest cart whose token
/// comes along is merged into it first, once); with only a cart token, that guest's cart.
/// Any other name, or a token that opens nothing, is "no such cart".
pub async fn owner(
    state: &AppState,
    access: &Access,
    named: &str,
    cart_token: Option<&str>,
) -> Result<UserId, Undone<CartRefused>> {
    let Access::Shopper(shopper) = access else {
        return UserId::parse(named)
            .map_err(|Invalid(why)| Undone::Refused(CartRefused::Invalid(why)));
    };
    let no_such_cart = || Undone::Refused(CartRefused::NotFound("no such cart".into()));
    if named != OWN_CART {
        return Err(no_such_cart());
    }
    let hashed = cart_token.map(session::token_hash);
    // Read first: only a guest cart that is to join a customer's takes a write.
    let guest = match hashed.clone() {
        Some(hashed) => Some(
            state
                .db
                .read(move |conn| Ok(store::guest_cart(conn, &hashed)?))
                .await?,
        ),
        None => None,
    };
    let user = match decide_cart_owner(guest, shopper.customer.as_deref()) {
        CartOwner::Guest(user) | CartOwner::Customer(user) => user,
        CartOwner::MergeInto(customer) => {
            let (hashed, into) = (hashed.unwrap_or_default(), customer.clone());
            state
                .db
                .write(move |tx| Ok(store::merge_guest_cart(tx, &hashed, &into, Quantity::MAX)?))
                .await?;
            customer
        }
        CartOwner::NoSuchCart => return Err(no_such_cart()),
        CartOwner::NoShopper => {
            return Err(Undone::Refused(CartRefused::NoShopper(
                "a shopper's cart needs a customer's session (Authorization: Bearer) or a \
                 cart token from POST /carts (X-Cart-Token)"
                    .into(),
            )));
        }
    };
    UserId::parse(&user).map_err(|Invalid(why)| Undone::Refused(CartRefused::Invalid(why)))
}

/// Whose cart a shopper's `/cart/me` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartOwner {
    /// The guest cart of the token.
    Guest(String),
    /// The signed-in customer's.
    Customer(String),
    /// The customer's, once the token's guest cart has joined it.
    MergeInto(String),
    /// The token opens nothing (unknown, or merged and no session).
    NoSuchCart,
    /// Neither a session nor a token.
    NoShopper,
}

/// Decides whose cart it is from what the cart token opened (`None`: no token; `Some(None)`:
/// a token the shop never handed out; else the guest's user id and the customer it was
/// merged into, if any) and the signed-in `customer`.
pub fn decide_cart_owner(
    guest: Option<Option<(String, Option<String>)>>,
    customer: Option<&str>,
) -> CartOwner {
    match (guest, customer) {
        (None, None) => CartOwner::NoShopper,
        (None, Some(customer)) => CartOwner::Customer(customer.to_string()),
        (Some(None), _) => CartOwner::NoSuchCart,
        (Some(Some((_, Some(_)))), None) => CartOwner::NoSuchCart,
        (Some(Some((_, Some(_)))), Some(customer)) => CartOwner::Customer(customer.to_string()),
        (Some(Some((guest, None))), None) => CartOwner::Guest(guest),
        (Some(Some((_, None))), Some(customer)) => CartOwner::MergeInto(customer.to_string()),
    }
}

/// The guest user a cart token opens, if it opens one (for reading a guest's checkouts).
pub async fn guest_of(
    state: &AppState,
    cart_token: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let Some(hashed) = cart_token.map(session::token_hash) else {
        return Ok(None);
    };
    state
        .db
        .read(move |conn| {
            Ok(store::guest_cart(conn, &hashed)?
                .filter(|(_, merged)| merged.is_none())
                .map(|(guest, _)| guest))
        })
        .await
}

/// The cart view of `lines`, refused when its total would be too large.
fn cart_of(user: &UserId, lines: Vec<CartLine>) -> Result<CartOut, Undone<CartRefused>> {
    CartOut::from_lines(user.as_str(), lines)
        .map_err(|Invalid(why)| Undone::Refused(CartRefused::Invalid(why)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shoppers_cart_is_the_sessions_or_the_tokens_and_a_guest_cart_joins_a_customer_once() {
        let fresh = || Some(Some(("guest_1".to_string(), None)));
        let merged = || Some(Some(("guest_1".to_string(), Some("cus_a".to_string()))));
        assert_eq!(decide_cart_owner(None, None), CartOwner::NoShopper);
        assert_eq!(
            decide_cart_owner(None, Some("cus_a")),
            CartOwner::Customer("cus_a".into())
        );
        assert_eq!(
            decide_cart_owner(Some(None), Some("cus_a")),
            CartOwner::NoSuchCart
        );
        assert_eq!(
            decide_cart_owner(fresh(), None),
            CartOwner::Guest("guest_1".into())
        );
        assert_eq!(
            decide_cart_owner(fresh(), Some("cus_a")),
            CartOwner::MergeInto("cus_a".into())
        );
        assert_eq!(
            decide_cart_owner(merged(), Some("cus_a")),
            CartOwner::Customer("cus_a".into())
        );
        assert_eq!(decide_cart_owner(merged(), None), CartOwner::NoSuchCart);
    }
}
