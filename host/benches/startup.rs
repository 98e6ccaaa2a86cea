//! One ping to 127.0.0.1, whole process from spawn to exit, warm cache:
//! `icmp-host run -q ping 127.0.0.1 -c 1` next to iputils
//! `ping -c1 -W1 127.0.0.1` and `fping -c1 127.0.0.1` in the same run
//! (rounds alternate between the tools; medians).
//!
//! Ours runs from three files with the same bytes, whose pages reached the
//! page cache in different ways (see `common::PageCache`): a fresh copy
//! (as installed), a copy dropped from the cache and read back by a run
//! (as after a reboot), and the linker's output in the target directory.

#[path = "common.rs"]
mod common;
#[path = "../../tests/e2e/elf.rs"]
mod elf;

use std::process::Command;
use std::time::Duration;

use common::{PageCache, median, ms};

const RUNS: usize = 41;

/// Makes one tool's command.
type Make = Box<dyn Fn() -> Command>;
const LIMIT: Duration = Duration::from_secs(10);

fn main() {
    if !common::root_or_skip("startup") {
        return;
    }
    let ours = |path: std::path::PathBuf| -> Make {
        Box::new(move || {
            let mut c = common::icmp_host_at(&path);
            c.args(["run", "-q", "ping", "127.0.0.1", "-c", "1"]);
            c
        })
    };
    let binary = common::binary();
    let bytes = std::fs::read(&binary).expect("reading the binary under test");
    let installed = common::copy_in(&bytes, PageCache::Installed);
    // Read back by the warm-up run below.
    let read_back = common::copy_in(&bytes, PageCache::ReadBack);
    let image = elf::Elf::new(bytes);
    let iputils = || {
        let mut c = Command::new("ping");
        c.args(["-c1", "-W1", "-q", "127.0.0.1"]);
        c
    };
    let fping = || {
        let mut c = Command::new("fping");
        c.args(["-c1", "-q", "127.0.0.1"]);
        c
    };
    println!(
        "ours: icmp-host run -q ping 127.0.0.1 -c 1 ({})",
        binary.display()
    );
    println!("{}", code_order(&image));
    println!("{}", relocations(&image));
    drop(image);
    let mut tools: Vec<(&str, Make)> = vec![
        ("icmp-host, installed (fresh copy)", ours(installed)),
        ("icmp-host, read back after eviction", ours(read_back)),
        ("icmp-host, as linked (target dir)", ours(binary)),
    ];
    let own = tools.len();
    for (name, program, make) in [
        (
            "ping -c1 -W1 127.0.0.1 (iputils)",
            "ping",
            Box::new(iputils) as Make,
        ),
        ("fping -c1 127.0.0.1", "fping", Box::new(fping)),
    ] {
        if common::have(program) {
            tools.push((name, make));
        } else {
            println!("{name}: not installed");
        }
    }
    // Warm the compiled-plugin cache and the page cache.
    for (_, make) in &tools {
        let _ = common::measure(&mut make(), "", LIMIT);
    }
    let mut samples: Vec<Vec<common::Measured>> = tools.iter().map(|_| Vec::new()).collect();
    for _ in 0..RUNS {
        for (i, (_, make)) in tools.iter().enumerate() {
            samples[i].push(common::measure_with_rss(make, "", LIMIT));
        }
    }
    println!("one ping to 127.0.0.1, spawn to exit, median of {RUNS}");
    println!(
        "{:<40} {:>8} {:>8} {:>8} {:>6}",
        "tool", "wall ms", "cpu ms", "RSS MiB", "exit 0"
    );
    let mut walls = Vec::new();
    for ((name, _), runs) in tools.iter().zip(&samples) {
        let wall = median(runs.iter().map(|m| ms(m.wall)).collect());
        // The total only: a run this short is split between user and
        // system time by the few ticks it lasts, all to one or the other.
        let cpu = median(runs.iter().map(|m| ms(m.cpu())).collect());
        let rss = median(runs.iter().map(common::rss_mib).collect());
        let ok = runs.iter().filter(|m| m.code == Some(0)).count();
        println!("{name:<40} {wall:>8.2} {cpu:>8.2} {rss:>8.1} {ok:>3}/{RUNS}");
        walls.push((*name, wall));
    }
    let (ours, peers) = walls.split_at(own);
    for (peer, goal) in [("iputils", "<= 1.5x"), ("fping", "(reported)")] {
        if let Some((_, wall)) = peers.iter().find(|(name, _)| name.contains(peer)) {
            for (name, ours) in ours {
                let state = name.trim_start_matches("icmp-host, ");
                common::verdict(&format!("start-up vs {peer}, {state}"), ours / wall, goal);
            }
        }
    }
}

/// How many of the functions `host/build/startup.order` names the binary
/// has: the linker put those first in `.text`. Few means a stale order
/// (regenerate it with `host/build/startup-order.sh`) or a build that is
/// not a release one.
fn code_order(image: &elf::Elf) -> String {
    let functions = image.functions();
    let order: Vec<&str> = elf::startup_order().collect();
    let found = order.iter().filter(|n| functions.contains_key(*n)).count();
    format!(
        "start-up code order: {found} of the {} functions in host/build/startup.order are in it",
        order.len()
    )
}

/// What the loader writes at every start: a position independent
/// executable's pointers in static data (vtables, panic locations, format
/// strings' pieces), each page of them copied on write. A non-PIE binary
/// would have none; it would also lose its random address.
fn relocations(image: &elf::Elf) -> String {
    let relocated = image.relocated();
    let pages: std::collections::HashSet<usize> = relocated.iter().map(|a| a >> 12).collect();
    format!(
        "relocated at each start: {} pointers on {} pages",
        relocated.len(),
        pages.len()
    )
}
