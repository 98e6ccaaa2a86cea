//! The WIT host traits, implemented on [`ProbeCtx`]. Each method looks up
//! its socket, asks [`crate::policy`], calls [`crate::icmp`], and converts
//! the result ([`super::convert`]). No protocol logic lives here.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{TrappableError, WasiCtx, WasiCtxView, WasiView};

use super::ProgressSink;
use super::bindings::icmp_host::probe::{control, dns, limits, progress, sockets, types};
use super::interrupt::Interrupt;
use crate::icmp::{self, Engine, VirtualSocket};
use crate::policy::Policy;

/// A guest-visible error, or a trap (host bug or misused handle).
pub type HostError = TrappableError<types::Error>;

/// The host side of an `icmp-socket` resource.
pub struct SocketHandle {
    socket: VirtualSocket,
    /// Batches begun by `start-sending`, earliest first, until
    /// `finish-sending` (or close).
    sending: std::collections::VecDeque<Sending>,
}

/// Batches a run may have begun and not finished, over all its sockets:
/// one with the lane, the next waiting for it. (Each holds up to a
/// `send-many`'s requests and payload in the host.)
const MAX_STARTED: usize = 2;

/// A batch begun by `start-sending`.
enum Sending {
    /// Sent at once (no lane to hand it to): its results.
    Sent(Vec<Result<types::Timestamp, types::Error>>),
    /// Handed to the socket's lane: each request's refusal by policy
    /// (`None`: admitted, its result comes from the burst), and the burst.
    Started {
        refused: Vec<Option<HostError>>,
        burst: icmp::Started,
    },
}

/// Per-run state of one plugin instance (the `Store` data).
pub struct ProbeCtx {
    pub(super) table: ResourceTable,
    pub(super) wasi: WasiCtx,
    pub(super) limiter: super::limiter::RunLimiter,
    /// Whose quotas and CPU the run's sockets are charged to.
    pub(super) account: icmp::Account,
    /// The run's CPU budget, checked inside host calls that loop.
    pub(super) meter: Arc<super::cpu::CpuMeter>,
    pub(super) engine: Engine,
    pub(super) policy: Arc<Policy>,
    pub(super) sink: Arc<dyn ProgressSink>,
    /// Caps and checks what reaches `sink`.
    pub(super) events: Arc<super::events::OutputGate>,
    pub(super) interrupt: Interrupt,
    pub(super) open_sockets: usize,
    /// Batches begun by `start-sending` and not finished, over all sockets.
    pub(super) started_batches: usize,
    /// The run's limits, as `limits.current` reports them.
    pub(super) run_limits: super::Limits,
    /// The report's parts so far.
    pub(super) document: super::document::Document,
}

/// Handles a run may hold at once (sockets, and WASI streams and
/// pollables): a guest cannot grow host memory by opening without dropping.
pub const MAX_HANDLES: usize = 16_384;

/// Most requests per `send-many` and replies per `receive-many`.
pub const MAX_BATCH: usize = 1024;

/// Most payload bytes per `send-many`.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Requests a `send-many` sends one by one between two yields to the
/// executor and two looks at the CPU budget.
const SEND_MANY_SLICE: usize = 32;

/// Requests per burst of a `send-many` (the burst itself yields and looks
/// at the budget every few dozen sends).
const BURST: usize = 256;

/// Report bytes handed over and not yet written out, at most, before
/// `write-report` waits.
pub const MAX_REPORT_BACKLOG: usize = 1 << 20;

impl WasiView for ProbeCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for ProbeCtx {
    fn convert_error(&mut self, err: HostError) -> wasmtime::Result<types::Error> {
        err.downcast()
    }
}

impl ProbeCtx {
    fn socket_mut(
        &mut self,
        handle: &Resource<SocketHandle>,
    ) -> Result<&mut VirtualSocket, HostError> {
        Ok(&mut self.handle_mut(handle)?.socket)
    }

    fn handle_mut(
        &mut self,
        handle: &Resource<SocketHandle>,
    ) -> Result<&mut SocketHandle, HostError> {
        self.table.get_mut(handle).map_err(HostError::trap)
    }

    /// Policy, then the engine, for one request.
    async fn send_one(
        &mut self,
        handle: &Resource<SocketHandle>,
        request: types::EchoRequest,
    ) -> Result<u64, HostError> {
        let request = self.admit(request)?;
        if let Some(rate) = &self.policy.send_rate {
            let wait = rate.reserve();
            if !wait.is_zero() && self.interrupt.sleep(wait).await.is_err() {
                return Err(types::Error::Interrupted.into());
            }
        }
        let socket = self.socket_mut(handle)?;
        Ok(socket.send(&request).await?)
    }
}

