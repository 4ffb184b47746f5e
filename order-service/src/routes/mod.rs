//! HTTP handlers, one module per resource.

pub mod orders;
pub mod promos;
