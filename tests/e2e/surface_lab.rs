//! Issue 4: traceroute, multiping and the rest of icmplib's surface, on
//! the lab.

use std::process::Stdio;
use std::time::Duration;

use super::lab::{self, Lab};
use super::netns::{Netns, ip};
use super::util::{f, finish, plugin, require_root, run, u};

const LIMIT: Duration = Duration::from_secs(90);

fn icmp_host(lab: &Lab, args: &[&str]) -> super::util::Run {
    let mut cmd = lab.client.icmp_host();
    cmd.arg("run").args(args);
    let r = run(cmd, LIMIT);
    r.assert_no_panic();
    r
}

fn addresses(hops: &serde_json::Value) -> Vec<Option<String>> {
    hops.as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().map(str::to_owned))
        .collect()
}

fn some(list: &[&str]) -> Vec<Option<String>> {
    list.iter().map(|s| Some(s.to_string())).collect()
}

#[test]
fn traceroute_v4_and_v6_finds_every_router() {
    if !require_root("traceroute_v4_and_v6_finds_every_router") {
        return;
    }
    let lab = Lab::new();
    for (target, routers) in [
        (lab::TARGET4, [lab::R1_4, lab::R2_4, lab::R3_4]),
        (lab::TARGET6, [lab::R1_6, lab::R2_6, lab::R3_6]),
    ] {
        let r = icmp_host(&lab, &["traceroute", target, "-w", "1"]);
        r.assert_code(0);
        let hops = r.json();
        let mut expected = some(&routers);
        expected.push(Some(target.to_owned()));
        assert_eq!(addresses(&hops), expected);
        for (n, hop) in hops.as_array().unwrap().iter().enumerate() {
            assert_eq!(u(hop, "distance"), n as u64 + 1);
            assert_eq!(u(hop, "packets_sent"), 2);
            assert_eq!(u(hop, "packets_received"), 2);
            assert!(hop["mark"].is_null());
        }
        // traceroute's layout on stderr.
        assert!(
            r.stderr.contains(&format!(" 2  {}  ", routers[1])),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn traceroute_shows_a_silenced_hop() {
    if !require_root("traceroute_shows_a_silenced_hop") {
        return;
    }
    let lab = Lab::new();
    lab.silence(&lab.r2);
    let r = icmp_host(&lab, &["traceroute", lab::TARGET4, "-w", "0.5"]);
    r.assert_code(0);
    let hops = r.json();
    assert_eq!(
        addresses(&hops),
        vec![
            Some(lab::R1_4.into()),
            None,
            Some(lab::R3_4.into()),
            Some(lab::TARGET4.into())
        ]
    );
    let silent = &hops[1];
    assert_eq!(u(silent, "packets_sent"), 2);
    assert_eq!(silent["is_alive"], false);
    assert!(r.stderr.contains(" 2  * *"), "{}", r.stderr);
}

#[test]
fn traceroute_stops_at_unreachable_with_its_mark() {
    if !require_root("traceroute_stops_at_unreachable_with_its_mark") {
        return;
    }
    let lab = Lab::new();
    for (target, mark) in [
        (lab::UNREACHABLE4, "!H"),
        (lab::PROHIBITED4, "!X"),
        (lab::NOROUTE4, "!N"),
        (lab::UNREACHABLE6, "!N"),
        (lab::PROHIBITED6, "!X"),
        (lab::NOROUTE6, "!N"),
    ] {
        let r = icmp_host(&lab, &["traceroute", target, "-w", "1"]);
        r.assert_code(1);
        let hops = r.json();
        let hops = hops.as_array().unwrap();
        assert_eq!(hops.len(), 3, "{target}: stops at r3");
        let r3 = if target.contains(':') {
            lab::R3_6
        } else {
            lab::R3_4
        };
        assert_eq!(hops[2]["address"], r3, "{target}");
        assert_eq!(hops[2]["mark"], mark, "{target}");
        assert!(
            r.stderr.contains(&format!(" ms {mark}")),
            "{target}: {}",
            r.stderr
        );
    }
}

#[test]
fn fast_sends_half_the_probes_on_a_clean_path() {
    if !require_root("fast_sends_half_the_probes_on_a_clean_path") {
        return;
    }
    let lab = Lab::new();
    lab.client.nft(
        "table inet lab {
            counter probes { }
            chain out {
                type filter hook output priority 0;
                icmp type echo-request counter name probes
            }
        }",
    );
    let r = icmp_host(&lab, &["traceroute", lab::TARGET4]);
    r.assert_code(0);
    let slow = lab.client.counter("probes");
    let r = icmp_host(&lab, &["traceroute", "--fast", lab::TARGET4]);
    r.assert_code(0);
    assert_eq!(addresses(&r.json()).len(), 4);
    let fast = lab.client.counter("probes") - slow;
    assert_eq!((slow, fast), (8, 4));
}

#[test]
fn first_hop_and_max_hops() {
    if !require_root("first_hop_and_max_hops") {
        return;
    }
    let lab = Lab::new();
    let r = icmp_host(&lab, &["traceroute", "-f", "2", "-m", "3", lab::TARGET4]);
    r.assert_code(1);
    let hops = r.json();
    assert_eq!(addresses(&hops), some(&[lab::R2_4, lab::R3_4]));
    assert_eq!(u(&hops[0], "distance"), 2);
}

#[test]
fn multiping_alive_flags_in_input_order() {
    if !require_root("multiping_alive_flags_in_input_order") {
        return;
    }
    let lab = Lab::new();
    let targets = [
        lab::R1_4,
        lab::R2_4,
        "nosuch.lab",
        lab::R3_4,
        lab::UNREACHABLE4,
        lab::TARGET6,
        lab::BLACKHOLE4,
        "target.lab",
    ];
    let mut args = vec!["multiping", "-W", "0.5", "-i", "0.1"];
    args.extend(targets);
    let r = icmp_host(&lab, &args);
    r.assert_code(1); // some are down
    let hosts = r.json();
    let hosts = hosts.as_array().unwrap();
    let alive: Vec<bool> = hosts.iter().map(|h| h["is_alive"] == true).collect();
    assert_eq!(
        alive,
        vec![true, true, false, true, false, true, false, true]
    );
    let order: Vec<&str> = hosts
        .iter()
        .map(|h| h["target"].as_str().unwrap())
        .collect();
    assert_eq!(order, targets);
    assert!(hosts[2]["error"].as_str().unwrap().contains("nosuch.lab"));
    assert_eq!(
        hosts[4]["probes"][0]["message"],
        "Destination Host Unreachable"
    );
    assert_eq!(hosts[7]["address"], lab::TARGET4);
}

#[test]
fn multiping_under_loss_matches_the_wire_per_target() {
    if !require_root("multiping_under_loss_matches_the_wire_per_target") {
        return;
    }
    let lab = Lab::new();
    let sources = [lab::R1_4, lab::R2_4, lab::R3_4, lab::TARGET4];
    let counters: String = sources
        .iter()
        .enumerate()
        .map(|(n, s)| format!("ip saddr {s} icmp type echo-reply counter name from{n}\n"))
        .collect();
    let declare: String = (0..sources.len())
        .map(|n| format!("counter from{n} {{ }}\n"))
        .collect();
    lab.client.nft(&format!(
        "table inet lab {{
            {declare}
            chain in {{
                type filter hook input priority 0;
                icmp type echo-reply numgen random mod 100 < 30 drop
                {counters}
            }}
        }}"
    ));
    let mut args = vec![
        "multiping",
        "-c",
        "40",
        "-i",
        "0.01",
        "-W",
        "0.3",
        "--rate",
        "0",
    ];
    args.extend(sources);
    let r = icmp_host(&lab, &args);
    let hosts = r.json();
    for (n, host) in hosts.as_array().unwrap().iter().enumerate() {
        let received = u(host, "packets_received");
        assert_eq!(received, lab.client.counter(&format!("from{n}")), "{host}");
        assert!((10..=39).contains(&received), "{received}");
        assert_eq!(u(host, "packets_sent"), 40);
        for p in host["probes"].as_array().unwrap() {
            if p["status"] == "reply" {
                assert_eq!(p["source"], sources[n], "another target's reply");
            }
        }
    }
}

