//! The engine's reader thread. Every plane's reader task runs on a tokio
//! runtime of its own, on an OS thread of its own, with the planes'
//! sockets registered to its reactor. Tenants' plugins run on the async
//! workers, each for up to a tick between yields; with many of them busy,
//! a reader scheduled among them waited its turn for hundreds of
//! milliseconds, and a neighbour's reply that had arrived in time was
//! routed after its receive deadline and reported lost. On its own thread
//! the reader is scheduled by the kernel as soon as a packet wakes it.
//! (While a reader pauses to take a reply stream by the batch, the thread
//! sleeps: every plane on it, and sends waiting on its reactor, wait up to
//! that pause.) Engines shared by tenants (batch, serve) use it; see
//! [`ReaderPlace`].

use std::io;

use tokio::runtime::Handle;

use super::plane::{OwnedPlane, Pause, Plane};
use super::transport::KernelSocket;

/// Where an engine's plane readers run (`EngineConfig::readers`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReaderPlace {
    /// On the caller's runtime, among its other tasks: a reader pauses on
    /// a timer (unit tests, embedders).
    #[default]
    Shared,
    /// On the caller's runtime, whose workers run only the readers and
    /// tasks that may wait a millisecond: a single run, its one worker
    /// beside the plugin's `block_on` thread. A reader pauses by sleeping
    /// the worker; the timers and readiness it drives wait up to that.
    Worker,
    /// On a thread of the engine's own, for engines shared by tenants
    /// (batch, serve): a reader pauses by sleeping that thread.
    Thread,
}

/// Where an engine's plane readers run: on its [`ReaderThread`], or on
/// the runtime that starts each plane, pausing as it allows.
pub(crate) enum Readers {
    Thread(ReaderThread),
    Caller(Pause),
}

impl Readers {
    /// The readers of `place`.
    pub(crate) fn new(place: ReaderPlace) -> io::Result<Readers> {
        Ok(match place {
            ReaderPlace::Thread => Readers::Thread(ReaderThread::start()?),
            ReaderPlace::Worker => Readers::Caller(Pause::Thread),
            ReaderPlace::Shared => Readers::Caller(Pause::Timer),
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
            Readers::Caller(_) => KernelSocket::new(socket, error_queue),
        }
    }

    /// Starts `plane`'s reader task where the readers run.
    pub(crate) fn read(&self, plane: Plane) -> OwnedPlane {
        match self {
            Readers::Thread(t) => t.read(plane),
            Readers::Caller(pause) => OwnedPlane::start(plane, &Handle::current(), *pause),
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
