//! Uses a neighbour's guest id (`--id`) towards the same target, with
//! sequences of its own (from 1000), and takes any reply it can get: any
//! message at all, and replies matched to the neighbour's sequences 1..=64.
//! Ends at the interrupt with `failed`, saying how many replies were not
//! its own ("stole N").

include!("../../hostile_prelude.rs");

struct Thief;

const OWN_FROM: u16 = 1000;

impl Guest for Thief {
    fn run(args: Vec<String>) -> Result<RunOutput, RunError> {
        let target = ip(arg(&args, "--target").unwrap_or("127.0.0.1"));
        let id = arg(&args, "--id").and_then(|v| v.parse().ok()).unwrap_or(7);
        let socket = open(family_of(&target), Mode::Auto)
            .map_err(|e| RunError::Failed(format!("open: {e:?}")))?;
        let (mut stolen, mut own) = (0u32, 0u32);
        let mut next = OWN_FROM;
        loop {
            let _ = socket.send(&request(target, id, next));
            next = next.wrapping_add(1).max(OWN_FROM);
            let mut take = |r: Result<types::Reply, types::Error>| match r {
                Ok(r) if r.sequence >= OWN_FROM && r.id == id => {
                    own += 1;
                    true
                }
                Ok(_) => {
                    stolen += 1;
                    true
                }
                Err(types::Error::Interrupted) => false,
                Err(_) => true,
            };
            if !take(socket.receive(None, 2_000_000)) {
                break;
            }
            for sequence in 1..=64 {
                if !take(socket.receive(Some(ReplyMatch { id, sequence }), 0)) {
                    break;
                }
            }
            if icmp_host::probe::control::sleep(10_000_000).is_err() {
                break;
            }
        }
        failed(format!("stole {stolen} replies; received {own} of its own"))
    }
}

export!(Thief);
