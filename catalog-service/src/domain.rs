//! Catalog rules: what a product may look like, and the life of a stock reservation.
//! Pure functions, unit-tested here.

use serde::Deserialize;
use service_kit::domain::Invalid;
use service_kit::domain::{Id, Quantity};
use service_kit::money::Cents;
use std::collections::BTreeMap;

/// The highest price a product may have: one million.
pub const MAX_PRICE: Cents = Cents::new(100_000_000);
/// The most units of one product the catalog holds.
pub const MAX_STOCK: i64 = 1_000_000;

/// A product's fields as an admin sends them; every field optional so `PUT` can change some.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductFields {
    /// 1 to 200 printable characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"
    )]
    pub name: Option<String>,
    /// Up to 2000 characters, no NUL.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// More than 0 and at most 1000000.00, with at most two decimals.
    #[schema(value_type = Option<f64>, exclusive_minimum = 0.0, maximum = 1_000_000.0)]
    pub price: Option<Cents>,
    /// 0 to 1000000.
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub stock: Option<i64>,
    /// Stock-keeping unit, unique among products: 1 to 64 letters, digits, `_`, `-` or `.`
    /// (e.g. `prod_001`); `""` removes it.
    #[schema(max_length = 64, pattern = r"^[A-Za-z0-9_.-]*$", example = "prod_001")]
    pub sku: Option<String>,
    /// 1 to 100 printable characters (e.g. `Electronics`); `""` removes it.
    #[schema(max_length = 100, example = "Electronics")]
    pub category: Option<String>,
}

/// Validated product fields. For `sku` and `category`, `Some("")` removes the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidFields {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<Cents>,
    pub stock: Option<i64>,
    pub sku: Option<String>,
    pub category: Option<String>,
}

impl ProductFields {
    /// Checks each field present; `require_all` for a new product (name, price and stock).
    pub fn validate(self, require_all: bool) -> Result<ValidFields, Invalid> {
        let invalid = |m: &str| Err(Invalid(m.to_string()));
        if require_all && (self.name.is_none() || self.price.is_none() || self.stock.is_none()) {
            return invalid("a new product needs name, price and stock");
        }
        if let Some(name) = &self.name {
            let length = name.trim().chars().count();
            if !(1..=200).contains(&length) || name.chars().any(char::is_control) {
                return invalid("name must be 1 to 200 printable characters");
            }
        }
        if let Some(description) = &self.description
            && (description.chars().count() > 2000 || description.contains('\0'))
        {
            return invalid("description must be at most 2000 characters");
        }
        if let Some(price) = self.price
            && (price.get() <= 0 || price > MAX_PRICE)
        {
            return invalid("price must be more than 0 and at most 1000000.00");
        }
        if let Some(stock) = self.stock
            && !(0..=MAX_STOCK).contains(&stock)
        {
            return invalid("stock must be between 0 and 1000000");
        }
        let sku = self.sku.map(|sku| sku.trim().to_string());
        if let Some(sku) = &sku
            && !sku.is_empty()
            && !shop_contracts::catalog::is_sku(sku)
        {
            return invalid("sku must be up to 64 letters, digits, '_', '-' or '.'");
        }
        let category = self.category.map(|c| c.trim().to_string());
        if let Some(category) = &category
            && (category.chars().count() > 100 || category.chars().any(char::is_control))
        {
            return invalid("category must be up to 100 printable characters");
        }
        Ok(ValidFields {
            name: self.name.map(|n| n.trim().to_string()),
            description: self.description,
            price: self.price,
            stock: self.stock,
            sku,
            category,
        })
    }
}

pub use shop_contracts::ReservationStatus;

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub price: Cents,
    /// Units on sale (available): reservations take theirs off it.
    pub stock: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped by every change; what `If-Match` names.
    pub version: i64,
    /// Units held by open reservations (on hand, not for sale).
    pub reserved: i64,
    pub sku: Option<String>,
    pub category: Option<String>,
    /// Whether `GET /products/{id}/image` has a picture.
    pub has_image: bool,
}

