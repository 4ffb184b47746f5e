//! Who an order is for and where it goes: the optional `customer` and `shipping_address`
//! of an order and of a checkout, and their checks. cart-service checks them before a
//! checkout places anything; order-service checks them again when it stores them.
//!
//! These are a customer's personal data: `Debug` shows neither, and no error message repeats
//! what was sent, so neither can reach a log line by accident.

use serde::{Deserialize, Serialize};
use service_kit::domain::Invalid;
use service_kit::domain::short_text as text;
use std::fmt;

/// The shopper an order belongs to, as far as the shop needs to reach them.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// An email address (`name@example.com`), at most 254 characters; the domain is
    /// stored in lower case.
    #[schema(example = "ada@example.com", max_length = 254)]
    pub email: String,
    /// How to address them, 1 to 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Ada Lovelace", max_length = 100)]
    pub name: Option<String>,
}

/// Where an order is shipped.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingAddress {
    /// Who receives it, 1 to 100 characters (the customer, when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Ada Lovelace", max_length = 100)]
    pub name: Option<String>,
    /// Street, number, flat: 1 to 3 lines of 1 to 100 characters.
    #[schema(example = json!(["12 St James's Square"]), min_items = 1, max_items = 3)]
    pub lines: Vec<String>,
    /// 1 to 100 characters.
    #[schema(example = "London", max_length = 100)]
    pub city: String,
    /// State, county or province, where the country has them; up to 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Greater London", max_length = 100)]
    pub region: Option<String>,
    /// 1 to 20 letters, digits, spaces or dashes.
    #[schema(example = "SW1Y 4JH", max_length = 20)]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 code, any case (stored in upper case); may be left out by a
    /// shop that ships within one country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "GB", min_length = 2, max_length = 2)]
    pub country: Option<String>,
}

impl fmt::Debug for Customer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Customer([personal data])")
    }
}

impl fmt::Debug for ShippingAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShippingAddress([personal data])")
    }
}

/// The longest email address (RFC 5321's path limit less the brackets).
const MAX_EMAIL: usize = 254;

impl Customer {
    /// The customer with its fields checked and tidied (trimmed, the email's domain in lower
    /// case); a 422 naming the field otherwise.
    pub fn checked(self) -> Result<Customer, Invalid> {
        let email = normalized_email(&self.email)
            .ok_or_else(|| invalid("customer.email", "must be an address like name@example.com"))?;
        let name = self
            .name
            .map(|name| text("customer.name", &name, 100))
            .transpose()?;
        Ok(Customer { email, name })
    }
}

/// `raw` as an email address the shop accepts, the domain in lower case; `None` if it is not
/// one: one `@`, a local part of 1 to 64 visible characters, a domain of dot-separated
/// labels of letters, digits and dashes with at least one dot.
pub fn normalized_email(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.len() > MAX_EMAIL {
        return None;
    }
    let (local, domain) = raw.split_once('@')?;
    let local_ok = (1..=64).contains(&local.len())
        && local.chars().all(|c| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '@' | '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '[' | '\\' | ']'
                )
        });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    (local_ok && domain_ok).then(|| format!("{local}@{}", domain.to_ascii_lowercase()))
}

impl ShippingAddress {
    /// The address with its fields checked and tidied; a 422 naming the field otherwise.
    pub fn checked(self) -> Result<ShippingAddress, Invalid> {
        let field = |name: &str| format!("shipping_address.{name}");
        if !(1..=3).contains(&self.lines.len()) {
            return Err(invalid(&field("lines"), "must have 1 to 3 lines"));
        }
        let lines = self
            .lines
            .iter()
            .map(|line| text(&field("lines"), line, 100))
            .collect::<Result<Vec<_>, _>>()?;
        let postal_code = self.postal_code.trim().to_ascii_uppercase();
        let postal_ok = (1..=20).contains(&postal_code.len())
            && postal_code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
        if !postal_ok {
            return Err(invalid(
                &field("postal_code"),
                "must be 1 to 20 letters, digits, spaces or dashes",
            ));
        }
        let country = self
            .country
            .map(|country| {
                let country = country.trim().to_ascii_uppercase();
                if is_iso_country(&country) {
                    Ok(country)
                } else {
                    Err(invalid(
                        &field("country"),
                        "must be an ISO 3166-1 alpha-2 code such as GB, US or DE",
                    ))
                }
            })
            .transpose()?;
        Ok(ShippingAddress {
            name: self
                .name
                .map(|name| text(&field("name"), &name, 100))
                .transpose()?,
            lines,
            city: text(&field("city"), &self.city, 100)?,
            region: self
                .region
                .filter(|region| !region.trim().is_empty())
                .map(|region| text(&field("region"), &region, 100))
                .transpose()?,
            postal_code,
            country,
        })
    }
}

