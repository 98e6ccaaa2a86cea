//! One `send-many` of a million requests (the host must refuse it whole,
//! at once), then `send-many` of the largest allowed batch in a loop, never
//! stopping on its own: the CPU and wall-clock limits must end it, however
//! much of its time is spent inside the host. `--batches-only` skips the
//! million (and the 100 MiB it leaves in the guest's memory), so that
//! many can run at once.
//!
//! `--started` does the same with `start-sending`: a million refused, a
//! third batch begun refused (on the same socket, or spread over three),
//! a finish with nothing begun empty, batches begun on a socket then
//! closed never finished, a start on a closed socket refused; then full
//! batches begun two at a time and never finished, starts refused in a
//! loop.

include!("../../hostile_prelude.rs");

struct SendMany;

impl Guest for SendMany {
    fn run(args: Vec<String>) -> Result<RunOutput, RunError> {
        let target = ip(arg(&args, "--target").unwrap_or("127.0.0.1"));
        let socket = open(family_of(&target), Mode::Auto)
            .map_err(|e| RunError::Failed(format!("open: {e:?}")))?;
        if !args.iter().any(|a| a == "--batches-only") {
            let million: Vec<EchoRequest> = (0..1_000_000u32)
                .map(|i| request(target, (i >> 16) as u16, i as u16))
                .collect();
            match socket.send_many(&million) {
                Err(types::Error::InvalidArgument(_)) => {}
                Ok(sent) => {
                    return failed(format!("the host took {} requests in one call", sent.len()));
                }
                Err(e) => return failed(format!("a million requests: {e:?}")),
            }
        }
        let batch = icmp_host::probe::limits::current().max_batch as usize;
        let requests: Vec<EchoRequest> = (0..batch).map(|i| request(target, 7, i as u16)).collect();
        if args.iter().any(|a| a == "--started") {
            return started(&socket, target, &requests);
        }
        loop {
            let _ = socket.send_many(&requests);
        }
    }
}

/// `--started`: see the module docs. Returns only on a broken promise.
fn started(
    socket: &IcmpSocket,
    target: IpAddress,
    requests: &[EchoRequest],
) -> Result<RunOutput, RunError> {
    let million: Vec<EchoRequest> = (0..1_000_000u32)
        .map(|i| request(target, (i >> 16) as u16, i as u16))
        .collect();
    if !matches!(socket.start_sending(&million), Err(types::Error::InvalidArgument(_))) {
        return failed("the host began a million requests");
    }
    drop(million);
    match socket.finish_sending() {
        Ok(r) if r.is_empty() => {}
        other => return failed(format!("finish with nothing begun: {other:?}")),
    }
    for n in 0..2 {
        if let Err(e) = socket.start_sending(requests) {
            return failed(format!("batch {n} refused: {e:?}"));
        }
    }
    if !matches!(socket.start_sending(requests), Err(types::Error::InvalidArgument(_))) {
        return failed("a third batch was begun");
    }
    for n in 0..2 {
        match socket.finish_sending() {
            Ok(r) if r.len() == requests.len() => {}
            other => return failed(format!("batch {n}: {:?}", other.map(|r| r.len()))),
        }
    }
    // Begun, then the socket closed: nothing is left to finish.
    let other = open(family_of(&target), Mode::Auto)
        .map_err(|e| RunError::Failed(format!("open: {e:?}")))?;
    let _ = other.start_sending(requests);
    other.close();
    match other.finish_sending() {
        Ok(r) if r.is_empty() => {}
        Err(_) => {}
        Ok(r) => return failed(format!("{} results from a closed socket", r.len())),
    }
    // On a closed socket: refused.
    if !matches!(other.start_sending(requests), Err(types::Error::SocketUnavailable)) {
        return failed("a batch was begun on a closed socket");
    }
    // Two batches at most over all sockets, not per socket.
    let mut spread = Vec::new();
    for n in 0..3 {
        let s = open(family_of(&target), Mode::Auto)
            .map_err(|e| RunError::Failed(format!("open: {e:?}")))?;
        let begun = s.start_sending(requests);
        match (n, begun) {
            (0 | 1, Ok(())) | (2, Err(types::Error::InvalidArgument(_))) => {}
            (n, other) => return failed(format!("socket {n} of 3: {other:?}")),
        }
        spread.push(s);
    }
    drop(spread);
    // Two batches begun and never finished; then starts refused forever.
    let _ = socket.start_sending(requests);
    let _ = socket.start_sending(requests);
    loop {
        let _ = socket.start_sending(requests);
    }
}

export!(SendMany);
