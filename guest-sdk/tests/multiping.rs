//! The multiping algorithm against scripted networks.

use std::time::Duration;

use icmp_host_sdk::sim::{Response, SimNetwork};
use icmp_host_sdk::{Address, Family, MultipingOptions, multiping};

const MS: Duration = Duration::from_millis(1);

fn targets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn mixed_families_unresolvable_names_and_input_order() {
    let v6: Address = "2001:db8::5".parse().unwrap();
    let mut net = SimNetwork::new(|req| {
        if req.destination.to_string() == "192.0.2.2" {
            vec![] // down
        } else {
            vec![Response::echo(MS * 2)]
        }
    })
    .with_name("six.lab", &[v6]);
    let list = targets(&[
        "192.0.2.1",
        "no.such.lab",
        "192.0.2.2",
        "six.lab",
        "2001:db8::9",
    ]);
    let mut done = Vec::new();
    let options = MultipingOptions {
        timeout: Duration::from_millis(300),
        ..MultipingOptions::default()
    };
    let hosts = multiping(&mut net, &list, &options, |i, _| done.push(i)).unwrap();
    let alive: Vec<bool> = hosts.iter().map(|h| h.is_alive()).collect();
    assert_eq!(alive, vec![true, false, false, true, true]);
    assert!(hosts[1].error.as_deref().unwrap().contains("no.such.lab"));
    assert_eq!(hosts[1].packets_sent, 0);
    assert_eq!(hosts[3].address, "2001:db8::5");
    assert_eq!(hosts[0].packets_sent, 2);
    assert_eq!(hosts[2].packet_loss(), 1.0);
    // Every host reported once, the unresolvable one first.
    assert_eq!(done[0], 1);
    done.sort();
    assert_eq!(done, vec![0, 1, 2, 3, 4]);
    // One socket per family, never one per target.
    let families: std::collections::HashSet<Family> = net
        .sent()
        .iter()
        .map(|(_, r)| r.destination.family())
        .collect();
    assert_eq!(families.len(), 2);
}

#[test]
fn rate_paces_all_hosts_and_interval_paces_each() {
    let list: Vec<String> = (1..=10).map(|i| format!("192.0.2.{i}")).collect();
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS)]);
    let options = MultipingOptions {
        count: 2,
        interval: Duration::from_millis(500),
        rate: Some(100.0),
        ..MultipingOptions::default()
    };
    let hosts = multiping(&mut net, &list, &options, |_, _| {}).unwrap();
    assert!(hosts.iter().all(|h| h.packets_received() == 2));
    let sent = net.sent();
    assert_eq!(sent.len(), 20);
    for pair in sent.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(9), "gap {gap:?}");
    }
    // The same host is pinged again no sooner than `interval` later.
    for host in &list {
        let times: Vec<Duration> = sent
            .iter()
            .filter(|(_, r)| &r.destination.to_string() == host)
            .map(|(t, _)| *t)
            .collect();
        assert!(times[1] - times[0] >= Duration::from_millis(500));
    }
}

#[test]
fn duplicates_count_once_and_unique_keys_per_request() {
    let list: Vec<String> = (1..=5).map(|i| format!("192.0.2.{i}")).collect();
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS), Response::echo(MS * 2)]);
    let options = MultipingOptions {
        rate: None,
        ..MultipingOptions::default()
    };
    let hosts = multiping(&mut net, &list, &options, |_, _| {}).unwrap();
    for h in &hosts {
        assert_eq!(h.packets_received(), 2);
        assert_eq!(h.packet_loss(), 0.0);
    }
    let keys: std::collections::HashSet<(u16, u16)> =
        net.sent().iter().map(|(_, r)| (r.id, r.sequence)).collect();
    assert_eq!(keys.len(), 10);
}

#[test]
fn errors_are_per_probe_and_not_alive() {
    let router: Address = "198.51.100.1".parse().unwrap();
    let mut net = SimNetwork::new(move |_| vec![Response::error(MS, router, 3, 13)]);
    let hosts = multiping(
        &mut net,
        &targets(&["192.0.2.1"]),
        &MultipingOptions::default(),
        |_, _| {},
    )
    .unwrap();
    assert!(!hosts[0].is_alive());
    assert_eq!(hosts[0].probes.len(), 2);
    assert_eq!(
        hosts[0].probes[0].message.as_deref(),
        Some("Communication administratively prohibited")
    );
    let seqs: Vec<u16> = hosts[0].probes.iter().map(|p| p.sequence).collect();
    assert_eq!(seqs, vec![1, 2]);
}
