//! A cart and its lines, with totals computed in checked integer cents.

use serde::Serialize;
use service_kit::ApiError;
use service_kit::money::Cents;

/// One product in a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CartLine {
    pub product_id: i64,
    pub quantity: i64,
    /// The catalog's name, when known.
    pub name: Option<String>,
    /// The catalog's unit price, when known.
    pub unit_price: Option<Cents>,
    /// `unit_price * quantity`, when the price is known.
    pub line_total: Option<Cents>,
    /// False when the line was added while the catalog could not be asked.
    pub verified: bool,
    pub added_at: String,
    pub updated_at: String,
}

/// A user's cart as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CartOut {
    pub user_id: String,
    pub items: Vec<CartLine>,
    /// Units across all lines.
    pub item_count: i64,
    /// Sum of the known line totals.
    pub total: Cents,
    /// Lines whose product or price the catalog has not confirmed.
    pub unverified_items: usize,
}

impl CartOut {
    /// Builds the view, filling in line totals. A total too large to represent is a 422:
    /// it is computed inside the write that would create it, so that write is undone.
    pub fn from_lines(user_id: &str, mut items: Vec<CartLine>) -> Result<CartOut, ApiError> {
        let too_large = || ApiError::Validation("cart total would be too large".to_string());
        for line in &mut items {
            line.line_total = match line.unit_price {
                Some(price) => Some(price.checked_mul(line.quantity).ok_or_else(too_large)?),
                None => None,
            };
        }
        let total =
            Cents::checked_sum(items.iter().filter_map(|l| l.line_total)).ok_or_else(too_large)?;
        Ok(CartOut {
            user_id: user_id.to_string(),
            item_count: items.iter().map(|l| l.quantity).sum(),
            unverified_items: items.iter().filter(|l| !l.verified).count(),
            total,
            items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use service_kit::money::MAX_CENTS;

    fn line(product_id: i64, quantity: i64, price: Option<i64>, verified: bool) -> CartLine {
        CartLine {
            product_id,
            quantity,
            name: price.map(|_| format!("p{product_id}")),
            unit_price: price.map(Cents::new),
            line_total: None,
            verified,
            added_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn totals_add_known_lines_and_count_unverified_ones() {
        let cart = CartOut::from_lines(
            "u",
            vec![line(1, 2, Some(99_999), true), line(9, 1, None, false)],
        )
        .unwrap();
        assert_eq!(cart.total, Cents::new(199_998));
        assert_eq!(cart.items[0].line_total, Some(Cents::new(199_998)));
        assert_eq!(cart.items[1].line_total, None);
        assert_eq!(cart.item_count, 3);
        assert_eq!(cart.unverified_items, 1);
    }

    #[test]
    fn an_empty_cart_totals_zero() {
        let cart = CartOut::from_lines("nobody", vec![]).unwrap();
        assert_eq!(cart.total, Cents::new(0));
        assert!(cart.items.is_empty());
    }

    #[test]
    fn a_total_that_would_overflow_is_refused() {
        let err = CartOut::from_lines("u", vec![line(1, 1000, Some(MAX_CENTS), true)]);
        assert!(matches!(err, Err(ApiError::Validation(_))));
    }
}
