//! `send-many` and `start-sending`, linked by hand over the generated
//! binding.
//!
//! A generated binding lifts the whole `list<echo-request>` before the host
//! sees it, and every request's payload is a list of its own: a guest can
//! point a million requests at one 64 KiB buffer and make the host copy
//! 64 GiB. Here the list's length is checked first, then requests are
//! lifted one at a time until the per-call byte budget is spent — the host
//! never copies more than [`MAX_BATCH`] requests and [`MAX_BATCH_BYTES`]
//! of payload per call, whatever the guest points at.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, WasmList};

use super::bindings::icmp_host::probe::types;
use super::host::{MAX_BATCH, MAX_BATCH_BYTES, ProbeCtx, SocketHandle};

/// The interface and function the binding generated (kept in step with
/// `wit/`: [`link`] fails when they no longer match).
const INTERFACE: &str = "icmp-host:probe/sockets@0.2.2";
const SEND_MANY: &str = "[method]icmp-socket.send-many";
const START_SENDING: &str = "[method]icmp-socket.start-sending";

type SendResults = Result<Vec<Result<types::Timestamp, types::Error>>, types::Error>;

/// What one call may still lift.
pub(super) struct Budget {
    bytes: usize,
}

impl Budget {
    /// A call of `requests` requests; refused beyond [`MAX_BATCH`].
    pub(super) fn new(requests: usize) -> Result<Budget, types::Error> {
        if requests > MAX_BATCH {
            return Err(types::Error::InvalidArgument(format!(
                "send-many takes at most {MAX_BATCH} requests, not {requests}"
            )));
        }
        Ok(Budget { bytes: 0 })
    }

    /// A list already lifted, checked whole as [`lift`] checks it.
    pub(super) fn check(requests: &[types::EchoRequest]) -> Result<(), types::Error> {
        let mut budget = Budget::new(requests.len())?;
        requests.iter().try_for_each(|r| budget.admit(r))
    }

    /// Counts one request's payload; refused past [`MAX_BATCH_BYTES`].
    pub(super) fn admit(&mut self, r: &types::EchoRequest) -> Result<(), types::Error> {
        let size = r.payload.as_ref().map_or(r.payload_size as usize, Vec::len);
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > MAX_BATCH_BYTES {
            return Err(types::Error::InvalidArgument(format!(
                "send-many takes at most {MAX_BATCH_BYTES} payload bytes per call"
            )));
        }
        Ok(())
    }
}

/// Lifts the requests one by one within the call's budget.
fn lift(
    store: &mut StoreContextMut<'_, ProbeCtx>,
    list: &WasmList<types::EchoRequest>,
) -> wasmtime::Result<Result<Vec<types::EchoRequest>, types::Error>> {
    let mut budget = match Budget::new(list.len()) {
        Ok(b) => b,
        Err(e) => return Ok(Err(e)),
    };
    let mut requests = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        let Some(request) = list.get(&mut *store, i) else {
            break;
        };
        let request = request?;
        if let Err(e) = budget.admit(&request) {
            return Ok(Err(e));
        }
        requests.push(request);
    }
    Ok(Ok(requests))
}

type Params = (Resource<SocketHandle>, WasmList<types::EchoRequest>);
type Call<'a> = Box<dyn Future<Output = wasmtime::Result<(SendResults,)>> + Send + 'a>;

fn send_many(mut store: StoreContextMut<'_, ProbeCtx>, (handle, list): Params) -> Call<'_> {
    Box::new(async move {
        let requests = match lift(&mut store, &list)? {
            Ok(r) => r,
            Err(e) => return Ok((Err(e),)),
        };
        let sent = match store.data_mut().send_batch(&handle, requests).await {
            Ok(results) => Ok(results),
            Err(e) => Err(e.downcast()?),
        };
        Ok((sent,))
    })
}

fn start_sending(
    mut store: StoreContextMut<'_, ProbeCtx>,
    (handle, list): Params,
) -> Box<dyn Future<Output = wasmtime::Result<(Result<(), types::Error>,)>> + Send + '_> {
    Box::new(async move {
        let requests = match lift(&mut store, &list)? {
            Ok(r) => r,
            Err(e) => return Ok((Err(e),)),
        };
        let started = match store.data_mut().start_batch(&handle, requests).await {
            Ok(()) => Ok(()),
            Err(e) => Err(e.downcast()?),
        };
        Ok((started,))
    })
}

/// Replaces the generated `send-many` and `start-sending` in `linker`.
/// Fails if the binding did not define them where expected (the WIT
/// version moved): without the replacements the unbounded lift would be
/// back.
pub(super) fn link(linker: &mut Linker<ProbeCtx>) -> wasmtime::Result<()> {
    for function in [SEND_MANY, START_SENDING] {
        // Defining it anew must fail: the binding has it already.
        let generated = match function {
            SEND_MANY => linker
                .instance(INTERFACE)?
                .func_wrap_async(function, send_many),
            _ => linker
                .instance(INTERFACE)?
                .func_wrap_async(function, start_sending),
        };
        if generated.is_ok() {
            wasmtime::bail!(
                "{INTERFACE} has no {function} to replace: update runtime/send_many.rs"
            );
        }
    }
    linker.allow_shadowing(true);
    let replaced = linker
        .instance(INTERFACE)?
        .func_wrap_async(SEND_MANY, send_many)
        .and_then(|()| {
            linker
                .instance(INTERFACE)?
                .func_wrap_async(START_SENDING, start_sending)
        });
    linker.allow_shadowing(false);
    replaced
}
