//! HTTP handlers, one module per resource.

pub mod customers;
pub mod orders;
pub mod promos;
