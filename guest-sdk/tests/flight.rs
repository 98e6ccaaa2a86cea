//! The flight engine and the fixes of issue 11 it carries, on scripted
//! networks.

use std::time::Duration;

use icmp_host_sdk::sim::{Response, SimNetwork};
use icmp_host_sdk::{
    Address, EchoRequest, Error, Event, Fate, Flight, FlightOptions, Limits, MultipingOptions,
    Network, PingOptions, PolicyRule, ProbeStatus, multiping, ping, probe_all,
};

const MS: Duration = Duration::from_millis(1);

fn loopbacks(n: u8) -> Vec<String> {
    (1..=n).map(|i| format!("127.0.0.{i}")).collect()
}

/// Issue 11, item 1: under `--max-pps` the host blocks inside send-many;
/// a timeout counted from before that call lost live hosts (5 of 14 alive).
#[test]
fn issue11_rate_limited_multiping_finds_every_live_host() {
    let limits = Limits {
        max_pps: Some(5.0),
        ..Limits::default()
    };
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS / 10)]).with_limits(limits);
    let options = MultipingOptions {
        count: 1,
        timeout: Duration::from_secs(1),
        rate: None,
        ..MultipingOptions::default()
    };
    let hosts = multiping(&mut net, &loopbacks(14), &options, |_, _| {}).unwrap();
    let alive = hosts.iter().filter(|h| h.is_alive()).count();
    assert_eq!(alive, 14);
    // Paced at the host's rate: 200 ms apart, never a burst that blocks.
    let times: Vec<Duration> = net.sent().iter().map(|(t, _)| *t).collect();
    assert!(
        times
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::from_millis(200))
    );
}

/// Issue 11, item 1: each request's timeout runs from its own send time,
/// as the host reports it, even when sends block unannounced.
#[test]
fn issue11_timeouts_run_from_each_requests_own_send_time() {
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS)]).with_send_cost(MS * 200);
    let options = MultipingOptions {
        count: 1,
        timeout: Duration::from_secs(1),
        rate: None,
        ..MultipingOptions::default()
    };
    // 14 sends take 2.8 s in one send-many call: the first replies are
    // seen late by the plugin, but arrived 1 ms after their own sends.
    let hosts = multiping(&mut net, &loopbacks(14), &options, |_, _| {}).unwrap();
    assert!(hosts.iter().all(|h| h.is_alive() && h.rtts == [1.0]));
}

/// A reply the kernel stamped after the timeout is a timeout, however it
/// is seen; one stamped in time counts, however late it is seen.
#[test]
fn the_kernel_stamp_decides_in_time_or_late() {
    let mut net = SimNetwork::new(|r| match r.sequence {
        1 => vec![Response::echo(MS * 999)],
        _ => vec![Response::echo(MS * 1001)],
    })
    .with_send_cost(MS * 700);
    let options = FlightOptions {
        timeout: Duration::from_secs(1),
        ..FlightOptions::default()
    };
    let requests = (1..=2).map(|s| EchoRequest::new("192.0.2.1".parse().unwrap(), 9, s));
    let mut fates = Vec::new();
    probe_all(&mut net, requests, options, |_, e| {
        fates.push((e.sequence, e.fate))
    })
    .unwrap();
    assert!(matches!(fates[0], (1, Fate::Reply(_))), "{fates:?}");
    assert_eq!(fates[1], (2, Fate::Timeout));
}

#[test]
fn events_carry_the_real_send_time_on_the_now_timeline() {
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS * 3)]).with_send_cost(MS * 10);
    let requests = (0..3).map(|s| EchoRequest::new("192.0.2.1".parse().unwrap(), 1, s));
    let mut sent = Vec::new();
    probe_all(&mut net, requests, FlightOptions::default(), |_, e| {
        sent.push(e.sent_at.unwrap())
    })
    .unwrap();
    assert_eq!(sent, [MS * 10, MS * 20, MS * 30]);
    // A host timestamp maps back onto the monotonic clock exactly.
    let now = net.now();
    let wall = net.wall_clock();
    assert_eq!(net.local_time(wall - 5_000_000), now - MS * 5);
}

