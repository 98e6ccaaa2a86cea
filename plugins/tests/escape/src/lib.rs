//! Tries to send to every destination given as an argument, and to enable
//! broadcast. Each must be refused by the tenant's policy; the run ends
//! with `failed`, listing the refusals — or "ESCAPED" and what got through.

include!("../../hostile_prelude.rs");

struct Escape;

impl Guest for Escape {
    fn run(args: Vec<String>) -> Result<RunOutput, RunError> {
        let mut refused = Vec::new();
        let mut escaped = Vec::new();
        for dst in &args {
            let addr = ip(dst);
            let socket = match open(family_of(&addr), Mode::Auto) {
                Ok(s) => s,
                Err(e) => return failed(format!("open for {dst}: {e:?}")),
            };
            match socket.send(&request(addr, 9, 1)) {
                Ok(_) => escaped.push(dst.clone()),
                Err(e) => refused.push(format!("{dst}: {e:?}")),
            }
        }
        match open(Family::Ipv4, Mode::Auto).map(|s| s.set_broadcast(true)) {
            Ok(Ok(())) => escaped.push("set-broadcast".into()),
            Ok(Err(e)) => refused.push(format!("set-broadcast: {e:?}")),
            Err(e) => return failed(format!("open: {e:?}")),
        }
        if escaped.is_empty() {
            failed(format!("all refused: {}", refused.join("; ")))
        } else {
            failed(format!("ESCAPED: {}", escaped.join(", ")))
        }
    }
}

export!(Escape);
