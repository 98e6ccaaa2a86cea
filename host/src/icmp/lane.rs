//! A send lane: two send-only sockets of a raw plane, one for a burst's
//! caller and one for a thread of the lane's, so that a burst of requests
//! leaves from two cores at once.
//!
//! On loopback, and on any path as fast, the kernel does most of a
//! request's round trip — the echo, the reply, its delivery — inside the
//! sender's `sendmsg`: one sending thread holds a sweep to one core, and
//! two threads on one socket only queue on its lock. A [`Burst`] is shared
//! instead: its caller and the lane's thread take requests from the same
//! front, one at a time, each sending on its own socket. (Neither uses the
//! plane's receiver, unless the caller's socket has no room: a sender
//! holding the receiver's lock would handle, itself, every reply that
//! arrived meanwhile.)
//!
//! A single request leaves from the caller's socket too
//! ([`Lane::send_single`]), so that no stamp lands on the receiver.
//!
//! A burst is offered first ([`Lane::offer`]) and joined later
//! ([`Offer::join`]): the lane's thread sends alone while its caller
//! prepares the next part (wire keys, packets), then the caller joins in.
//!
//! The lane only ever helps. A burst is offered, never queued behind
//! another tenant's: while the thread is busy the caller sends it all
//! itself, and a burst the thread has not started by the time its caller
//! is done is withdrawn. A caller waits only for the one request the
//! thread has in hand. What the thread cannot send at once (a full send
//! buffer, a request for a sibling socket) it hands back to the caller.
//!
//! The lane's sockets receive nothing (their ICMP filter blocks every
//! type and their socket filter accepts nothing; the plane's receiver sees
//! every reply). Their transmit stamps are read by the plane's reader with
//! the receiver's messages ([`KernelSocket::read_stamps_of`]), so that RTTs
//! stay kernel-to-kernel; after each burst and each single request the
//! reader is told to look. The CPU time the thread spends is charged to
//! the burst's tenant.
//!
//! [`KernelSocket::read_stamps_of`]: super::transport::KernelSocket::read_stamps_of

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;

use super::table::SendStamp;
use super::tenant::Account;
use super::transport::Transport;
use crate::sys::clock::thread_cpu_ns;
use crate::sys::socket::{self as sys, SendOptions};

/// A request ready to leave: its packet, where to and how, and the stamp
/// to set right before the system call.
pub(crate) struct Outgoing {
    pub(crate) packet: Vec<u8>,
    pub(crate) destination: SocketAddr,
    pub(crate) options: SendOptions,
    pub(crate) sent: Arc<SendStamp>,
    /// A sibling socket it must leave through (Don't Fragment, broadcast);
    /// `None`: either of the lane's sockets (the plane's receiver when
    /// the caller's is full).
    pub(crate) via: Option<Arc<dyn Transport>>,
}

/// A burst offered to the lane.
const OFFERED: u8 = 0;
/// The lane has started on it: its caller waits for `done`.
const TAKEN: u8 = 1;
/// Its caller finished first: the lane skips it.
const WITHDRAWN: u8 = 2;

/// What the lane did with one request: sent it (or failed to), or handed
/// it back (`None`) for the caller to send.
type LaneResult = (usize, Option<io::Result<()>>);

/// Requests shared between a caller and the lane.
struct Burst {
    packets: Vec<Outgoing>,
    /// The next request to take, by either side.
    next: AtomicUsize,
    state: AtomicU8,
    /// What the lane did, set before `done` is notified.
    lane: Mutex<Vec<LaneResult>>,
    done: Notify,
    account: Account,
    /// Whether its run has been stopped: the lane then takes no more.
    halted: Option<Halt>,
}

/// Says whether the run a burst belongs to has been stopped.
pub(crate) type Halt = Arc<dyn Fn() -> bool + Send + Sync>;

impl Burst {
    /// Takes the next request, if any is left.
    fn take(&self) -> Option<(usize, &Outgoing)> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.packets.get(i).map(|p| (i, p))
    }
}