/// Redirect and Source Quench are notes; the probe waits for its reply.
#[test]
fn redirect_and_source_quench_are_notes_not_answers() {
    let gateway: Address = "192.0.2.254".parse().unwrap();
    let mut net = SimNetwork::new(move |_| {
        vec![
            Response::error(MS, gateway, 5, 1),
            Response::error(MS * 2, gateway, 4, 0),
            Response::echo(MS * 3),
        ]
    });
    let options = PingOptions {
        count: 1,
        ..PingOptions::default()
    };
    let host = ping(&mut net, "192.0.2.7", &options).unwrap();
    assert!(host.is_alive());
    assert_eq!(host.rtts, [3.0]);
    // Passed on as progress, never counted as the probe's answer.
    let notes: Vec<(u8, u8)> = net
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Reply(r) if r.kind().is_note() => Some((r.icmp_type, r.code)),
            _ => None,
        })
        .collect();
    assert_eq!(notes, [(5, 1), (4, 0)]);
    assert_eq!(host.probes.len(), 1);
}

/// Issue 11, item 3: a Don't-Fragment request too big for the path is the
/// typed error with the MTU, reported for that probe; ping carries on.
#[test]
fn issue11_message_too_big_is_per_probe_and_ping_carries_on() {
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS)]).failing_sends(|r| {
        (r.dont_fragment && r.packet_len() > 1280 && r.sequence > 1)
            .then_some(Error::MessageTooBig { mtu: 1280 })
    });
    let options = PingOptions {
        count: 3,
        dont_fragment: true,
        interval: MS * 10,
        packet: icmp_host_sdk::PacketOptions {
            payload_size: 1400,
            ..Default::default()
        },
        ..PingOptions::default()
    };
    let host = ping(&mut net, "192.0.2.7", &options).unwrap();
    let statuses: Vec<ProbeStatus> = host.probes.iter().map(|p| p.status).collect();
    assert_eq!(
        statuses,
        [ProbeStatus::Reply, ProbeStatus::Failed, ProbeStatus::Failed]
    );
    assert_eq!(
        host.probes[1].message.as_deref(),
        Some("local error: message too long, mtu=1280")
    );
    assert_eq!((host.packets_sent, host.packets_received()), (1, 1));
    assert!(net.events().iter().any(
        |e| matches!(e, Event::Note(n) if n == "icmp_seq=2: local error: message too long, mtu=1280")
    ));
}

/// Issue 11, item 7: the policy is readable, and refusals name their rule.
#[test]
fn issue11_limits_are_readable_and_denials_name_their_rule() {
    let limits = Limits {
        deny: vec!["192.0.2.128/25".parse().unwrap()],
        max_packets: Some(2),
        ..Limits::default()
    };
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS)]).with_limits(limits);
    assert_eq!(net.limits().packets_left(), Some(2));
    let denied = net.check_destination("192.0.2.200".parse().unwrap());
    assert_eq!(
        denied.unwrap_err().denied_by(),
        Some(PolicyRule::Destination)
    );
    assert!(net.check_destination("192.0.2.1".parse().unwrap()).is_ok());
    let requests = ["192.0.2.1", "192.0.2.200", "192.0.2.2", "192.0.2.3"]
        .into_iter()
        .enumerate()
        .map(|(i, a)| EchoRequest::new(a.parse().unwrap(), 1, i as u16));
    let mut rules = vec![None; 4];
    probe_all(&mut net, requests, FlightOptions::default(), |_, e| {
        rules[e.index] = match e.fate {
            Fate::Failed(e) => e.denied_by(),
            _ => None,
        }
    })
    .unwrap();
    assert_eq!(
        rules,
        [
            None,
            Some(PolicyRule::Destination),
            None,
            Some(PolicyRule::PacketBudget)
        ]
    );
}

#[test]
fn window_and_spacing_pace_the_sends() {
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS * 50)]);
    let options = FlightOptions {
        window: 2,
        spacing: MS * 10,
        ..FlightOptions::default()
    };
    let requests = (0..4).map(|s| EchoRequest::new("192.0.2.1".parse().unwrap(), 1, s));
    probe_all(&mut net, requests, options, |_, _| {}).unwrap();
    let times: Vec<u128> = net.sent().iter().map(|(t, _)| t.as_millis()).collect();
    // Two at once (10 ms apart); the next two when the first answers come.
    assert_eq!(times, [0, 10, 50, 60]);
}