impl ProbeCtx {
    /// Sends admitted requests in order, one result each. Stops within a
    /// few sends when the run's CPU budget is spent (a trap) or it is
    /// interrupted (each later send returns `interrupted`). On a socket that
    /// sends in bursts, without a send rate to keep, requests go out in
    /// bursts of [`BURST`] (see [`VirtualSocket::send_burst`]); otherwise
    /// one by one, as any rate allows, in slices of [`SEND_MANY_SLICE`].
    /// Either way the executor gets a turn every few dozen sends.
    pub(super) async fn send_batch(
        &mut self,
        handle: &Resource<SocketHandle>,
        requests: Vec<types::EchoRequest>,
    ) -> Result<Vec<Result<types::Timestamp, types::Error>>, HostError> {
        let mut results = Vec::with_capacity(requests.len());
        let bursts = !requests.is_empty() && self.sends_in_bursts(handle)?;
        let slice = if bursts { BURST } else { SEND_MANY_SLICE };
        let mut requests = requests.into_iter();
        loop {
            let chunk: Vec<_> = requests.by_ref().take(slice).collect();
            if chunk.is_empty() {
                break;
            }
            if !results.is_empty() {
                // Let the other tasks of this worker run (readers, other
                // tenants).
                tokio::task::yield_now().await;
            }
            // The CPU clock is a system call: read it once per slice.
            if self.meter.exceeded_now() {
                return Err(cpu_spent_sending());
            }
            if bursts && chunk.len() > 1 {
                // Boxed: its state would otherwise enlarge every call's
                // future, on the plugin's fiber stack.
                Box::pin(self.send_burst(handle, chunk, &mut results)).await?;
            } else {
                for request in chunk {
                    results.push(guest_result(self.send_one(handle, request).await)?);
                }
            }
        }
        Ok(results)
    }

    /// Admits each request by policy, then sends those admitted together;
    /// appends one result per request, in order. Stops as `send_batch`
    /// does: what was not sent when the run was interrupted fails with
    /// `interrupted`; a spent CPU budget traps.
    async fn send_burst(
        &mut self,
        handle: &Resource<SocketHandle>,
        requests: Vec<types::EchoRequest>,
        results: &mut Vec<Result<types::Timestamp, types::Error>>,
    ) -> Result<(), HostError> {
        let (ready, refused) = self.admit_all(requests);
        let mut stop = self.stop();
        let sent = self.socket_mut(handle)?.send_burst(&ready, &mut stop).await;
        self.merge(refused, sent, results)
    }

    /// Whether `handle`'s requests go out in bursts shared with its lane:
    /// without a send rate to keep, on a socket that has one.
    fn sends_in_bursts(&mut self, handle: &Resource<SocketHandle>) -> Result<bool, HostError> {
        Ok(self.policy.send_rate.is_none() && self.socket_mut(handle)?.sends_in_bursts())
    }

    /// Admits each request by policy: those admitted, and per request its
    /// refusal (`None`: admitted, its result comes from the send).
    fn admit_all(
        &self,
        requests: Vec<types::EchoRequest>,
    ) -> (Vec<icmp::EchoRequest>, Vec<Option<HostError>>) {
        let mut ready = Vec::with_capacity(requests.len());
        let refused = requests
            .into_iter()
            .map(|r| self.admit(r).map(|r| ready.push(r)).err())
            .collect();
        (ready, refused)
    }

    /// Whether a burst is to stop: the run interrupted or its CPU spent.
    fn stop(&self) -> impl FnMut() -> bool + Send + use<> {
        let (interrupt, meter) = (self.interrupt.clone(), Arc::clone(&self.meter));
        move || interrupt.is_set() || meter.exceeded_now()
    }

    /// Appends the results of a burst's requests, in order: their refusals
    /// by policy and what the burst did with those admitted (`None`: not
    /// sent, the run being stopped). A spent CPU budget traps.
    fn merge(
        &self,
        refused: Vec<Option<HostError>>,
        sent: Vec<Option<Result<u64, icmp::Error>>>,
        results: &mut Vec<Result<types::Timestamp, types::Error>>,
    ) -> Result<(), HostError> {
        let stopped = sent.iter().any(Option::is_none);
        if stopped && self.meter.exceeded_now() {
            return Err(cpu_spent_sending());
        }
        let mut sent = sent.into_iter();
        for refusal in refused {
            let r = match refusal {
                None => match sent.next().expect("one result per admitted request") {
                    Some(r) => r.map_err(HostError::from),
                    None => Err(types::Error::Interrupted.into()),
                },
                Some(e) => Err(e),
            };
            results.push(guest_result(r)?);
        }
        Ok(())
    }

