//! `icmp-host run ping 127.0.0.1 -c 1` with a warm cache, timed next to
//! iputils `ping -c 1 127.0.0.1` in the same run (median of 21).

#[path = "common.rs"]
mod common;

use std::process::Command;

const RUNS: usize = 21;

fn main() {
    if !common::root_or_skip("startup") {
        return;
    }
    let ours = || {
        let mut c = common::icmp_host();
        c.args(["run", "-q", "ping", "127.0.0.1", "-c", "1"]);
        c
    };
    let _ = common::timed(&mut ours(), ""); // warm the compiled-plugin cache
    let median = |mut make: Box<dyn FnMut() -> Command>| {
        common::median(
            (0..RUNS)
                .map(|_| common::timed(&mut make(), "").0)
                .collect(),
        )
    };
    println!("one ping to 127.0.0.1, whole process, median of {RUNS}");
    let t = median(Box::new(ours));
    println!(
        "{:<40} {:>8.2} ms",
        "icmp-host run ping 127.0.0.1 -c 1",
        t.as_secs_f64() * 1e3
    );
    if common::have("ping") {
        let t = median(Box::new(|| {
            let mut c = Command::new("ping");
            c.args(["-c", "1", "-q", "127.0.0.1"]);
            c
        }));
        println!(
            "{:<40} {:>8.2} ms",
            "iputils ping -c 1 127.0.0.1",
            t.as_secs_f64() * 1e3
        );
    } else {
        println!("iputils ping not installed (apt-get install iputils-ping)");
    }
}
