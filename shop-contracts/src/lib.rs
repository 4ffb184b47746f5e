//! What crosses the wire between the shop's services, written once: the statuses one
//! service reads in another's answers, and the bodies of the calls they make to each other.
//! A service compares another's status through these enums, never as a string.
//!
//! # Layout
//! - [`OrderStatus`]: an order's place in its life (order-service owns the transitions).
//! - [`PaymentStatus`]: what became of a payment attempt.
//! - [`ReservationStatus`]: where a stock reservation is (catalog-service owns the rules).
//! - [`orders`]: the order as payment and cart read it, the lines a checkout places, a
//!   status change.
//! - [`payments`]: a payment as a checkout reads it, the payment webhook's body, the
//!   captured-payments summary, and the typed client (cart pays, order reads the summary).
//! - [`catalog`]: the catalog's product and reservation bodies, and its typed client (cart
//!   and order both call it).
//! - [`customer`]: who an order is for and where it goes (`customer`, `shipping_address`),
//!   checked by cart before a checkout and by order when it stores them.
//! - [`refusal`]: [`refusals!`], a call's refusal enum with one status and code per variant,
//!   for the server's answer and the client's reading alike.
//! - [`card`]: the card a shopper sends, its form checks (Luhn, expiry, CVC); cart checks
//!   it before a checkout, payment before a charge.

pub mod card;
pub mod catalog;
pub mod customer;
pub mod orders;
pub mod payments;
pub mod refusal;
mod status;

pub use status::{OrderStatus, OrderStock, PaymentStatus, ReservationStatus};
