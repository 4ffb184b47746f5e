//! The records of the cart service: a cart and its lines (with totals computed in checked
//! integer cents), and a checkout with its steps and step log.

use serde::{Deserialize, Serialize};
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

/// The steps of a checkout, in order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Validate,
    Order,
    Reserve,
    Pay,
    Commit,
    Clear,
    Done,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 7] = [
        Step::Validate,
        Step::Order,
        Step::Reserve,
        Step::Pay,
        Step::Commit,
        Step::Clear,
        Step::Done,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::Order => "order",
            Step::Reserve => "reserve",
            Step::Pay => "pay",
            Step::Commit => "commit",
            Step::Clear => "clear",
            Step::Done => "done",
        }
    }

    /// Reads a stored name.
    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Where a checkout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutStatus {
    /// Steps are under way, or waiting for a peer to answer.
    Running,
    /// Paid, stock taken, cart cleared.
    Completed,
    /// A step failed and the earlier ones were undone.
    Failed,
}

impl CheckoutStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutStatus::Running => "running",
            CheckoutStatus::Completed => "completed",
            CheckoutStatus::Failed => "failed",
        }
    }

    /// Reads a stored name.
    pub fn parse(text: &str) -> Option<CheckoutStatus> {
        [Self::Running, Self::Completed, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What happened to a step, as its log entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// It was done.
    Done,
    /// It failed; the checkout ends here once the earlier steps are undone.
    Failed,
    /// It had been done and was undone.
    Undone,
    /// Undoing it failed; what is left over is settled elsewhere (the detail says how).
    UndoFailed,
    /// A peer may have acted and could not be asked: the recovery loop settles it.
    Unsettled,
    /// Paid, and its stock not committed yet: the recovery loop finishes it.
    Pending,
}

/// One entry of a checkout's step log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepLog {
    pub step: Step,
    pub state: StepState,
    pub at: String,
    pub detail: Option<String>,
}

/// One line checked out: what the cart held, priced by the catalog once validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckoutLine {
    pub product_id: i64,
    pub quantity: i64,
    pub name: Option<String>,
    pub price: Option<Cents>,
}

/// A checkout as stored: the lines it took from the cart, where it is, what it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub id: i64,
    /// Globally unique; every key this checkout sends to a peer is built from it.
    pub reference: String,
    pub user_id: String,
    pub status: CheckoutStatus,
    /// The step under way, or where it ended.
    pub step: Step,
    pub steps: Vec<StepLog>,
    pub lines: Vec<CheckoutLine>,
    pub total: Option<Cents>,
    pub order_id: Option<i64>,
    pub payment_id: Option<i64>,
    pub failed_step: Option<Step>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub correlation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Checkout {
    /// Adds an entry to the step log.
    pub fn log(&mut self, step: Step, state: StepState, detail: Option<String>) {
        self.steps.push(StepLog {
            step,
            state,
            at: service_kit::clock::now_rfc3339(),
            detail,
        });
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
    fn steps_are_ordered_and_round_trip_their_names() {
        assert!(Step::Validate < Step::Order && Step::Order < Step::Reserve);
        assert!(Step::Reserve < Step::Pay && Step::Pay < Step::Commit);
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert!(Step::ALL.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(Step::parse("ship"), None);
        for status in [
            CheckoutStatus::Running,
            CheckoutStatus::Completed,
            CheckoutStatus::Failed,
        ] {
            assert_eq!(CheckoutStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, serde_json::json!(status.as_str()));
        }
        let state = serde_json::to_value(StepState::UndoFailed).unwrap();
        assert_eq!(state, serde_json::json!("undo_failed"));
    }

    #[test]
    fn a_total_that_would_overflow_is_refused() {
        let err = CartOut::from_lines("u", vec![line(1, 1000, Some(MAX_CENTS), true)]);
        assert!(matches!(err, Err(ApiError::Validation(_))));
    }
}
