//! The seam between probe algorithms and the world: [`Network`] and
//! [`Socket`]. Plugins use [`HostNetwork`], backed by the icmp-host
//! imports; tests use [`crate::sim::SimNetwork`], a scripted network with a
//! virtual clock.

use std::time::Duration;

use crate::error::Error;
use crate::icmp::{EchoRequest, OpenOptions, Reply};
use crate::progress::Event;
use crate::{Address, Family};

/// Identifier and sequence number of a request, to match its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Match {
    /// The request's identifier.
    pub id: u16,
    /// The request's sequence number.
    pub sequence: u16,
}

/// An ICMP socket (icmplib's `ICMPv4Socket` / `ICMPv6Socket`).
pub trait Socket {
    /// Sends one request; returns the send time (ns since the Unix epoch).
    fn send(&mut self, request: &EchoRequest) -> Result<u64, Error>;

    /// Sends several requests; one result per request, in order.
    fn send_many(&mut self, requests: &[EchoRequest]) -> Vec<Result<u64, Error>> {
        requests.iter().map(|r| self.send(r)).collect()
    }

    /// Waits up to `timeout` for the reply to `matching`, or for any message
    /// for this socket when `None`.
    fn receive(&mut self, matching: Option<Match>, timeout: Duration) -> Result<Reply, Error>;

    /// Waits up to `timeout` for at least one message, then returns all
    /// queued ones, at most `max`. An empty list means the timeout passed.
    fn receive_many(&mut self, max: u32, timeout: Duration) -> Result<Vec<Reply>, Error>;

    /// Whether the host uses a raw socket for this one.
    fn is_privileged(&self) -> bool;

    /// Allows broadcast destinations, if the host's policy grants it.
    fn set_broadcast(&mut self, enabled: bool) -> Result<(), Error>;
}

/// Everything a probe needs from outside: sockets, names, time, progress.
pub trait Network {
    /// The socket type this network opens.
    type Socket: Socket;

    /// Opens a socket.
    fn open(&mut self, options: &OpenOptions) -> Result<Self::Socket, Error>;

    /// Resolves a name or literal to all its addresses, IPv4 first.
    fn resolve(&mut self, name: &str, family: Option<Family>) -> Result<Vec<Address>, Error>;

    /// Reports progress.
    fn emit(&mut self, event: Event);

    /// Monotonic time since an arbitrary origin.
    fn now(&mut self) -> Duration;

    /// Sleeps; returns [`Error::Interrupted`] early when the run is ending.
    fn sleep(&mut self, duration: Duration) -> Result<(), Error>;
}

/// The network of a plugin running inside icmp-host.
#[derive(Debug)]
pub struct HostNetwork {
    origin: std::time::Instant,
}

impl Default for HostNetwork {
    fn default() -> Self {
        HostNetwork {
            origin: std::time::Instant::now(),
        }
    }
}

impl HostNetwork {
    /// The network of the running plugin.
    pub fn new() -> HostNetwork {
        HostNetwork::default()
    }
}

impl Network for HostNetwork {
    type Socket = crate::IcmpSocket;

    fn open(&mut self, options: &OpenOptions) -> Result<Self::Socket, Error> {
        crate::IcmpSocket::open(options)
    }

    fn resolve(&mut self, name: &str, family: Option<Family>) -> Result<Vec<Address>, Error> {
        crate::resolve(name, family)
    }

    fn emit(&mut self, event: Event) {
        crate::host::emit(event)
    }

    fn now(&mut self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&mut self, duration: Duration) -> Result<(), Error> {
        crate::host::sleep(duration)
    }
}
