//! The records of the cart service: a cart and its lines (with totals computed in checked
//! integer cents), and a checkout with its steps and step log.

use serde::{Deserialize, Serialize};
use service_kit::domain::Invalid;
use service_kit::money::Cents;

/// One product in a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CartLine {
    pub product_id: i64,
    pub quantity: i64,
    /// The catalog's name, when known.
    pub name: Option<String>,
    /// The product's SKU, when it has one (as the catalog said when the line was added).
    pub sku: Option<String>,
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
    pub fn from_lines(user_id: &str, mut items: Vec<CartLine>) -> Result<CartOut, Invalid> {
        let too_large = || Invalid("cart total would be too large".to_string());
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

service_kit::text_enum! {
    /// The steps of a checkout, in order.
    #[derive(PartialOrd, Ord)]
    Step {
        Validate => "validate",
        Order => "order",
        Reserve => "reserve",
        Pay => "pay",
        Commit => "commit",
        Clear => "clear",
        Done => "done",
    }
}

impl Step {
    /// The step after this one; `Done` is the last.
    pub fn next(self) -> Step {
        let at = Step::ALL
            .iter()
            .position(|s| *s == self)
            .unwrap_or_default();
        Step::ALL.get(at + 1).copied().unwrap_or(Step::Done)
    }
}

service_kit::text_enum! {
    /// Where a checkout is: `running` while steps are under way or a peer is awaited,
    /// `completed` once paid, stock taken and cart cleared, `failed` once a step failed and
    /// the earlier ones were undone.
    CheckoutStatus {
        Running => "running",
        Completed => "completed",
        Failed => "failed",
    }
}

service_kit::text_enum! {
    /// What happened to a step, as its log entry says: `done`; `failed` (the checkout ends
    /// once the earlier steps are undone); `undone`; `undo_failed` (what is left over is
    /// settled elsewhere, the detail says how); `unsettled` (a peer may have acted and could
    /// not be asked: recovery settles it); `pending` (paid, stock not committed yet:
    /// recovery finishes it).
    StepState {
        Done => "done",
        Failed => "failed",
        Undone => "undone",
        UndoFailed => "undo_failed",
        Unsettled => "unsettled",
        Pending => "pending",
    }
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
    /// The price the client sent with a one-call checkout: the catalog's must be the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_price: Option<Cents>,
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
    /// The order's global reference: the key its stock is held under.
    pub order_ref: Option<String>,
    /// Whether its lines came from the user's cart (cleared of them at the end), or came
    /// with a one-call checkout (the cart is left alone).
    pub from_cart: bool,
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
            sku: None,
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
            assert_eq!(Step::parse(step.as_str()), Some(*step));
        }
        assert!(Step::ALL.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(Step::ALL.windows(2).all(|pair| pair[0].next() == pair[1]));
        assert_eq!(Step::Done.next(), Step::Done);
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
        assert!(matches!(err, Err(Invalid(_))));
    }
}
