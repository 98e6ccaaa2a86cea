//! Planes: a receiving kernel socket, its send-only siblings and lane, its key
//! table and counters, and the reader task that parses every datagram once
//! and routes it to the virtual socket that owns its wire key. Raw planes
//! are shared per family; a datagram plane belongs to one virtual socket.

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::lane::Lane;
use super::queue::Queue;
#[cfg(doc)]
use super::reader::ReaderPlace;
use super::table::{Arrival, KeySpace, Rejected, Table, WireKey};
use super::transport::{Batch, Incoming, ReadGate, Transport};
use super::types::{Address, Family};
use super::wire::{self, Body, IcmpPacket};
use crate::sys::clock::thread_cpu_ns;
use crate::sys::socket::{self as sys, Kind};

/// Counters of a plane (a receiving kernel socket and its table).
#[derive(Debug, Default)]
pub struct PlaneStats {
    /// Datagrams read.
    pub packets: AtomicU64,
    /// Datagrams that failed to parse (short, bad checksum, cut).
    pub invalid: AtomicU64,
    /// Valid ICMP that is not for any request (other types, other traffic).
    pub ignored: AtomicU64,
    /// Replies to keys this process does not hold.
    pub unknown: AtomicU64,
    /// Replies from the wrong source, or with a foreign payload.
    pub rejected: AtomicU64,
    /// Kernel drops (`SO_RXQ_OVFL`), cumulative.
    pub kernel_drops: AtomicU64,
}

/// A receiving kernel socket, its send-only siblings, its key table and
/// counters. Raw planes are shared per family; datagram planes belong to
/// one virtual socket.
pub(crate) struct Plane {
    pub(crate) family: Family,
    pub(crate) kind: Kind,
    pub(crate) receiver: Arc<dyn Transport>,
    pub(crate) dont_fragment: Option<Arc<dyn Transport>>,
    pub(crate) broadcast: Option<Arc<dyn Transport>>,
    /// Two more sending sockets and a thread, for bursts and single
    /// requests (raw planes).
    pub(crate) lane: Option<Lane>,
    table: Mutex<Table>,
    pub(crate) stats: PlaneStats,
    /// The latest kernel receive stamp of a datagram the reader has
    /// handled (ns, realtime).
    watermark_ns: AtomicU64,
    /// Whether the reader holds messages it has not handled yet.
    gate: ReadGate,
    /// A private datagram plane's quota, given back when the plane (and
    /// with it the descriptor) goes.
    pub(crate) hold: Option<super::engine::DatagramHold>,
}

impl Plane {
    pub(crate) fn new(
        family: Family,
        kind: Kind,
        receiver: Arc<dyn Transport>,
        table_capacity: usize,
    ) -> Plane {
        let space = match kind {
            Kind::Raw => KeySpace::Full,
            Kind::Datagram => KeySpace::SequenceOnly,
        };
        Plane {
            family,
            kind,
            receiver,
            dont_fragment: None,
            broadcast: None,
            lane: None,
            table: Mutex::new(Table::new(space, table_capacity)),
            stats: PlaneStats::default(),
            watermark_ns: AtomicU64::new(0),
            gate: ReadGate::default(),
            hold: None,
        }
    }

    /// The key table. Every operation on it is O(1) amortised: the lock is
    /// held for microseconds, never across an await.
    pub(crate) fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether everything the kernel received before `realtime_ns` has been
    /// routed: the reader handled a later packet (sockets deliver in
    /// order), or nothing waits in the kernel and then (in this order: a
    /// read that emptied the queue has begun by then) the reader holds
    /// nothing unhandled.
    pub(crate) fn caught_up(&self, realtime_ns: u64) -> bool {
        self.watermark_ns.load(Ordering::Acquire) >= realtime_ns
            || (!self.receiver.has_pending() && self.gate.idle())
    }

    /// Whether the receiving socket is over half full: sending more before
    /// the reader has taken some risks the kernel dropping replies.
    pub(crate) fn congested(&self) -> bool {
        self.receiver
            .backlog()
            .is_some_and(|(queued, size)| queued > size / 2)
    }

