//! Identifiers and quantities that more than one service parses: parse once at the edge,
//! then carry a value that is valid by construction.

/// A value that breaks a rule: the message names the field and the rule (and never repeats
/// personal data). The HTTP edge answers it with a 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A new globally unique reference (a UUIDv7: time-ordered, random in its low bits) for an
/// operation whose keys cross a service boundary. Unlike a row id, no restored backup, reset
/// or second instance can hand the same one out again.
pub fn new_reference() -> String {
    uuid::Uuid::now_v7().to_string()
}
use serde::{Deserialize, Serialize};
use std::fmt;

/// A reference as another service sends it (a reservation's key): 1 to 64 letters, digits,
/// `_` or `-`. New ones come from [`new_reference`]; an order id written as text is one too,
/// which keeps the keys made before references existed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Reference(String);

impl Reference {
    /// The longest reference accepted.
    pub const MAX_LEN: usize = 64;

    /// Validates a reference; `what` names it in the error.
    pub fn parse(raw: &str, what: &str) -> Result<Self, Invalid> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.chars().all(ok_char) {
            return Err(Invalid(format!(
                "{what} must be 1 to {} letters, digits, '_' or '-'",
                Self::MAX_LEN
            )));
        }
        Ok(Reference(raw.to_string()))
    }

    /// Wraps a reference read back from the database.
    pub fn from_db(raw: String) -> Self {
        Reference(raw)
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A shopper's id as it appears in `/cart/{user_id}` and `?user_id=`: 1 to 64 characters of
/// letters, digits and `_ - .` (never an email).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// The longest user id accepted.
    pub const MAX_LEN: usize = 64;

    /// Validates a user id.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        // No '@': a user id reaches request paths and so log lines, and an email there
        // would be a customer's personal data in every log.
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.chars().all(ok_char) {
            return Err(Invalid(format!(
                "user_id must be 1 to {} characters of letters, digits, '_', '-' or '.' \
                 (an opaque id, never an email)",
                Self::MAX_LEN
            )));
        }
        Ok(UserId(raw.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl utoipa::PartialSchema for UserId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A shopper: 1 to 64 letters, digits, '_', '-' or '.' (an opaque id, never an email)",
            ))
            .min_length(Some(1))
            .max_length(Some(UserId::MAX_LEN))
            .pattern(Some(r"^[A-Za-z0-9_.-]{1,64}$"))
            .into()
    }
}

impl utoipa::ToSchema for UserId {}

/// A positive row id (product, order, payment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Id(i64);

impl Id {
    /// Validates an id taken from a path or query; `what` names it in the error.
    pub fn parse(raw: i64, what: &str) -> Result<Self, Invalid> {
        if raw < 1 {
            return Err(Invalid(format!("{what} must be a positive integer")));
        }
        Ok(Id(raw))
    }

    /// Wraps an id read back from the database.
    pub const fn from_db(raw: i64) -> Self {
        Id(raw)
    }

    /// The id as a number.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How many units of a product: 1 to [`Quantity::MAX`] per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Quantity(i64);

impl Quantity {
    /// The most units one cart line or order line may hold.
    pub const MAX: i64 = 1_000;

    /// Validates a quantity.
    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        if !(1..=Self::MAX).contains(&raw) {
            return Err(Invalid(format!(
                "quantity must be between 1 and {}",
                Self::MAX
            )));
        }
        Ok(Quantity(raw))
    }

    /// The number of units.
    pub const fn get(self) -> i64 {
        self.0
    }
}

/// `raw` trimmed, if it is 1 to `max` characters with no control characters; else a 422
/// naming `field` and the rule, never the value (it may be personal data).
pub fn short_text(field: &str, raw: &str, max: usize) -> Result<String, Invalid> {
    let trimmed = raw.trim();
    let count = trimmed.chars().count();
    if count == 0 || count > max || trimmed.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "{field} must be 1 to {max} characters, no control characters"
        )));
    }
    Ok(trimmed.to_string())
}

/// `?limit=&offset=` on every list route. Lists are always capped at [`Page::MAX`].
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Rows wanted (1 to [`Page::MAX`], default [`Page::DEFAULT`]).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u32>,
}

impl Page {
    /// The most rows one answer holds.
    pub const MAX: u32 = 200;
    /// Rows when `limit` is absent.
    pub const DEFAULT: u32 = 50;

    /// The effective limit.
    pub fn limit(self) -> u32 {
        self.limit.unwrap_or(Self::DEFAULT).clamp(1, Self::MAX)
    }

    /// The effective offset.
    pub fn offset(self) -> u32 {
        self.offset.unwrap_or(0)
    }

    /// The effective limit and offset, for [`crate::db::with_page`].
    pub fn window(self) -> (u32, u32) {
        (self.limit(), self.offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_short_and_plain() {
        assert!(UserId::parse("user1").is_ok());
        assert!(
            UserId::parse("jane.doe@example.com").is_err(),
            "an email is no user id"
        );
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"a".repeat(65)).is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse("x'; DROP TABLE carts;--").is_err());
        assert!(UserId::parse("nul\0").is_err());
    }

    #[test]
    fn references_are_plain_and_short() {
        assert!(Reference::parse(&new_reference(), "ref").is_ok());
        assert!(Reference::parse("9001", "ref").is_ok());
        assert!(Reference::parse("", "ref").is_err());
        assert!(Reference::parse(&"a".repeat(65), "ref").is_err());
        assert!(Reference::parse("a/b", "ref").is_err());
        assert!(Reference::parse("1' OR '1'='1", "ref").is_err());
        assert!(Reference::parse("nul\0", "ref").is_err());
    }

    #[test]
    fn quantities_are_between_one_and_the_maximum() {
        assert!(Quantity::parse(1).is_ok());
        assert!(Quantity::parse(Quantity::MAX).is_ok());
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(-3).is_err());
        assert!(Quantity::parse(Quantity::MAX + 1).is_err());
    }

    #[test]
    fn pages_are_capped() {
        let page = |limit| Page {
            limit,
            offset: None,
        };
        assert_eq!(page(None).limit(), Page::DEFAULT);
        assert_eq!(page(Some(0)).limit(), 1);
        assert_eq!(page(Some(10_000)).limit(), Page::MAX);
    }

    #[test]
    fn ids_are_positive() {
        assert_eq!(Id::parse(7, "order_id").unwrap().get(), 7);
        assert!(Id::parse(0, "order_id").is_err());
        assert!(Id::parse(-1, "order_id").is_err());
    }
}
