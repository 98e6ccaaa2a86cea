//! A scripted network with a virtual clock, for testing probe logic
//! natively and deterministically: no sockets, no sleeping, no wasm.
//!
//! A responder closure decides, for each request sent, what comes back and
//! when. Receives advance the virtual clock to the next arrival or to the
//! timeout; sleeps advance it at once. Like the host, a send waits for its
//! turn under [`Limits::max_pps`] and returns the real send time.
//!
//! ```
//! use std::time::Duration;
//! use icmp_host_sdk::sim::{Response, SimNetwork};
//! use icmp_host_sdk::{ping, PingOptions};
//!
//! let mut net = SimNetwork::new(|_req| vec![Response::echo(Duration::from_millis(5))]);
//! let host = ping(&mut net, "192.0.2.1", &PingOptions::default()).unwrap();
//! assert_eq!(host.packets_received(), 4);
//! assert_eq!(host.avg_rtt(), 5.0);
//! ```

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use crate::codes;
use crate::error::{Error, PolicyRule};
use crate::icmp::{EchoRequest, OpenOptions, Reply, TimestampSource};
use crate::limits::Limits;
use crate::network::{Match, Network, Socket};
use crate::progress::Event;
use crate::{Address, Family};

/// What the simulated network does with one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Delay after the send.
    pub after: Duration,
    /// Who answers; `None` means the destination itself.
    pub from: Option<Address>,
    /// ICMP type; `None` means the family's Echo Reply.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub code: u8,
    /// MTU reported by a Packet Too Big.
    pub mtu: Option<u32>,
    /// TTL of the arriving packet.
    pub ttl: u8,
}

impl Response {
    /// An Echo Reply from the destination after `after`.
    pub fn echo(after: Duration) -> Response {
        Response {
            after,
            from: None,
            icmp_type: None,
            code: 0,
            mtu: None,
            ttl: 64,
        }
    }

    /// An ICMP error of `icmp_type`/`code` from `from` after `after`.
    pub fn error(after: Duration, from: Address, icmp_type: u8, code: u8) -> Response {
        Response {
            after,
            from: Some(from),
            icmp_type: Some(icmp_type),
            code,
            mtu: None,
            ttl: 64,
        }
    }

    /// A Packet Too Big (IPv6) / Fragmentation Needed (IPv4) from `from`,
    /// reporting `mtu`, for a request of `family`.
    pub fn too_big(after: Duration, from: Address, family: Family, mtu: u32) -> Response {
        let (icmp_type, code) = match family {
            Family::V4 => (codes::v4::DEST_UNREACHABLE, codes::v4::CODE_FRAG_NEEDED),
            Family::V6 => (codes::v6::PACKET_TOO_BIG, 0),
        };
        Response {
            mtu: Some(mtu),
            ..Response::error(after, from, icmp_type, code)
        }
    }

    /// The same response with another arrival TTL.
    pub fn with_ttl(mut self, ttl: u8) -> Response {
        self.ttl = ttl;
        self
    }
}

type Responder = Box<dyn FnMut(&EchoRequest) -> Vec<Response>>;
type SendCheck = Box<dyn FnMut(&EchoRequest) -> Option<Error>>;

/// A reply waiting to arrive on a socket.
struct Pending {
    socket: usize,
    arrival: Duration,
    reply: Reply,
}

struct State {
    clock: Duration,
    responder: Responder,
    names: HashMap<String, Vec<Address>>,
    pending: Vec<Pending>,
    answered: HashSet<(usize, u16, u16, Address)>,
    sent: Vec<(Duration, EchoRequest)>,
    events: Vec<Event>,
    interrupt_at: Option<Duration>,
    next_socket: usize,
    privileged: bool,
    limits: Limits,
    /// Virtual time each send takes (a slow or rate-limited host).
    send_cost: Duration,
    /// When the rate limit lets the next send go.
    next_token: Duration,
    send_check: Option<SendCheck>,
}

impl State {
    fn check_destination(&self, destination: Address) -> Result<(), Error> {
        let l = &self.limits;
        let denied = l.deny.iter().any(|c| c.contains(destination.ip))
            || !l.allow.is_empty() && !l.allow.iter().any(|c| c.contains(destination.ip));
        if denied {
            return Err(Error::PolicyDenied {
                rule: PolicyRule::Destination,
                message: format!("{destination} is outside the allowed destinations"),
            });
        }
        Ok(())
    }

    fn interrupted(&self) -> bool {
        self.interrupt_at.is_some_and(|t| self.clock >= t)
    }

    /// Moves the clock forward to `to`, stopping at the interrupt time.
    fn advance(&mut self, to: Duration) -> Result<(), Error> {
        if let Some(t) = self.interrupt_at
            && to >= t
        {
            self.clock = self.clock.max(t);
            return Err(Error::Interrupted);
        }
        self.clock = self.clock.max(to);
        Ok(())
    }
}

