//! HTTP handlers, one module per resource.

pub mod cart;
pub mod checkouts;
