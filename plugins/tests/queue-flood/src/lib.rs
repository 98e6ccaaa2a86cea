//! Opens as many sockets as it may and sends to an answering destination
//! on each, never receiving: replies pile up host-side. The host must bound
//! what it keeps for this tenant (and stop it with its own error); the
//! tenant must not grow the host's memory.

include!("../../hostile_prelude.rs");

struct QueueFlood;

impl Guest for QueueFlood {
    fn run(args: Vec<String>) -> Result<RunOutput, RunError> {
        let target = ip(arg(&args, "--target").unwrap_or("127.0.0.1"));
        let rules = icmp_host::probe::limits::current();
        let mut sockets = Vec::new();
        while sockets.len() < rules.max_sockets as usize {
            match open(family_of(&target), Mode::Auto) {
                Ok(s) => sockets.push(s),
                Err(_) => break,
            }
        }
        let requests: Vec<EchoRequest> = (0..rules.max_batch as usize)
            .map(|i| request(target, 1, i as u16))
            .collect();
        let mut sent: u64 = 0;
        loop {
            for s in &sockets {
                match s.send_many(&requests) {
                    Ok(results) => {
                        for r in results {
                            match r {
                                Ok(_) => sent += 1,
                                Err(types::Error::ResourceExhausted(m)) => {
                                    return failed(format!(
                                        "refused after {sent} unread replies: resource-exhausted: {m}"
                                    ));
                                }
                                Err(_) => {}
                            }
                        }
                    }
                    Err(types::Error::ResourceExhausted(m)) => {
                        return failed(format!(
                            "refused after {sent} unread replies: resource-exhausted: {m}"
                        ));
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

export!(QueueFlood);
