//! Generated bindings for the `icmp-host:probe` world. Private: the rest of
//! the crate wraps them in idiomatic types.
//!
//! Generated ahead of time (`tests/bindings.rs` checks them against `wit/`
//! and regenerates them), so building a plugin runs no wit-bindgen macro.

include!("bindings/probe.rs");
