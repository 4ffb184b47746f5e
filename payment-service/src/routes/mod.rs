//! HTTP handlers, one module per resource.

pub mod deliveries;
pub mod health;
pub mod payments;