service_kit::text_enum! {
    /// The order of a product list: `id` (as added), `price` (cheapest first), `-price`
    /// (dearest first), `name` (A to Z) or `newest`.
    ProductSort {
        Id => "id",
        Price => "price",
        PriceDesc => "-price",
        Name => "name",
        Newest => "newest",
    }
}

/// The biggest image a product may have.
pub const MAX_IMAGE_BYTES: usize = 1024 * 1024;

/// The image formats a product's picture may be in, told by their first bytes (never by
/// what the client says): PNG's signature, JPEG's start-of-image marker, WebP's RIFF header.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The most pixels a product's picture may have: a small file can declare a huge image
/// (a 16 KB PNG of 60000×60000 pixels) that every browser showing it must decode.
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;

/// The width and height an image declares in its header, read without decoding it: PNG's
/// IHDR, JPEG's start-of-frame marker, WebP's VP8, VP8L or VP8X header. `None` when the
/// header is cut short or says nothing readable.
pub fn image_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let be32 = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let be16 = |at: usize| {
        Some(u32::from(u16::from_be_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let le16 = |at: usize| {
        Some(u32::from(u16::from_le_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let le24 = |at: usize| {
        let b = bytes.get(at..at + 3)?;
        Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
    };
    match image_type(bytes)? {
        "image/png" => (bytes.get(12..16)? == b"IHDR").then_some((be32(16)?, be32(20)?)),
        "image/jpeg" => {
            // Walk the markers up to the first start-of-frame (SOF0 to SOF15 but DHT, JPG
            // and DAC, which share the range).
            let mut at = 2;
            loop {
                while *bytes.get(at)? == 0xFF && *bytes.get(at + 1)? == 0xFF {
                    at += 1;
                }
                if *bytes.get(at)? != 0xFF {
                    return None;
                }
                let marker = *bytes.get(at + 1)?;
                if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                    return Some((be16(at + 7)?, be16(at + 5)?));
                }
                at += 2 + usize::try_from(be16(at + 2)?).ok()?;
            }
        }
        _ => match bytes.get(12..16)? {
            b"VP8 " => Some((le16(26)? & 0x3FFF, le16(28)? & 0x3FFF)),
            b"VP8L" => {
                let bits = u32::from_le_bytes(bytes.get(21..25)?.try_into().ok()?);
                Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
            }
            b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
            _ => None,
        },
    }
}

/// Why a picture of `bytes` (of a known type) cannot be a product's: dimensions that cannot
/// be read, none at all, or more than [`MAX_IMAGE_PIXELS`].
pub fn image_refusal(bytes: &[u8]) -> Option<String> {
    match image_dimensions(bytes) {
        None => Some("the image's width and height cannot be read from its header".into()),
        Some((0, _) | (_, 0)) => Some("the image has no pixels".into()),
        Some((w, h)) if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS => Some(format!(
            "the image is {w}×{h} pixels; at most {} megapixels are accepted",
            MAX_IMAGE_PIXELS / 1_000_000
        )),
        Some(_) => None,
    }
}

/// One product's stock audit: what is there (on sale, reserved) against what the ledger,
/// the sales and the returns say should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub product_id: i64,
    pub name: String,
    pub available: i64,
    /// Held by open reservations.
    pub reserved: i64,
    /// Sold: in committed reservations (returned ones included).
    pub sold: i64,
    /// Sold, then returned.
    pub returned: i64,
    /// The ledger's sum: the opening stock and every movement since.
    pub moved: i64,
}

impl AuditRow {
    /// Units in the warehouse: on sale plus reserved.
    pub fn on_hand(&self) -> i64 {
        self.available + self.reserved
    }

    /// What the ledger says should be on hand: everything moved in, less what was sold,
    /// plus what came back.
    pub fn expected_on_hand(&self) -> i64 {
        self.moved - self.sold + self.returned
    }
}

/// One row of the stock ledger: units that came (positive) or went, why, and what was on
/// sale after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub id: i64,
    pub product_id: i64,
    pub delta: i64,
    pub reason: String,
    pub stock_after: i64,
    pub created_at: String,
}

/// A reservation as stored, with its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The caller's key for it (an order's ref, or an older order id as text).
    pub reference: String,
    /// The order it holds stock for, for people.
    pub order_id: i64,
    pub status: ReservationStatus,
    pub lines: Vec<ReservationLine>,
    /// Why it was released, when it was.
    pub reason: Option<String>,
    /// When the sweep releases it if it is still only reserved (RFC 3339); `None`: held
    /// until committed or released.
    pub expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One reserved line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservationLine {
    pub product_id: i64,
    pub quantity: i64,
    /// How many of its units came back (by returns) and are on sale again.
    pub returned: i64,
}

impl Reservation {
    /// True when it holds exactly these merged lines (as [`merge_lines`] gives them).
    pub fn holds(&self, lines: &[(Id, i64)]) -> bool {
        let mut held: Vec<(i64, i64)> = self
            .lines
            .iter()
            .map(|l| (l.product_id, l.quantity))
            .collect();
        held.sort_unstable();
        let asked: Vec<(i64, i64)> = lines.iter().map(|(p, q)| (p.get(), *q)).collect();
        held == asked
    }
}

/// What asking for `target` does to a reservation in `current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Change it (and, for a release, put the stock back).
    Apply,
    /// Already there: answer as if done, change nothing.
    AlreadyDone,
    /// Not allowed: a committed reservation is never released, a released one never committed.
    Refuse,
}

/// The one place the reservation lifecycle is written down.
pub fn transition(current: ReservationStatus, target: ReservationStatus) -> Transition {
    use ReservationStatus::*;
    match (current, target) {
        (Reserved, Committed | Released) => Transition::Apply,
        (a, b) if a == b => Transition::AlreadyDone,
        _ => Transition::Refuse,
    }
}

/// One line of a reservation request, as the contract defines it (the catalog reads the
/// type the order service sends).
pub use shop_contracts::catalog::ReservationLine as LineIn;

/// Validates lines and merges repeats of a product, so each product is taken once.
pub fn merge_lines(lines: Vec<LineIn>) -> Result<Vec<(Id, i64)>, Invalid> {
    if lines.is_empty() || lines.len() > 100 {
        return Err(Invalid("a reservation has 1 to 100 lines".to_string()));
    }
    let mut merged: BTreeMap<Id, i64> = BTreeMap::new();
    for line in lines {
        let product = Id::parse(line.product_id, "product_id")?;
        let quantity = Quantity::parse(line.quantity)?;
        let total = merged.entry(product).or_default();
        *total += quantity.get();
        if *total > Quantity::MAX {
            return Err(Invalid(format!(
                "at most {} units of one product",
                Quantity::MAX
            )));
        }
    }
    Ok(merged.into_iter().collect())
}

#[cfg(test)]
mod image_tests {
    use super::*;

    #[test]
    fn images_are_told_by_their_bytes() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n rest"), Some("image/png"));
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0, 0]), Some("image/jpeg"));
        assert_eq!(image_type(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&[8, 6, 0, 0, 0]);
        bytes
    }

    #[test]
    fn dimensions_are_read_from_each_formats_header() {
        assert_eq!(image_dimensions(&png(640, 480)), Some((640, 480)));
        // JPEG: an APP0 segment, then SOF0 with height 300 and width 400.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8, 0x01, 0x2C, 0x01, 0x90, 3,
        ];
        assert_eq!(image_dimensions(&jpeg), Some((400, 300)));
        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
        vp8x.extend_from_slice(&[0x1F, 0x03, 0x00, 0xDF, 0x01, 0x00]); // 800 x 480
        assert_eq!(image_dimensions(&vp8x), Some((800, 480)));
        assert_eq!(image_dimensions(b"\x89PNG\r\n\x1a\n"), None, "cut short");
    }

    #[test]
    fn a_decompression_bomb_is_refused_by_its_header() {
        assert_eq!(image_refusal(&png(640, 480)), None);
        assert_eq!(image_refusal(&png(8000, 5000)), None, "exactly 40 MP");
        let bomb = image_refusal(&png(60_000, 60_000)).unwrap();
        assert!(bomb.contains("60000×60000"), "{bomb}");
        assert!(image_refusal(&png(0, 10)).is_some());
        assert!(
            image_refusal(&[0xFF, 0xD8, 0xFF, 0xD9]).is_some(),
            "no frame"
        );
        for not_an_image in [
            &b""[..],
            b"GIF89a",
            b"<svg></svg>",
            b"RIFF\0\0\0\0WAVE",
            b"\x89PN",
        ] {
            assert_eq!(image_type(not_an_image), None);
        }
    }

    #[test]
    fn skus_and_categories_are_checked_and_trimmed() {
        let fields = |sku: &str, category: &str| ProductFields {
            sku: Some(sku.into()),
            category: Some(category.into()),
            ..ProductFields::default()
        };
        let ok = fields(" prod_001 ", " Electronics ")
            .validate(false)
            .unwrap();
        assert_eq!(ok.sku.as_deref(), Some("prod_001"));
        assert_eq!(ok.category.as_deref(), Some("Electronics"));
        assert!(fields("prod 001", "x").validate(false).is_err());
        assert!(fields(&"a".repeat(65), "x").validate(false).is_err());
        assert!(fields("a", "tab\there").validate(false).is_err());
        assert!(fields("", "").validate(false).is_ok(), "empty removes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReservationStatus::*;

    fn fields(name: Option<&str>, price: Option<i64>, stock: Option<i64>) -> ProductFields {
        ProductFields {
            name: name.map(str::to_string),
            description: None,
            price: price.map(Cents::new),
            stock,
            ..ProductFields::default()
        }
    }

    #[test]
    fn a_new_product_needs_every_field_and_sane_values() {
        assert!(
            fields(Some("Lamp"), Some(1999), Some(5))
                .validate(true)
                .is_ok()
        );
        assert!(fields(Some("Lamp"), None, Some(5)).validate(true).is_err());
        assert!(
            fields(Some(""), Some(1999), Some(5))
                .validate(true)
                .is_err()
        );
        assert!(
            fields(Some("a\u{0}b"), Some(1999), Some(5))
                .validate(true)
                .is_err()
        );
        assert!(
            fields(Some(&"x".repeat(201)), Some(1999), Some(5))
                .validate(true)
                .is_err()
        );
        assert!(
            fields(Some("Lamp"), Some(0), Some(5))
                .validate(true)
                .is_err()
        );
        assert!(
            fields(Some("Lamp"), Some(MAX_PRICE.get() + 1), Some(5))
                .validate(true)
                .is_err()
        );
        assert!(
            fields(Some("Lamp"), Some(1999), Some(-1))
                .validate(true)
                .is_err()
        );
        assert!(
            fields(Some("Lamp"), Some(1999), Some(MAX_STOCK + 1))
                .validate(true)
                .is_err()
        );
    }

    #[test]
    fn an_update_may_change_one_field() {
        let valid = fields(None, None, Some(7)).validate(false).unwrap();
        assert_eq!(valid.stock, Some(7));
        assert_eq!(valid.name, None);
    }

    #[test]
    fn reservations_are_committed_or_released_once_and_never_both() {
        assert_eq!(transition(Reserved, Committed), Transition::Apply);
        assert_eq!(transition(Reserved, Released), Transition::Apply);
        assert_eq!(transition(Committed, Committed), Transition::AlreadyDone);
        assert_eq!(transition(Released, Released), Transition::AlreadyDone);
        assert_eq!(transition(Committed, Released), Transition::Refuse);
        assert_eq!(transition(Released, Committed), Transition::Refuse);
    }

    #[test]
    fn repeated_products_are_merged_and_bad_lines_refused() {
        let line = |product_id, quantity| LineIn {
            product_id,
            quantity,
        };
        let merged = merge_lines(vec![line(2, 1), line(1, 2), line(2, 3)]).unwrap();
        assert_eq!(merged, vec![(Id::from_db(1), 2), (Id::from_db(2), 4)]);
        assert!(merge_lines(vec![]).is_err());
        assert!(merge_lines(vec![line(1, 0)]).is_err());
        assert!(merge_lines(vec![line(0, 1)]).is_err());
        assert!(merge_lines(vec![line(1, 600), line(1, 600)]).is_err());
    }
}