#[test]
fn a_reused_key_waits_for_the_earlier_request() {
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS * 5)]);
    let mut flight = Flight::new(&mut net, FlightOptions::default());
    let a: Address = "192.0.2.1".parse().unwrap();
    flight.push(EchoRequest::new(a, 1, 1));
    flight.push(EchoRequest::new(a, 1, 1));
    let mut indexes = Vec::new();
    while let Some(e) = flight.next_event().unwrap() {
        assert!(matches!(e.fate, Fate::Reply(_)));
        indexes.push(e.index);
    }
    drop(flight);
    assert_eq!(indexes, [0, 1]);
    let times: Vec<u128> = net.sent().iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(times, [0, 5]);
}

#[test]
fn interrupted_flights_end_with_what_is_out_as_timeouts() {
    let mut net = SimNetwork::new(|_| vec![]).interrupt_at(MS * 100);
    let mut flight = Flight::new(&mut net, FlightOptions::default());
    for s in 0..3 {
        flight.push(EchoRequest::new("192.0.2.1".parse().unwrap(), 1, s));
    }
    let mut fates = Vec::new();
    while let Some(e) = flight.next_event().unwrap() {
        fates.push(e.fate);
    }
    assert!(flight.interrupted());
    assert_eq!(fates, [Fate::Timeout, Fate::Timeout, Fate::Timeout]);
}

#[test]
fn duplicates_are_reported_only_when_wanted() {
    for wanted in [true, false] {
        let mut net = SimNetwork::new(|_| vec![Response::echo(MS), Response::echo(MS * 2)]);
        // Stop and wait: each duplicate comes while the next request is out
        // (the last one's, after the flight ended, never does).
        let options = FlightOptions {
            window: 1,
            duplicates: wanted,
            ..FlightOptions::default()
        };
        let requests = (1..=3).map(|s| EchoRequest::new("192.0.2.1".parse().unwrap(), 4, s));
        let (mut replies, mut duplicates) = (Vec::new(), Vec::new());
        probe_all(&mut net, requests, options, |_, e| match e.fate {
            Fate::Reply(_) => replies.push(e.sequence),
            Fate::Duplicate(_) => duplicates.push(e.sequence),
            other => panic!("unexpected {other:?}"),
        })
        .unwrap();
        assert_eq!(replies, [1, 2, 3]);
        let expected: &[u16] = if wanted { &[1, 2] } else { &[] };
        assert_eq!(duplicates, expected, "duplicates wanted: {wanted}");
    }
}

/// Every event of a flight over `net`, plain or overlapped, with the
/// count it sent.
fn run_flight(
    net: &mut SimNetwork,
    requests: &[EchoRequest],
    options: FlightOptions,
    overlapped: bool,
) -> (Vec<icmp_host_sdk::FlightEvent>, u64) {
    let mut events = Vec::new();
    let sent = if overlapped {
        let mut flight = Flight::overlapped(net, options);
        for r in requests {
            flight.push(r.clone());
        }
        while let Some(e) = flight.next_event().unwrap() {
            events.push(e);
        }
        flight.sent()
    } else {
        let mut flight = Flight::new(net, options);
        for r in requests {
            flight.push(r.clone());
        }
        while let Some(e) = flight.next_event().unwrap() {
            events.push(e);
        }
        flight.sent()
    };
    events.sort_by_key(|e| e.index);
    (events, sent)
}

