//! The seam between the engine and the kernel: [`Transport`] sends and
//! receives datagrams. [`KernelSocket`] is the real one; `scripted` (tests)
//! replays packets with no network.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::sys::socket::{self as sys, Queued, QueuedError, Received, SendOptions};

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
    /// Bytes in the buffer, and the kernel's stamp (receive or transmit).
    pub fn len_and_stamp(&self) -> (usize, Option<u64>) {
        match self {
            Incoming::Packet(m) | Incoming::Sent(m) => (m.len, m.timestamp_ns),
            Incoming::Error(e) => (e.received.len, e.received.timestamp_ns),
        }
    }
}

fn from_queue(q: Queued) -> Incoming {
    match q {
        Queued::Icmp(e) => Incoming::Error(e),
        Queued::Sent(r) => Incoming::Sent(r),
    }
}

/// A datagram socket as the engine uses it. Poll-based so it can be a
/// trait object.
pub trait Transport: Send + Sync + 'static {
    /// Sends one ICMP message; calls `stamp` right before each attempt of
    /// the system call, after any readiness wait.
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        packet: &[u8],
        destination: SocketAddr,
        options: &SendOptions,
        stamp: &(dyn Fn() + Sync),
    ) -> Poll<io::Result<()>>;

    /// Receives the next datagram or queued error into `buf`.
    fn recv<'a>(&'a self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<Incoming>>;

    /// Receives a datagram or queued error if one is waiting; `None` if not.
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<Incoming>>;

    /// Whether a datagram waits in the kernel to be received.
    fn has_pending(&self) -> bool;
}

/// Sends through any transport; `stamp` runs right before the system call.
pub async fn send(
    t: &dyn Transport,
    packet: &[u8],
    destination: SocketAddr,
    options: &SendOptions,
    stamp: &(dyn Fn() + Sync),
) -> io::Result<()> {
    std::future::poll_fn(|cx| t.poll_send(cx, packet, destination, options, stamp)).await
}

/// A kernel socket registered with tokio.
#[derive(Debug)]
pub struct KernelSocket {
    fd: AsyncFd<socket2::Socket>,
    /// Read the error queue too (ICMP errors of datagram sockets, transmit
    /// stamps).
    error_queue: bool,
}

impl KernelSocket {
    /// Registers a non-blocking socket; needs a tokio runtime.
    pub fn new(socket: socket2::Socket, error_queue: bool) -> io::Result<KernelSocket> {
        let interest = if error_queue {
            Interest::READABLE | Interest::WRITABLE | Interest::ERROR
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        Ok(KernelSocket {
            fd: sys::register(socket, interest)?,
            error_queue,
        })
    }

    /// The socket itself, for options.
    pub fn socket(&self) -> &socket2::Socket {
        self.fd.get_ref()
    }
}

impl Transport for KernelSocket {
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        packet: &[u8],
        destination: SocketAddr,
        options: &SendOptions,
        stamp: &(dyn Fn() + Sync),
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| {
                stamp();
                sys::send(fd.as_raw_fd(), packet, destination, options)
            }) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn has_pending(&self) -> bool {
        // An error reading the queue size is not "empty": assume pending.
        sys::pending_bytes(self.fd.as_raw_fd()).is_none_or(|n| n > 0)
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<Incoming>> {
        let fd = self.fd.as_raw_fd();
        if self.error_queue {
            match sys::recv_error(fd, buf) {
                Ok(Some(q)) => return Ok(Some(from_queue(q))),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        match sys::recv(fd, buf) {
            Ok(r) => Ok(Some(Incoming::Packet(r))),
            // Readiness is cleared by the next `recv` that finds nothing.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if self.error_queue && e.raw_os_error().is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn recv<'a>(&'a self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<Incoming>> {
        Box::pin(async move {
            let interest = if self.error_queue {
                Interest::READABLE | Interest::ERROR
            } else {
                Interest::READABLE
            };
            loop {
                let mut guard = self.fd.ready(interest).await?;
                let fd = self.fd.as_raw_fd();
                if self.error_queue {
                    match sys::recv_error(fd, buf) {
                        Ok(Some(q)) => return Ok(from_queue(q)),
                        Ok(None) => continue, // a local error, not ICMP
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                match sys::recv(fd, buf) {
                    Ok(r) => return Ok(Incoming::Packet(r)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                    // Each queued ICMP error also sets the socket's pending
                    // error, reported once by the next receive: its details
                    // come from the error queue, so read on.
                    Err(e) if self.error_queue && e.raw_os_error().is_some() => continue,
                    Err(e) => return Err(e),
                }
            }
        })
    }
}

/// A transport fed by the test: packets the engine sends are recorded and
/// handed to a responder, whose answers are received in order.
#[cfg(test)]
pub(crate) mod scripted {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::task::Waker;

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
    }

    impl Transport for Scripted {
        fn poll_send(
            &self,
            _cx: &mut Context<'_>,
            packet: &[u8],
            destination: SocketAddr,
            options: &SendOptions,
            stamp: &(dyn Fn() + Sync),
        ) -> Poll<io::Result<()>> {
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
            Poll::Ready(Ok(()))
        }

        fn has_pending(&self) -> bool {
            !self.state.lock().unwrap().inbox.is_empty()
        }

        fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<Incoming>> {
            let mut st = self.state.lock().unwrap();
            Ok(st.inbox.pop_front().map(|(packet, mut meta)| {
                let n = packet.len().min(buf.len());
                buf[..n].copy_from_slice(&packet[..n]);
                meta.len = n;
                Incoming::Packet(meta)
            }))
        }

        fn recv<'a>(&'a self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<Incoming>> {
            Box::pin(std::future::poll_fn(move |cx| {
                let mut st = self.state.lock().unwrap();
                match st.inbox.pop_front() {
                    Some((packet, mut meta)) => {
                        let n = packet.len().min(buf.len());
                        buf[..n].copy_from_slice(&packet[..n]);
                        meta.len = n;
                        Poll::Ready(Ok(Incoming::Packet(meta)))
                    }
                    None => {
                        st.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                }
            }))
        }
    }
}