/// A 422 naming `field` and the rule, never the value (it is personal data).
fn invalid(field: &str, rule: &str) -> Invalid {
    Invalid(format!("{field} {rule}"))
}

/// Whether `code` is an ISO 3166-1 alpha-2 country code (officially assigned).
pub fn is_iso_country(code: &str) -> bool {
    code.len() == 2 && ISO_3166_ALPHA_2.split(' ').any(|assigned| assigned == code)
}

/// The officially assigned ISO 3166-1 alpha-2 codes.
const ISO_3166_ALPHA_2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF \
BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW \
CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM \
GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH \
KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP \
MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN \
PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE \
YT ZA ZM ZW";

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> ShippingAddress {
        ShippingAddress {
            name: Some(" Ada Lovelace ".into()),
            lines: vec!["12 St James's Square".into()],
            city: "London".into(),
            region: Some(" ".into()),
            postal_code: "sw1y 4jh".into(),
            country: Some("gb".into()),
        }
    }

    fn refusal(result: Result<impl Sized, Invalid>) -> String {
        match result {
            Err(Invalid(message)) => message,
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_good_address_is_tidied_and_kept() {
        let checked = address().checked().unwrap();
        assert_eq!(checked.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(checked.postal_code, "SW1Y 4JH");
        assert_eq!(checked.country.as_deref(), Some("GB"));
        assert_eq!(checked.region, None, "a blank region is no region");
    }

    #[test]
    fn each_bad_field_is_named_without_repeating_what_was_sent() {
        type Spoil = fn(&mut ShippingAddress);
        let cases: [(Spoil, &str); 7] = [
            (|a| a.name = Some(String::new()), "shipping_address.name"),
            (|a| a.lines.clear(), "shipping_address.lines"),
            (|a| a.lines = vec!["x".into(); 4], "shipping_address.lines"),
            (|a| a.city = "a\u{0}b".into(), "shipping_address.city"),
            (
                |a| a.postal_code = "12345;DROP".into(),
                "shipping_address.postal_code",
            ),
            (
                |a| a.country = Some("XX".into()),
                "shipping_address.country",
            ),
            (
                |a| a.country = Some("GBR".into()),
                "shipping_address.country",
            ),
        ];
        for (spoil, field) in cases {
            let mut bad = address();
            spoil(&mut bad);
            let message = refusal(bad.checked());
            assert!(message.starts_with(field), "{message}");
            assert!(
                !message.contains("DROP") && !message.contains("XX"),
                "{message}"
            );
        }
    }

    #[test]
    fn emails_need_one_at_and_a_dotted_domain_which_is_lower_cased() {
        assert_eq!(
            normalized_email(" Ada.L+shop@Example.COM ").as_deref(),
            Some("Ada.L+shop@example.com")
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@exa_mple.com",
            "ada@-example.com",
            "ada@@example.com",
        ] {
            assert_eq!(normalized_email(bad), None, "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(normalized_email(&long), None);
        let customer = Customer {
            email: "ada@example".into(),
            name: None,
        };
        let message = refusal(customer.checked());
        assert!(
            message.starts_with("customer.email") && !message.contains("ada"),
            "{message}"
        );
    }

    #[test]
    fn debug_output_never_shows_personal_data() {
        let customer = Customer {
            email: "ada@example.com".into(),
            name: Some("Ada".into()),
        };
        let shown = format!("{customer:?} {:?}", address());
        assert!(!shown.contains("ada") && !shown.contains("Ada") && !shown.contains("London"));
    }
}
