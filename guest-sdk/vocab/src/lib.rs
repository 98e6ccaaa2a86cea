//! # icmp-host vocabulary
//!
//! The words the icmp-host host and its plugins share, defined once: IP
//! [`Family`] and [`Address`] (with the IPv6 scope), and [`codes`] — ICMP
//! types and codes, what they mean to a prober, their words for people and
//! traceroute's marks. No I/O, no dependencies (serde behind a feature).
#![deny(missing_docs)]

pub mod codes;
mod net;

pub use net::{Address, Family};
