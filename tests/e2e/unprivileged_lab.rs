//! Issue 5: unprivileged mode — datagram ICMP sockets with errors from the
//! error queue — run as a non-root user inside the lab's client namespace,
//! where (and only where) `net.ipv4.ping_group_range` is widened.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::lab::{self, Lab};
use super::util::{bin, require_root, run, u};

const LIMIT: Duration = Duration::from_secs(90);
/// `nobody` / `nogroup`.
const UID: u32 = 65534;

/// A compiled-plugin cache the unprivileged user owns (the host refuses
/// caches owned by anyone else).
fn user_cache() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cache-uid{UID}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(UID), Some(UID)).unwrap();
    dir
}

/// `icmp-host` as `nobody` inside the lab's client namespace.
fn unprivileged(lab: &Lab, args: &[&str]) -> super::util::Run {
    let probe = lab.client.icmp_host(); // asserts the namespace is ours
    drop(probe);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.client.name, "setpriv"])
        .args([format!("--reuid={UID}"), format!("--regid={UID}")])
        .args(["--clear-groups", "--", bin(), "run"])
        .args(args)
        .env("ICMP_HOST_CACHE_DIR", user_cache());
    let r = run(cmd, LIMIT);
    r.assert_no_panic();
    r
}

fn privileged(lab: &Lab, args: &[&str]) -> super::util::Run {
    let mut cmd = lab.client.icmp_host();
    cmd.arg("run").args(args);
    let r = run(cmd, LIMIT);
    r.assert_no_panic();
    r
}

fn open_ping_group(lab: &Lab) {
    lab.client
        .sysctl("net.ipv4.ping_group_range", "0 2147483647");
}

/// What both modes must agree on, per hop or per probe.
fn summary(v: &serde_json::Value) -> Vec<String> {
    let list = match v.as_array() {
        Some(list) => list.clone(),
        None => vec![v.clone()],
    };
    list.iter()
        .map(|h| {
            let probes: Vec<String> = h["probes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}/{}/{}",
                        p["status"], p["source"], p["type"], p["code"]
                    )
                })
                .collect();
            format!(
                "{} sent={} received={} alive={} [{}]",
                h["address"],
                h["packets_sent"],
                h["packets_received"],
                h["is_alive"],
                probes.join(" ")
            )
        })
        .collect()
}

#[test]
fn unprivileged_ping_v4_and_v6() {
    if !require_root("unprivileged_ping_v4_and_v6") {
        return;
    }
    let lab = Lab::new();
    open_ping_group(&lab);
    for target in [lab::TARGET4, lab::TARGET6] {
        let r = unprivileged(&lab, &["ping", target, "-c", "3", "-i", "0.05"]);
        r.assert_code(0);
        let v = r.json();
        assert_eq!(u(&v, "packets_received"), 3, "{v}");
        for p in v["probes"].as_array().unwrap() {
            assert_eq!(u(p, "ttl"), 61, "{p}");
            // Datagram sockets report transmit stamps too.
            assert_eq!(p["timestamp_source"], "kernel-both", "{p}");
        }
    }
}

#[test]
fn unprivileged_traceroute_matches_privileged() {
    if !require_root("unprivileged_traceroute_matches_privileged") {
        return;
    }
    let lab = Lab::new();
    open_ping_group(&lab);
    for target in [
        lab::TARGET4,
        lab::TARGET6,
        lab::UNREACHABLE4,
        lab::PROHIBITED6,
    ] {
        let args = ["traceroute", target, "-w", "1"];
        let user = unprivileged(&lab, &args);
        let root = privileged(&lab, &args);
        assert_eq!(user.code, root.code, "{target}");
        let (user_hops, root_hops) = (user.json(), root.json());
        assert_eq!(summary(&user_hops), summary(&root_hops), "{target}");
        let marks = |v: &serde_json::Value| -> Vec<serde_json::Value> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|h| h["mark"].clone())
                .collect()
        };
        assert_eq!(marks(&user_hops), marks(&root_hops));
        assert!(user_hops.as_array().unwrap().len() >= 3);
    }
}

#[test]
fn unprivileged_unreachable_reaches_the_plugin_with_its_code() {
    if !require_root("unprivileged_unreachable_reaches_the_plugin_with_its_code") {
        return;
    }
    let lab = Lab::new();
    open_ping_group(&lab);
    for (target, t, c) in [
        (lab::UNREACHABLE4, 3, 1),
        (lab::PROHIBITED4, 3, 13),
        (lab::UNREACHABLE6, 1, 0),
    ] {
        let args = ["ping", target, "-c", "2", "-i", "0.05", "-W", "1"];
        let user = unprivileged(&lab, &args);
        user.assert_code(1);
        let v = user.json();
        for p in v["probes"].as_array().unwrap() {
            assert_eq!(p["status"], "error", "{p}");
            assert_eq!((u(p, "type"), u(p, "code")), (t, c), "{p}");
            assert_eq!(
                p["source"],
                if target.contains(':') {
                    lab::R3_6
                } else {
                    lab::R3_4
                }
            );
        }
        assert_eq!(
            summary(&v),
            summary(&privileged(&lab, &args).json()),
            "{target}"
        );
    }
}

#[test]
fn unprivileged_multiping_matches_privileged() {
    if !require_root("unprivileged_multiping_matches_privileged") {
        return;
    }
    let lab = Lab::new();
    open_ping_group(&lab);
    let args = [
        "multiping",
        "-W",
        "0.5",
        "-i",
        "0.05",
        lab::R1_4,
        lab::TARGET4,
        lab::TARGET6,
        lab::UNREACHABLE4,
        lab::BLACKHOLE4,
    ];
    let user = unprivileged(&lab, &args);
    let root = privileged(&lab, &args);
    user.assert_code(1);
    assert_eq!(summary(&user.json()), summary(&root.json()));
    let alive: Vec<bool> = user
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["is_alive"] == true)
        .collect();
    assert_eq!(alive, vec![true, true, true, false, false]);
}

#[test]
fn without_root_or_ping_group_the_message_says_how_to_fix_it() {
    if !require_root("without_root_or_ping_group_the_message_says_how_to_fix_it") {
        return;
    }
    let lab = Lab::new();
    lab.client.sysctl("net.ipv4.ping_group_range", "1 0"); // closed
    let r = unprivileged(&lab, &["ping", lab::TARGET4, "-c", "1"]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("net.ipv4.ping_group_range"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("setcap cap_net_raw+ep"), "{}", r.stderr);
    // Asking for raw sockets explicitly says so too.
    open_ping_group(&lab);
    let r = unprivileged(&lab, &["ping", "--privileged", lab::TARGET4, "-c", "1"]);
    r.assert_code(2);
    assert!(r.stderr.contains("CAP_NET_RAW"), "{}", r.stderr);
}

#[test]
fn privileged_host_can_be_told_to_use_datagram_sockets() {
    if !require_root("privileged_host_can_be_told_to_use_datagram_sockets") {
        return;
    }
    let lab = Lab::new();
    open_ping_group(&lab);
    let r = privileged(
        &lab,
        &["--no-privileged", "traceroute", lab::TARGET4, "-w", "1"],
    );
    r.assert_code(0);
    assert_eq!(r.json().as_array().unwrap().len(), 4);
    let r = privileged(&lab, &["ping", "--unprivileged", lab::TARGET6, "-c", "1"]);
    r.assert_code(0);
}
