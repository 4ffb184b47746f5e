//! HTTP handlers, one module per resource.

pub mod customers;
pub mod exports;
pub mod orders;
pub mod promos;
