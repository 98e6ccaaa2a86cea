//! The policy and limits a plugin runs under, readable so a probe can plan
//! — pace itself, size its batches, skip what would be refused — instead
//! of learning each rule from an [`Error::PolicyDenied`](crate::Error).

use std::time::Duration;

use crate::range::Cidr;

/// The rules of this run ([`crate::limits()`], or [`crate::Network::limits`]).
///
/// ```no_run
/// let rules = icmp_host_sdk::limits();
/// if let Some(pps) = rules.max_pps {
///     icmp_host_sdk::note(format!("the host allows {pps} requests per second"));
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// When non-empty, only these destinations may be probed.
    pub allow: Vec<Cidr>,
    /// These destinations never may (wins over `allow`).
    pub deny: Vec<Cidr>,
    /// Broadcast may be enabled on sockets.
    pub allow_broadcast: bool,
    /// Multicast destinations may be probed.
    pub allow_multicast: bool,
    /// Raw (privileged) sockets may be used.
    pub allow_privileged: bool,
    /// Names may be resolved (address literals always may).
    pub allow_names: bool,
    /// Largest payload of a request, bytes.
    pub max_payload: u32,
    /// Sockets open at once.
    pub max_sockets: u32,
    /// Requests per second; a send waits for its turn inside the host.
    pub max_pps: Option<f64>,
    /// Requests in all for the run.
    pub max_packets: Option<u64>,
    /// Requests admitted so far.
    pub packets_sent: u64,
    /// Most requests per `send_many` and replies per `receive_many`.
    pub max_batch: u32,
    /// Most payload bytes per `send_many`.
    pub max_batch_bytes: u32,
    /// Longest useful receive timeout (requests are forgotten after it).
    pub max_timeout: Duration,
    /// Memory the plugin may use in all, bytes.
    pub memory: u64,
    /// CPU time the plugin may use.
    pub cpu: Duration,
    /// Wall-clock time of the run, if limited.
    pub wall: Option<Duration>,
}

/// A permissive host's rules (what [`crate::sim::SimNetwork`] starts with).
impl Default for Limits {
    fn default() -> Self {
        Limits {
            allow: Vec::new(),
            deny: Vec::new(),
            allow_broadcast: true,
            allow_multicast: true,
            allow_privileged: true,
            allow_names: true,
            max_payload: 65_507,
            max_sockets: 64,
            max_pps: None,
            max_packets: None,
            packets_sent: 0,
            max_batch: 1024,
            max_batch_bytes: 4 << 20,
            max_timeout: Duration::from_secs(60),
            memory: 256 << 20,
            cpu: Duration::from_secs(60),
            wall: None,
        }
    }
}

impl Limits {
    /// Requests left in the run's budget, if it has one.
    pub fn packets_left(&self) -> Option<u64> {
        self.max_packets
            .map(|max| max.saturating_sub(self.packets_sent))
    }

    /// The least time between two sends the host allows (`1 / max_pps`).
    pub fn min_spacing(&self) -> Duration {
        match self.max_pps {
            Some(pps) if pps > 0.0 && pps.is_finite() => {
                Duration::from_nanos((1e9 / pps).ceil() as u64)
            }
            _ => Duration::ZERO,
        }
    }
}
