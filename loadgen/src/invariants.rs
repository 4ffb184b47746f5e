//! What must still be true of the shop after the load: read before and after the run, and
//! compared as differences so earlier data (or other users) does not matter.

use crate::shop::Client;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The shop's books at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Books {
    /// Stock of every product on sale.
    pub stock: BTreeMap<i64, i64>,
    /// Units of each product in paid orders.
    pub paid_units: BTreeMap<i64, i64>,
    /// Cents: total of paid orders, and of captured payments.
    pub revenue_cents: i64,
    pub captured_cents: i64,
    pub paid_orders: i64,
    pub captured_payments: i64,
    pub failed_deliveries: i64,
    pub pending_deliveries: i64,
    /// Cents refunded of the captured payments.
    pub refunded_cents: i64,
    /// Orders a payment was captured for (paid, refunded, or cancelled and given back).
    pub charged_orders: i64,
    /// Products whose stock audit does not balance (on hand against ledger − sold +
    /// returned).
    pub unbalanced_products: Vec<i64>,
}

fn cents(value: &Value) -> i64 {
    // Display amounts have two decimals; rounding the f64 recovers the exact cents.
    (value.as_f64().unwrap_or(0.0) * 100.0).round() as i64
}

fn int_map(value: &Value) -> BTreeMap<i64, i64> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_i64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the books, or says which service did not answer.
pub fn read_books(client: &Client) -> Result<Books, String> {
    let e = &client.endpoints;
    let products = client.send("GET", &format!("{}/products?limit=200", e.catalog), None);
    let stats = client.send("GET", &format!("{}/orders/stats", e.order), None);
    let payments = client.send("GET", &format!("{}/payments/summary", e.payment), None);
    let health = client.send("GET", &format!("{}/health", e.payment), None);
    let audit = client.send("GET", &format!("{}/stock/audit", e.catalog), None);
    for (name, answer) in [
        ("catalog", &products),
        ("stock audit", &audit),
        ("order", &stats),
        ("payment", &payments),
        ("payment health", &health),
    ] {
        if !answer.ok() {
            return Err(format!("{name} answered {}", answer.status));
        }
    }
    Ok(Books {
        stock: products
            .body
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|p| Some((p["id"].as_i64()?, p["stock"].as_i64()?)))
                    .collect()
            })
            .unwrap_or_default(),
        paid_units: int_map(&stats.body["paid_units"]),
        revenue_cents: cents(&stats.body["revenue"]),
        captured_cents: cents(&payments.body["captured_total"]),
        paid_orders: stats.body["paid_order_count"].as_i64().unwrap_or(0),
        refunded_cents: cents(&payments.body["refunded_total"]),
        charged_orders: stats.body["reconciliation"]["charged_order_count"]
            .as_i64()
            .unwrap_or(0),
        captured_payments: payments.body["captured_count"].as_i64().unwrap_or(0),
        failed_deliveries: health.body["webhook_backlog"]["failed"]
            .as_i64()
            .unwrap_or(0),
        pending_deliveries: health.body["webhook_backlog"]["pending"]
            .as_i64()
            .unwrap_or(0),
        unbalanced_products: audit
            .body
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter(|r| r["balanced"] != true)
                    .filter_map(|r| r["product_id"].as_i64())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// One invariant's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub invariant: &'static str,
    pub holds: bool,
    pub detail: String,
}

/// Units loadgen moved that paid orders do not show, per product.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherUnits {
    /// In orders it placed through `POST /orders` and left unpaid: held, off sale.
    pub held_unpaid: BTreeMap<i64, i64>,
    /// In orders it paid and then refunded in full: sold (no restock), not paid any more.
    pub refunded: BTreeMap<i64, i64>,
    /// Added by its admin adjustments (stock movements).
    pub adjusted: BTreeMap<i64, i64>,
}

impl OtherUnits {
    /// Adds another shopper's units.
    pub fn merge(&mut self, other: OtherUnits) {
        for (mine, theirs) in [
            (&mut self.held_unpaid, other.held_unpaid),
            (&mut self.refunded, other.refunded),
            (&mut self.adjusted, other.adjusted),
        ] {
            for (product, units) in theirs {
                *mine.entry(product).or_default() += units;
            }
        }
    }
}

/// The products whose stock fell by other than the units of paid, held and refunded orders
/// less those added by hand, each said in words.
fn stock_mismatches(before: &Books, after: &Books, other: &OtherUnits) -> Vec<String> {
    let mut mismatches = Vec::new();
    for (product, stock_after) in &after.stock {
        let stock_before = before.stock.get(product).copied().unwrap_or(*stock_after);
        let sold = stock_before - stock_after;
        let paid = after.paid_units.get(product).copied().unwrap_or(0)
            - before.paid_units.get(product).copied().unwrap_or(0);
        let units = |map: &BTreeMap<i64, i64>| map.get(product).copied().unwrap_or(0);
        let (held, refunded, adjusted) = (
            units(&other.held_unpaid),
            units(&other.refunded),
            units(&other.adjusted),
        );
        if sold != paid + held + refunded - adjusted {
            mismatches.push(format!(
                "product {product}: stock fell by {sold}; paid orders hold {paid}, unpaid ones \
                 {held}, refunded ones {refunded}; {adjusted} added by hand"
            ));
        }
    }
    mismatches
}

