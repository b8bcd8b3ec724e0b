//! Vendor API simulators: a seeded synthetic fleet ([`fleet`]) rendered in
//! each vendor's wire format ([`iru`]), behind shared behaviour ([`control`]:
//! auth, the request budget, fault injection, the record of actions) and a
//! loopback server ([`server`]).

pub mod control;
pub mod fleet;
pub mod iru;
pub mod server;
