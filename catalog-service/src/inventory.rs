//! Admin changes to products and their stock. Stock changes are movements (`delta` units,
//! with a reason) recorded in the stock ledger with a `stock.moved` event, never a blind
//! overwrite: an overwrite of `stock` needs `If-Match` with the version the admin read, so
//! units reserved since then cannot be put back on sale by a form saved later.

use crate::domain::{MAX_STOCK, Movement, Product, ValidFields};
use crate::store;
use rusqlite::Connection;
use serde_json::json;
use service_kit::context::correlation_id;
use service_kit::db::{Db, Undone};
use service_kit::domain::Id;
use service_kit::events;

/// The reason recorded for a stock overwritten through `PUT /products/{id}`.
pub const SET_WITH_PUT: &str = "set with PUT /products/{id} (If-Match)";

/// Why an admin change of a product was refused: nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeRefused {
    /// No product with this id is on sale.
    NotFound(String),
    /// A SKU another product has, or fewer units on sale than a movement takes.
    Conflict(String),
    /// A value breaks a rule.
    Invalid(String),
    /// `If-Match` names a version that is no longer the product's (someone changed it).
    Stale(String),
    /// An overwrite of `stock` without `If-Match`.
    NeedsVersion(String),
    /// An image over the size limit.
    TooLarge(String),
    /// An `If-Match` that is not a version.
    BadVersion(String),
}

/// What an admin change answers: done, refused, or the database failed (undone).
pub type Change<T> = Result<T, Undone<ChangeRefused>>;

/// The refusals, as the writes return them.
mod refuse {
    use super::ChangeRefused;
    use service_kit::db::Undone;

    macro_rules! refusal {
        ($($name:ident => $variant:ident),+ $(,)?) => {$(
            pub fn $name(why: impl Into<String>) -> Undone<ChangeRefused> {
                Undone::Refused(ChangeRefused::$variant(why.into()))
            }
        )+};
    }

    refusal! {
        not_found => NotFound,
        conflict => Conflict,
        invalid => Invalid,
        stale => Stale,
        needs_version => NeedsVersion,
        too_large => TooLarge,
        bad_version => BadVersion,
    }
}

/// Checks a movement's reason: 1 to 200 printable characters.
pub fn check_reason(reason: &str) -> Change<String> {
    let reason = reason.trim();
    let length = reason.chars().count();
    if !(1..=200).contains(&length) || reason.chars().any(char::is_control) {
        return Err(refuse::invalid(
            "reason must be 1 to 200 printable characters",
        ));
    }
    Ok(reason.to_string())
}

/// Adds a product; its stock, if any, opens its ledger (reason `opening stock`).
pub fn create_product(tx: &Connection, fields: &ValidFields) -> Change<Product> {
    check_sku_free(tx, fields, None)?;
    let product = store::insert_product(tx, fields)?;
    if product.stock > 0 {
        let id = Id::from_db(product.id);
        store::insert_movement(
            tx,
            id,
            product.stock,
            OPENING,
            product.stock,
            correlation_id().as_deref(),
        )?;
    }
    Ok(product)
}

/// 409 when `fields` give a SKU another product (deleted or not) has.
fn check_sku_free(tx: &Connection, fields: &ValidFields, product: Option<Id>) -> Change<()> {
    let Some(sku) = fields.sku.as_deref().filter(|sku| !sku.is_empty()) else {
        return Ok(());
    };
    match store::product_with_sku(tx, sku)? {
        Some(owner) if Some(owner) != product.map(Id::get) => {
            Err(refuse::conflict(format!("sku {sku} is product {owner}'s")))
        }
        _ => Ok(()),
    }
}

/// The reason of a product's first ledger row.
pub const OPENING: &str = "opening stock";

/// Moves `delta` units in (positive) or out of product `id`'s stock, with `reason`: 404 for
/// a product not on sale, 409 when fewer units are on sale than taken, 422 for a delta of 0
/// or one that would pass the most a product may hold.
pub async fn move_stock(db: &Db, id: Id, delta: i64, reason: String) -> Change<Movement> {
    if delta == 0 || delta.unsigned_abs() > MAX_STOCK.unsigned_abs() {
        return Err(refuse::invalid(format!(
            "delta must be a non-zero number of units, at most {MAX_STOCK} either way"
        )));
    }
    let reason = check_reason(&reason)?;
    db.write_with(move |tx| {
        let product = on_sale(tx, id)?;
        record_movement(tx, &product, delta, &reason, correlation_id().as_deref())
    })
    .await
}

