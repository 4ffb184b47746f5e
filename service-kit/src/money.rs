//! Money as integer cents. JSON carries decimals (`999.99`); nothing inside adds floats.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The shop's one currency (ISO 4217), set once at start from `--currency` / `SHOP_CURRENCY`.
static SHOP_CURRENCY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The currency a shop uses when none is configured.
pub const DEFAULT_CURRENCY: &str = "EUR";

/// Sets the shop's currency for this process: three capital letters (an ISO 4217 code such
/// as `EUR`, `USD`, `GBP`). Every amount the service answers is in it, and said so beside it.
pub fn set_shop_currency(code: &str) -> Result<(), String> {
    let code = code.trim();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "SHOP_CURRENCY '{code}' is not an ISO 4217 code (three capital letters, such as EUR)"
        ));
    }
    let set = SHOP_CURRENCY.get_or_init(|| code.to_string());
    if set != code {
        return Err(format!("the shop's currency is {set} already"));
    }
    Ok(())
}

/// The shop's currency (ISO 4217), [`DEFAULT_CURRENCY`] unless one was set.
pub fn shop_currency() -> &'static str {
    SHOP_CURRENCY.get().map_or(DEFAULT_CURRENCY, String::as_str)
}

/// An amount of money in cents. Sums use checked arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cents(i64);

/// The largest amount the shop accepts anywhere: ten billion. Far below where an `f64` stops
/// representing every cent exactly, which is what JSON output relies on.
pub const MAX_CENTS: i64 = 1_000_000_000_000;

/// Why a decimal string is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not of the form `123`, `123.4` or `123.45`.
    #[error("'{0}' is not an amount like 999.99")]
    Malformed(String),
    /// More than two digits after the point.
    #[error("'{0}' has more than two decimal places")]
    TooPrecise(String),
    /// Beyond [`MAX_CENTS`].
    #[error("amount is larger than the maximum of 10000000000.00")]
    TooLarge,
}

impl Cents {
    /// Wraps a number of cents.
    pub const fn new(cents: i64) -> Self {
        Cents(cents)
    }

    /// The number of cents.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// Parses `"999.99"`, `"5"` or `"-0.5"` exactly, without going through a float.
    pub fn parse_decimal(text: &str) -> Result<Self, MoneyError> {
        let malformed = || MoneyError::Malformed(text.chars().take(40).collect());
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((w, f)) => (w, f),
            None => (unsigned, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(malformed());
        }
        if unsigned.contains('.') && fraction.is_empty() {
            return Err(malformed());
        }
        // Trailing zeros carry no value: 999.990 is 999.99.
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 2 {
            return Err(MoneyError::TooPrecise(text.chars().take(40).collect()));
        }
        let whole_digits = whole.trim_start_matches('0');
        if whole_digits.len() > 12 {
            return Err(MoneyError::TooLarge);
        }
        let whole_value: i64 = if whole_digits.is_empty() {
            0
        } else {
            whole_digits.parse().map_err(|_| malformed())?
        };
        let fraction_value: i64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().map_err(|_| malformed())? * 10,
            _ => fraction.parse().map_err(|_| malformed())?,
        };
        let cents = whole_value
            .checked_mul(100)
            .and_then(|c| c.checked_add(fraction_value))
            .filter(|c| *c <= MAX_CENTS)
            .ok_or(MoneyError::TooLarge)?;
        Ok(Cents(if negative { -cents } else { cents }))
    }

    /// `self + other`, or `None` past [`MAX_CENTS`].
    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0
            .checked_add(other.0)
            .filter(|c| c.abs() <= MAX_CENTS)
            .map(Cents)
    }

    /// `self - other`, or `None` below zero (what is left can never be negative).
    pub fn checked_sub(self, other: Cents) -> Option<Cents> {
        self.0.checked_sub(other.0).filter(|c| *c >= 0).map(Cents)
    }

    /// `self * quantity`, or `None` past [`MAX_CENTS`].
    pub fn checked_mul(self, quantity: i64) -> Option<Cents> {
        self.0
            .checked_mul(quantity)
            .filter(|c| c.abs() <= MAX_CENTS)
            .map(Cents)
    }

    /// Sums amounts, or `None` past [`MAX_CENTS`].
    pub fn checked_sum(amounts: impl IntoIterator<Item = Cents>) -> Option<Cents> {
        amounts
            .into_iter()
            .try_fold(Cents(0), |acc, amount| acc.checked_add(amount))
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Cents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // JSON has only one number type. Every amount up to MAX_CENTS has an f64 whose
        // shortest printed form is exactly its two-decimal value, so this is display only.
        serializer.serialize_f64(self.0 as f64 / 100.0)
    }
}

