//! Promo codes as rules: what an admin may create, when a code applies to an order, and how
//! much it takes off. Pure functions, unit-tested here; the redemption itself is counted in
//! the transaction that writes the order (`lifecycle::place_order`).

use serde::Deserialize;
use service_kit::domain::Invalid;
use service_kit::money::Cents;

/// What a code takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discount {
    /// This many percent of the order's subtotal, rounded down to the cent.
    Percent(i64),
    /// A fixed amount.
    Amount(Cents),
}

/// A promo code as stored, with how often it is redeemed now (cancelled orders give their
/// redemption back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoCode {
    pub code: String,
    pub discount: Discount,
    /// The subtotal an order needs for the code to apply.
    pub min_total: Cents,
    /// Valid from (inclusive) and until (exclusive), UTC text; open when `None`.
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    /// Redemptions in all, and per customer; unlimited when `None`.
    pub max_redemptions: Option<i64>,
    pub max_per_customer: Option<i64>,
    /// Redemptions held by orders that were not cancelled.
    pub redeemed: i64,
    pub created_at: String,
    /// Withdrawn by an admin: applies to no new order.
    pub disabled: bool,
}

/// How often a code is redeemed now: in all, and by the customer placing the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redemptions {
    pub total: i64,
    pub by_customer: i64,
}

impl PromoCode {
    /// What the code takes off `subtotal`: never more than the subtotal.
    pub fn discount_on(&self, subtotal: Cents) -> Cents {
        let off = match self.discount {
            Discount::Percent(percent) => {
                // i128: a subtotal near the most an order may cost, times 100, still fits.
                let cents = i128::from(subtotal.get()) * i128::from(percent) / 100;
                Cents::new(i64::try_from(cents).unwrap_or(i64::MAX))
            }
            Discount::Amount(amount) => amount,
        };
        off.min(subtotal)
    }

    /// Why the code does not apply to an order of `subtotal` placed `now` (UTC text), with
    /// `redemptions` so far; `None` when it applies. A code that would leave nothing to pay
    /// does not apply either (a payment is never of 0).
    pub fn refusal(&self, now: &str, subtotal: Cents, redemptions: Redemptions) -> Option<String> {
        let code = &self.code;
        if self.disabled {
            return Some(format!("promo code {code} has been withdrawn"));
        }
        if self.starts_at.as_deref().is_some_and(|starts| now < starts) {
            return Some(format!("promo code {code} is not valid yet"));
        }
        if self.ends_at.as_deref().is_some_and(|ends| now >= ends) {
            return Some(format!("promo code {code} has expired"));
        }
        if subtotal < self.min_total {
            return Some(format!(
                "promo code {code} needs an order of at least {}, this one is {subtotal}",
                self.min_total
            ));
        }
        if self
            .max_redemptions
            .is_some_and(|max| redemptions.total >= max)
        {
            return Some(format!("promo code {code} has been used up"));
        }
        if self
            .max_per_customer
            .is_some_and(|max| redemptions.by_customer >= max)
        {
            return Some(format!(
                "promo code {code} has been used as often as one customer may"
            ));
        }
        if self.discount_on(subtotal) >= subtotal {
            return Some(format!("promo code {code} would leave nothing to pay"));
        }
        None
    }
}

/// A code as written: 1 to 32 letters, digits, `_` or `-`, compared in upper case.
pub fn normalized_code(raw: &str) -> Result<String, Invalid> {
    let code = raw.trim().to_ascii_uppercase();
    let ok = (1..=32).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(code)
    } else {
        Err(Invalid(
            "promo_code must be 1 to 32 letters, digits, '_' or '-'".to_string(),
        ))
    }
}

/// `POST /promo-codes` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoIn {
    /// 1 to 32 letters, digits, `_` or `-`; stored and matched in upper case.
    #[schema(example = "WELCOME10", max_length = 32)]
    pub code: String,
    /// Percent off the subtotal, 1 to 100 (give this or `amount_off`).
    #[schema(minimum = 1, maximum = 100, example = 10)]
    pub percent_off: Option<i64>,
    /// A fixed amount off, e.g. 5.00 (give this or `percent_off`).
    #[schema(value_type = Option<f64>, exclusive_minimum = 0.0)]
    pub amount_off: Option<Cents>,
    /// The subtotal an order needs, e.g. 50.00 (default 0).
    #[schema(value_type = Option<f64>, minimum = 0.0)]
    pub min_total: Option<Cents>,
    /// Valid from, RFC 3339 (default: now).
    #[schema(example = "2026-12-01T00:00:00Z")]
    pub starts_at: Option<String>,
    /// Valid until (exclusive), RFC 3339 (default: no end).
    #[schema(example = "2027-01-01T00:00:00Z")]
    pub ends_at: Option<String>,
    /// Redemptions in all, at least 1 (default: unlimited).
    #[schema(minimum = 1)]
    pub max_redemptions: Option<i64>,
    /// Redemptions per customer (their email, else their user id), at least 1.
    #[schema(minimum = 1)]
    pub max_per_customer: Option<i64>,
}