    /// Parses one delivery and hands it to the owning virtual socket;
    /// returns that socket's queue when delivered.
    fn handle(&self, buf: &[u8], incoming: Incoming) -> Option<Arc<Queue>> {
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        if let Incoming::Sent(meta) = incoming {
            self.sent(buf, meta.timestamp_ns);
            return None;
        }
        let arrival = self.arrival(buf, incoming)?;
        let routed = self.table().route(&arrival);
        let counter = match routed {
            Ok((queue, reply)) => {
                // A full queue counts its own drops; the work was still done.
                let _ = queue.push(reply);
                return Some(queue);
            }
            Err(Rejected::Unknown) => &self.stats.unknown,
            Err(Rejected::Closed) | Err(Rejected::QueueFull) => return None,
            Err(Rejected::WrongSource) | Err(Rejected::Corrupted) => &self.stats.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// A request's transmit stamp: the kernel's own send time for its RTT.
    fn sent(&self, buf: &[u8], kernel_ns: Option<u64>) {
        match (wire::parse_sent_echo(self.family, buf), kernel_ns) {
            (Ok((ident, seq)), Some(ns)) => self.table().stamp_sent(WireKey { ident, seq }, ns),
            _ => {
                self.stats.invalid.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn arrival<'a>(&self, buf: &'a [u8], incoming: Incoming) -> Option<Arrival<'a>> {
        match incoming {
            Incoming::Sent(_) => None,
            Incoming::Packet(meta) => {
                if let Some(d) = meta.drops {
                    self.stats
                        .kernel_drops
                        .store(u64::from(d), Ordering::Relaxed);
                }
                if meta.truncated {
                    self.stats.invalid.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let parsed = match (self.family, self.kind) {
                    (Family::V4, Kind::Raw) => wire::parse_ipv4_datagram(buf)
                        .map(|(ip, m)| (Address::new(IpAddr::V4(ip.source)), Some(ip.ttl), m)),
                    (family, kind) => wire::parse_icmp(family, buf, kind == Kind::Raw)
                        .map(|m| (Address::from_socket_addr(meta.source), meta.ttl, m)),
                };
                let Ok((source, ttl, m)) = parsed else {
                    self.stats.invalid.fetch_add(1, Ordering::Relaxed);
                    return None;
                };
                let (key, payload, quoted_destination, mtu) = match m.body {
                    Body::EchoReply {
                        ident,
                        seq_no,
                        data,
                    } => (WireKey { ident, seq: seq_no }, Some(data), None, None),
                    Body::Error { quote, mtu } => (
                        WireKey {
                            ident: quote.ident,
                            seq: quote.seq_no,
                        },
                        None,
                        Some(quote.destination),
                        mtu,
                    ),
                    Body::Other => {
                        self.stats.ignored.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                };
                Some(Arrival {
                    key,
                    source,
                    icmp_type: m.icmp_type,
                    code: m.code,
                    len: m.len,
                    payload,
                    quoted_destination,
                    mtu,
                    ttl,
                    kernel_ns: meta.timestamp_ns,
                })
            }
            Incoming::Error(e) => {
                // The error queue hands back our own request; the kernel
                // names the router that complained (SO_EE_OFFENDER).
                let Ok(original) = IcmpPacket::new_checked(buf) else {
                    self.stats.invalid.fetch_add(1, Ordering::Relaxed);
                    return None;
                };
                let Some(offender) = e.offender else {
                    self.stats.ignored.fetch_add(1, Ordering::Relaxed);
                    return None;
                };
                let too_big = matches!(
                    (self.family, e.icmp_type, e.code),
                    (Family::V4, 3, 4) | (Family::V6, 2, _)
                );
                Some(Arrival {
                    key: WireKey {
                        ident: original.echo_ident(),
                        seq: original.echo_seq_no(),
                    },
                    source: Address::from_socket_addr(offender),
                    icmp_type: e.icmp_type,
                    code: e.code,
                    // The error's own size is not reported: header + quote.
                    len: 8 + original.total_len(),
                    payload: None,
                    quoted_destination: Some(e.received.source.ip()),
                    mtu: too_big.then_some(e.info),
                    ttl: e.received.ttl,
                    kernel_ns: e.received.timestamp_ns,
                })
            }
        }
    }
}

/// Messages a private datagram plane reads in one go (a raw plane, shared
/// by every tenant, reads [`sys::MAX_RECV_BATCH`]).
const DATAGRAM_BATCH: usize = 8;

/// Room for the largest IPv4 datagram, options included.
const SLOT_LEN: usize = 65_536 + 64;

/// A steady stream of replies wakes an idle reader once per packet (a
/// context switch each, on both sides). A reader that keeps finding only a
/// few messages, moments apart, pauses this long before its next read and
/// takes the stream by the batch instead. Arrivals are stamped by the
/// kernel, so the pause changes no RTT; it delays their delivery by at
/// most this much, and only while such a stream flows. (A pause that
/// sleeps a thread holds up everything on it as long: see [`Pause`].)
const COALESCE: Duration = Duration::from_millis(1);

/// How a reader pauses ([`COALESCE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// It sleeps its thread ([`ReaderPlace::Thread`], [`ReaderPlace::Worker`]):
    /// the other planes read there, and the timers and send readiness
    /// that thread's reactor drives, wait up to the pause too. Off the
    /// poller's wait queue, the thread is woken by no arrival, and a
    /// sender's `sendmsg` no longer pays for waking it (on loopback a
    /// reply is delivered inside the sender's call): in a 65,536-host
    /// sweep that took the process's CPU from 1.15 s to 0.8 s.
    Thread,
    /// It shares its runtime ([`ReaderPlace::Shared`]): it awaits a
    /// timer, and the runtime's poller still wakes on every arrival.
    Timer,
}

/// A batch this small counts towards a stream read packet by packet...
const SMALL_BATCH: usize = 8;

/// ...when it comes this soon after the previous one...
const STREAM_GAP: Duration = Duration::from_micros(200);

/// ...this many times in a row.
const SMALL_STREAK: u32 = 16;

/// Reads a plane's receiving socket until aborted. Whatever is waiting is
/// read in batches (one `recvmmsg` per queue); the CPU time a batch took
/// is charged evenly to the sockets whose replies it routed.
async fn read_loop(plane: Arc<Plane>, pause: Pause) {
    let slots = match plane.kind {
        Kind::Raw => sys::MAX_RECV_BATCH,
        Kind::Datagram => DATAGRAM_BATCH,
    };
    // Slots are touched only as far as messages fill them.
    let mut batch = Batch::new(slots, SLOT_LEN);
    let mut owners: Vec<Arc<Queue>> = Vec::with_capacity(slots);
    let (mut last, mut streak) = (Instant::now(), 0);
    loop {
        let received = match &plane.lane {
            // The lane's stamps (bursts', single requests') wait on its
            // sockets, read on the receiver's turn: when told, take it.
            Some(lane) => tokio::select! {
                biased;
                r = plane.receiver.recv_batch(&mut batch, &plane.gate) => r,
                () = lane.stamped.notified() => {
                    plane.gate.begin();
                    let r = plane.receiver.try_recv_batch(&mut batch);
                    if r.is_err() || batch.is_empty() {
                        plane.gate.end();
                        continue;
                    }
                    r
                }
            },
            None => plane.receiver.recv_batch(&mut batch, &plane.gate).await,
        };
        match received {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                // Unexpected socket errors (ENOMEM, ...): count, back off a
                // little rather than spin.
                plane.stats.invalid.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        }
        let start = thread_cpu_ns();
        for (buf, incoming) in batch.iter() {
            owners.extend(plane.handle(buf, incoming));
            if let Some(ns) = incoming.datagram_stamp() {
                plane.watermark_ns.fetch_max(ns, Ordering::AcqRel);
            }
        }
        if !owners.is_empty() {
            let share = thread_cpu_ns().saturating_sub(start) / owners.len() as u64;
            for queue in owners.drain(..) {
                queue.account().charge(share);
            }
        }
        plane.gate.end();
        let now = Instant::now();
        let small = batch.len() < SMALL_BATCH && now - last < STREAM_GAP;
        streak = if small { streak + 1 } else { 0 };
        last = now;
        if streak >= SMALL_STREAK {
            streak = 0;
            match pause {
                Pause::Thread => std::thread::sleep(COALESCE),
                Pause::Timer => tokio::time::sleep(COALESCE).await,
            }
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// A plane plus its reader task; the reader stops when this is dropped.
pub(crate) struct OwnedPlane {
    pub(crate) plane: Arc<Plane>,
    reader: JoinHandle<()>,
}

impl OwnedPlane {
    /// Starts the plane's reader task on `runtime`, pausing as `pause`
    /// says.
    pub(crate) fn start(
        plane: Plane,
        runtime: &tokio::runtime::Handle,
        pause: Pause,
    ) -> OwnedPlane {
        let plane = Arc::new(plane);
        let reader = runtime.spawn(read_loop(Arc::clone(&plane), pause));
        OwnedPlane { plane, reader }
    }
}

impl Drop for OwnedPlane {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
