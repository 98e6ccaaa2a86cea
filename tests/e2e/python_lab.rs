//! Python probes on the lab: ping, multiping and traceroute from Python
//! against the lab's target, a silent router and the unreachable
//! addresses, with the same hop addresses and counts as the Rust plugins
//! give; and the socket-level example catching `TimeExceeded` hop by hop.

use std::time::Duration;

use serde_json::Value;

use super::lab::{self, Lab};
use super::python::{python_plugin, python_plugins};
use super::util::{require_root, run, u};

const LIMIT: Duration = Duration::from_secs(90);

/// Only lab ranges, as every lab probe.
const POLICY: &[&str] = &["-q", "--allow", "198.18.0.0/15", "--allow", "fd00::/8"];

/// `icmp-host run` inside the lab's client namespace.
fn lab_run(lab: &Lab, plugin: &str, args: &[&str]) -> super::util::Run {
    let mut cmd = lab.client.icmp_host();
    cmd.arg("run").args(POLICY).arg(plugin).args(args);
    let r = run(cmd, LIMIT);
    r.assert_no_panic();
    r
}

/// The Python plugin and the Rust one given the same arguments: both
/// exit codes must agree; returns both JSON results.
fn both(lab: &Lab, python: &str, rust: &str, args: &[&str]) -> (Value, Value) {
    let py = python_plugin(python);
    let p = lab_run(lab, py.to_str().unwrap(), args);
    let r = lab_run(lab, rust, args);
    assert_eq!(
        p.code, r.code,
        "{python} vs {rust} {args:?}\npython: {}\nrust: {}",
        p.stderr, r.stderr
    );
    (p.json(), r.json())
}

