//! The seam between the engine and the kernel: [`Transport`] sends and
//! receives datagrams. [`KernelSocket`] is the real one; `scripted` (tests)
//! replays packets with no network.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::sys::socket::{self as sys, Queued, QueuedError, Received, RecvSlots, SendOptions};

/// A future borrowed from a transport.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something a socket delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// A datagram, in the buffer.
    Packet(Received),
    /// An ICMP error from a datagram socket's error queue; our original
    /// message is in the buffer.
    Error(QueuedError),
    /// The kernel's transmit stamp of a request of ours (from the error
    /// queue); the request is in the buffer.
    Sent(Received),
}

impl Incoming {
    /// What the kernel said of the message itself.
    fn received(&self) -> &Received {
        match self {
            Incoming::Packet(m) | Incoming::Sent(m) => m,
            Incoming::Error(e) => &e.received,
        }
    }

    /// The kernel's receive stamp of a datagram. Datagrams are taken in
    /// the order received, so a later stamp says every earlier datagram
    /// has been taken; the error queues are read apart from them, and their
    /// stamps say nothing of the datagrams still waiting.
    pub fn datagram_stamp(&self) -> Option<u64> {
        match self {
            Incoming::Packet(m) => m.timestamp_ns,
            Incoming::Error(_) | Incoming::Sent(_) => None,
        }
    }
}

fn from_queue(q: Queued) -> Incoming {
    match q {
        Queued::Icmp(e) => Incoming::Error(e),
        Queued::Sent(r) => Incoming::Sent(r),
    }
}

/// Whether a reader holds messages it took from the kernel but has not
/// handled yet. A read begins before the system call that takes messages
/// and ends once they are handled (or nothing was taken); so whoever finds
/// the kernel's queue empty and then the gate idle knows that everything
/// received before has been handled.
#[derive(Debug, Default)]
pub struct ReadGate {
    begun: AtomicU64,
    ended: AtomicU64,
}

impl ReadGate {
    /// A read is about to take messages.
    pub fn begin(&self) {
        self.begun.fetch_add(1, Ordering::SeqCst);
    }

    /// What a read took has been handled (or it took nothing).
    pub fn end(&self) {
        self.ended.fetch_add(1, Ordering::SeqCst);
    }

    /// No read is under way.
    pub fn idle(&self) -> bool {
        let begun = self.begun.load(Ordering::SeqCst);
        self.ended.load(Ordering::SeqCst) == begun
    }
}

/// What one receive took in: messages, each in a slot of its own, and
/// what each is.
#[derive(Debug)]
pub struct Batch {
    slots: RecvSlots,
    items: Vec<(usize, Incoming)>,
}

impl Batch {
    /// Room for `count` messages (at most [`sys::MAX_RECV_BATCH`]) of up
    /// to `slot_len` bytes.
    pub fn new(count: usize, slot_len: usize) -> Batch {
        Batch {
            slots: RecvSlots::new(count, slot_len),
            items: Vec::with_capacity(count),
        }
    }

    /// The messages: queued errors and transmit stamps first, then
    /// datagrams, each in the order received.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Incoming)> {
        self.items.iter().map(|&(slot, incoming)| {
            let len = incoming.received().len;
            (&self.slots.slot(slot)[..len], incoming)
        })
    }

    /// Whether nothing came.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Messages that came.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.items.clear();
    }
}

/// A datagram socket as the engine uses it (boxed futures, so it can be a
/// trait object).
pub trait Transport: Send + Sync + 'static {
    /// Sends one ICMP message; calls `stamp` right before each attempt of
    /// the system call, after any readiness wait. Any number of tasks may
    /// wait to send at once: each is woken when the socket has room.
    fn send<'a>(
        &'a self,
        packet: &'a [u8],
        destination: SocketAddr,
        options: &'a SendOptions,
        stamp: &'a (dyn Fn() + Sync),
    ) -> BoxFuture<'a, io::Result<()>>;

    /// Waits until something can be received, then receives what waits
    /// into `batch`, as [`Transport::try_recv_batch`] does: at least one
    /// message. Each attempt to take messages begins a read on `gate`
    /// first; an attempt that took nothing (or failed) ends it, and when
    /// messages are returned the caller ends it once they are handled.
    fn recv_batch<'a>(
        &'a self,
        batch: &'a mut Batch,
        gate: &'a ReadGate,
    ) -> BoxFuture<'a, io::Result<()>>;

    /// Receives what waits — queued errors and transmit stamps first, then
    /// datagrams — into `batch`, as many as it has slots for; empty when
    /// nothing waits.
    fn try_recv_batch(&self, batch: &mut Batch) -> io::Result<()>;

    /// Whether a datagram waits in the kernel to be received (or, on a
    /// datagram ICMP socket, an ICMP error on its error queue).
    fn has_pending(&self) -> bool;

    /// Bytes waiting in the kernel to be received, and the most it holds;
    /// `None` when unknown.
    fn backlog(&self) -> Option<(usize, usize)> {
        None
    }
}

