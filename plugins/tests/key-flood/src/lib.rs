//! Floods the engine's shared wire-key table: requests to a silent
//! destination are never answered, so each one holds a key until it
//! expires. With `--poison` it first asks for a receive timeout of
//! `u64::MAX`, which must not raise how long keys are kept for anybody.
//! Stops with the host's words at the first refusal (its quota).

include!("../../hostile_prelude.rs");

struct KeyFlood;

impl Guest for KeyFlood {
    fn run(args: Vec<String>) -> Result<RunOutput, RunError> {
        let target = ip(arg(&args, "--target").unwrap_or("127.0.0.99"));
        let socket = open(family_of(&target), Mode::Auto)
            .map_err(|e| RunError::Failed(format!("open: {e:?}")))?;
        if args.iter().any(|a| a == "--poison") {
            let echo = ip(arg(&args, "--echo").unwrap_or("127.0.0.1"));
            let answered = open(family_of(&echo), Mode::Auto)
                .map_err(|e| RunError::Failed(format!("open: {e:?}")))?;
            let _ = answered.send(&request(echo, 1, 1));
            let _ = answered.receive(Some(ReplyMatch { id: 1, sequence: 1 }), u64::MAX);
        }
        let batch = icmp_host::probe::limits::current().max_batch;
        let mut sent: u64 = 0;
        loop {
            let requests: Vec<EchoRequest> = (0..batch)
                .map(|i| {
                    let n = sent + u64::from(i);
                    request(target, (n >> 16) as u16, n as u16)
                })
                .collect();
            let results = socket
                .send_many(&requests)
                .map_err(|e| RunError::Failed(format!("send-many: {e:?}")))?;
            for r in results {
                match r {
                    Ok(_) => sent += 1,
                    Err(e) => return failed(format!("refused after {sent} requests: {e:?}")),
                }
            }
        }
    }
}

export!(KeyFlood);
