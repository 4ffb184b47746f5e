//! HTTP handlers, one module per resource.

pub mod deliveries;
pub mod exports;
pub mod health;
pub mod payments;
