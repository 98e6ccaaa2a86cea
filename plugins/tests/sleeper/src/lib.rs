//! Sleeps an hour in `std::thread::sleep` (a WASI clock subscription, not
//! `control.sleep`). The run's interrupt must wake it, so it returns what
//! it has in time. With `--limits` it only reports the wall-clock limit it
//! runs under (`limits.current`).

include!("../../hostile_prelude.rs");

struct Sleeper;

impl Guest for Sleeper {
    fn run(args: Vec<String>) -> Result<RunOutput, RunError> {
        if args.iter().any(|a| a == "--limits") {
            let wall = icmp_host::probe::limits::current().wall;
            let json = format!(
                "{{\"wall_ns\":{}}}",
                wall.map_or("null".into(), |w| w.to_string())
            );
            return Ok(RunOutput::Report(Report {
                json: Some(json),
                outcome: Outcome::Reached,
            }));
        }
        let start = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_secs(3600));
        let json = format!("{{\"slept_ms\":{}}}", start.elapsed().as_millis());
        Ok(RunOutput::Report(Report {
            json: Some(json),
            outcome: Outcome::Partial,
        }))
    }
}

export!(Sleeper);