    /// `start-sending`: admits the requests and hands them to the socket's
    /// lane, which sends them while the plugin runs on; without a lane (or
    /// with a send rate to keep) they are sent at once, as by `send-many`.
    pub(super) async fn start_batch(
        &mut self,
        handle: &Resource<SocketHandle>,
        requests: Vec<types::EchoRequest>,
    ) -> Result<(), HostError> {
        if self.socket_mut(handle)?.is_closed() {
            return Err(icmp::Error::Closed.into());
        }
        if self.started_batches >= MAX_STARTED {
            return Err(types::Error::InvalidArgument(format!(
                "{MAX_STARTED} batches begun by start-sending are not finished: \
                 call finish-sending first"
            ))
            .into());
        }
        let sending = if requests.len() > 1 && self.sends_in_bursts(handle)? {
            if self.meter.exceeded_now() {
                return Err(cpu_spent_sending());
            }
            let (ready, refused) = self.admit_all(requests);
            let interrupt = self.interrupt.clone();
            let halted = Arc::new(move || interrupt.is_set());
            let burst = self.socket_mut(handle)?.start_burst(ready, halted).await;
            Sending::Started { refused, burst }
        } else {
            Sending::Sent(self.send_batch(handle, requests).await?)
        };
        self.handle_mut(handle)?.sending.push_back(sending);
        self.started_batches += 1;
        Ok(())
    }

    /// `finish-sending`: the results of the earliest batch begun, once all
    /// of it is sent (or the run stopped).
    async fn finish_batch(
        &mut self,
        handle: &Resource<SocketHandle>,
    ) -> Result<Vec<Result<types::Timestamp, types::Error>>, HostError> {
        let sending = self.handle_mut(handle)?.sending.pop_front();
        if sending.is_some() {
            self.started_batches -= 1;
        }
        match sending {
            None => Ok(Vec::new()),
            Some(Sending::Sent(results)) => Ok(results),
            Some(Sending::Started { refused, burst }) => {
                let mut stop = self.stop();
                let sent = self
                    .socket_mut(handle)?
                    .finish_burst(burst, &mut stop)
                    .await;
                let mut results = Vec::with_capacity(refused.len());
                self.merge(refused, sent, &mut results)?;
                Ok(results)
            }
        }
    }

    /// Policy for one request, short of a send rate (the caller keeps it).
    fn admit(&self, request: types::EchoRequest) -> Result<icmp::EchoRequest, HostError> {
        if self.interrupt.is_set() {
            return Err(types::Error::Interrupted.into());
        }
        let request = icmp::EchoRequest::try_from(request)?;
        self.policy.admit_destination(request.destination.ip)?;
        let size = request
            .payload
            .as_ref()
            .map_or(request.payload_size as usize, Vec::len);
        self.policy.check_send(size)?;
        Ok(request)
    }
}

/// The trap of a run whose CPU budget ran out inside `send-many` or
/// `finish-sending`.
fn cpu_spent_sending() -> HostError {
    HostError::trap(wasmtime::Error::msg("CPU time limit reached while sending"))
}

/// Batches begun and never finished, their socket going: the lane takes
/// no more of them, and the keys of what was not sent are given back at
/// once (what was sent is counted).
async fn abandon(
    socket: &mut VirtualSocket,
    batches: std::collections::VecDeque<Sending>,
    started: &mut usize,
) {
    for batch in batches {
        *started -= 1;
        if let Sending::Started { burst, .. } = batch {
            socket.finish_burst(burst, &mut || true).await;
        }
    }
}

/// A guest's result from a host result; traps stay traps.
fn guest_result(
    r: Result<u64, HostError>,
) -> Result<Result<types::Timestamp, types::Error>, HostError> {
    match r {
        Ok(t) => Ok(Ok(t)),
        Err(e) => Ok(Err(e.downcast().map_err(HostError::trap)?)),
    }
}

impl sockets::Host for ProbeCtx {}