#[test]
fn multiping_streams_one_line_per_host() {
    if !require_root("multiping_streams_one_line_per_host") {
        return;
    }
    let lab = Lab::new();
    let r = icmp_host(
        &lab,
        &[
            "multiping",
            "--stream",
            "-W",
            "0.3",
            lab::TARGET4,
            lab::BLACKHOLE4,
        ],
    );
    r.assert_code(1);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    // The live host finishes first.
    assert_eq!(lines[0]["target"], lab::TARGET4);
    assert_eq!(lines[1]["is_alive"], false);
}

#[test]
fn multiping_reads_addresses_from_stdin() {
    if !require_root("multiping_reads_addresses_from_stdin") {
        return;
    }
    let lab = Lab::new();
    let mut cmd = lab.client.icmp_host();
    cmd.args([
        "run",
        "-q",
        "--stdin",
        "multiping",
        "--file",
        "-",
        "-c",
        "1",
    ]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    let list = format!("# lab\n{}\n{}\n\n", lab::TARGET4, lab::TARGET6);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    let r = finish(child, LIMIT);
    r.assert_code(0);
    assert_eq!(r.json().as_array().unwrap().len(), 2);
}

#[test]
fn broadcast_ping_returns_every_responder() {
    if !require_root("broadcast_ping_returns_every_responder") {
        return;
    }
    // A switch (bridge) with the client and three hosts.
    let sw = Netns::new("sw");
    sw.ip(&["link", "add", "br0", "type", "bridge"]);
    sw.ip(&["link", "set", "br0", "up"]);
    let client = Netns::new("bc");
    let hosts: Vec<Netns> = (1..=3).map(|n| Netns::new(&format!("h{n}"))).collect();
    let attach = |ns: &Netns, port: &str, address: &str| {
        ip(&[
            "link", "add", "name", "eth0", "netns", &ns.name, "type", "veth", "peer", "name", port,
            "netns", &sw.name,
        ]);
        sw.ip(&["link", "set", port, "master", "br0", "up"]);
        ns.ip(&["addr", "add", address, "dev", "eth0"]);
        ns.ip(&["link", "set", "eth0", "up"]);
    };
    attach(&client, "p0", "198.18.9.1/24");
    for (n, h) in hosts.iter().enumerate() {
        attach(
            h,
            &format!("p{}", n + 1),
            &format!("198.18.9.{}/24", 11 + n),
        );
        h.sysctl("net.ipv4.icmp_echo_ignore_broadcasts", "0");
    }
    let ping = |host_args: &[&str], plugin_args: &[&str]| {
        let mut cmd = client.icmp_host();
        cmd.arg("run").args(host_args).arg("ping").args(plugin_args);
        let r = run(cmd, LIMIT);
        r.assert_no_panic();
        r
    };
    let r = ping(
        &["--allow-broadcast"],
        &["-b", "198.18.9.255", "-c", "1", "-W", "0.5"],
    );
    r.assert_code(0);
    let mut sources: Vec<String> = r.json()["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["source"].as_str().unwrap().to_owned())
        .collect();
    sources.sort();
    assert_eq!(sources, vec!["198.18.9.11", "198.18.9.12", "198.18.9.13"]);
    // Not granted by the host: policy-denied, exit 2.
    let r = ping(&[], &["-b", "198.18.9.255", "-c", "1"]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("broadcast is not allowed"),
        "{}",
        r.stderr
    );
    // Granted, but the plugin did not enable broadcast: the broadcast error.
    let r = ping(&["--allow-broadcast"], &["198.18.9.255", "-c", "1"]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("broadcast is not enabled"),
        "{}",
        r.stderr
    );
}

#[test]
fn link_local_address_with_scope() {
    if !require_root("link_local_address_with_scope") {
        return;
    }
    let lab = Lab::new();
    lab.r1
        .ip(&["-6", "addr", "add", "fe80::1/64", "dev", "eth0", "nodad"]);
    let r = icmp_host(&lab, &["ping", "fe80::1%eth0", "-c", "2", "-i", "0.05"]);
    r.assert_code(0);
    let v = r.json();
    assert_eq!(u(&v, "packets_received"), 2);
    assert!(
        v["address"].as_str().unwrap().starts_with("fe80::1%"),
        "{v}"
    );
    assert_eq!(u(&v["probes"][0], "ttl"), 64);
    // A scope naming no interface is a clean error.
    let r = icmp_host(&lab, &["ping", "fe80::1%nosuch0", "-c", "1"]);
    r.assert_code(2);
    assert!(r.stderr.contains("nosuch0"), "{}", r.stderr);
}

#[test]
fn dont_fragment_reports_the_path_mtu() {
    if !require_root("dont_fragment_reports_the_path_mtu") {
        return;
    }
    let lab = Lab::new();
    lab.r2.ip(&["link", "set", "eth1", "mtu", "1280"]);
    lab.r3.ip(&["link", "set", "eth0", "mtu", "1280"]);
    for (target, t, c) in [(lab::TARGET4, 3, 4), (lab::TARGET6, 2, 0)] {
        let r = icmp_host(
            &lab,
            &["ping", "--df", "-s", "1400", target, "-c", "1", "-W", "1"],
        );
        r.assert_code(1);
        let v = r.json();
        let p = &v["probes"][0];
        assert_eq!((u(p, "type"), u(p, "code")), (t, c), "{p}");
        assert_eq!(u(p, "mtu"), 1280, "{p}");
        assert!(r.stderr.contains("(mtu = 1280)"), "{}", r.stderr);
        // Small enough, it goes through.
        let r = icmp_host(&lab, &["ping", "--df", "-s", "1000", target, "-c", "1"]);
        r.assert_code(0);
    }
}

#[test]
fn payloads_up_to_65000_bytes() {
    if !require_root("payloads_up_to_65000_bytes") {
        return;
    }
    let lab = Lab::new();
    for target in [lab::TARGET4, lab::TARGET6] {
        let r = icmp_host(
            &lab,
            &["ping", "-s", "65000", target, "-c", "2", "-i", "0.05"],
        );
        r.assert_code(0);
        let v = r.json();
        assert_eq!(u(&v, "packets_received"), 2, "{v}");
        assert!(r.stderr.contains("65008 bytes from"), "{}", r.stderr);
    }
    let r = icmp_host(&lab, &["ping", "-s", "70000", lab::TARGET4, "-c", "1"]);
    r.assert_code(2);
}

#[test]
fn interface_binding() {
    if !require_root("interface_binding") {
        return;
    }
    let lab = Lab::new();
    let r = icmp_host(
        &lab,
        &["ping", "--interface", "eth0", lab::TARGET4, "-c", "1"],
    );
    r.assert_code(0);
    let r = icmp_host(
        &lab,
        &[
            "ping",
            "--interface",
            "lo",
            lab::TARGET4,
            "-c",
            "1",
            "-W",
            "0.3",
        ],
    );
    assert_eq!(
        r.code, 1,
        "through lo the target is not reachable: {}",
        r.stderr
    );
    let r = icmp_host(
        &lab,
        &["ping", "--interface", "nosuch0", lab::TARGET4, "-c", "1"],
    );
    r.assert_code(2);
    assert!(r.stderr.contains("nosuch0"), "{}", r.stderr);
}

#[test]
fn resolve_returns_every_address_ipv4_first() {
    if !require_root("resolve_returns_every_address_ipv4_first") {
        return;
    }
    let lab = Lab::new();
    let resolve = |args: &[&str]| {
        let mut cmd = lab.client.icmp_host();
        cmd.args(["run", "-q"]).arg(plugin("resolve")).args(args);
        let r = run(cmd, LIMIT);
        r.assert_no_panic().assert_code(0);
        r.json()
    };
    let v = resolve(&["target.lab", "target6.lab"]);
    assert_eq!(
        v["target.lab"],
        serde_json::json!([lab::TARGET4, lab::TARGET6])
    );
    assert_eq!(v["target6.lab"], serde_json::json!([lab::TARGET6]));
    let v = resolve(&["-6", "target.lab"]);
    assert_eq!(v["target.lab"], serde_json::json!([lab::TARGET6]));
}

#[test]
fn rtts_are_sane_under_load_of_many_targets() {
    if !require_root("rtts_are_sane_under_load_of_many_targets") {
        return;
    }
    let lab = Lab::new();
    let mut args = vec!["multiping", "-c", "3", "-i", "0.05", "--rate", "0"];
    args.extend([lab::R1_4, lab::R2_4, lab::R3_4, lab::TARGET4, lab::TARGET6]);
    let r = icmp_host(&lab, &args);
    r.assert_code(0);
    for h in r.json().as_array().unwrap() {
        assert!(f(h, "min_rtt") > 0.0 && f(h, "max_rtt") < 100.0, "{h}");
    }
}
