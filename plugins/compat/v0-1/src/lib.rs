//! Built against `icmp-host:probe@0.1.0`, as a plugin written before 0.2
//! was: resolves its target, pings it with `send` and `send-many`, emits a
//! note, and reports what came back. The host serves 0.1 beside 0.2.

// What `wit_bindgen::generate!({ path: "../../../wit/0.1.0", world:
// "probe" })` expands to, generated ahead of time
// (guest-sdk/tests/bindings.rs), in a module of its own so the generated
// code is not linted as ours.
#[allow(clippy::all)]
mod bindings {
    include!("bindings.rs");
}
use bindings::*;

use icmp_host::probe::{dns, progress, sockets, types};

struct Old;

impl Guest for Old {
    fn run(args: Vec<String>) -> Result<types::RunOutput, types::RunError> {
        let target = args
            .first()
            .ok_or_else(|| types::RunError::Usage("missing HOST".into()))?;
        let failed = |e: types::Error| types::RunError::Failed(format!("{e:?}"));
        let destination = dns::resolve(target, Some(types::Family::Ipv4))
            .map_err(failed)?
            .into_iter()
            .next()
            .ok_or_else(|| types::RunError::Failed("no address".into()))?;
        let socket = sockets::IcmpSocket::open(&sockets::OpenOptions {
            family: types::Family::Ipv4,
            source: None,
            mode: types::Mode::Auto,
            interface: None,
        })
        .map_err(failed)?;
        let request = |sequence| types::EchoRequest {
            destination,
            id: 7,
            sequence,
            payload: None,
            payload_size: 56,
            ttl: 64,
            traffic_class: 0,
            dont_fragment: false,
        };
        socket.send(&request(1)).map_err(failed)?;
        let batch = socket.send_many(&[request(2), request(3)]);
        let batched = batch.iter().filter(|r| r.is_ok()).count();
        let mut sequences = Vec::new();
        for sequence in 1..=3 {
            let m = sockets::ReplyMatch { id: 7, sequence };
            if let Ok(reply) = socket.receive(Some(m), 2_000_000_000) {
                sequences.push(reply.sequence.to_string());
            }
        }
        progress::emit(&progress::Event::Note("written against 0.1.0".into()));
        let json = format!(
            "{{\"batched\":{batched},\"answered\":[{}]}}",
            sequences.join(",")
        );
        let outcome = if sequences.len() == 3 {
            types::Outcome::Reached
        } else {
            types::Outcome::NotReached
        };
        Ok(types::RunOutput::Report(types::Report {
            json: Some(json),
            outcome,
        }))
    }
}

export!(Old);