impl sockets::HostIcmpSocket for ProbeCtx {
    async fn open(
        &mut self,
        options: sockets::OpenOptions,
    ) -> Result<Resource<SocketHandle>, HostError> {
        let options = icmp::OpenOptions::try_from(options)?;
        let privileged = match options.mode {
            icmp::Mode::Privileged => true,
            icmp::Mode::Unprivileged => false,
            icmp::Mode::Auto => self.engine.has_raw(options.family) && self.policy.allow_privileged,
        };
        self.policy.check_open(privileged, self.open_sockets)?;
        let options = icmp::OpenOptions {
            mode: match privileged {
                true => icmp::Mode::Privileged,
                false => icmp::Mode::Unprivileged,
            },
            ..options
        };
        let socket = self.engine.open(&self.account, &options)?;
        let handle = self
            .table
            .push(SocketHandle {
                socket,
                sending: Default::default(),
            })
            .map_err(|e| {
                types::Error::ResourceExhausted(format!(
                    "{e}: at most {MAX_HANDLES} handles (sockets, streams) may be held; drop \
                 closed sockets"
                ))
            })?;
        self.open_sockets += 1;
        Ok(handle)
    }

    async fn send(
        &mut self,
        handle: Resource<SocketHandle>,
        request: types::EchoRequest,
    ) -> Result<types::Timestamp, HostError> {
        self.send_one(&handle, request).await
    }

    /// Not reached at run time: the linker serves `send-many` through
    /// `runtime::send_many`, which lifts the list one request at a time.
    /// Same checks, for a list already lifted.
    async fn send_many(
        &mut self,
        handle: Resource<SocketHandle>,
        requests: Vec<types::EchoRequest>,
    ) -> Result<Vec<Result<types::Timestamp, types::Error>>, HostError> {
        super::send_many::Budget::check(&requests)?;
        self.send_batch(&handle, requests).await
    }

    /// Not reached at run time, as `send_many`.
    async fn start_sending(
        &mut self,
        handle: Resource<SocketHandle>,
        requests: Vec<types::EchoRequest>,
    ) -> Result<(), HostError> {
        super::send_many::Budget::check(&requests)?;
        self.start_batch(&handle, requests).await
    }

    async fn finish_sending(
        &mut self,
        handle: Resource<SocketHandle>,
    ) -> Result<Vec<Result<types::Timestamp, types::Error>>, HostError> {
        self.finish_batch(&handle).await
    }

    async fn receive(
        &mut self,
        handle: Resource<SocketHandle>,
        matching: Option<sockets::ReplyMatch>,
        timeout: types::Duration,
    ) -> Result<types::Reply, HostError> {
        let socket = &self.table.get(&handle).map_err(HostError::trap)?.socket;
        let matching = matching.map(|m| (m.id, m.sequence));
        let wait = socket.receive(matching, Duration::from_nanos(timeout));
        let reply = self
            .interrupt
            .run(wait)
            .await
            .ok_or(types::Error::Interrupted)??;
        Ok(reply.into())
    }

    async fn receive_many(
        &mut self,
        handle: Resource<SocketHandle>,
        max: u32,
        timeout: types::Duration,
    ) -> Result<Vec<types::Reply>, HostError> {
        let socket = &self.table.get(&handle).map_err(HostError::trap)?.socket;
        let max = (max as usize).min(MAX_BATCH);
        let wait = socket.receive_many(max, Duration::from_nanos(timeout));
        let replies = self
            .interrupt
            .run(wait)
            .await
            .ok_or(types::Error::Interrupted)??;
        Ok(replies.into_iter().map(Into::into).collect())
    }