/// An overlapped flight (each batch begun before the last is settled)
/// reports what a plain one does over the same network: replies (some
/// after the timeout, some twice), losses, sends that fail, over several
/// batches; its events carry the real send times.
#[test]
fn an_overlapped_flight_reports_what_a_plain_one_does() {
    let network = || {
        SimNetwork::new(|r| match r.sequence % 5 {
            0 => vec![],                                               // lost
            1 => vec![Response::echo(MS * 1500)],                      // late
            2 => vec![Response::echo(MS * 3), Response::echo(MS * 4)], // twice
            _ => vec![Response::echo(MS * 2)],
        })
        .with_send_cost(Duration::from_micros(5))
        .failing_sends(|r| {
            (r.sequence % 7 == 3).then(|| Error::InvalidArgument("refused by the test".into()))
        })
    };
    let requests: Vec<EchoRequest> = (0..3000u16)
        .map(|s| EchoRequest::new("192.0.2.1".parse().unwrap(), s / 1000, s))
        .collect();
    let options = FlightOptions {
        timeout: Duration::from_secs(1),
        ..FlightOptions::default()
    };
    let (plain, plain_sent) = run_flight(&mut network(), &requests, options.clone(), false);
    let mut net = network();
    let (overlapped, overlapped_sent) = run_flight(&mut net, &requests, options, true);
    assert_eq!(plain.len(), overlapped.len());
    assert_eq!(plain_sent, overlapped_sent);
    assert!(plain.iter().any(|e| matches!(e.fate, Fate::Failed(_))));
    assert!(plain.iter().any(|e| matches!(e.fate, Fate::Duplicate(_))));
    assert!(plain.iter().any(|e| e.fate == Fate::Timeout));
    // The same fate for each request (the sends, later in the overlapped
    // flight, leave at other times) ...
    let kind = |f: &Fate| std::mem::discriminant(f);
    for (a, b) in plain.iter().zip(&overlapped) {
        assert_eq!((a.index, kind(&a.fate)), (b.index, kind(&b.fate)));
    }
    // ... and each event carries its request's real send time.
    let sent_at: std::collections::HashMap<u16, Duration> = net
        .sent()
        .into_iter()
        .map(|(t, r)| (r.sequence, t))
        .collect();
    for e in overlapped.iter().filter(|e| e.sent_at.is_some()) {
        assert_eq!(e.sent_at, sent_at.get(&e.sequence).copied(), "{e:?}");
    }
}

/// Interrupted while batches are being sent: what was not sent is not
/// reported, what was is, once.
#[test]
fn an_overlapped_flight_interrupted_reports_each_request_at_most_once() {
    let mut net = SimNetwork::new(|_| vec![Response::echo(MS * 2)])
        .with_send_cost(Duration::from_micros(10))
        .interrupt_at(MS * 15);
    let requests: Vec<EchoRequest> = (0..5000u16)
        .map(|s| EchoRequest::new("192.0.2.1".parse().unwrap(), 1, s))
        .collect();
    let (events, sent) = run_flight(&mut net, &requests, FlightOptions::default(), true);
    let mut indexes: Vec<usize> = events.iter().map(|e| e.index).collect();
    indexes.dedup();
    assert_eq!(indexes.len(), events.len(), "no request twice");
    assert!(sent > 0 && sent < 5000, "{sent}");
    assert_eq!(events.len() as u64, sent, "one event per request sent");
    assert_eq!(net.sent().len() as u64, sent);
}

/// Interrupted while a batch is being sent: the replies that came for it
/// before its results did are answers, not timeouts. (Here the simulated
/// host sends the first half of a batch at once, the rest when it is
/// finished; the interrupt falls in the second half of the first batch.)
#[test]
fn an_interrupted_overlapped_flight_keeps_the_answers_it_held() {
    let network = || {
        SimNetwork::new(|_| vec![Response::echo(Duration::from_micros(1))])
            .with_send_cost(Duration::from_micros(10))
            .interrupt_at(MS * 15)
    };
    let requests: Vec<EchoRequest> = (0..3000u16)
        .map(|s| EchoRequest::new("192.0.2.1".parse().unwrap(), 1, s))
        .collect();
    let (events, sent) = run_flight(&mut network(), &requests, FlightOptions::default(), true);
    let replies = events
        .iter()
        .filter(|e| matches!(e.fate, Fate::Reply(_)))
        .count();
    // The first half of the first batch (512) was answered before the
    // second was sent, all but its last request (its reply, 1 µs later,
    // was not in when the flight looked); what else was sent is out when
    // the run ends. (Held replies dropped at the interrupt made this 0.)
    assert_eq!(replies, 511);
    assert_eq!(events.len() as u64, sent);
}
