//! Issue 11 on the lab: the example plugins `mtu` and `sweep`, and ping
//! carrying on past a Don't-Fragment request too big for the path.

use std::time::Duration;

use super::lab::{self, Lab};
use super::util::{Run, plugin, require_root, run, u};

const LIMIT: Duration = Duration::from_secs(90);

/// Runs `icmp-host run --allow <lab ranges> [host args] <plugin> [args]`
/// in the lab's client.
fn icmp_host(lab: &Lab, host_args: &[&str], plugin_and_args: &[&str]) -> Run {
    let mut cmd = lab.client.icmp_host();
    cmd.args(["run", "--allow", "198.18.0.0/15", "--allow", "fd00::/8"])
        .args(host_args)
        .args(plugin_and_args);
    let r = run(cmd, LIMIT);
    r.assert_no_panic();
    r
}

/// A lab whose r2–r3 link carries at most 1280 bytes.
fn narrow_lab() -> Lab {
    let lab = Lab::new();
    lab.r2.ip(&["link", "set", "eth1", "mtu", "1280"]);
    lab.r3.ip(&["link", "set", "eth0", "mtu", "1280"]);
    lab
}

#[test]
fn mtu_finds_the_narrow_link_and_who_reported_it() {
    if !require_root("mtu_finds_the_narrow_link_and_who_reported_it") {
        return;
    }
    let lab = narrow_lab();
    let mtu = plugin("mtu");
    let mtu = mtu.to_str().unwrap();
    for (target, router) in [(lab::TARGET4, lab::R2_4), (lab::TARGET6, lab::R2_6)] {
        let r = icmp_host(&lab, &[], &[mtu, target, "-W", "1"]);
        r.assert_code(0);
        let v = r.json();
        assert_eq!(u(&v, "mtu"), 1280, "{v}");
        assert_eq!(v["reported_by"], router, "{v}");
        assert_eq!(v["address"], target);
        // Largest first (refused here: the interface's 1500), then 1500
        // (the router's Packet Too Big), then 1280 (through).
        assert_eq!(u(&v, "probes"), 2, "{v}\n{}", r.stderr);
        assert!(r.stderr.contains("too big here (mtu 1500)"), "{}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("too big (mtu 1280 from {router})")),
            "{}",
            r.stderr
        );
    }
    // Asked again, the kernel knows the path MTU: this host reports it.
    let r = icmp_host(&lab, &[], &[mtu, lab::TARGET4]);
    let v = r.json();
    assert_eq!(
        (u(&v, "mtu"), v["reported_by"].as_str()),
        (1280, Some("local"))
    );
}

#[test]
fn sweep_streams_the_live_hosts_of_a_lab_subnet() {
    if !require_root("sweep_streams_the_live_hosts_of_a_lab_subnet") {
        return;
    }
    let lab = Lab::new();
    let sweep = plugin("sweep");
    let sweep = sweep.to_str().unwrap();
    // 198.18.4.1-6: r3 and the target live; 198.18.5.1-6: unreachable,
    // prohibited, blackholed, no route.
    let r = icmp_host(
        &lab,
        &[],
        &[sweep, "198.18.4.0/29", "198.18.5.0/29", "-W", "1"],
    );
    r.assert_code(1); // some answered, some did not
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let mut alive: Vec<&str> = lines
        .iter()
        .map(|v| v["address"].as_str().unwrap())
        .collect();
    alive.sort();
    assert_eq!(alive, ["198.18.4.1", "198.18.4.2"], "{}", r.stdout);
    assert!(lines.iter().all(|v| v["rtt"].as_f64().unwrap() > 0.0));
    for note in [
        "198.18.5.1: Destination Host Unreachable from 198.18.3.2",
        "198.18.5.2: Communication administratively prohibited from 198.18.3.2",
        "198.18.5.4: Destination Net Unreachable from 198.18.3.2",
    ] {
        assert!(r.stderr.contains(note), "{note}:\n{}", r.stderr);
    }
    assert!(
        !r.stderr.contains("198.18.5.3:"),
        "blackholed: silence\n{}",
        r.stderr
    );

    // A denied address is told apart by its rule and skipped.
    let r = icmp_host(
        &lab,
        &["--deny", "198.18.4.1/32"],
        &[sweep, "198.18.4.0/30", "-W", "1"],
    );
    r.assert_code(1);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert!(r.stdout.contains("\"198.18.4.2\""), "{}", r.stdout);
    assert!(r.stderr.contains("198.18.4.1: not allowed"), "{}", r.stderr);
}

/// Issue 11, item 3: after the first Fragmentation Needed, the kernel
/// refuses larger DF requests locally; ping reports each and carries on.
#[test]
fn issue11_ping_df_too_big_carries_on_with_complete_json() {
    if !require_root("issue11_ping_df_too_big_carries_on_with_complete_json") {
        return;
    }
    let lab = narrow_lab();
    for target in [lab::TARGET4, lab::TARGET6] {
        let args = [
            "ping", "--df", "-s", "1400", target, "-c", "3", "-i", "0.2", "-W", "1",
        ];
        let r = icmp_host(&lab, &[], &args);
        r.assert_code(1);
        let v = r.json();
        assert_eq!(u(&v, "packets_sent"), 1, "{v}");
        let probes = v["probes"].as_array().unwrap();
        assert_eq!(probes.len(), 3, "{v}");
        assert_eq!(probes[0]["status"], "error");
        assert_eq!(u(&probes[0], "mtu"), 1280);
        for p in &probes[1..] {
            assert_eq!(p["status"], "failed", "{p}");
            assert_eq!(p["message"], "local error: message too long, mtu=1280");
        }
        assert!(
            r.stderr
                .contains("icmp_seq=3: local error: message too long, mtu=1280"),
            "{}",
            r.stderr
        );
    }
}
