//! The seam between probe algorithms and the world: [`Network`] and
//! [`Socket`]. Plugins use [`HostNetwork`], backed by the icmp-host
//! imports; tests use [`crate::sim::SimNetwork`], a scripted network with a
//! virtual clock.
//!
//! Two clocks: [`Network::now`] is monotonic (for scheduling), while the
//! host's timestamps — the send time [`Socket::send`] returns and
//! [`Reply::received_at`] — are nanoseconds since the Unix epoch on the
//! host's realtime clock. [`Network::local_time`] relates the two.

use std::time::Duration;

use crate::error::Error;
use crate::icmp::{EchoRequest, OpenOptions, Reply};
use crate::limits::Limits;
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
    /// Sends one request; returns the time it was handed to the kernel (ns
    /// since the Unix epoch, host realtime clock). Under a rate limit the
    /// host first waits for the request's turn, so this may block; the
    /// time returned is the real send time.
    fn send(&mut self, request: &EchoRequest) -> Result<u64, Error>;

    /// Sends several requests in order (at most [`Limits::max_batch`]
    /// requests and [`Limits::max_batch_bytes`] payload bytes); one result
    /// per request, each as [`Socket::send`] returns it. `Err` when the
    /// call as a whole was refused and nothing was sent.
    fn send_many(&mut self, requests: &[EchoRequest]) -> Result<Vec<Result<u64, Error>>, Error> {
        Ok(requests.iter().map(|r| self.send(r)).collect())
    }

    /// Begins sending `requests` as [`Socket::send_many`] would, and
    /// returns once the host has taken them: it sends them while the probe
    /// gets on with the next batch, and [`Socket::finish_sending`] gives the
    /// results (replies may come before). `Some(results)` when they were
    /// sent at once (the default, for a network that cannot overlap). At
    /// most two batches begun and not finished.
    fn start_sending(
        &mut self,
        requests: &[EchoRequest],
    ) -> Result<Option<Vec<Result<u64, Error>>>, Error> {
        self.send_many(requests).map(Some)
    }

    /// The results of the earliest batch [`Socket::start_sending`] began
    /// and not finished, one per request, in order; empty when none is.
    fn finish_sending(&mut self) -> Result<Vec<Result<u64, Error>>, Error> {
        Ok(Vec::new())
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

/// Everything a probe needs from outside: sockets, names, time, progress,
/// and the rules it runs under.
pub trait Network {
    /// The socket type this network opens.
    type Socket: Socket;

    /// Opens a socket.
    fn open(&mut self, options: &OpenOptions) -> Result<Self::Socket, Error>;

    /// Resolves a name or literal to all its addresses, IPv4 first.
    fn resolve(&mut self, name: &str, family: Option<Family>) -> Result<Vec<Address>, Error>;

    /// Reports progress.
    fn emit(&mut self, event: Event);

    /// Monotonic time since an arbitrary origin (the plugin's start).
    fn now(&mut self) -> Duration;

    /// The host's realtime clock: nanoseconds since the Unix epoch, the
    /// clock of send times and [`Reply::received_at`].
    fn wall_clock(&mut self) -> u64;

    /// Where a host timestamp (a send time, [`Reply::received_at`]) falls
    /// on the [`Network::now`] timeline: both clocks are read at once and
    /// the timestamp's age is taken back from `now`.
    fn local_time(&mut self, timestamp: u64) -> Duration {
        let now = self.now();
        let age = self.wall_clock().saturating_sub(timestamp);
        now.saturating_sub(Duration::from_nanos(age))
    }

    /// Sleeps; returns [`Error::Interrupted`] early when the run is ending.
    fn sleep(&mut self, duration: Duration) -> Result<(), Error>;

    /// The policy and limits of this run.
    fn limits(&mut self) -> Limits;

    /// Whether a request to `destination` would pass the host's destination
    /// rules (ranges, multicast, broadcast), without sending anything; the
    /// refusal is an [`Error::PolicyDenied`] naming its rule.
    fn check_destination(&mut self, destination: Address) -> Result<(), Error>;
}

/// The network of a plugin running inside icmp-host: every method calls
/// the host (the free functions [`crate::now`], [`crate::emit`], ... do
/// the same).
#[derive(Debug, Default, Clone, Copy)]
pub struct HostNetwork;

impl HostNetwork {
    /// The network of the running plugin.
    pub fn new() -> HostNetwork {
        HostNetwork
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
        crate::emit(event)
    }

    fn now(&mut self) -> Duration {
        crate::now()
    }

    fn wall_clock(&mut self) -> u64 {
        crate::wall_clock()
    }

    fn sleep(&mut self, duration: Duration) -> Result<(), Error> {
        crate::sleep(duration)
    }

    fn limits(&mut self) -> Limits {
        crate::limits()
    }

    fn check_destination(&mut self, destination: Address) -> Result<(), Error> {
        crate::check_destination(destination)
    }
}