/// How long a send waits for a full send buffer to drain when readiness
/// cannot say (see [`KernelSocket`]'s `send`).
const FULL_BUFFER_BACKOFF: std::time::Duration = std::time::Duration::from_millis(1);

/// A kernel socket registered with tokio.
#[derive(Debug)]
pub struct KernelSocket {
    fd: AsyncFd<socket2::Socket>,
    /// Read the error queue too (ICMP errors of datagram sockets, transmit
    /// stamps).
    error_queue: bool,
    /// Send-only sockets whose transmit stamps are read here, with this
    /// socket's own error queue (a plane's lane).
    stamps_of: Vec<Arc<socket2::Socket>>,
    /// ICMP errors arrive on the error queue (a datagram ICMP socket's),
    /// not as datagrams: what waits there is pending too.
    errors_queued: bool,
}

impl KernelSocket {
    /// Registers a non-blocking socket; needs a tokio runtime.
    pub fn new(socket: socket2::Socket, error_queue: bool) -> io::Result<KernelSocket> {
        let interest = if error_queue {
            Interest::READABLE | Interest::WRITABLE | Interest::ERROR
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        let datagram = socket.r#type().is_ok_and(|t| t == socket2::Type::DGRAM);
        Ok(KernelSocket {
            fd: sys::register(socket, interest)?,
            error_queue,
            stamps_of: Vec::new(),
            errors_queued: error_queue && datagram,
        })
    }

    /// Reads `sender`'s transmit stamps too, with this socket's own (see
    /// `fill`). No readiness waits for them: they are read whenever this
    /// socket has something, or its reader is told a burst has left.
    pub fn read_stamps_of(&mut self, sender: Arc<socket2::Socket>) {
        self.stamps_of.push(sender);
    }

    /// The socket itself, for options.
    pub fn socket(&self) -> &socket2::Socket {
        self.fd.get_ref()
    }
}

impl Transport for KernelSocket {
    fn send<'a>(
        &'a self,
        packet: &'a [u8],
        destination: SocketAddr,
        options: &'a SendOptions,
        stamp: &'a (dyn Fn() + Sync),
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            loop {
                // `writable`, not `poll_write_ready`: the latter wakes only
                // the last of several waiting tasks, and the socket is
                // shared by every tenant's sends (a full send buffer left
                // the others waiting for ever).
                let mut guard = self.fd.writable().await?;
                // Queued transmit stamps (of sends that fell back to this
                // socket) raise EPOLLERR, which epoll reports beside
                // EPOLLOUT and tokio keeps as "write closed": from then
                // on `writable` is always ready, even with the send
                // buffer full.
                let spurious = guard.ready().is_write_closed();
                match guard.try_io(|fd| {
                    stamp();
                    sys::send(fd.as_raw_fd(), packet, destination, options)
                }) {
                    Ok(result) => return result,
                    // Back off rather than spin while the buffer drains.
                    Err(_would_block) if spurious => {
                        tokio::time::sleep(FULL_BUFFER_BACKOFF).await;
                    }
                    Err(_would_block) => {}
                }
            }
        })
    }

    fn has_pending(&self) -> bool {
        let fd = self.fd.as_raw_fd();
        // An error reading the queue size is not "empty": assume pending.
        sys::pending_bytes(fd).is_none_or(|n| n > 0)
            || (self.errors_queued && sys::error_pending(fd))
    }

    fn backlog(&self) -> Option<(usize, usize)> {
        sys::receive_backlog(self.fd.as_raw_fd())
    }

    fn try_recv_batch(&self, batch: &mut Batch) -> io::Result<()> {
        batch.clear();
        self.fill(batch).map(drop)
    }

    fn recv_batch<'a>(
        &'a self,
        batch: &'a mut Batch,
        gate: &'a ReadGate,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let interest = if self.error_queue {
                Interest::READABLE | Interest::ERROR
            } else {
                Interest::READABLE
            };
            loop {
                let mut guard = self.fd.ready(interest).await?;
                batch.clear();
                gate.begin();
                let filled = self.fill(batch).inspect_err(|_| gate.end())?;
                if !batch.is_empty() {
                    return Ok(());
                }
                gate.end();
                match filled {
                    // Readiness is cleared only once both queues are empty.
                    Filled::Nothing => guard.clear_ready(),
                    // Only a socket error was taken: let other tasks run
                    // before reading again (errors may keep coming).
                    Filled::Something => {
                        drop(guard);
                        tokio::task::yield_now().await;
                    }
                }
            }
        })
    }
}