/// A raw plane's two send-only sockets and, once the first burst comes,
/// the thread that sends on one of them.
pub(crate) struct Lane {
    /// The caller's socket: a sender holding the receiver's lock would
    /// have the replies that arrive meanwhile (the lane's) queued to the
    /// socket's backlog, and handle them itself when it lets go.
    caller: Arc<socket2::Socket>,
    /// The thread's.
    socket: Arc<socket2::Socket>,
    /// Told after each burst and single request: the reader, woken by
    /// replies alone, would leave the stamps of unanswered requests to
    /// pile up (and the kernel to refuse later ones) on these sockets'
    /// error queues.
    pub(crate) stamped: Arc<Notify>,
    /// Bursts for the thread; `None` if it could not be started.
    jobs: OnceLock<Option<SyncSender<Arc<Burst>>>>,
}

impl Lane {
    /// A lane over `[caller, thread]`: raw sockets that receive nothing
    /// and stamp what they send.
    pub(crate) fn new([caller, socket]: [Arc<socket2::Socket>; 2]) -> Lane {
        Lane {
            caller,
            socket,
            stamped: Arc::new(Notify::new()),
            jobs: OnceLock::new(),
        }
    }

    /// The lane's thread, started on first use; `None` if it could not be.
    fn jobs(&self) -> Option<&SyncSender<Arc<Burst>>> {
        self.jobs
            .get_or_init(|| {
                // One burst waits at most: a second is sent by its caller.
                let (jobs, queue) = mpsc::sync_channel::<Arc<Burst>>(1);
                let socket = Arc::clone(&self.socket);
                let stamped = Arc::clone(&self.stamped);
                std::thread::Builder::new()
                    .name("icmp-send".into())
                    .spawn(move || {
                        // Until the lane goes (the sender is dropped).
                        while let Ok(burst) = queue.recv() {
                            serve(&socket, &burst);
                            // Its caller may never join: the reader looks
                            // at the stamps now.
                            stamped.notify_one();
                        }
                    })
                    .ok()
                    .map(|_| jobs)
            })
            .as_ref()
    }

    /// Sends `packets`, sharing them with the lane's thread: [`Lane::offer`]
    /// then [`Offer::join`].
    #[cfg(test)]
    pub(crate) async fn send(
        &self,
        receiver: &Arc<dyn Transport>,
        packets: Vec<Outgoing>,
        account: &Account,
        stop: &mut (dyn FnMut() -> bool + Send),
    ) -> Vec<Option<io::Result<()>>> {
        self.offer(packets, account, None)
            .join(self, receiver, stop)
            .await
    }

    /// Offers `packets` to the lane's thread, which may start on them at
    /// once; the caller sends its share, and collects the results, with
    /// [`Offer::join`] (meanwhile it may do other work). The thread's CPU
    /// time is charged to `account`; once `halted` says so, it takes no
    /// more of them.
    pub(crate) fn offer(
        &self,
        packets: Vec<Outgoing>,
        account: &Account,
        halted: Option<Halt>,
    ) -> Offer {
        let burst = Arc::new(Burst {
            packets,
            next: AtomicUsize::new(0),
            state: AtomicU8::new(OFFERED),
            lane: Mutex::new(Vec::new()),
            done: Notify::new(),
            account: account.clone(),
            halted,
        });
        let offered = self
            .jobs()
            .is_some_and(|jobs| jobs.try_send(Arc::clone(&burst)).is_ok());
        Offer { burst, offered }
    }

    /// Sends a request that is no burst's from the caller's socket, as
    /// [`Lane::send_mine`] does, then tells the reader to look at the
    /// stamps. Not from the receiver: its transmit stamp would wake the
    /// reader inside `sendmsg`, between the two stamps of the round trip
    /// (on loopback the reply is stamped within the same call), and that
    /// wake-up would count in the RTT.
    pub(crate) async fn send_single(
        &self,
        receiver: &Arc<dyn Transport>,
        p: &Outgoing,
    ) -> io::Result<()> {
        let result = self.send_mine(receiver, p).await;
        self.stamped.notify_one();
        result
    }

