//! Errors: what the host reports ([`Error`], icmplib's socket exceptions)
//! and what a reply means ([`IcmpError`], from [`Reply::raise_for_status`]).

use std::fmt;
use std::time::Duration;

use crate::codes::{self, Kind};
use crate::icmp::Reply;

/// A failed host call (icmplib's exception tree, plus the host's own cases).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The name could not be resolved.
    NameLookup(String),
    /// The source or destination address is unusable.
    SocketAddress(String),
    /// The host lacks the privilege for the requested mode.
    SocketPermission(String),
    /// The socket is closed.
    SocketUnavailable,
    /// Broadcast destination without broadcast enabled.
    SocketBroadcast,
    /// No reply arrived within the given time.
    TimeoutExceeded(Duration),
    /// Any other socket failure.
    IcmpSocket(String),
    /// The host's policy forbids this: which rule, and why in words.
    PolicyDenied {
        /// The rule that refused.
        rule: PolicyRule,
        /// The refusal in words.
        message: String,
    },
    /// The run is ending (Ctrl-C or wall-clock limit): return what you have.
    Interrupted,
    /// A host capacity (sockets, in-flight requests, ids) is used up.
    ResourceExhausted(String),
    /// An argument is out of range.
    InvalidArgument(String),
    /// The host or platform cannot do this.
    Unsupported(String),
    /// A Don't-Fragment request is larger than the MTU towards its
    /// destination (the local interface's, or a cached path MTU); nothing
    /// was sent.
    MessageTooBig {
        /// That MTU.
        mtu: u32,
    },
}

/// Which rule of the host's policy refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyRule {
    /// The destination is outside the allowed ranges or inside a denied one.
    Destination,
    /// Multicast destinations are not allowed.
    Multicast,
    /// Broadcast is not allowed.
    Broadcast,
    /// The run's budget of requests is spent.
    PacketBudget,
    /// The payload is larger than allowed.
    PayloadSize,
    /// Too many sockets are open.
    Sockets,
    /// Raw (privileged) sockets are not allowed.
    Privileged,
    /// Name lookups are not allowed.
    Names,
}

impl PolicyRule {
    /// The rule's name, as the WIT spells it (`destination`, `packet-budget`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PolicyRule::Destination => "destination",
            PolicyRule::Multicast => "multicast",
            PolicyRule::Broadcast => "broadcast",
            PolicyRule::PacketBudget => "packet-budget",
            PolicyRule::PayloadSize => "payload-size",
            PolicyRule::Sockets => "sockets",
            PolicyRule::Privileged => "privileged",
            PolicyRule::Names => "names",
        }
    }
}

impl Error {
    /// The policy rule that refused this call, if it was a refusal.
    ///
    /// ```
    /// use icmp_host_sdk::{Error, PolicyRule};
    /// let e = Error::PolicyDenied { rule: PolicyRule::PacketBudget, message: "--max-packets 10".into() };
    /// assert_eq!(e.denied_by(), Some(PolicyRule::PacketBudget));
    /// assert_eq!(Error::Interrupted.denied_by(), None);
    /// ```
    pub fn denied_by(&self) -> Option<PolicyRule> {
        match self {
            Error::PolicyDenied { rule, .. } => Some(*rule),
            _ => None,
        }
    }

    /// Whether this error concerns one request only, so a probe reports it
    /// for that request and carries on, as iputils does: a Don't-Fragment
    /// request too big for the path, or the kernel refusing one packet.
    /// Anything else (a refused destination, the budget spent, the run
    /// interrupted, the socket gone) concerns the run.
    ///
    /// ```
    /// use icmp_host_sdk::Error;
    /// assert!(Error::MessageTooBig { mtu: 1280 }.is_per_request());
    /// assert!(!Error::Interrupted.is_per_request());
    /// ```
    pub fn is_per_request(&self) -> bool {
        matches!(self, Error::MessageTooBig { .. } | Error::IcmpSocket(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NameLookup(m) => write!(f, "cannot resolve name: {m}"),
            Error::SocketAddress(m) => write!(f, "unusable address: {m}"),
            Error::SocketPermission(m) => write!(f, "permission denied: {m}"),
            Error::SocketUnavailable => f.write_str("the socket is closed"),
            Error::SocketBroadcast => {
                f.write_str("broadcast destination, but broadcast is not enabled on the socket")
            }
            Error::TimeoutExceeded(d) => {
                f.write_str("no reply within ")?;
                f.write_str(&crate::json::decimal(d.as_millis() as i64, 3))?;
                f.write_str(" s")
            }
            Error::IcmpSocket(m) => write!(f, "socket error: {m}"),
            Error::PolicyDenied { rule, message } => {
                write!(f, "denied by policy ({}): {message}", rule.name())
            }
            Error::Interrupted => f.write_str("interrupted"),
            Error::ResourceExhausted(m) => write!(f, "host capacity exhausted: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::MessageTooBig { mtu } => write!(f, "local error: message too long, mtu={mtu}"),
        }
    }
}

impl std::error::Error for Error {}

/// An ICMP error message received in answer to a request (icmplib's
/// `ICMPError` tree). The reply is kept whole.
#[derive(Debug, Clone, PartialEq)]
pub enum IcmpError {
    /// Destination Unreachable (IPv4 type 3, IPv6 type 1).
    DestinationUnreachable(Reply),
    /// Time Exceeded (IPv4 type 11, IPv6 type 3).
    TimeExceeded(Reply),
    /// Too big for a link on the path: IPv6 Packet Too Big or IPv4
    /// Fragmentation Needed (one notion, see [`Kind::PacketTooBig`]).
    /// `reply.mtu` is the next-hop MTU.
    PacketTooBig(Reply),
    /// Any other non-echo message.
    Other(Reply),
}

impl IcmpError {
    /// Classifies a non-echo reply; `None` for an Echo Reply.
    pub fn from_reply(reply: &Reply) -> Option<IcmpError> {
        let reply = reply.clone();
        Some(match reply.kind() {
            Kind::EchoReply => return None,
            Kind::DestinationUnreachable => IcmpError::DestinationUnreachable(reply),
            Kind::TimeExceeded => IcmpError::TimeExceeded(reply),
            Kind::PacketTooBig => IcmpError::PacketTooBig(reply),
            _ => IcmpError::Other(reply),
        })
    }

    /// The message that caused the error.
    pub fn reply(&self) -> &Reply {
        match self {
            IcmpError::DestinationUnreachable(r)
            | IcmpError::TimeExceeded(r)
            | IcmpError::PacketTooBig(r)
            | IcmpError::Other(r) => r,
        }
    }

    /// The words for this type and code, e.g. "Destination Host Unreachable".
    pub fn message(&self) -> String {
        let r = self.reply();
        codes::describe(r.family, r.icmp_type, r.code).unwrap_or_default()
    }
}

impl fmt::Display for IcmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.reply();
        write!(f, "{} (from {}", self.message(), r.source)?;
        if let Some(mtu) = r.mtu {
            write!(f, ", mtu {mtu}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for IcmpError {}