/// Checks the invariants between `before` and `after`. `other` holds the units loadgen
/// moved that paid orders do not show; `completed_unpaid` is how many completed checkouts
/// have an order that is not paid.
pub fn check(
    before: &Books,
    after: &Books,
    other: &OtherUnits,
    completed_unpaid: usize,
    completed: usize,
) -> Vec<Verdict> {
    let below_zero: Vec<_> = after.stock.iter().filter(|(_, s)| **s < 0).collect();
    let sold_mismatch = stock_mismatches(before, after, other);
    let revenue = after.revenue_cents - before.revenue_cents;
    let captured = (after.captured_cents - after.refunded_cents)
        - (before.captured_cents - before.refunded_cents);
    let paid_orders = after.paid_orders - before.paid_orders;
    let charged = after.charged_orders - before.charged_orders;
    let payments = after.captured_payments - before.captured_payments;
    let failed = after.failed_deliveries - before.failed_deliveries;
    vec![
        Verdict {
            invariant: "no stock below zero",
            holds: below_zero.is_empty(),
            detail: format!("{below_zero:?}"),
        },
        Verdict {
            invariant: "stock taken equals units in paid, held and refunded orders, less those added",
            holds: sold_mismatch.is_empty(),
            detail: if sold_mismatch.is_empty() {
                "every product".into()
            } else {
                sold_mismatch.join("; ")
            },
        },
        Verdict {
            invariant: "captured payments net of refunds equal paid orders net of theirs",
            holds: revenue == captured,
            detail: format!(
                "paid orders {:.2}, captured net {:.2}",
                revenue as f64 / 100.0,
                captured as f64 / 100.0
            ),
        },
        Verdict {
            invariant: "one successful payment per charged order",
            holds: charged == payments,
            detail: format!(
                "{charged} charged orders ({paid_orders} paid now), {payments} captured payments"
            ),
        },
        Verdict {
            invariant: "no webhook delivery left failed",
            holds: failed == 0,
            detail: format!("{failed} newly failed"),
        },
        Verdict {
            invariant: "every completed checkout has a paid order",
            holds: completed_unpaid == 0,
            detail: format!("{completed} completed, {completed_unpaid} without a paid order"),
        },
        Verdict {
            invariant: "the catalog's stock audit balances",
            holds: after.unbalanced_products.is_empty(),
            detail: format!("unbalanced products: {:?}", after.unbalanced_products),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn books(stock: i64, paid_units: i64, revenue: i64, captured: i64) -> Books {
        Books {
            stock: BTreeMap::from([(1, stock)]),
            paid_units: BTreeMap::from([(1, paid_units)]),
            revenue_cents: revenue,
            captured_cents: captured,
            paid_orders: paid_units,
            captured_payments: paid_units,
            charged_orders: paid_units,
            ..Books::default()
        }
    }

    fn held(units: i64) -> OtherUnits {
        OtherUnits {
            held_unpaid: BTreeMap::from([(1, units)]),
            ..OtherUnits::default()
        }
    }

    #[test]
    fn a_consistent_run_passes_every_invariant() {
        let none = OtherUnits::default();
        let verdicts = check(&books(50, 0, 0, 0), &books(47, 3, 300, 300), &none, 0, 3);
        assert!(verdicts.iter().all(|v| v.holds), "{verdicts:?}");
        let verdicts = check(&books(50, 0, 0, 0), &books(45, 3, 300, 300), &held(2), 0, 3);
        assert!(
            verdicts.iter().all(|v| v.holds),
            "unpaid orders hold their units: {verdicts:?}"
        );
        let verdicts = check(&books(50, 0, 0, 0), &books(47, 3, 300, 300), &held(2), 0, 3);
        assert!(
            !verdicts[1].holds,
            "units an unpaid order should hold are missing"
        );
        // One order paid then refunded in full (sold, no longer paid, its payment refunded),
        // and 4 units added by hand.
        let mut after = books(50 - 3 - 1 + 4, 3, 300, 400);
        after.refunded_cents = 100;
        after.captured_payments = 4;
        after.charged_orders = 4;
        let other = OtherUnits {
            refunded: BTreeMap::from([(1, 1)]),
            adjusted: BTreeMap::from([(1, 4)]),
            ..OtherUnits::default()
        };
        let verdicts = check(&books(50, 0, 0, 0), &after, &other, 0, 3);
        assert!(verdicts.iter().all(|v| v.holds), "{verdicts:?}");
    }

    #[test]
    fn each_kind_of_damage_is_caught() {
        let before = books(50, 0, 0, 0);
        let none = OtherUnits::default();
        let oversold = check(&before, &books(-1, 51, 5100, 5100), &none, 0, 51);
        assert!(!oversold[0].holds);
        let lost_stock = check(&before, &books(45, 3, 300, 300), &none, 0, 3);
        assert!(!lost_stock[1].holds);
        let unpaid = check(&before, &books(47, 3, 300, 200), &none, 0, 3);
        assert!(!unpaid[2].holds);
        let mut kept = books(47, 3, 300, 400);
        kept.captured_payments = 4;
        kept.charged_orders = 4;
        assert!(
            !check(&before, &kept, &none, 0, 3)[2].holds,
            "money kept on a cancelled order"
        );
        let orphan = check(&before, &books(47, 3, 300, 300), &none, 1, 3);
        assert!(!orphan[5].holds);
        let mut twice = books(47, 3, 300, 300);
        twice.captured_payments = 4;
        assert!(!check(&before, &twice, &none, 0, 3)[3].holds);
        let mut blind_write = books(47, 3, 300, 300);
        blind_write.unbalanced_products = vec![1];
        assert!(!check(&before, &blind_write, &none, 0, 3)[6].holds);
    }

    #[test]
    fn amounts_read_as_exact_cents() {
        assert_eq!(cents(&serde_json::json!(999.99)), 99_999);
        assert_eq!(cents(&serde_json::json!(0.07)), 7);
    }
}