fn on_sale(tx: &Connection, id: Id) -> Change<Product> {
    store::get_product(tx, id)?.ok_or_else(|| refuse::not_found(format!("product {id} not found")))
}

/// Applies `delta` to `product` and writes its ledger row and `stock.moved`.
fn record_movement(
    tx: &Connection,
    product: &Product,
    delta: i64,
    reason: &str,
    correlation: Option<&str>,
) -> Change<Movement> {
    let id = Id::from_db(product.id);
    let Some(stock_after) = store::apply_delta(tx, id, delta, MAX_STOCK)? else {
        return Err(if delta < 0 {
            refuse::conflict(format!(
                "product {id} has {} on sale ({} reserved); {} cannot be taken",
                product.stock, product.reserved, -delta
            ))
        } else {
            refuse::invalid(format!(
                "product {id} would hold more than {MAX_STOCK} units"
            ))
        });
    };
    let movement = store::insert_movement(tx, id, delta, reason, stock_after, correlation)?;
    let payload = json!({
        "product_id": product.id, "movement_id": movement.id, "delta": delta,
        "reason": reason, "stock_after": stock_after,
    });
    events::record(tx, "stock.moved", correlation, &payload)?;
    Ok(movement)
}

/// Changes the given fields of product `id`. With `if_match`, only if the product is still
/// at that version (412 otherwise). `stock` is an overwrite and is honoured only with
/// `if_match` (428 without): the difference is recorded as a movement.
pub async fn update_product(
    db: &Db,
    id: Id,
    fields: ValidFields,
    if_match: Option<i64>,
) -> Change<Product> {
    db.write_with(move |tx| {
        let product = on_sale(tx, id)?;
        if let Some(version) = if_match
            && version != product.version
        {
            return Err(refuse::stale(format!(
                "product {id} is at version {}, not {version}: read it again",
                product.version
            )));
        }
        check_sku_free(tx, &fields, Some(id))?;
        let mut rest = fields;
        if let Some(stock) = rest.stock.take() {
            if if_match.is_none() {
                return Err(refuse::needs_version(format!(
                    "stock is not overwritten blind: send If-Match: \"{}\" (the version you \
                     read), or move units with POST /products/{id}/stock",
                    product.version
                )));
            }
            let delta = stock - product.stock;
            if delta != 0 {
                record_movement(
                    tx,
                    &product,
                    delta,
                    SET_WITH_PUT,
                    correlation_id().as_deref(),
                )?;
            }
        }
        store::update_product(tx, id, &rest)?
            .ok_or_else(|| refuse::not_found(format!("product {id} not found")))
    })
    .await
}

/// Sets product `id`'s image: 422 unless the bytes are a PNG, JPEG or WebP image, 404 for
/// a product not on sale. Bumps the product's version.
pub async fn set_image(db: &Db, id: Id, bytes: Vec<u8>) -> Change<Product> {
    if bytes.len() > crate::domain::MAX_IMAGE_BYTES {
        return Err(refuse::too_large("an image is at most 1 MiB"));
    }
    let content_type = crate::domain::image_type(&bytes)
        .ok_or_else(|| refuse::invalid("the body is not a PNG, JPEG or WebP image"))?;
    if let Some(reason) = crate::domain::image_refusal(&bytes) {
        return Err(refuse::invalid(reason));
    }
    db.write_with(move |tx| {
        on_sale(tx, id)?;
        store::put_image(tx, id, content_type, &bytes)?;
        on_sale(tx, id)
    })
    .await
}

/// Reads an `If-Match` header: a version as `"3"` (or `W/"3"`, or bare `3`); 400 for
/// anything else.
pub fn parse_if_match(raw: &str) -> Change<i64> {
    let value = raw.trim().trim_start_matches("W/").trim_matches('"');
    value.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        refuse::bad_version(format!(
            "If-Match must be the product's version, e.g. \"3\", not {raw:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_names_a_version() {
        assert_eq!(parse_if_match("\"3\"").unwrap(), 3);
        assert_eq!(parse_if_match("W/\"12\"").unwrap(), 12);
        assert_eq!(parse_if_match("7").unwrap(), 7);
        for bad in ["*", "\"\"", "\"x\"", "\"0\"", "\"-1\""] {
            assert!(parse_if_match(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reason_is_short_and_printable() {
        assert_eq!(check_reason("  delivery ").unwrap(), "delivery");
        assert!(check_reason("").is_err());
        assert!(check_reason(&"x".repeat(201)).is_err());
        assert!(check_reason("a\0b").is_err());
    }
}