/// What one [`KernelSocket::fill`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filled {
    /// Both queues were empty.
    Nothing,
    /// Messages were taken, or a pending socket error was (then more may
    /// wait).
    Something,
}

impl KernelSocket {
    /// Reads the error queues (the lanes', its own: transmit stamps,
    /// ICMP errors), then the socket's datagrams into at most half the
    /// slots left, then, if any came, the error queues again; hands on the
    /// messages from error queues first. A reply's transmit stamp is queued
    /// before the reply can arrive: with room kept for the second look, a
    /// reply is routed after its stamp, whichever socket sent it, even when
    /// the send raced with the reads (unless the stamp was dropped, or a
    /// backlog of older stamps took the room).
    fn fill(&self, batch: &mut Batch) -> io::Result<Filled> {
        let fd = self.fd.as_raw_fd();
        let mut filled = self.fill_queues(batch)?;
        let room = batch.slots.free().div_ceil(2);
        let before = batch.slots.messages().len();
        match sys::recv_many(fd, &mut batch.slots, false, room) {
            Ok(0) => {}
            Ok(_) => filled = Filled::Something,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // Each queued ICMP error also sets the socket's pending error,
            // reported once by the next receive: its details come from the
            // error queue, so read on.
            Err(e) if self.error_queue && e.raw_os_error().is_some() => {
                filled = Filled::Something;
            }
            Err(e) => return Err(e),
        }
        let datagrams = before..batch.slots.messages().len();
        if !datagrams.is_empty() && self.fill_queues(batch)? == Filled::Something {
            filled = Filled::Something;
        }
        let messages = batch.slots.messages();
        for (n, m) in messages.iter().enumerate() {
            // Local errors (neither ICMP nor a transmit stamp) are skipped.
            if !datagrams.contains(&n)
                && let Some(q) = sys::queued(m)
            {
                batch.items.push((m.slot, from_queue(q)));
            }
        }
        for m in &messages[datagrams] {
            batch.items.push((m.slot, Incoming::Packet(m.received)));
        }
        Ok(filled)
    }

