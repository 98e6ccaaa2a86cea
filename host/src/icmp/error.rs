//! Engine errors. The runtime maps each to the guest-visible WIT error.

use std::io;
use std::time::Duration;

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket was closed.
    #[error("the socket is closed")]
    Closed,
    /// A broadcast destination on a socket without broadcast enabled.
    #[error("{0} is a broadcast address and broadcast is not enabled")]
    Broadcast(std::net::IpAddr),
    /// The process lacks the privilege for the requested mode.
    #[error("{0}")]
    Permission(String),
    /// An address cannot be used.
    #[error("{0}")]
    Address(String),
    /// A capacity (ids, queue, sockets) is used up.
    #[error("{0}")]
    Exhausted(String),
    /// An argument is out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// Not possible here.
    #[error("{0}")]
    Unsupported(String),
    /// A Don't-Fragment request larger than the MTU towards its
    /// destination (interface or cached path MTU); nothing was sent.
    #[error("message too long for the path MTU of {0}")]
    MessageTooBig(u32),
    /// No reply in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps an IO error with the operation that failed.
    pub fn io(op: &'static str, source: io::Error) -> Error {
        Error::Io { op, source }
    }
}
