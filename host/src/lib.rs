//! # icmp-host
//!
//! A runtime for sandboxed WebAssembly ICMP probes. The host owns the
//! privileged sockets ([`icmp`]), checks every request against a
//! [`policy`], and runs plugins under resource limits ([`runtime`]);
//! [`serve`] offers all of that to several tenants over HTTP.
#![deny(missing_docs)]

pub mod bootstrap;
pub mod builtin;
pub mod icmp;
pub mod policy;
pub mod report;
pub mod resolve;
pub mod runtime;
pub mod serve;
pub mod sys;