/// What a hop list says, compared between plugins: address, distance,
/// packets sent and received, mark, responders.
fn hops(v: &Value) -> Vec<(Value, u64, u64, u64, Value, Vec<Value>)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a hop list: {v}"))
        .iter()
        .map(|h| {
            (
                h["address"].clone(),
                u(h, "distance"),
                u(h, "packets_sent"),
                u(h, "packets_received"),
                h["mark"].clone(),
                h["responders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["address"].clone())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn python_traceroute_matches_rust_on_the_lab() {
    if !require_root("python_traceroute_matches_rust_on_the_lab")
        || !python_plugins("python_traceroute_matches_rust_on_the_lab")
    {
        return;
    }
    let lab = Lab::new();
    for (target, routers) in [
        (lab::TARGET4, [lab::R1_4, lab::R2_4, lab::R3_4]),
        (lab::TARGET6, [lab::R1_6, lab::R2_6, lab::R3_6]),
    ] {
        let (p, r) = both(&lab, "python-trace", "traceroute", &[target, "-w", "1"]);
        assert_eq!(hops(&p), hops(&r), "{target}");
        let addresses: Vec<&str> = p
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["address"].as_str().unwrap())
            .collect();
        assert_eq!(addresses, [routers[0], routers[1], routers[2], target]);
    }
    // Unreachable, prohibited, no route: the trace stops at r3 with its mark.
    for (target, mark) in [
        (lab::UNREACHABLE4, "!H"),
        (lab::PROHIBITED4, "!X"),
        (lab::NOROUTE4, "!N"),
        (lab::UNREACHABLE6, "!N"),
        (lab::PROHIBITED6, "!X"),
    ] {
        let (p, r) = both(&lab, "python-trace", "traceroute", &[target, "-w", "1"]);
        assert_eq!(hops(&p), hops(&r), "{target}");
        assert_eq!(p.as_array().unwrap().len(), 3, "{target}");
        assert_eq!(p[2]["mark"], mark, "{target}");
    }
    // --fast: one probe per answering hop, as the Rust plugin sends.
    let (p, r) = both(
        &lab,
        "python-trace",
        "traceroute",
        &[lab::TARGET4, "-w", "1", "-q", "3", "--fast"],
    );
    assert_eq!(hops(&p), hops(&r));
    assert!(
        p.as_array()
            .unwrap()
            .iter()
            .all(|h| u(h, "packets_sent") == 1)
    );

    // A silent router stays in the list as a hop without an address.
    lab.silence(&lab.r2);
    let (p, r) = both(
        &lab,
        "python-trace",
        "traceroute",
        &[lab::TARGET4, "-w", "0.5"],
    );
    assert_eq!(hops(&p), hops(&r));
    assert!(p[1]["address"].is_null(), "{p}");
    assert_eq!(u(&p[1], "packets_sent"), 2);
    assert_eq!(p[1]["is_alive"], false);
    assert_eq!(p[3]["address"], lab::TARGET4);
}

#[test]
fn python_ping_and_multiping_match_rust_on_the_lab() {
    if !require_root("python_ping_and_multiping_match_rust_on_the_lab")
        || !python_plugins("python_ping_and_multiping_match_rust_on_the_lab")
    {
        return;
    }
    let lab = Lab::new();
    let count = |v: &Value, status: &str| {
        v["probes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["status"] == status)
            .count()
    };
    // The target answers; an unreachable address answers with errors, kept
    // per probe; a blackholed one times out.
    for target in [
        lab::TARGET4,
        lab::TARGET6,
        lab::UNREACHABLE4,
        lab::BLACKHOLE6,
    ] {
        let args = [target, "-c", "3", "-i", "0.1", "-W", "0.5"];
        let (p, r) = both(&lab, "python-ping", "ping", &args);
        for key in ["address", "packets_sent", "packets_received", "is_alive"] {
            assert_eq!(p[key], r[key], "{target} {key}");
        }
        for status in ["reply", "error", "timeout"] {
            assert_eq!(count(&p, status), count(&r, status), "{target} {status}");
        }
    }
    // multiping: alive flags in input order, names from the lab's hosts file.
    let targets = [
        lab::TARGET4,
        lab::UNREACHABLE4,
        "target6.lab",
        lab::BLACKHOLE4,
        lab::R1_6,
        lab::NOROUTE4,
    ];
    let mut args = targets.to_vec();
    args.extend(["-c", "2", "-i", "0.1", "-W", "0.5"]);
    let (p, r) = both(&lab, "python-ping", "multiping", &args);
    let summary = |v: &Value| -> Vec<(Value, Value, Value, Value)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["target"].clone(),
                    h["address"].clone(),
                    h["is_alive"].clone(),
                    h["packets_sent"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(summary(&p), summary(&r));
    let alive: Vec<bool> = p
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["is_alive"].as_bool().unwrap())
        .collect();
    assert_eq!(alive, [true, false, true, false, true, false]);
    assert_eq!(p[2]["address"], lab::TARGET6);
}

#[test]
fn python_sockets_example_catches_time_exceeded_hop_by_hop() {
    if !require_root("python_sockets_example_catches_time_exceeded_hop_by_hop")
        || !python_plugins("python_sockets_example_catches_time_exceeded_hop_by_hop")
    {
        return;
    }
    let lab = Lab::new();
    let py = python_plugin("python-sockets");
    let r = lab_run(&lab, py.to_str().unwrap(), &[lab::TARGET4, "-w", "1"]);
    r.assert_code(0);
    let hops = r.json();
    let hops = hops.as_array().unwrap();
    assert_eq!(hops.len(), 4);
    for (hop, router) in hops.iter().zip([lab::R1_4, lab::R2_4, lab::R3_4]) {
        assert_eq!(hop["source"], router);
        assert_eq!(hop["error"], "Time to live exceeded");
    }
    assert_eq!(hops[3]["source"], lab::TARGET4);
    assert!(hops[3]["error"].is_null());

    // DestinationUnreachable ends it, as the example catches it.
    let r = lab_run(&lab, py.to_str().unwrap(), &[lab::UNREACHABLE4, "-w", "1"]);
    r.assert_code(1);
    let hops = r.json();
    let last = hops.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["source"], lab::R3_4);
    assert_eq!(last["error"], "Destination Host Unreachable");

    // Names come from the lab's hosts file; with --no-names the policy
    // refuses the lookup, and the error names its rule.
    let mut cmd = lab.client.icmp_host();
    cmd.arg("run")
        .args(POLICY)
        .arg("--no-names")
        .arg(&py)
        .arg("target.lab");
    let denied = run(cmd, LIMIT);
    denied.assert_no_panic().assert_code(2);
    assert!(
        denied.stderr.contains("denied by policy (names)"),
        "{}",
        denied.stderr
    );
}
