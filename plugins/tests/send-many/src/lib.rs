//! One `send-many` of a million requests (the host must refuse it whole,
//! at once), then `send-many` of the largest allowed batch in a loop, never
//! stopping on its own: the CPU and wall-clock limits must end it, however
//! much of its time is spent inside the host. `--batches-only` skips the
//! million (and the 100 MiB it leaves in the guest's memory), so that
//! many can run at once.

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
        loop {
            let _ = socket.send_many(&requests);
        }
    }
}

export!(SendMany);
