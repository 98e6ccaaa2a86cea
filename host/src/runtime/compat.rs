//! The `icmp-host:probe@0.1.0` contract, served beside 0.2 (the versioning
//! rule in `wit/README.md`): plugins built against 0.1.0 keep running.
//!
//! Each 0.1 import converts its arguments, calls the 0.2 implementation
//! and converts the answer back; nothing here decides anything. What 0.1
//! cannot say is said the closest way it can: a typed denial becomes its
//! message, `message-too-big(mtu)` an `invalid-argument` naming the MTU,
//! `kernel-both` timestamps `kernel`. The export, `run`, has the same
//! structure in both versions, so the runtime calls either the same way.

use wasmtime::component::{HasSelf, Linker, Resource, WasmList};
use wasmtime::{StoreContextMut, bail};
use wasmtime_wasi::TrappableError;

use super::bindings::icmp_host::probe as new;
use super::host::{MAX_BATCH, ProbeCtx, SocketHandle};

mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "probe",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "icmp-host:probe/sockets.icmp-socket": crate::runtime::host::SocketHandle,
        },
        trappable_error_type: {
            "icmp-host:probe/types.error" => super::OldError,
        },
    });
}

use bindings::icmp_host::probe::{control, dns, progress, sockets, types};

/// A 0.1 guest-visible error, or a trap.
pub type OldError = TrappableError<types::Error>;

/// Whether a plugin with `imports` was built against 0.1 (any of its
/// interfaces at 0.1.x).
pub(super) fn imported(imports: &[super::Import]) -> bool {
    imports.iter().any(|i| {
        i.name
            .strip_prefix("icmp-host:probe/")
            .and_then(|rest| rest.split_once('@'))
            .is_some_and(|(_, version)| version.starts_with("0.1."))
    })
}

/// Links the 0.1 imports.
pub(super) fn link(linker: &mut Linker<ProbeCtx>) -> wasmtime::Result<()> {
    bindings::Probe::add_to_linker::<ProbeCtx, HasSelf<ProbeCtx>>(linker, |c| c)?;
    // As in 0.2 (see `send_many.rs`): never lift a whole list of requests
    // whose payloads may all point at one buffer.
    linker.allow_shadowing(true);
    let replaced = linker
        .instance("icmp-host:probe/sockets@0.1.0")?
        .func_wrap_async("[method]icmp-socket.send-many", send_many);
    linker.allow_shadowing(false);
    replaced
}

type Params = (Resource<SocketHandle>, WasmList<types::EchoRequest>);
type Sent = Vec<Result<u64, types::Error>>;
type Call<'a> = Box<dyn Future<Output = wasmtime::Result<(Sent,)>> + Send + 'a>;

