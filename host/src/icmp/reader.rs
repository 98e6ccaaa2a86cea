//! The engine's reader thread. Every plane's reader task runs on a tokio
//! runtime of its own, on an OS thread of its own, with the planes'
//! sockets registered to its reactor. Tenants' plugins run on the async
//! workers, each for up to a tick between yields; with many of them busy,
//! a reader scheduled among them waited its turn for hundreds of
//! milliseconds, and a neighbour's reply that had arrived in time was
//! routed after its receive deadline and reported lost. On its own thread
//! the reader is scheduled by the kernel as soon as a packet wakes it.
//! Engines shared by tenants (batch, serve) use it; see
//! `EngineConfig::reader_thread`.

use std::io;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::plane::{OwnedPlane, Pause, Plane};
use super::transport::KernelSocket;

/// Where an engine's plane readers run: on its [`ReaderThread`], or on
/// the runtime that starts each plane (a single run's, or a unit test's).
pub(crate) enum Readers {
    Thread(ReaderThread),
    Caller,
}

impl Readers {
    /// A thread of their own when `thread`, else the caller's runtime.
    pub(crate) fn new(thread: bool) -> io::Result<Readers> {
        Ok(match thread {
            true => Readers::Thread(ReaderThread::start()?),
            false => Readers::Caller,
        })
    }

    /// Registers `socket` with the reactor the readers use.
    pub(crate) fn register(
        &self,
        socket: socket2::Socket,
        error_queue: bool,
    ) -> io::Result<KernelSocket> {
        match self {
            Readers::Thread(t) => t.register(socket, error_queue),
            Readers::Caller => KernelSocket::new(socket, error_queue),
        }
    }

    /// Starts `plane`'s reader task where the readers run.
    pub(crate) fn read(&self, plane: Plane) -> OwnedPlane {
        match self {
            Readers::Thread(t) => t.read(plane),
            Readers::Caller => {
                let runtime = Handle::current();
                // A multi-thread runtime's worker leaves the `block_on`
                // thread (a single run's plugin) running while it sleeps;
                // on a current-thread runtime (unit tests) everything
                // would stop.
                let pause = match runtime.runtime_flavor() {
                    RuntimeFlavor::CurrentThread => Pause::Timer,
                    _ => Pause::Thread,
                };
                OwnedPlane::start(plane, &runtime, pause)
            }
        }
    }
}

/// The thread; it ends when this is dropped.
pub(crate) struct ReaderThread {
    handle: Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl ReaderThread {
    /// Starts the thread and its runtime.
    pub(crate) fn start() -> io::Result<ReaderThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("icmp-reader".into())
            .spawn(move || {
                // Until the engine goes (the sender is dropped).
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(ReaderThread {
            handle,
            _stop: stop,
        })
    }

    /// Registers `socket` with the thread's reactor. (Senders on other
    /// runtimes may use it: readiness wakes any task.)
    pub(crate) fn register(
        &self,
        socket: socket2::Socket,
        error_queue: bool,
    ) -> io::Result<KernelSocket> {
        let _entered = self.handle.enter();
        KernelSocket::new(socket, error_queue)
    }

    /// Starts `plane`'s reader task on the thread.
    pub(crate) fn read(&self, plane: Plane) -> OwnedPlane {
        OwnedPlane::start(plane, &self.handle, Pause::Thread)
    }
}
