//! Issue 3: the ICMP engine on a real, namespaced network.

use std::process::Stdio;
use std::time::Duration;

use super::lab::{self, Lab};
use super::util::{f, finish, require_root, run, u};

const LIMIT: Duration = Duration::from_secs(60);

fn ping(lab: &Lab, args: &[&str]) -> super::util::Run {
    let mut cmd = lab.client.icmp_host();
    cmd.args(["run", "ping"]).args(args);
    let r = run(cmd, LIMIT);
    r.assert_no_panic();
    r
}

fn probes(v: &serde_json::Value) -> &Vec<serde_json::Value> {
    v["probes"].as_array().unwrap()
}

#[test]
fn ping_target_over_three_routers() {
    if !require_root("ping_target_over_three_routers") {
        return;
    }
    let lab = Lab::new();
    for target in [lab::TARGET4, lab::TARGET6] {
        let r = ping(&lab, &[target, "-c", "3", "-i", "0.05"]);
        r.assert_code(0);
        let v = r.json();
        assert_eq!(u(&v, "packets_received"), 3, "{v}");
        assert!(f(&v, "min_rtt") >= 0.0);
        for p in probes(&v) {
            assert_eq!(p["status"], "reply");
            // 64, less one per router.
            assert_eq!(u(p, "ttl"), 61, "{p}");
            assert!(f(p, "rtt") >= 0.0);
        }
        assert!(r.stderr.contains("ttl=61"), "{}", r.stderr);
    }
}

fn assert_error_reply(lab: &Lab, target: &str, words: &str, (t, c): (u64, u64)) {
    let r = ping(lab, &[target, "-c", "2", "-i", "0.05", "-W", "1"]);
    r.assert_code(1);
    let v = r.json();
    assert_eq!(v["is_alive"], false);
    assert_eq!(f(&v, "packet_loss"), 1.0);
    for p in probes(&v) {
        assert_eq!(p["status"], "error", "{p}");
        assert_eq!((u(p, "type"), u(p, "code")), (t, c), "{p}");
        assert_eq!(p["message"], words);
    }
    assert!(
        r.stderr.contains(&format!("icmp_seq=1 {words}")),
        "progress line says {words:?}: {}",
        r.stderr
    );
    assert!(r.stderr.contains("+2 errors"), "{}", r.stderr);
}

#[test]
fn unreachable_and_prohibited_reach_the_plugin() {
    if !require_root("unreachable_and_prohibited_reach_the_plugin") {
        return;
    }
    let lab = Lab::new();
    assert_error_reply(
        &lab,
        lab::UNREACHABLE4,
        "Destination Host Unreachable",
        (3, 1),
    );
    assert_error_reply(
        &lab,
        lab::PROHIBITED4,
        "Communication administratively prohibited",
        (3, 13),
    );
    assert_error_reply(&lab, lab::NOROUTE4, "Destination Net Unreachable", (3, 0));
    assert_error_reply(&lab, lab::UNREACHABLE6, "No route to destination", (1, 0));
    assert_error_reply(
        &lab,
        lab::PROHIBITED6,
        "Communication administratively prohibited",
        (1, 1),
    );
    assert_error_reply(&lab, lab::NOROUTE6, "No route to destination", (1, 0));
}

#[test]
fn blackhole_times_out() {
    if !require_root("blackhole_times_out") {
        return;
    }
    let lab = Lab::new();
    for target in [lab::BLACKHOLE4, lab::BLACKHOLE6] {
        let r = ping(&lab, &[target, "-c", "2", "-i", "0.05", "-W", "0.3"]);
        r.assert_code(1);
        let v = r.json();
        assert_eq!(u(&v, "packets_sent"), 2);
        assert!(probes(&v).iter().all(|p| p["status"] == "timeout"), "{v}");
    }
}

#[test]
fn name_from_the_lab_hosts_file() {
    if !require_root("name_from_the_lab_hosts_file") {
        return;
    }
    let lab = Lab::new();
    let r = ping(&lab, &["target.lab", "-c", "1"]);
    r.assert_code(0);
    assert_eq!(r.json()["address"], lab::TARGET4);
    let r = ping(&lab, &["-6", "target.lab", "-c", "1"]);
    r.assert_code(0);
    assert_eq!(r.json()["address"], lab::TARGET6);
}