    /// Sends one of a burst's requests from the caller: on its own socket,
    /// or through the receiver (when that has no room) or a sibling.
    async fn send_mine(&self, receiver: &Arc<dyn Transport>, p: &Outgoing) -> io::Result<()> {
        if p.via.is_none() {
            match send_now(&self.caller, p) {
                Err(e) if retry_later(&e) => {}
                r => return r,
            }
        }
        send_one(receiver, p).await
    }
}

/// Packets offered to the lane ([`Lane::offer`]), until their caller joins
/// in. Dropped before that (its run stopped), it leaves the lane nothing
/// more to take.
pub(crate) struct Offer {
    burst: Arc<Burst>,
    /// The lane's thread got it (else the caller sends it all).
    offered: bool,
}

impl Offer {
    /// Sends what the lane has not taken, alongside it (a packet for a
    /// sibling goes through that; `receiver` is the fallback of a full
    /// socket); one result per packet, in order. The caller asks `stop`
    /// first, then every [`YIELD_EVERY`] sends of its own, when it also
    /// lets other tasks run: once it says so, neither side takes another,
    /// and what was not sent is `None`.
    pub(crate) async fn join(
        self,
        lane: &Lane,
        receiver: &Arc<dyn Transport>,
        stop: &mut (dyn FnMut() -> bool + Send),
    ) -> Vec<Option<io::Result<()>>> {
        let burst = &self.burst;
        let mut results: Vec<Option<io::Result<()>>> =
            (0..burst.packets.len()).map(|_| None).collect();
        // Asked first too: the lane may have sent alone for a while.
        let mut own = Cadence {
            sent: 0,
            stopped: stop(),
        };
        if own.stopped {
            self.exhaust();
        }
        while let Some((i, p)) = burst.take() {
            results[i] = Some(lane.send_mine(receiver, p).await);
            if own.tick(stop).await {
                self.exhaust();
            }
        }
        if self.offered
            && burst
                .state
                .compare_exchange(OFFERED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            // Taken: the lane is sending its last request, or has.
            burst.done.notified().await;
            let done = std::mem::take(&mut *burst.lane.lock().unwrap_or_else(|e| e.into_inner()));
            for (i, result) in done {
                results[i] = match result {
                    Some(r) => Some(r),
                    // Handed back: the caller's to send, at its own pace.
                    None if own.stopped => None,
                    None => {
                        let r = lane.send_mine(receiver, &burst.packets[i]).await;
                        own.tick(stop).await;
                        Some(r)
                    }
                };
            }
        }
        lane.stamped.notify_one();
        results
    }

    /// Leaves nothing to take.
    fn exhaust(&self) {
        self.burst
            .next
            .store(self.burst.packets.len(), Ordering::Relaxed);
    }
}

impl Drop for Offer {
    fn drop(&mut self) {
        self.exhaust();
    }
}

/// The pace of a burst's caller: every [`YIELD_EVERY`] of its sends it
/// lets other tasks run and asks whether to stop.
struct Cadence {
    sent: usize,
    stopped: bool,
}

impl Cadence {
    /// Counts a send; whether the caller is to stop.
    async fn tick(&mut self, stop: &mut (dyn FnMut() -> bool + Send)) -> bool {
        self.sent += 1;
        if self.sent.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
            self.stopped |= stop();
        }
        self.stopped
    }
}

/// Sends a burst's caller makes between two yields (and two questions
/// whether to stop).
const YIELD_EVERY: usize = 32;

/// Sends one request through its sibling or `receiver` (waiting for room
/// in the send buffer), stamping it right before each attempt.
pub(crate) async fn send_one(receiver: &Arc<dyn Transport>, p: &Outgoing) -> io::Result<()> {
    let transport = p.via.as_ref().unwrap_or(receiver);
    let stamp = || p.sent.mark();
    transport
        .send(&p.packet, p.destination, &p.options, &stamp)
        .await
}

/// Sends `p` on `socket` at once, stamping it right before.
fn send_now(socket: &socket2::Socket, p: &Outgoing) -> io::Result<()> {
    p.sent.mark();
    sys::send(socket.as_raw_fd(), &p.packet, p.destination, &p.options)
}

