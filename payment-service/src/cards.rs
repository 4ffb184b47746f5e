//! Simulated card payments: validation (Luhn, expiry, CVC) and the outcome of each test
//! card, as in Stripe's test mode. Pure functions; the full number and the CVC never leave
//! this module except as brand, last four digits and expiry.

use serde::{Deserialize, Deserializer};
use service_kit::ApiError;
use std::fmt;

/// A card as a client sends it. `Debug` hides the number and the CVC.
#[derive(Clone, Deserialize)]
pub struct CardIn {
    #[serde(deserialize_with = "digits_or_text")]
    pub number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    #[serde(deserialize_with = "digits_or_text")]
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

/// What may be stored about a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummary {
    pub brand: &'static str,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
}

/// Why the (simulated) issuer refused a valid card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decline {
    CardDeclined,
    InsufficientFunds,
    ExpiredCard,
    IncorrectCvc,
}

impl Decline {
    /// The decline code, as Stripe names it.
    pub fn code(self) -> &'static str {
        match self {
            Decline::CardDeclined => "card_declined",
            Decline::InsufficientFunds => "insufficient_funds",
            Decline::ExpiredCard => "expired_card",
            Decline::IncorrectCvc => "incorrect_cvc",
        }
    }

    /// A sentence for people.
    pub fn message(self) -> &'static str {
        match self {
            Decline::CardDeclined => "the card was declined",
            Decline::InsufficientFunds => "the card has insufficient funds",
            Decline::ExpiredCard => "the card has expired",
            Decline::IncorrectCvc => "the card's security code is incorrect",
        }
    }
}

/// The Luhn checksum over a string of digits.
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

fn brand(digits: &str) -> &'static str {
    let prefix2: u32 = digits[..2].parse().unwrap_or(0);
    let prefix4: u32 = digits[..4].parse().unwrap_or(0);
    match digits.as_bytes()[0] {
        b'4' => "visa",
        _ if (51..=55).contains(&prefix2) || (2221..=2720).contains(&prefix4) => "mastercard",
        _ if prefix2 == 34 || prefix2 == 37 => "amex",
        _ => "unknown",
    }
}

/// Validates a card at `today` (year, month): a 422 for a number that fails Luhn, a past
/// expiry or a malformed CVC. Returns what may be stored and the issuer's decision.
pub fn authorize(
    card: &CardIn,
    today: (u32, u32),
) -> Result<(CardSummary, Option<Decline>), ApiError> {
    let digits: String = card
        .number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    if !(12..=19).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !luhn_valid(&digits)
    {
        return Err(ApiError::Validation("card number is invalid".into()));
    }
    if !(1..=12).contains(&card.exp_month) {
        return Err(ApiError::Validation("exp_month must be 1 to 12".into()));
    }
    let exp_year = if card.exp_year < 100 {
        2000 + card.exp_year
    } else {
        card.exp_year
    };
    if (exp_year, card.exp_month) < today {
        return Err(ApiError::Validation("card has expired".into()));
    }
    if !(3..=4).contains(&card.cvc.len()) || !card.cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::Validation("cvc must be 3 or 4 digits".into()));
    }
    let decline = match digits.as_str() {
        "4000000000000002" => Some(Decline::CardDeclined),
        "4000000000009995" => Some(Decline::InsufficientFunds),
        "4000000000000069" => Some(Decline::ExpiredCard),
        "4000000000000127" => Some(Decline::IncorrectCvc),
        _ => None,
    };
    let summary = CardSummary {
        brand: brand(&digits),
        last4: digits[digits.len() - 4..].to_string(),
        exp_month: card.exp_month,
        exp_year,
    };
    Ok((summary, decline))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: (u32, u32) = (2026, 11);

    fn card(number: &str) -> CardIn {
        CardIn {
            number: number.into(),
            exp_month: 12,
            exp_year: 2030,
            cvc: "123".into(),
        }
    }

    #[test]
    fn the_test_cards_behave_as_in_stripe_test_mode() {
        let outcome = |n| authorize(&card(n), TODAY).unwrap().1;
        assert_eq!(outcome("4242424242424242"), None);
        assert_eq!(outcome("4000000000000002"), Some(Decline::CardDeclined));
        assert_eq!(
            outcome("4000000000009995"),
            Some(Decline::InsufficientFunds)
        );
        assert_eq!(outcome("4000000000000069"), Some(Decline::ExpiredCard));
        assert_eq!(outcome("4000000000000127"), Some(Decline::IncorrectCvc));
    }

    #[test]
    fn only_brand_last_four_and_expiry_are_kept() {
        let (summary, _) = authorize(&card("4242 4242 4242 4242"), TODAY).unwrap();
        assert_eq!(
            summary,
            CardSummary {
                brand: "visa",
                last4: "4242".into(),
                exp_month: 12,
                exp_year: 2030
            }
        );
        assert_eq!(
            authorize(&card("5555555555554444"), TODAY).unwrap().0.brand,
            "mastercard"
        );
        assert!(!format!("{:?}", card("4242424242424242")).contains("4242"));
    }

    #[test]
    fn a_number_failing_luhn_is_422() {
        for bad in [
            "4242424242424241",
            "1234",
            "abcd424242424242",
            "42424242424242424242",
        ] {
            assert!(
                matches!(authorize(&card(bad), TODAY), Err(ApiError::Validation(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_expired_card_or_bad_cvc_is_422() {
        let mut expired = card("4242424242424242");
        expired.exp_year = 2026;
        expired.exp_month = 10;
        assert!(matches!(
            authorize(&expired, TODAY),
            Err(ApiError::Validation(_))
        ));
        expired.exp_month = 11;
        assert!(
            authorize(&expired, TODAY).is_ok(),
            "valid through the end of its month"
        );
        let mut two_digit_year = card("4242424242424242");
        two_digit_year.exp_year = 30;
        assert_eq!(authorize(&two_digit_year, TODAY).unwrap().0.exp_year, 2030);
        let mut bad_month = card("4242424242424242");
        bad_month.exp_month = 13;
        assert!(authorize(&bad_month, TODAY).is_err());
        for cvc in ["12", "12345", "12a"] {
            let mut c = card("4242424242424242");
            c.cvc = cvc.into();
            assert!(authorize(&c, TODAY).is_err(), "{cvc}");
        }
    }

    #[test]
    fn luhn_matches_known_numbers() {
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
    }
}
