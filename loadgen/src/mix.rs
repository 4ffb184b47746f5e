//! Which journeys virtual shoppers run, and how often: `browse=50,add=30,checkout=20`.

use std::str::FromStr;

/// One kind of journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journey {
    /// List the products, then look at one.
    Browse,
    /// Look at one product (one request: `GET /products/{id}`).
    Product,
    /// Add a product to the cart (the catalog check included).
    Add,
    /// Place an order directly (`POST /orders`).
    Order,
    /// Place an order and pay it with `/pay` (its signed webhook delivered).
    Pay,
    /// Add to the cart, check out with the success card, look at the order.
    Checkout,
    /// Place an order, then cancel it (its stock released).
    Cancel,
    /// Place an order, pay it, refund it in full.
    Refund,
    /// An admin adds a unit to a product's stock (a stock movement).
    Adjust,
}

impl Journey {
    fn parse(name: &str) -> Option<Journey> {
        Some(match name {
            "browse" => Journey::Browse,
            "product" => Journey::Product,
            "add" => Journey::Add,
            "order" => Journey::Order,
            "pay" => Journey::Pay,
            "checkout" => Journey::Checkout,
            "cancel" => Journey::Cancel,
            "refund" => Journey::Refund,
            "adjust" => Journey::Adjust,
            _ => return None,
        })
    }
}

/// Journeys with integer weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(Vec<(Journey, u32)>);

impl FromStr for Mix {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let journey = Journey::parse(name.trim()).ok_or_else(|| {
                format!(
                    "unknown journey '{name}' (browse, product, add, order, pay, checkout, \
                     cancel, refund, adjust)"
                )
            })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("weight of '{name}' must be a whole number"))?;
            parts.push((journey, weight));
        }
        if parts.iter().map(|(_, w)| w).sum::<u32>() == 0 {
            return Err("the mix needs at least one journey with a weight above 0".into());
        }
        Ok(Mix(parts))
    }
}

impl Mix {
    /// The journey for a roll in `0..total()`.
    pub fn pick(&self, mut roll: u32) -> Journey {
        for (journey, weight) in &self.0 {
            if roll < *weight {
                return *journey;
            }
            roll -= weight;
        }
        self.0[0].0
    }

    /// The sum of the weights.
    pub fn total(&self) -> u32 {
        self.0.iter().map(|(_, w)| w).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_pick_journeys_in_proportion() {
        let mix: Mix = "browse=50,add=30,checkout=20".parse().unwrap();
        assert_eq!(mix.total(), 100);
        assert_eq!(mix.pick(0), Journey::Browse);
        assert_eq!(mix.pick(49), Journey::Browse);
        assert_eq!(mix.pick(50), Journey::Add);
        assert_eq!(mix.pick(80), Journey::Checkout);
        assert_eq!(mix.pick(99), Journey::Checkout);
    }

    #[test]
    fn bad_mixes_are_refused() {
        assert!("fly=1".parse::<Mix>().is_err());
        assert!("browse=x".parse::<Mix>().is_err());
        assert!("browse=0".parse::<Mix>().is_err());
        assert_eq!("product".parse::<Mix>().unwrap().pick(0), Journey::Product);
        let admin: Mix = "cancel=1,refund=1,adjust=1".parse().unwrap();
        assert_eq!(
            [admin.pick(0), admin.pick(1), admin.pick(2)],
            [Journey::Cancel, Journey::Refund, Journey::Adjust]
        );
    }
}