#[test]
fn ttl_2_gets_time_exceeded_from_r2() {
    if !require_root("ttl_2_gets_time_exceeded_from_r2") {
        return;
    }
    let lab = Lab::new();
    for (target, r2, t) in [(lab::TARGET4, lab::R2_4, 11), (lab::TARGET6, lab::R2_6, 3)] {
        let r = ping(
            &lab,
            &[target, "--ttl", "2", "-c", "2", "-i", "0.05", "-W", "1"],
        );
        r.assert_code(1);
        let v = r.json();
        assert_eq!(probes(&v).len(), 2);
        for p in probes(&v) {
            assert_eq!(p["status"], "error", "{p}");
            assert_eq!(p["source"], r2, "{p}");
            assert_eq!((u(p, "type"), u(p, "code")), (t, 0));
            assert_eq!(p["message"], "Time to live exceeded");
        }
        assert!(
            r.stderr
                .contains(&format!("From {r2} icmp_seq=2 Time to live exceeded")),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn concurrent_processes_with_the_same_id_get_their_own_replies() {
    if !require_root("concurrent_processes_with_the_same_id_get_their_own_replies") {
        return;
    }
    let lab = Lab::new();
    lab.count_requests_at_target();
    let spawn = || {
        let mut cmd = lab.client.icmp_host();
        cmd.args([
            "run",
            "-q",
            "ping",
            lab::TARGET4,
            "--id",
            "4242",
            "-c",
            "40",
            "-i",
            "0.01",
        ]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (finish(a, LIMIT), finish(b, LIMIT));
    let mut sent = 0;
    for r in [&a, &b] {
        r.assert_no_panic().assert_code(0);
        let v = r.json();
        assert_eq!(u(&v, "packets_received"), 40, "{v}");
        assert_eq!(u(&v, "duplicates"), 0, "a reply counted twice: {v}");
        sent += u(&v, "packets_sent");
    }
    assert_eq!(lab.target.counter("requests"), sent);
}

#[test]
fn random_loss_matches_the_wire() {
    if !require_root("random_loss_matches_the_wire") {
        return;
    }
    let lab = Lab::new();
    lab.loss_at_target(30);
    lab.count_replies_at_client();
    let r = ping(
        &lab,
        &[lab::TARGET4, "-c", "60", "-i", "0.005", "-W", "0.3"],
    );
    let v = r.json();
    let received = u(&v, "packets_received");
    assert_eq!(received, lab.client.counter("replies"), "{v}");
    // 30 % of 60: far from all and far from none.
    assert!((15..=58).contains(&received), "received {received}");
    assert_eq!(u(&v, "packets_sent"), 60);
}

#[test]
fn each_ttl_hears_from_its_router_and_a_silenced_one_is_quiet() {
    if !require_root("each_ttl_hears_from_its_router_and_a_silenced_one_is_quiet") {
        return;
    }
    let lab = Lab::new();
    let source_at = |target: &str, ttl: &str| {
        let r = ping(&lab, &[target, "--ttl", ttl, "-c", "1", "-W", "0.5"]);
        r.assert_code(1);
        probes(&r.json())[0].clone()
    };
    for (target, routers) in [
        (lab::TARGET4, [lab::R1_4, lab::R2_4, lab::R3_4]),
        (lab::TARGET6, [lab::R1_6, lab::R2_6, lab::R3_6]),
    ] {
        for (ttl, router) in ["1", "2", "3"].iter().zip(routers) {
            assert_eq!(source_at(target, ttl)["source"], router, "ttl {ttl}");
        }
    }
    lab.silence(&lab.r2);
    for target in [lab::TARGET4, lab::TARGET6] {
        assert_eq!(source_at(target, "2")["status"], "timeout");
        assert_eq!(
            source_at(target, "3")["source"],
            if target == lab::TARGET4 {
                lab::R3_4
            } else {
                lab::R3_6
            }
        );
    }
}

/// A sweep without a rate limit goes out in bursts from two sockets (the
/// raw plane's lane: the plugin's thread and the lane's). With 30 % of the
/// requests dropped,
/// every reply that reached the host is counted once, to its own host,
/// with kernel stamps on both sides.
#[test]
fn bursts_from_two_sockets_count_every_reply_once_under_loss() {
    if !require_root("bursts_from_two_sockets_count_every_reply_once_under_loss") {
        return;
    }
    let ns = super::netns::Netns::new("burst");
    ns.nft(
        "table inet lab {
            counter replies { }
            chain in {
                type filter hook input priority 0;
                icmp type echo-request numgen random mod 100 < 30 drop
                icmp type echo-reply counter name replies
            }
        }",
    );
    let targets: Vec<String> = (0..4096)
        .map(|i| format!("127.1.{}.{}", i >> 8, i & 0xff))
        .collect();
    let mut cmd = ns.icmp_host();
    cmd.args(["run", "-q", "multiping", "-c", "1", "-r", "0", "-W", "1"])
        .args(&targets);
    let r = run(cmd, LIMIT);
    // Some hosts are down: exit status 1, as fping's.
    r.assert_no_panic().assert_code(1);
    let hosts = r.json();
    let hosts = hosts.as_array().unwrap();
    assert_eq!(hosts.len(), targets.len());
    let (mut received, mut kernel_both) = (0, 0);
    for (h, target) in hosts.iter().zip(&targets) {
        assert_eq!(h["address"], target.as_str());
        assert_eq!(u(h, "packets_sent"), 1, "{h}");
        assert_eq!(u(h, "duplicates"), 0, "{h}");
        for p in probes(h).iter().filter(|p| p["status"] == "reply") {
            assert_eq!(p["source"], target.as_str(), "a reply to another host: {h}");
            received += 1;
            kernel_both += u64::from(p["timestamp_source"] == "kernel-both");
        }
        assert_eq!(
            u(h, "packets_received"),
            probes(h).iter().filter(|p| p["status"] == "reply").count() as u64
        );
    }
    assert_eq!(received, ns.counter("replies"), "replies on the wire");
    // 30 % of 4,096 dropped: far from all and far from none.
    assert!((2000..=3700).contains(&received), "received {received}");
    // A stamp may rarely be read after its reply (then the RTT falls back
    // to the user-space send stamp, and says so); nearly all are not.
    assert!(
        kernel_both * 100 >= received * 99,
        "{kernel_both} of {received} kernel-both"
    );
}