impl<'de> Deserialize<'de> for Cents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CentsVisitor)
    }
}

struct CentsVisitor;

impl Visitor<'_> for CentsVisitor {
    type Value = Cents;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an amount of money such as 999.99")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cents, E> {
        Cents::parse_decimal(&v.to_string()).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cents, E> {
        Cents::parse_decimal(&v.to_string()).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cents, E> {
        if !v.is_finite() {
            return Err(E::custom("amount must be a finite number"));
        }
        // Rust prints the shortest decimal that reads back as the same f64, so a JSON
        // `999.99` comes back as the text "999.99" and is then parsed exactly.
        Cents::parse_decimal(&v.to_string()).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cents, E> {
        Cents::parse_decimal(v.trim()).map_err(E::custom)
    }
}

impl utoipa::PartialSchema for Cents {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .description(Some(
                "An amount of money with at most two decimals, e.g. 999.99",
            ))
            .minimum(Some(-10_000_000_000.0))
            .maximum(Some(10_000_000_000.0))
            .into()
    }
}

impl utoipa::ToSchema for Cents {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimals_exactly() {
        assert_eq!(Cents::parse_decimal("999.99"), Ok(Cents(99_999)));
        assert_eq!(Cents::parse_decimal("0.1"), Ok(Cents(10)));
        assert_eq!(Cents::parse_decimal("5"), Ok(Cents(500)));
        assert_eq!(Cents::parse_decimal("007.50"), Ok(Cents(750)));
        assert_eq!(Cents::parse_decimal("1.230"), Ok(Cents(123)));
        assert_eq!(Cents::parse_decimal("-2.5"), Ok(Cents(-250)));
    }

    #[test]
    fn rejects_what_is_not_money() {
        for bad in [
            "", ".5", "5.", "abc", "1e3", "1,50", "--1", " 1", "NaN", "1.2.3",
        ] {
            assert!(
                matches!(Cents::parse_decimal(bad), Err(MoneyError::Malformed(_))),
                "{bad:?} should be malformed"
            );
        }
        assert!(matches!(
            Cents::parse_decimal("1.234"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert_eq!(
            Cents::parse_decimal("99999999999999999999"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(
            Cents::parse_decimal("10000000000.01"),
            Err(MoneyError::TooLarge)
        );
    }

    #[test]
    fn json_numbers_round_trip_through_cents() {
        let cents: Cents = serde_json::from_str("999.99").unwrap();
        assert_eq!(cents, Cents(99_999));
        assert_eq!(serde_json::to_string(&cents).unwrap(), "999.99");
        let cents: Cents = serde_json::from_str("0.07").unwrap();
        assert_eq!(serde_json::to_string(&cents).unwrap(), "0.07");
        let whole: Cents = serde_json::from_str("12").unwrap();
        assert_eq!(whole, Cents(1200));
        assert!(serde_json::from_str::<Cents>("0.001").is_err());
        assert!(serde_json::from_str::<Cents>("1e300").is_err());
    }

    #[test]
    fn every_cent_up_to_the_maximum_prints_as_its_decimal() {
        for cents in [1, 10, 99_999, 123_456_789, MAX_CENTS - 1, MAX_CENTS] {
            let json = serde_json::to_string(&Cents(cents)).unwrap();
            let back: Cents = serde_json::from_str(&json).unwrap();
            assert_eq!(back, Cents(cents), "{json}");
        }
    }

    #[test]
    fn arithmetic_refuses_to_overflow() {
        assert_eq!(Cents(99_999).checked_mul(3), Some(Cents(299_997)));
        assert_eq!(Cents(MAX_CENTS).checked_mul(2), None);
        assert_eq!(Cents(i64::MAX).checked_mul(2), None);
        assert_eq!(Cents(MAX_CENTS).checked_add(Cents(1)), None);
        assert_eq!(Cents(1000).checked_sub(Cents(400)), Some(Cents(600)));
        assert_eq!(Cents(1000).checked_sub(Cents(1000)), Some(Cents(0)));
        assert_eq!(
            Cents(400).checked_sub(Cents(1000)),
            None,
            "never below zero"
        );
        assert_eq!(
            Cents::checked_sum([Cents(1), Cents(2), Cents(3)]),
            Some(Cents(6))
        );
    }

    #[test]
    fn displays_with_two_decimals() {
        assert_eq!(Cents(99_999).to_string(), "999.99");
        assert_eq!(Cents(5).to_string(), "0.05");
        assert_eq!(Cents(-250).to_string(), "-2.50");
    }
}
