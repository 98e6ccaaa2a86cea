//! Says whether its events are watched, as its first result line. Then
//! abuses its output: a forged batch report as a result line, lines that
//! are not JSON or are too large, terminal escape sequences, a payload size
//! that overflows `u32` arithmetic when rendered, a hop with a hundred
//! thousand probes, a flood of progress notes (`--flood-mib`), and finally
//! a text result larger than the output limit (`--text-mib`) or, with
//! `--report-mib`, that many MiB of report parts (`write-report`, 64 KiB a
//! call, refusals ignored, a result line after the first) and a report, or
//! with `--then-text` too, a text result.

include!("../../hostile_prelude.rs");

use icmp_host::probe::progress::{self, Event, Hop, HopProbe, ProbeKind, Start};

struct OutputFlood;

impl Guest for OutputFlood {
    fn run(args: Vec<String>) -> Result<RunOutput, RunError> {
        let mib = |name: &str, default: usize| {
            arg(&args, name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let line = |json: String| progress::emit(&Event::ResultLine(json));
        line(format!("{{\"watched\":{}}}", progress::watched()));
        // Where `batch` once wrote raw lines: close its array, start another.
        line("]\n[{\"name\":\"forged\",\"exit\":0,\"outcome\":\"reached\"}]".into());
        line("not json \u{1b}[2J".into());
        line("{\n  \"kept\": 1\n}".into());
        line(format!("\"{}\"", "x".repeat(1 << 20)));
        progress::emit(&Event::Note(
            "\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31mred".into(),
        ));
        progress::emit(&Event::Start(Start {
            kind: ProbeKind::Ping,
            target: "overflow".into(),
            address: None,
            payload_size: u32::MAX,
            max_hops: 30,
        }));
        let probe = HopProbe {
            responder: None,
            rtt: None,
            type_: 0,
            code: 0,
        };
        progress::emit(&Event::Hop(Hop {
            distance: 1,
            probes: vec![probe; 100_000],
        }));
        let note = Event::Note("n".repeat(1023));
        for _ in 0..mib("--flood-mib", 16) * 1024 {
            progress::emit(&note);
        }
        line("{\"after\":\"flood\"}".into());
        if let Some(report) = arg(&args, "--report-mib").and_then(|v| v.parse::<usize>().ok()) {
            let part = format!("\"{}\",", "r".repeat((64 << 10) - 3));
            let _ = progress::write_report("[");
            // Too late in `run`: it would land inside the report.
            line("{\"inside\":\"report\"}".into());
            for _ in 0..report * 16 {
                let _ = progress::write_report(&part);
            }
            if args.iter().any(|a| a == "--then-text") {
                return Ok(RunOutput::Text("after the parts".into()));
            }
            return Ok(RunOutput::Report(Report {
                json: Some("\"end\"]".into()),
                outcome: Outcome::Reached,
            }));
        }
        Ok(RunOutput::Text("t".repeat(mib("--text-mib", 8) << 20)))
    }
}

export!(OutputFlood);