impl PromoIn {
    /// A code ready to store (with `redeemed` 0), or a 422 naming the field.
    pub fn validate(self) -> Result<PromoCode, Invalid> {
        let invalid = |m: &str| Invalid(m.to_string());
        let code = normalized_code(&self.code)
            .map_err(|_| invalid("code must be 1 to 32 letters, digits, '_' or '-'"))?;
        let discount = match (self.percent_off, self.amount_off) {
            (Some(percent), None) if (1..=100).contains(&percent) => Discount::Percent(percent),
            (Some(_), None) => return Err(invalid("percent_off must be 1 to 100")),
            (None, Some(amount)) if amount.get() > 0 => Discount::Amount(amount),
            (None, Some(_)) => return Err(invalid("amount_off must be more than 0")),
            _ => return Err(invalid("give exactly one of percent_off and amount_off")),
        };
        let min_total = self.min_total.unwrap_or_default();
        if min_total.get() < 0 {
            return Err(invalid("min_total cannot be negative"));
        }
        let time = |name: &str, raw: Option<String>| {
            raw.map(|raw| service_kit::clock::rfc3339_field(name, &raw))
                .transpose()
        };
        let starts_at = time("starts_at", self.starts_at)?;
        let ends_at = time("ends_at", self.ends_at)?;
        if let (Some(starts), Some(ends)) = (&starts_at, &ends_at)
            && ends <= starts
        {
            return Err(invalid("ends_at must be after starts_at"));
        }
        let limit = |name: &str, value: Option<i64>| match value {
            Some(n) if n < 1 => Err(invalid(&format!("{name} must be at least 1"))),
            other => Ok(other),
        };
        Ok(PromoCode {
            code,
            discount,
            min_total,
            starts_at,
            ends_at,
            max_redemptions: limit("max_redemptions", self.max_redemptions)?,
            max_per_customer: limit("max_per_customer", self.max_per_customer)?,
            redeemed: 0,
            created_at: String::new(),
            disabled: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(discount: Discount) -> PromoCode {
        PromoCode {
            code: "SAVE".into(),
            discount,
            min_total: Cents::new(5_000),
            starts_at: Some("2026-12-01T00:00:00.000Z".into()),
            ends_at: Some("2027-01-01T00:00:00.000Z".into()),
            max_redemptions: Some(10),
            max_per_customer: Some(1),
            redeemed: 0,
            created_at: String::new(),
            disabled: false,
        }
    }

    const FRESH: Redemptions = Redemptions {
        total: 0,
        by_customer: 0,
    };
    const IN_DECEMBER: &str = "2026-12-15T12:00:00.000Z";

    #[test]
    fn percent_rounds_down_to_the_cent_and_a_fixed_amount_never_passes_the_subtotal() {
        assert_eq!(
            code(Discount::Percent(10)).discount_on(Cents::new(9_999)),
            Cents::new(999)
        );
        assert_eq!(
            code(Discount::Percent(100)).discount_on(Cents::new(123)),
            Cents::new(123)
        );
        let five = code(Discount::Amount(Cents::new(500)));
        assert_eq!(five.discount_on(Cents::new(9_999)), Cents::new(500));
        assert_eq!(five.discount_on(Cents::new(300)), Cents::new(300));
    }

    #[test]
    fn each_reason_a_code_does_not_apply_is_said() {
        let ten = code(Discount::Percent(10));
        let big = Cents::new(10_000);
        assert_eq!(ten.refusal(IN_DECEMBER, big, FRESH), None);
        let said = |c: &PromoCode, now: &str, subtotal: Cents, r: Redemptions| {
            c.refusal(now, subtotal, r).expect("refused")
        };
        assert!(said(&ten, "2026-11-30T23:59:59.999Z", big, FRESH).contains("not valid yet"));
        assert!(said(&ten, "2027-01-01T00:00:00.000Z", big, FRESH).contains("expired"));
        assert!(said(&ten, IN_DECEMBER, Cents::new(4_999), FRESH).contains("at least 50.00"));
        let used = Redemptions {
            total: 10,
            by_customer: 0,
        };
        assert!(said(&ten, IN_DECEMBER, big, used).contains("used up"));
        let again = Redemptions {
            total: 3,
            by_customer: 1,
        };
        assert!(said(&ten, IN_DECEMBER, big, again).contains("one customer"));
        let all = code(Discount::Percent(100));
        assert!(said(&all, IN_DECEMBER, big, FRESH).contains("nothing to pay"));
        let withdrawn = PromoCode {
            disabled: true,
            ..ten
        };
        assert!(said(&withdrawn, IN_DECEMBER, big, FRESH).contains("withdrawn"));
    }

    #[test]
    fn an_admin_gets_a_422_naming_the_field() {
        let promo = |json: &str| serde_json::from_str::<PromoIn>(json).unwrap().validate();
        let ok = promo(
            r#"{"code":" welcome10 ","percent_off":10,"ends_at":"2027-01-01T01:00:00+01:00"}"#,
        )
        .unwrap();
        assert_eq!(ok.code, "WELCOME10");
        assert_eq!(ok.ends_at.as_deref(), Some("2027-01-01T00:00:00.000Z"));
        for (json, field) in [
            (r#"{"code":"A B","percent_off":10}"#, "code"),
            (r#"{"code":"A","percent_off":0}"#, "percent_off"),
            (r#"{"code":"A","percent_off":101}"#, "percent_off"),
            (r#"{"code":"A","amount_off":0}"#, "amount_off"),
            (r#"{"code":"A"}"#, "percent_off"),
            (
                r#"{"code":"A","percent_off":5,"amount_off":1}"#,
                "percent_off",
            ),
            (
                r#"{"code":"A","percent_off":5,"ends_at":"soon"}"#,
                "ends_at",
            ),
            (
                r#"{"code":"A","percent_off":5,"starts_at":"2027-01-01T00:00:00Z","ends_at":"2026-01-01T00:00:00Z"}"#,
                "ends_at",
            ),
            (
                r#"{"code":"A","percent_off":5,"max_redemptions":0}"#,
                "max_redemptions",
            ),
            (
                r#"{"code":"A","percent_off":5,"max_per_customer":-1}"#,
                "max_per_customer",
            ),
        ] {
            match promo(json) {
                Err(Invalid(message)) => {
                    assert!(message.contains(field), "{json}: {message}")
                }
                other => panic!("{json}: {other:?}"),
            }
        }
    }
}
