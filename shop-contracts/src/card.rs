//! A payment card as a client sends it, and the checks of its form (Luhn, expiry, CVC). Both
//! payment-service, which takes payments, and cart-service, which must refuse a malformed
//! card before a checkout places an order, use these. Which test card declines is the
//! payment service's business, not this module's.

use serde::{Deserialize, Deserializer, Serialize};
use service_kit::ApiError;
use service_kit::domain::Invalid;
use std::fmt;

/// The optional body of a payment (`POST /pay`, and a checkout that passes it on).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardBody {
    /// Leave out to pay without a card (always approved).
    pub card: Option<CardIn>,
}

/// A card as a client sends it. `Debug` hides the number and the CVC; it is serialized only
/// to pass it on to the payment service.
#[derive(Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardIn {
    /// 12 to 19 digits (spaces and dashes allowed), Luhn-valid; a JSON number is accepted.
    #[serde(deserialize_with = "digits_or_text")]
    #[schema(example = "4242424242424242")]
    pub number: String,
    /// 1 to 12.
    #[schema(minimum = 1, maximum = 12)]
    pub exp_month: u32,
    /// This year or later (two digits mean 20xx).
    pub exp_year: u32,
    /// 3 or 4 digits.
    #[serde(deserialize_with = "digits_or_text")]
    #[schema(example = "123")]
    pub cvc: String,
}

impl fmt::Debug for CardIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardIn([redacted])")
    }
}

/// Accepts `"4242..."` or `4242...`: a client may send the number as a JSON number.
fn digits_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(u64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(text) => text,
        Raw::Number(n) => n.to_string(),
    })
}

/// A card whose form is valid. `Debug` hides the number.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckedCard {
    /// The number's digits only.
    pub digits: String,
    pub exp_month: u32,
    /// Four digits.
    pub exp_year: u32,
}

impl fmt::Debug for CheckedCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckedCard([redacted])")
    }
}

/// The Luhn checksum over a string of ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// Checks a card's form at `today` (year, month): a 422 for a number that fails Luhn, a past
/// expiry or a malformed CVC. The messages never quote the number.
pub fn check(card: &CardIn, today: (u32, u32)) -> Result<CheckedCard, Invalid> {
    let digits: String = card
        .number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    if !(12..=19).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !luhn_valid(&digits)
    {
        return Err(Invalid("card number is invalid".into()));
    }
    if !(1..=12).contains(&card.exp_month) {
        return Err(Invalid("exp_month must be 1 to 12".into()));
    }
    let exp_year = if card.exp_year < 100 {
        2000 + card.exp_year
    } else {
        card.exp_year
    };
    if (exp_year, card.exp_month) < today {
        return Err(Invalid("card has expired".into()));
    }
    if !(3..=4).contains(&card.cvc.len()) || !card.cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid("cvc must be 3 or 4 digits".into()));
    }
    Ok(CheckedCard {
        digits,
        exp_month: card.exp_month,
        exp_year,
    })
}

/// Reads an optional `{"card":{...}}` body (empty means no card). The parse error is not
/// echoed: it could quote the number.
pub fn card_from_body(body: &[u8]) -> Result<Option<CardIn>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    service_kit::extract::require_utf8(body)?;
    serde_json::from_slice::<CardBody>(body)
        .map(|b| b.card)
        .map_err(|err| {
            service_kit::extract::body_refusal(
                &err,
                r#"body must be {"card":{"number":"...","exp_month":12,"exp_year":2030,"cvc":"123"}}"#,
            )
        })
}

/// A well-formed card expiring 12/2030 with CVC 123: `number` decides the rest. For tests.
#[cfg(any(test, feature = "testing"))]
pub fn test_card(number: &str) -> CardIn {
    CardIn {
        number: number.into(),
        exp_month: 12,
        exp_year: 2030,
        cvc: "123".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::test_card as card;
    use super::*;

    const TODAY: (u32, u32) = (2026, 11);

    #[test]
    fn a_number_failing_luhn_or_of_the_wrong_length_is_422() {
        for bad in [
            "4242424242424241",
            "1234",
            "abcd424242424242",
            "42424242424242424242",
            "4242424242424242\0",
        ] {
            assert!(matches!(check(&card(bad), TODAY), Err(Invalid(_))), "{bad}");
        }
        let checked = check(&card("4242 4242-4242 4242"), TODAY).unwrap();
        assert_eq!(checked.digits, "4242424242424242");
    }

    #[test]
    fn an_expired_card_or_bad_cvc_is_422() {
        let mut expired = card("4242424242424242");
        expired.exp_year = 2026;
        expired.exp_month = 10;
        assert!(matches!(check(&expired, TODAY), Err(Invalid(_))));
        expired.exp_month = 11;
        assert!(
            check(&expired, TODAY).is_ok(),
            "valid through the end of its month"
        );
        let mut two_digit_year = card("4242424242424242");
        two_digit_year.exp_year = 30;
        assert_eq!(check(&two_digit_year, TODAY).unwrap().exp_year, 2030);
        let mut bad_month = card("4242424242424242");
        bad_month.exp_month = 13;
        assert!(check(&bad_month, TODAY).is_err());
        for cvc in ["12", "12345", "12a"] {
            let mut c = card("4242424242424242");
            c.cvc = cvc.into();
            assert!(check(&c, TODAY).is_err(), "{cvc}");
        }
    }

    #[test]
    fn luhn_matches_known_numbers() {
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
    }

    #[test]
    fn bodies_are_read_without_echoing_the_number() {
        assert!(card_from_body(b"  ").unwrap().is_none());
        assert!(card_from_body(b"{}").unwrap().is_none());
        let read = card_from_body(
            br#"{"card":{"number":4242424242424242,"exp_month":1,"exp_year":30,"cvc":123}}"#,
        )
        .unwrap()
        .expect("a card");
        assert_eq!(read.number, "4242424242424242");
        assert_eq!(read.cvc, "123");
        let refused = card_from_body(br#"{"card":{"number":"4242424242424242"}}"#).unwrap_err();
        assert!(!format!("{refused:?}").contains("4242"));
        assert!(
            card_from_body(b"{\"card\":null,\"x\":\"\xff\"}").is_err(),
            "not UTF-8"
        );
        assert!(!format!("{read:?}").contains("4242"));
    }
}