/// 0.1's `send-many` has no error for the call as a whole: a list over the
/// 0.2 bounds stops the plugin.
fn send_many(mut store: StoreContextMut<'_, ProbeCtx>, (handle, list): Params) -> Call<'_> {
    Box::new(async move {
        if list.len() > MAX_BATCH {
            bail!(
                "send-many of {} requests: at most {MAX_BATCH} per call",
                list.len()
            );
        }
        let mut budget = super::send_many::Budget::new(list.len()).map_err(error_text)?;
        let mut requests = Vec::with_capacity(list.len());
        for i in 0..list.len() {
            let Some(request) = list.get(&mut store, i) else {
                break;
            };
            let request = new::types::EchoRequest::from(request?);
            budget.admit(&request).map_err(error_text)?;
            requests.push(request);
        }
        let results = store
            .data_mut()
            .send_batch(&handle, requests)
            .await
            .map_err(|e| match e.downcast() {
                Ok(guest) => error_text(guest),
                Err(trap) => trap,
            })?;
        Ok((results
            .into_iter()
            .map(|r| r.map_err(types::Error::from))
            .collect(),))
    })
}

fn error_text(e: new::types::Error) -> wasmtime::Error {
    wasmtime::Error::msg(format!("{:?}", types::Error::from(e)))
}

/// A 0.2 error or trap as 0.1 reports it.
fn old(e: super::host::HostError) -> OldError {
    match e.downcast() {
        Ok(guest) => types::Error::from(guest).into(),
        Err(trap) => OldError::trap(trap),
    }
}

impl types::Host for ProbeCtx {
    fn convert_error(&mut self, err: OldError) -> wasmtime::Result<types::Error> {
        err.downcast()
    }
}

impl sockets::Host for ProbeCtx {}

impl sockets::HostIcmpSocket for ProbeCtx {
    async fn open(
        &mut self,
        options: sockets::OpenOptions,
    ) -> Result<Resource<SocketHandle>, OldError> {
        let options = new::sockets::OpenOptions {
            family: options.family.into(),
            source: options.source.map(Into::into),
            mode: match options.mode {
                types::Mode::Auto => new::types::Mode::Auto,
                types::Mode::Privileged => new::types::Mode::Privileged,
                types::Mode::Unprivileged => new::types::Mode::Unprivileged,
            },
            interface: options.interface,
        };
        new::sockets::HostIcmpSocket::open(self, options)
            .await
            .map_err(old)
    }

    async fn send(
        &mut self,
        handle: Resource<SocketHandle>,
        request: types::EchoRequest,
    ) -> Result<u64, OldError> {
        new::sockets::HostIcmpSocket::send(self, handle, request.into())
            .await
            .map_err(old)
    }

    async fn send_many(
        &mut self,
        _handle: Resource<SocketHandle>,
        _requests: Vec<types::EchoRequest>,
    ) -> wasmtime::Result<Vec<Result<u64, types::Error>>> {
        bail!("send-many@0.1.0 is linked by `compat::link`, which lifts one request at a time")
    }

    async fn receive(
        &mut self,
        handle: Resource<SocketHandle>,
        matching: Option<sockets::ReplyMatch>,
        timeout: u64,
    ) -> Result<types::Reply, OldError> {
        let matching = matching.map(|m| new::sockets::ReplyMatch {
            id: m.id,
            sequence: m.sequence,
        });
        new::sockets::HostIcmpSocket::receive(self, handle, matching, timeout)
            .await
            .map(Into::into)
            .map_err(old)
    }

    async fn receive_many(
        &mut self,
        handle: Resource<SocketHandle>,
        max: u32,
        timeout: u64,
    ) -> Result<Vec<types::Reply>, OldError> {
        new::sockets::HostIcmpSocket::receive_many(self, handle, max, timeout)
            .await
            .map(|replies| replies.into_iter().map(Into::into).collect())
            .map_err(old)
    }

    async fn broadcast(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<bool> {
        new::sockets::HostIcmpSocket::broadcast(self, handle).await
    }

    async fn set_broadcast(
        &mut self,
        handle: Resource<SocketHandle>,
        enabled: bool,
    ) -> Result<(), OldError> {
        new::sockets::HostIcmpSocket::set_broadcast(self, handle, enabled)
            .await
            .map_err(old)
    }

    async fn address(
        &mut self,
        handle: Resource<SocketHandle>,
    ) -> wasmtime::Result<Option<types::IpAddress>> {
        let a = new::sockets::HostIcmpSocket::address(self, handle).await?;
        Ok(a.map(Into::into))
    }

    async fn family(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<types::Family> {
        Ok(new::sockets::HostIcmpSocket::family(self, handle)
            .await?
            .into())
    }

    async fn is_privileged(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<bool> {
        new::sockets::HostIcmpSocket::is_privileged(self, handle).await
    }

    async fn is_closed(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<bool> {
        new::sockets::HostIcmpSocket::is_closed(self, handle).await
    }

    async fn stats(
        &mut self,
        handle: Resource<SocketHandle>,
    ) -> wasmtime::Result<sockets::SocketStats> {
        let s = new::sockets::HostIcmpSocket::stats(self, handle).await?;
        Ok(sockets::SocketStats {
            sent: s.sent,
            received: s.received,
            queue_drops: s.queue_drops,
            corrupted: s.corrupted,
            kernel_drops: s.kernel_drops,
        })
    }

    async fn close(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<()> {
        new::sockets::HostIcmpSocket::close(self, handle).await
    }

    async fn drop(&mut self, handle: Resource<SocketHandle>) -> wasmtime::Result<()> {
        new::sockets::HostIcmpSocket::drop(self, handle).await
    }
}

impl dns::Host for ProbeCtx {
    async fn resolve(
        &mut self,
        name: String,
        family: Option<types::Family>,
    ) -> Result<Vec<types::IpAddress>, OldError> {
        new::dns::Host::resolve(self, name, family.map(Into::into))
            .await
            .map(|found| found.into_iter().map(Into::into).collect())
            .map_err(old)
    }
}

impl progress::Host for ProbeCtx {
    async fn emit(&mut self, event: progress::Event) -> wasmtime::Result<()> {
        new::progress::Host::emit(self, event.into()).await
    }
}

impl control::Host for ProbeCtx {
    async fn sleep(&mut self, duration: u64) -> Result<(), OldError> {
        new::control::Host::sleep(self, duration).await.map_err(old)
    }
}

// Conversions, both ways where both are needed.

impl From<types::Family> for new::types::Family {
    fn from(f: types::Family) -> Self {
        match f {
            types::Family::Ipv4 => new::types::Family::Ipv4,
            types::Family::Ipv6 => new::types::Family::Ipv6,
        }
    }
}

impl From<new::types::Family> for types::Family {
    fn from(f: new::types::Family) -> Self {
        match f {
            new::types::Family::Ipv4 => types::Family::Ipv4,
            new::types::Family::Ipv6 => types::Family::Ipv6,
        }
    }
}

impl From<types::IpAddress> for new::types::IpAddress {
    fn from(a: types::IpAddress) -> Self {
        match a {
            types::IpAddress::Ipv4(v4) => new::types::IpAddress::Ipv4(v4),
            types::IpAddress::Ipv6(v6) => new::types::IpAddress::Ipv6(new::types::Ipv6Address {
                segments: v6.segments,
                scope_id: v6.scope_id,
            }),
        }
    }
}

impl From<new::types::IpAddress> for types::IpAddress {
    fn from(a: new::types::IpAddress) -> Self {
        match a {
            new::types::IpAddress::Ipv4(v4) => types::IpAddress::Ipv4(v4),
            new::types::IpAddress::Ipv6(v6) => types::IpAddress::Ipv6(types::Ipv6Address {
                segments: v6.segments,
                scope_id: v6.scope_id,
            }),
        }
    }
}

impl From<types::EchoRequest> for new::types::EchoRequest {
    fn from(r: types::EchoRequest) -> Self {
        new::types::EchoRequest {
            destination: r.destination.into(),
            id: r.id,
            sequence: r.sequence,
            payload: r.payload,
            payload_size: r.payload_size,
            ttl: r.ttl,
            traffic_class: r.traffic_class,
            dont_fragment: r.dont_fragment,
        }
    }
}

impl From<types::Reply> for new::types::Reply {
    fn from(r: types::Reply) -> Self {
        new::types::Reply {
            source: r.source.into(),
            family: r.family.into(),
            id: r.id,
            sequence: r.sequence,
            type_: r.type_,
            code: r.code,
            bytes_received: r.bytes_received,
            received_at: r.received_at,
            timestamp_source: match r.timestamp_source {
                types::TimestampSource::Kernel => new::types::TimestampSource::Kernel,
                types::TimestampSource::HostMonotonic => new::types::TimestampSource::HostMonotonic,
            },
            rtt: r.rtt,
            ttl: r.ttl,
            original_destination: r.original_destination.map(Into::into),
            mtu: r.mtu,
            duplicate: r.duplicate,
        }
    }
}

impl From<new::types::Reply> for types::Reply {
    fn from(r: new::types::Reply) -> Self {
        types::Reply {
            source: r.source.into(),
            family: r.family.into(),
            id: r.id,
            sequence: r.sequence,
            type_: r.type_,
            code: r.code,
            bytes_received: r.bytes_received,
            received_at: r.received_at,
            timestamp_source: match r.timestamp_source {
                new::types::TimestampSource::HostMonotonic => types::TimestampSource::HostMonotonic,
                new::types::TimestampSource::Kernel | new::types::TimestampSource::KernelBoth => {
                    types::TimestampSource::Kernel
                }
            },
            rtt: r.rtt,
            ttl: r.ttl,
            original_destination: r.original_destination.map(Into::into),
            mtu: r.mtu,
            duplicate: r.duplicate,
        }
    }
}

impl From<new::types::Error> for types::Error {
    fn from(e: new::types::Error) -> Self {
        use new::types::Error as E;
        match e {
            E::NameLookup(m) => types::Error::NameLookup(m),
            E::SocketAddress(m) => types::Error::SocketAddress(m),
            E::SocketPermission(m) => types::Error::SocketPermission(m),
            E::SocketUnavailable => types::Error::SocketUnavailable,
            E::SocketBroadcast => types::Error::SocketBroadcast,
            E::TimeoutExceeded(d) => types::Error::TimeoutExceeded(d),
            E::IcmpSocket(m) => types::Error::IcmpSocket(m),
            E::PolicyDenied(d) => types::Error::PolicyDenied(d.message),
            E::Interrupted => types::Error::Interrupted,
            E::ResourceExhausted(m) => types::Error::ResourceExhausted(m),
            E::InvalidArgument(m) => types::Error::InvalidArgument(m),
            E::Unsupported(m) => types::Error::Unsupported(m),
            E::MessageTooBig(mtu) => types::Error::InvalidArgument(format!(
                "message too long for the path MTU of {mtu} with Don't Fragment set"
            )),
        }
    }
}

impl From<progress::Event> for new::progress::Event {
    fn from(e: progress::Event) -> Self {
        use new::progress as p;
        match e {
            progress::Event::Start(s) => p::Event::Start(p::Start {
                kind: match s.kind {
                    progress::ProbeKind::Ping => p::ProbeKind::Ping,
                    progress::ProbeKind::Traceroute => p::ProbeKind::Traceroute,
                    progress::ProbeKind::Other => p::ProbeKind::Other,
                },
                target: s.target,
                address: s.address.map(Into::into),
                payload_size: s.payload_size,
                max_hops: s.max_hops,
            }),
            progress::Event::Reply(r) => p::Event::Reply(r.into()),
            progress::Event::Timeout(t) => p::Event::Timeout(p::Timeout {
                destination: t.destination.into(),
                id: t.id,
                sequence: t.sequence,
            }),
            progress::Event::Hop(h) => p::Event::Hop(p::Hop {
                distance: h.distance,
                probes: h
                    .probes
                    .into_iter()
                    .map(|hp| p::HopProbe {
                        responder: hp.responder.map(Into::into),
                        rtt: hp.rtt,
                        type_: hp.type_,
                        code: hp.code,
                    })
                    .collect(),
            }),
            progress::Event::Summary(s) => p::Event::Summary(p::Summary {
                target: s.target,
                packets_sent: s.packets_sent,
                packets_received: s.packets_received,
                duplicates: s.duplicates,
                errors: s.errors,
                min_rtt: s.min_rtt,
                avg_rtt: s.avg_rtt,
                max_rtt: s.max_rtt,
                mdev: s.mdev,
                elapsed: s.elapsed,
            }),
            progress::Event::Note(n) => p::Event::Note(n),
            progress::Event::ResultLine(l) => p::Event::ResultLine(l),
        }
    }
}
