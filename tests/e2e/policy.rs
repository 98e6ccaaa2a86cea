//! Host policy from the command line: a refusal reaches the plugin as
//! `policy-denied` and ends the run with exit 2 and the rule that refused.

use std::time::Duration;

use super::util::{icmp_host, require_root, run, u};

const LIMIT: Duration = Duration::from_secs(30);

fn denied(host_args: &[&str], plugin_args: &[&str], reason: &str) {
    let mut cmd = icmp_host();
    cmd.arg("run").args(host_args).arg("ping").args(plugin_args);
    let r = run(cmd, LIMIT);
    r.assert_no_panic().assert_code(2);
    assert!(r.stderr.contains("denied by policy"), "{}", r.stderr);
    assert!(r.stderr.contains(reason), "{reason:?} in {}", r.stderr);
}

#[test]
fn destinations_outside_the_policy_are_refused() {
    if !require_root("destinations_outside_the_policy_are_refused") {
        return;
    }
    denied(
        &["--deny", "127.0.0.0/8"],
        &["127.0.0.1"],
        "127.0.0.1 is in the denied range 127.0.0.0/8",
    );
    denied(
        &["--allow", "10.0.0.0/8"],
        &["127.0.0.1"],
        "outside the allowed ranges",
    );
    denied(
        &["--strict"],
        &["::1"],
        "::1 is in the denied range ::1/128",
    );
    // The IPv4-mapped form of a denied address is the same address.
    denied(
        &["--deny", "127.0.0.0/8"],
        &["::ffff:127.0.0.1"],
        "127.0.0.1 is in the denied range",
    );
    denied(&[], &["224.0.0.1"], "multicast");
    denied(
        &["--no-names"],
        &["localhost"],
        "name lookups are not allowed",
    );
}

#[test]
fn packet_budget_and_rate() {
    if !require_root("packet_budget_and_rate") {
        return;
    }
    denied(
        &["--max-packets", "2"],
        &["127.0.0.1", "-c", "5", "-i", "0.01"],
        "budget of 2 requests is spent",
    );
    // Under a rate limit the requests wait for their turn; all are answered.
    let mut cmd = icmp_host();
    cmd.args([
        "run",
        "-q",
        "--max-pps",
        "50",
        "ping",
        "127.0.0.1",
        "-c",
        "5",
        "-i",
        "0",
    ]);
    let r = run(cmd, LIMIT);
    r.assert_code(0);
    assert_eq!(u(&r.json(), "packets_received"), 5);
}