/// A send that found no room (or was interrupted): nothing left.
fn retry_later(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The lane's part of `burst`: requests from the front until none is left.
fn serve(socket: &socket2::Socket, burst: &Burst) {
    if burst
        .state
        .compare_exchange(OFFERED, TAKEN, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let start = thread_cpu_ns();
    // Publishes what was done and wakes the caller, even on unwinding.
    let mut done = Publish {
        burst,
        results: Vec::new(),
    };
    let mut sent = 0usize;
    while let Some((i, p)) = burst.take() {
        // Asked at the first and then every few.
        let ask = sent.is_multiple_of(YIELD_EVERY);
        sent += 1;
        if ask && burst.halted.as_ref().is_some_and(|h| h()) {
            // Its run is stopped: this one and the rest are not sent.
            burst.next.store(burst.packets.len(), Ordering::Relaxed);
            break;
        }
        if p.via.is_some() {
            done.results.push((i, None));
            continue;
        }
        match send_now(socket, p) {
            // Never wait here: the caller sends it, and the rest.
            Err(e) if retry_later(&e) => {
                done.results.push((i, None));
                break;
            }
            r => done.results.push((i, Some(r))),
        }
    }
    burst.account.charge(thread_cpu_ns().saturating_sub(start));
}

/// The lane's results for a burst, handed to its caller when dropped.
struct Publish<'a> {
    burst: &'a Burst,
    results: Vec<LaneResult>,
}

impl Drop for Publish<'_> {
    fn drop(&mut self) {
        *self.burst.lane.lock().unwrap_or_else(|e| e.into_inner()) =
            std::mem::take(&mut self.results);
        self.burst.done.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::*;
    use crate::icmp::tenant::{Quota, TenantState};
    use crate::icmp::transport::scripted::Scripted;

    fn account() -> (Account, Arc<std::sync::atomic::AtomicU64>) {
        let cpu = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let state = TenantState::new("t", Quota::default(), Box::new(|_| {}));
        let tenant = crate::icmp::Tenant {
            state: Arc::new(state),
        };
        (tenant.account(Arc::clone(&cpu)), cpu)
    }

    /// A lane over UDP (no privilege needed), each socket bound to a port
    /// of its own; what they send lands on the returned sink.
    fn udp_lane() -> (Lane, UdpSocket, [u16; 2]) {
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        sink.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // Room for a whole burst: the default (~200 small datagrams)
        // would drop what the test then misses. Past `net.core.rmem_max`
        // only as root.
        let room = 4 << 20;
        if nix::sys::socket::setsockopt(&sink, nix::sys::socket::sockopt::RcvBufForce, &room)
            .is_err()
        {
            socket2::SockRef::from(&sink)
                .set_recv_buffer_size(room)
                .unwrap();
        }
        let bound = || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            let port = s.local_addr().unwrap().port();
            (Arc::new(socket2::Socket::from(s)), port)
        };
        let ((caller, caller_port), (thread, thread_port)) = (bound(), bound());
        (
            Lane::new([caller, thread]),
            sink,
            [caller_port, thread_port],
        )
    }

    /// Requests numbered by their payload's bytes, to `to`; every tenth,
    /// the first among them, must leave through `sibling`, if given.
    fn requests(n: u16, to: SocketAddr, sibling: Option<&Arc<Scripted>>) -> Vec<Outgoing> {
        (0..n)
            .map(|i| Outgoing {
                packet: [i.to_be_bytes(), [0; 2]].concat(),
                destination: to,
                options: SendOptions {
                    ttl: 64,
                    ..SendOptions::default()
                },
                sent: Arc::default(),
                via: sibling
                    .filter(|_| i % 10 == 0)
                    .map(|s| Arc::clone(s) as Arc<dyn Transport>),
            })
            .collect()
    }

    /// What reached the sink from each of `ports`, by request number.
    fn landed(sink: &UdpSocket, ports: [u16; 2]) -> [Vec<u16>; 2] {
        let mut by = [Vec::new(), Vec::new()];
        let mut buf = [0u8; 64];
        while let Ok((len, from)) = sink.recv_from(&mut buf) {
            assert_eq!(len, 4);
            let side = ports.iter().position(|&p| p == from.port()).unwrap();
            by[side].push(u16::from_be_bytes([buf[0], buf[1]]));
        }
        by
    }

    /// Each result says what happened to its request: sent (and in
    /// `sent`), or not sent (and not in it); none failed.
    fn assert_reported(results: &[Option<io::Result<()>>], sent: &BTreeSet<u16>) {
        for (i, r) in (0u16..).zip(results) {
            match r {
                Some(Ok(())) => assert!(sent.contains(&i), "{i} reported sent"),
                None => assert!(!sent.contains(&i), "{i} reported unsent"),
                Some(Err(e)) => panic!("{i} failed: {e}"),
            }
        }
    }

    fn numbers(s: &Scripted) -> Vec<u16> {
        s.sent()
            .iter()
            .map(|s| u16::from_be_bytes([s.packet[0], s.packet[1]]))
            .collect()
    }

    /// The first request goes through a sibling that takes 1 ms, so the
    /// lane surely takes part meanwhile.
    #[tokio::test]
    async fn a_burst_leaves_once_each_shared_with_the_lane_and_siblings_keep_theirs() {
        let (lane, sink, ports) = udp_lane();
        let receiver: Arc<dyn Transport> = Arc::new(Scripted::new(|_| Vec::new()));
        let sibling = Arc::new(Scripted::new(|_| {
            std::thread::sleep(Duration::from_millis(1));
            Vec::new()
        }));
        let n = 200;
        let packets = requests(n, sink.local_addr().unwrap(), Some(&sibling));
        let stamps: Vec<Arc<SendStamp>> = packets.iter().map(|p| Arc::clone(&p.sent)).collect();
        let (account, cpu) = account();

        let results = lane.send(&receiver, packets, &account, &mut || false).await;

        assert_eq!(results.len(), usize::from(n));
        assert!(
            results.iter().all(|r| matches!(r, Some(Ok(())))),
            "{results:?}"
        );
        assert!(
            stamps.iter().all(|s| s.realtime_ns() > 0),
            "every request stamped"
        );
        let by_sibling = numbers(&sibling);
        let [by_caller, by_lane] = landed(&sink, ports);
        let mut through_sibling = by_sibling.clone();
        through_sibling.sort_unstable();
        assert_eq!(
            through_sibling,
            (0..n).filter(|i| i % 10 == 0).collect::<Vec<_>>(),
            "siblings' requests all through their sibling, never the lane"
        );
        assert!(!by_lane.is_empty(), "the lane took part");
        let all: Vec<u16> = [by_caller, by_sibling, by_lane].concat();
        let once: BTreeSet<u16> = all.iter().copied().collect();
        assert_eq!(all.len(), usize::from(n), "no request sent twice");
        assert_eq!(once, (0..n).collect(), "every request sent");
        assert!(
            cpu.load(Ordering::Relaxed) > 0,
            "the lane's CPU time is charged to the tenant"
        );
    }

    /// A request that is no burst's leaves from the caller's socket, never
    /// the receiver (its stamp would wake the reader inside `sendmsg`),
    /// unless it must take a sibling; the reader is told to look.
    #[tokio::test]
    async fn a_single_request_leaves_from_the_callers_socket_and_the_reader_is_told() {
        let (lane, sink, ports) = udp_lane();
        let receiver = Arc::new(Scripted::new(|_| Vec::new()));
        let sibling = Arc::new(Scripted::new(|_| Vec::new()));
        let to = sink.local_addr().unwrap();
        let [plain, dont_fragment] = [(1, None), (0, Some(&sibling))]
            .map(|(n, via)| requests(n + 1, to, via).pop().unwrap());
        let via_receiver = Arc::clone(&receiver) as Arc<dyn Transport>;

        lane.send_single(&via_receiver, &plain).await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), lane.stamped.notified())
            .await
            .expect("the reader is told after a single send");
        lane.send_single(&via_receiver, &dont_fragment)
            .await
            .unwrap();

        assert!(plain.sent.realtime_ns() > 0, "stamped");
        assert_eq!(
            landed(&sink, ports),
            [vec![1], vec![]],
            "from the caller's socket"
        );
        assert!(receiver.sent().is_empty(), "nothing through the receiver");
        assert_eq!(numbers(&sibling), [0], "a sibling's request through it");
    }

    /// A `stop` that says so from its second question on.
    fn stop_at_second_look() -> impl FnMut() -> bool + Send {
        let mut asked = 0;
        move || {
            asked += 1;
            asked > 1
        }
    }

    /// A burst stopped before its caller joins in: the caller sends none,
    /// and the lane takes no more once asked.
    #[tokio::test]
    async fn a_burst_stopped_before_the_caller_joins_gets_none_of_its_sends() {
        let (lane, sink, ports) = udp_lane();
        let receiver: Arc<dyn Transport> = Arc::new(Scripted::new(|_| Vec::new()));
        let n = 1000;
        let packets = requests(n, sink.local_addr().unwrap(), None);
        let (account, _) = account();
        let offer = lane.offer(packets, &account, None);
        let results = offer.join(&lane, &receiver, &mut || true).await;

        let [by_caller, by_lane] = landed(&sink, ports);
        assert!(by_caller.is_empty(), "the caller sent {by_caller:?}");
        let sent: BTreeSet<u16> = by_lane.iter().copied().collect();
        assert_eq!(sent.len(), by_lane.len(), "none twice");
        assert_reported(&results, &sent);
    }

    /// Requests handed back by the lane (here: all, each for a sibling)
    /// are sent at the caller's pace, and stop with it.
    #[tokio::test]
    async fn handed_back_requests_stop_with_the_caller() {
        let (lane, sink, ports) = udp_lane();
        let receiver: Arc<dyn Transport> = Arc::new(Scripted::new(|_| Vec::new()));
        let sibling = Arc::new(Scripted::new(|_| Vec::new()));
        let n = 200;
        let mut packets = requests(n, sink.local_addr().unwrap(), None);
        for p in &mut packets {
            p.via = Some(Arc::clone(&sibling) as Arc<dyn Transport>);
        }
        let (account, _) = account();
        let results = lane
            .send(&receiver, packets, &account, &mut stop_at_second_look())
            .await;

        let [by_caller, by_lane] = landed(&sink, ports);
        assert!(
            by_caller.is_empty() && by_lane.is_empty(),
            "all through the sibling"
        );
        let sent: BTreeSet<u16> = numbers(&sibling).into_iter().collect();
        assert_eq!(sent.len(), 32, "the caller stopped at its first look");
        assert_reported(&results, &sent);
    }

    /// The rest of the burst is left unsent — unless the lane's thread
    /// raced through all of it while the caller sent its share (the caller
    /// descheduled for a millisecond, on a loaded machine): then there was
    /// no rest, the caller may have sent fewer than 32, and the burst is
    /// tried again, up to three times.
    #[tokio::test]
    async fn a_stopped_burst_sends_no_more_and_says_which_were_not_sent() {
        let n = 1000;
        let mut left_unsent = false;
        for _ in 0..3 {
            let (lane, sink, ports) = udp_lane();
            let receiver: Arc<dyn Transport> = Arc::new(Scripted::new(|_| Vec::new()));
            let packets = requests(n, sink.local_addr().unwrap(), None);
            let (account, _) = account();
            // Asked before the caller's first send: go on; after its 32nd: stop.
            let results = lane
                .send(&receiver, packets, &account, &mut stop_at_second_look())
                .await;

            let [by_caller, by_lane] = landed(&sink, ports);
            let sent: BTreeSet<u16> = by_caller.iter().chain(&by_lane).copied().collect();
            assert_eq!(sent.len(), by_caller.len() + by_lane.len(), "none twice");
            assert_reported(&results, &sent);
            assert!(by_caller.len() <= 32, "the caller sent {}", by_caller.len());
            left_unsent = sent.len() < usize::from(n);
            if left_unsent {
                assert_eq!(by_caller.len(), 32, "the caller stopped at its first look");
                break;
            }
        }
        assert!(left_unsent, "the rest was not sent");
    }
}