    async fn broadcast(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&handle)?.socket.broadcast())
    }

    async fn set_broadcast(
        &mut self,
        handle: Resource<SocketHandle>,
        enabled: bool,
    ) -> Result<(), HostError> {
        if enabled {
            self.policy.check_broadcast()?;
        }
        Ok(self.socket_mut(&handle)?.set_broadcast(enabled)?)
    }

    async fn address(
        &mut self,
        handle: Resource<SocketHandle>,
    ) -> wasmtime::Result<Option<types::IpAddress>> {
        Ok(self.table.get(&handle)?.socket.source().map(Into::into))
    }

    async fn family(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<types::Family> {
        Ok(self.table.get(&handle)?.socket.family().into())
    }

    async fn is_privileged(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&handle)?.socket.is_privileged())
    }

    async fn is_closed(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&handle)?.socket.is_closed())
    }

    async fn stats(
        &mut self,
        handle: Resource<SocketHandle>,
    ) -> wasmtime::Result<sockets::SocketStats> {
        Ok(self.table.get(&handle)?.socket.stats().into())
    }

    async fn close(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<()> {
        let h = self.table.get_mut(&handle)?;
        let abandoned = std::mem::take(&mut h.sending);
        abandon(&mut h.socket, abandoned, &mut self.started_batches).await;
        let socket = &mut self.table.get_mut(&handle)?.socket;
        if !socket.is_closed() {
            socket.close();
            self.open_sockets = self.open_sockets.saturating_sub(1);
        }
        Ok(())
    }

    async fn drop(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<()> {
        let mut h = self.table.delete(handle)?;
        let abandoned = std::mem::take(&mut h.sending);
        abandon(&mut h.socket, abandoned, &mut self.started_batches).await;
        if !h.socket.is_closed() {
            self.open_sockets = self.open_sockets.saturating_sub(1);
        }
        Ok(())
    }
}

impl dns::Host for ProbeCtx {
    async fn resolve(
        &mut self,
        name: String,
        family: Option<types::Family>,
    ) -> Result<Vec<types::IpAddress>, HostError> {
        if self.interrupt.is_set() {
            return Err(types::Error::Interrupted.into());
        }
        let family = family.map(Into::into);
        let is_literal = crate::resolve::literal(&name)
            .map_err(|e| types::Error::NameLookup(e.0))?
            .is_some();
        if !is_literal {
            self.policy.check_resolve(&name)?;
            if let Some(rate) = &self.policy.lookup_rate {
                let wait = rate.reserve();
                if !wait.is_zero() && self.interrupt.sleep(wait).await.is_err() {
                    return Err(types::Error::Interrupted.into());
                }
            }
        }
        let found = self
            .interrupt
            .run(crate::resolve::resolve(&name, family))
            .await
            .ok_or(types::Error::Interrupted)?
            .map_err(|e| types::Error::NameLookup(e.0))?;
        Ok(found.into_iter().map(Into::into).collect())
    }
}

impl progress::Host for ProbeCtx {
    async fn emit(&mut self, event: progress::Event) -> wasmtime::Result<()> {
        // Nobody would see it: it costs no output budget either.
        if !matches!(event, progress::Event::ResultLine(_)) && !self.sink.watched() {
            return Ok(());
        }
        match self.events.admit(event) {
            Some(event) => self.sink.emit(event),
            None => self.sink.dropped(),
        }
        Ok(())
    }

    async fn watched(&mut self) -> wasmtime::Result<bool> {
        Ok(self.sink.watched())
    }

    async fn write_report(&mut self, part: String) -> wasmtime::Result<bool> {
        let taken = self.document.append(part).is_ok();
        // Parts must not pile up in memory faster than they are written
        // out: wait (yielding, so the run's clock and interrupt still
        // apply) while the backlog is large.
        self.document.drained(MAX_REPORT_BACKLOG).await;
        Ok(taken)
    }
}

impl control::Host for ProbeCtx {
    async fn sleep(&mut self, duration: types::Duration) -> Result<(), HostError> {
        self.interrupt
            .sleep(Duration::from_nanos(duration))
            .await
            .map_err(|()| types::Error::Interrupted.into())
    }
}

impl limits::Host for ProbeCtx {
    async fn current(&mut self) -> wasmtime::Result<limits::Rules> {
        let p = &self.policy;
        let cidrs = |list: &[crate::policy::Cidr]| {
            list.iter()
                .map(|c| limits::Cidr {
                    address: icmp::Address::new(c.network()).into(),
                    prefix: c.prefix(),
                })
                .collect()
        };
        let l = &self.run_limits;
        Ok(limits::Rules {
            allow: cidrs(&p.allow),
            deny: cidrs(&p.deny),
            allow_broadcast: p.allow_broadcast,
            allow_multicast: p.allow_multicast,
            allow_privileged: p.allow_privileged,
            allow_names: p.allow_names,
            max_payload: u32::try_from(p.max_payload).unwrap_or(u32::MAX),
            max_sockets: u32::try_from(p.max_sockets).unwrap_or(u32::MAX),
            max_pps: p.send_rate.as_ref().map(|r| r.rate()),
            max_packets: p.max_packets,
            packets_sent: p.packets_sent(),
            max_batch: MAX_BATCH as u32,
            max_batch_bytes: MAX_BATCH_BYTES as u32,
            max_timeout: nanos(icmp::RETENTION),
            memory: l.memory as u64,
            cpu: nanos(l.cpu),
            wall: l.wall.map(nanos),
        })
    }

    async fn check_destination(
        &mut self,
        destination: types::IpAddress,
    ) -> wasmtime::Result<Result<(), types::Denial>> {
        let address = icmp::Address::from(destination);
        Ok(self
            .policy
            .check_destination(address.ip)
            .map_err(Into::into))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