    /// One `recvmmsg` on each error queue read: the lanes', then its own.
    fn fill_queues(&self, batch: &mut Batch) -> io::Result<Filled> {
        let own = self.error_queue.then_some(self.fd.as_raw_fd());
        let mut filled = Filled::Nothing;
        for queue in self.stamps_of.iter().map(|s| s.as_raw_fd()).chain(own) {
            match sys::recv_many(queue, &mut batch.slots, true, usize::MAX) {
                Ok(0) => {}
                Ok(_) => filled = Filled::Something,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}

/// A transport fed by the test: packets the engine sends are recorded and
/// handed to a responder, whose answers are received in order.
#[cfg(test)]
pub(crate) mod scripted {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::task::{Poll, Waker};

    use super::*;

    /// What the responder sees of a sent packet.
    #[derive(Debug, Clone)]
    pub struct Sent {
        pub packet: Vec<u8>,
        pub destination: SocketAddr,
        pub options: SendOptions,
    }

    type Responder = Box<dyn FnMut(&Sent) -> Vec<(Vec<u8>, Received)> + Send>;

    #[derive(Default)]
    struct State {
        sent: Vec<Sent>,
        inbox: VecDeque<(Vec<u8>, Received)>,
        waker: Option<Waker>,
        backlog: Option<(usize, usize)>,
    }

    /// See the module docs.
    pub struct Scripted {
        state: Mutex<State>,
        responder: Mutex<Responder>,
    }

    impl Scripted {
        pub fn new(
            responder: impl FnMut(&Sent) -> Vec<(Vec<u8>, Received)> + Send + 'static,
        ) -> Scripted {
            Scripted {
                state: Mutex::default(),
                responder: Mutex::new(Box::new(responder)),
            }
        }

        /// Delivers a datagram as if it arrived from the network.
        pub fn inject(&self, packet: Vec<u8>, meta: Received) {
            let mut st = self.state.lock().unwrap();
            st.inbox.push_back((packet, meta));
            if let Some(w) = st.waker.take() {
                w.wake();
            }
        }

        pub fn sent(&self) -> Vec<Sent> {
            self.state.lock().unwrap().sent.clone()
        }

        /// What [`Transport::backlog`] reports from now on.
        pub fn set_backlog(&self, backlog: Option<(usize, usize)>) {
            self.state.lock().unwrap().backlog = backlog;
        }
    }

    impl Transport for Scripted {
        fn send<'a>(
            &'a self,
            packet: &'a [u8],
            destination: SocketAddr,
            options: &'a SendOptions,
            stamp: &'a (dyn Fn() + Sync),
        ) -> BoxFuture<'a, io::Result<()>> {
            stamp();
            let sent = Sent {
                packet: packet.to_vec(),
                destination,
                options: *options,
            };
            let answers = (self.responder.lock().unwrap())(&sent);
            self.state.lock().unwrap().sent.push(sent);
            for (p, m) in answers {
                self.inject(p, m);
            }
            Box::pin(std::future::ready(Ok(())))
        }

        fn has_pending(&self) -> bool {
            !self.state.lock().unwrap().inbox.is_empty()
        }

        fn backlog(&self) -> Option<(usize, usize)> {
            self.state.lock().unwrap().backlog
        }

        fn try_recv_batch(&self, batch: &mut Batch) -> io::Result<()> {
            batch.clear();
            let mut st = self.state.lock().unwrap();
            while batch.slots.free() > 0 {
                let Some((packet, mut meta)) = st.inbox.pop_front() else {
                    break;
                };
                let slot = batch.slots.messages().len();
                let buf = batch.slots.slot_mut(slot);
                let n = packet.len().min(buf.len());
                buf[..n].copy_from_slice(&packet[..n]);
                meta.len = n;
                batch.slots.push(sys::Message {
                    slot,
                    received: meta,
                    error: None,
                });
                batch.items.push((slot, Incoming::Packet(meta)));
            }
            Ok(())
        }

        fn recv_batch<'a>(
            &'a self,
            batch: &'a mut Batch,
            gate: &'a ReadGate,
        ) -> BoxFuture<'a, io::Result<()>> {
            Box::pin(std::future::poll_fn(move |cx| {
                gate.begin();
                if let Err(e) = self.try_recv_batch(batch) {
                    gate.end();
                    return Poll::Ready(Err(e));
                }
                if !batch.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                gate.end();
                let mut st = self.state.lock().unwrap();
                if st.inbox.is_empty() {
                    st.waker = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scripted::Scripted;
    use super::*;

    fn received() -> Received {
        Received {
            len: 0,
            truncated: false,
            source: "[2001:db8::1]:0".parse().unwrap(),
            timestamp_ns: None,
            ttl: Some(64),
            drops: None,
        }
    }

    /// On a datagram socket an ICMP error waits on the error queue, where
    /// the datagram count does not see it: it is pending all the same,
    /// until read. (UDP on loopback: a closed port answers Port
    /// Unreachable.) The closed port is on an address no other test binds,
    /// so no socket of theirs (or this one) can take it in the meantime.
    #[tokio::test]
    async fn an_icmp_error_on_a_datagram_error_queue_is_pending_until_read() {
        use socket2::{Domain, Protocol, Socket, Type};
        let closed = std::net::UdpSocket::bind("127.0.0.31:0").unwrap();
        let to = closed.local_addr().unwrap();
        drop(closed);
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_nonblocking(true).unwrap();
        s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        sys::enable_error_queue(&s, crate::icmp::types::Family::V4).unwrap();
        let wire = KernelSocket::new(s, true).unwrap();
        assert!(!wire.has_pending());
        wire.socket().send_to(b"x", &to.into()).unwrap();
        // Loopback delivers the error within the send.
        assert_eq!(sys::pending_bytes(wire.socket().as_raw_fd()), Some(0));
        assert!(wire.has_pending(), "the Port Unreachable waits");
        let mut batch = Batch::new(4, 256);
        wire.try_recv_batch(&mut batch).unwrap();
        assert_eq!(batch.len(), 1);
        assert!(!wire.has_pending(), "read");
    }

    #[tokio::test]
    async fn a_read_holding_messages_is_not_idle_though_the_kernel_queue_is_empty() {
        let wire = Scripted::new(|_| Vec::new());
        let gate = ReadGate::default();
        assert!(gate.idle());
        wire.inject(vec![129, 0, 0, 0, 0, 1, 0, 1], received());
        let mut batch = Batch::new(4, 64);
        wire.recv_batch(&mut batch, &gate).await.unwrap();
        assert_eq!(batch.len(), 1);
        // Taken from the kernel, not handled yet: "nothing pending" alone
        // would call the reader caught up.
        assert!(!wire.has_pending());
        assert!(!gate.idle());
        gate.end();
        assert!(gate.idle());
    }
}
