//! What a plugin writes to stdout and stderr: captured, never shown raw,
//! and bounded — the first [`super::Limits::guest_output`] bytes are kept
//! and the rest only counted, so a chatty or hostile plugin can neither
//! grow the host's memory nor be killed for printing.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much a plugin may write per call: WASI asks before each write.
const PERMIT: usize = 64 << 10;

#[derive(Debug)]
struct Captured {
    kept: Vec<u8>,
    capacity: usize,
    dropped: u64,
}

/// A bounded capture shared by a run's stdout and stderr.
#[derive(Debug, Clone)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
}

impl CapturedOutput {
    /// Keeps at most `capacity` bytes.
    pub fn new(capacity: usize) -> CapturedOutput {
        CapturedOutput {
            inner: Arc::new(Mutex::new(Captured {
                kept: Vec::new(),
                capacity,
                dropped: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn keep(&self, bytes: &[u8]) {
        let mut c = self.lock();
        let room = c.capacity.saturating_sub(c.kept.len());
        let kept = bytes.len().min(room);
        c.kept.extend_from_slice(&bytes[..kept]);
        c.dropped += (bytes.len() - kept) as u64;
    }

    /// What was kept, and how many bytes were dropped after it.
    pub fn take(&self) -> (Vec<u8>, u64) {
        let mut c = self.lock();
        (std::mem::take(&mut c.kept), c.dropped)
    }
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.keep(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_counts_the_rest() {
        let mut out = CapturedOutput::new(5);
        out.write(Bytes::from_static(b"hello, ")).unwrap();
        out.write(Bytes::from_static(b"world")).unwrap();
        assert_eq!(out.check_write().unwrap(), PERMIT, "never refuses");
        let (kept, dropped) = out.take();
        assert_eq!((kept.as_slice(), dropped), (&b"hello"[..], 7));
    }
}
