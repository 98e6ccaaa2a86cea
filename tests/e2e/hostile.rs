//! Hostile plugins: each is a real component under `plugins/tests/`, with
//! one named test here; `every_hostile_plugin_has_a_test` keeps it so.

use std::time::Duration;

use super::util::{icmp_host, plugin, run};

const LIMIT: Duration = Duration::from_secs(60);

/// Names of the hostile plugins tested below.
const TESTED: &[&str] = &["trap", "spin", "hog", "forbidden"];

#[test]
fn every_hostile_plugin_has_a_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/tests");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            TESTED.contains(&name.as_str()),
            "plugins/tests/{name} has no test"
        );
        assert!(plugin(&name).exists(), "{name}.wasm was not built");
    }
}

fn run_hostile(name: &str, host_args: &[&str]) -> super::util::Run {
    let mut cmd = icmp_host();
    cmd.arg("run").args(host_args).arg(plugin(name));
    let r = run(cmd, LIMIT);
    r.assert_no_panic().assert_code(2);
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.starts_with("icmp-host:"))
            .count(),
        1,
        "{}",
        r.stderr
    );
    r
}

#[test]
fn trap() {
    let r = run_hostile("trap", &[]);
    assert!(
        r.stderr.contains("icmp-host: trap: plugin trapped: "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("unreachable"),
        "names the trap: {}",
        r.stderr
    );
}

#[test]
fn spin() {
    let r = run_hostile("spin", &["--cpu-time", "0.5"]);
    assert!(
        r.stderr.contains("exceeded its CPU time limit of 500ms"),
        "{}",
        r.stderr
    );
    // With a large CPU budget, the wall clock ends it (it ignores interrupts).
    let r = run_hostile("spin", &["--cpu-time", "100", "--wall-time", "0.5"]);
    assert!(
        r.stderr
            .contains("did not finish within the wall-clock limit"),
        "{}",
        r.stderr
    );
}

#[test]
fn hog() {
    let r = run_hostile("hog", &["--memory", "32"]);
    assert!(
        r.stderr.contains("exceeded its memory limit of 32 MiB"),
        "{}",
        r.stderr
    );
}

#[test]
fn forbidden() {
    // It imports the WASI filesystem, which the host serves with no
    // directory at all: it loads, and reading /etc/passwd finds nothing.
    let r = run_hostile("forbidden", &[]);
    assert!(
        r.stderr
            .contains("icmp-host: forbidden: No such file or directory"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("root:"), "{}", r.stdout);
}