/// A scripted network. Clone it to keep a handle for inspection.
#[derive(Clone)]
pub struct SimNetwork {
    state: Rc<RefCell<State>>,
}

/// Time origin of simulated timestamps: 2026-01-01T00:00:00Z.
const EPOCH_NS: u64 = 1_767_225_600_000_000_000;

impl SimNetwork {
    /// A network where `responder` scripts every request's fate.
    pub fn new(responder: impl FnMut(&EchoRequest) -> Vec<Response> + 'static) -> SimNetwork {
        SimNetwork {
            state: Rc::new(RefCell::new(State {
                clock: Duration::ZERO,
                responder: Box::new(responder),
                names: HashMap::new(),
                pending: Vec::new(),
                answered: HashSet::new(),
                sent: Vec::new(),
                events: Vec::new(),
                interrupt_at: None,
                next_socket: 0,
                privileged: true,
                limits: Limits::default(),
                send_cost: Duration::ZERO,
                next_token: Duration::ZERO,
                send_check: None,
            })),
        }
    }

    /// Runs under `limits`: `max_pps` makes sends wait for their turn,
    /// `deny` / `allow` refuse destinations, `max_packets` is a budget.
    pub fn with_limits(self, limits: Limits) -> SimNetwork {
        self.state.borrow_mut().limits = limits;
        self
    }

    /// Makes every send take `cost` of virtual time, unannounced (as a
    /// host busy or rate-limited by others would).
    pub fn with_send_cost(self, cost: Duration) -> SimNetwork {
        self.state.borrow_mut().send_cost = cost;
        self
    }

    /// Fails the sends for which `check` returns an error (nothing is sent),
    /// e.g. [`Error::MessageTooBig`] for Don't-Fragment requests over an MTU.
    pub fn failing_sends(
        self,
        check: impl FnMut(&EchoRequest) -> Option<Error> + 'static,
    ) -> SimNetwork {
        self.state.borrow_mut().send_check = Some(Box::new(check));
        self
    }

    /// Makes `name` resolve to `addresses`.
    pub fn with_name(self, name: &str, addresses: &[Address]) -> SimNetwork {
        self.state
            .borrow_mut()
            .names
            .insert(name.to_owned(), addresses.to_vec());
        self
    }

    /// Makes every call from virtual time `at` on return `Interrupted`, as
    /// Ctrl-C does.
    pub fn interrupt_at(self, at: Duration) -> SimNetwork {
        self.state.borrow_mut().interrupt_at = Some(at);
        self
    }

    /// Requests sent so far, with their virtual send times.
    pub fn sent(&self) -> Vec<(Duration, EchoRequest)> {
        self.state.borrow().sent.clone()
    }

    /// Events emitted so far.
    pub fn events(&self) -> Vec<Event> {
        self.state.borrow().events.clone()
    }

    /// The virtual clock.
    pub fn clock(&self) -> Duration {
        self.state.borrow().clock
    }
}

/// A socket of a [`SimNetwork`].
pub struct SimSocket {
    id: usize,
    family: Family,
    state: Rc<RefCell<State>>,
    /// Batches begun with `start_sending`, earliest first.
    started: std::collections::VecDeque<Started>,
}

/// A batch begun: the results of its first half, sent at once (as the
/// host's lane would have by then), and its second half, sent when it is
/// finished.
type Started = (Vec<Result<u64, Error>>, Vec<EchoRequest>);

impl Network for SimNetwork {
    type Socket = SimSocket;

    fn open(&mut self, options: &OpenOptions) -> Result<SimSocket, Error> {
        let mut st = self.state.borrow_mut();
        st.next_socket += 1;
        Ok(SimSocket {
            id: st.next_socket,
            family: options.family,
            state: Rc::clone(&self.state),
            started: Default::default(),
        })
    }

    fn resolve(&mut self, name: &str, family: Option<Family>) -> Result<Vec<Address>, Error> {
        let st = self.state.borrow();
        let found: Vec<Address> = match name.parse::<Address>() {
            Ok(a) => vec![a],
            Err(_) => st.names.get(name).cloned().unwrap_or_default(),
        };
        let mut found: Vec<Address> = found
            .into_iter()
            .filter(|a| family.is_none_or(|f| a.family() == f))
            .collect();
        found.sort_by_key(|a| a.family() == Family::V6);
        if found.is_empty() {
            return Err(Error::NameLookup(format!("{name}: name not known")));
        }
        Ok(found)
    }

    fn emit(&mut self, event: Event) {
        self.state.borrow_mut().events.push(event);
    }

    fn now(&mut self) -> Duration {
        self.state.borrow().clock
    }

    fn wall_clock(&mut self) -> u64 {
        EPOCH_NS + self.state.borrow().clock.as_nanos() as u64
    }

    fn limits(&mut self) -> Limits {
        self.state.borrow().limits.clone()
    }

    fn check_destination(&mut self, destination: Address) -> Result<(), Error> {
        self.state.borrow().check_destination(destination)
    }

