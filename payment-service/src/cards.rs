//! Simulated card payments: the outcome of each test card, as in Stripe's test mode, and
//! what is kept of a card (brand, last four digits, expiry). The card's form (Luhn, expiry,
//! CVC) is checked by `shop_contracts::card`, which cart-service uses too. Pure functions.

use service_kit::domain::Invalid;
use shop_contracts::card::{CardIn, CheckedCard, check};

/// What may be stored about a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummary {
    pub brand: &'static str,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
}

/// Why the (simulated) issuer refused a valid card: the contract's decline codes.
pub use shop_contracts::payments::Decline;

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

/// Checks a card's form at `today` (year, month), a 422 when it is malformed, and decides
/// as the issuer of a test card would. Returns what may be stored and the decision.
pub fn authorize(
    card: &CardIn,
    today: (u32, u32),
) -> Result<(CardSummary, Option<Decline>), Invalid> {
    let CheckedCard {
        digits,
        exp_month,
        exp_year,
    } = check(card, today)?;
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
        exp_month,
        exp_year,
    };
    Ok((summary, decline))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_contracts::card::test_card as card;

    const TODAY: (u32, u32) = (2026, 11);

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
}