    fn sleep(&mut self, duration: Duration) -> Result<(), Error> {
        let mut st = self.state.borrow_mut();
        let to = st.clock + duration;
        st.advance(to)
    }
}

impl Socket for SimSocket {
    fn start_sending(
        &mut self,
        requests: &[EchoRequest],
    ) -> Result<Option<Vec<Result<u64, Error>>>, Error> {
        if self.started.len() >= 2 {
            return Err(Error::InvalidArgument(
                "2 batches begun by start-sending are not finished".into(),
            ));
        }
        let (now, later) = requests.split_at(requests.len() / 2);
        let results = self.send_many(now)?;
        self.started.push_back((results, later.to_vec()));
        Ok(None)
    }

    fn finish_sending(&mut self) -> Result<Vec<Result<u64, Error>>, Error> {
        let Some((mut results, later)) = self.started.pop_front() else {
            return Ok(Vec::new());
        };
        results.extend(self.send_many(&later)?);
        Ok(results)
    }

    fn send(&mut self, request: &EchoRequest) -> Result<u64, Error> {
        let mut guard = self.state.borrow_mut();
        let st = &mut *guard;
        if st.interrupted() {
            return Err(Error::Interrupted);
        }
        if request.destination.family() != self.family {
            return Err(Error::SocketAddress(format!(
                "{} is not an {} address",
                request.destination, self.family
            )));
        }
        st.check_destination(request.destination)?;
        if let Some(left) = st.limits.packets_left()
            && left == 0
        {
            return Err(Error::PolicyDenied {
                rule: PolicyRule::PacketBudget,
                message: "the run's packet budget is spent".into(),
            });
        }
        if let Some(e) = st.send_check.as_mut().and_then(|check| check(request)) {
            return Err(e);
        }
        // Like the host: wait for this send's turn under the rate limit.
        let spacing = st.limits.min_spacing();
        let turn = st.next_token.max(st.clock);
        st.advance(turn + st.send_cost)?;
        st.next_token = st.clock + spacing;
        st.limits.packets_sent += 1;
        let now = st.clock;
        st.sent.push((now, request.clone()));
        let responses = (st.responder)(request);
        for r in responses {
            let family = self.family;
            let echo = match family {
                Family::V4 => codes::v4::ECHO_REPLY,
                Family::V6 => codes::v6::ECHO_REPLY,
            };
            let icmp_type = r.icmp_type.unwrap_or(echo);
            let is_echo = icmp_type == echo;
            let arrival = now + r.after;
            st.pending.push(Pending {
                socket: self.id,
                arrival,
                reply: Reply {
                    source: r.from.unwrap_or(request.destination),
                    family,
                    id: request.id,
                    sequence: request.sequence,
                    icmp_type,
                    code: r.code,
                    bytes_received: 8 + request.payload_len() as u32,
                    received_at: EPOCH_NS + arrival.as_nanos() as u64,
                    timestamp_source: TimestampSource::Kernel,
                    rtt: r.after,
                    ttl: Some(r.ttl),
                    original_destination: (!is_echo).then_some(request.destination),
                    mtu: r.mtu,
                    duplicate: false,
                },
            });
        }
        Ok(EPOCH_NS + now.as_nanos() as u64)
    }

    fn receive(&mut self, matching: Option<Match>, timeout: Duration) -> Result<Reply, Error> {
        let mut st = self.state.borrow_mut();
        if st.interrupted() {
            return Err(Error::Interrupted);
        }
        let deadline = st.clock + timeout;
        let next = st
            .pending
            .iter()
            .enumerate()
            .filter(|(_, p)| p.socket == self.id && p.arrival <= deadline)
            .filter(|(_, p)| {
                matching.is_none_or(|m| p.reply.id == m.id && p.reply.sequence == m.sequence)
            })
            .min_by_key(|(_, p)| p.arrival)
            .map(|(i, _)| i);
        match next {
            Some(i) => {
                let arrival = st.pending[i].arrival;
                st.advance(arrival)?;
                let mut p = st.pending.remove(i);
                let key = (self.id, p.reply.id, p.reply.sequence, p.reply.source);
                p.reply.duplicate = !st.answered.insert(key);
                Ok(p.reply)
            }
            None => {
                st.advance(deadline)?;
                Err(Error::TimeoutExceeded(timeout))
            }
        }
    }

    fn receive_many(&mut self, max: u32, timeout: Duration) -> Result<Vec<Reply>, Error> {
        let mut out = Vec::new();
        let first = match self.receive(None, timeout) {
            Ok(r) => r,
            Err(Error::TimeoutExceeded(_)) => return Ok(out),
            Err(e) => return Err(e),
        };
        out.push(first);
        while out.len() < max as usize {
            match self.receive(None, Duration::ZERO) {
                Ok(r) => out.push(r),
                Err(Error::TimeoutExceeded(_)) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn is_privileged(&self) -> bool {
        self.state.borrow().privileged
    }

    fn set_broadcast(&mut self, _enabled: bool) -> Result<(), Error> {
        Ok(())
    }
}
