//! The hostile catalogue (issue 8). Each hostile plugin is a real component
//! under `plugins/tests/` — crates written directly against `wit/` with
//! wit-bindgen, components in the text format with their own allocator,
//! and a few built on the SDK — with one named test here. Each test runs it
//! next to a well-behaved tenant in one `batch` ([`hostile_batch`]) and
//! asserts:
//! - the hostile run ends with its own clear error naming the limit (exit 2);
//! - the neighbour's result is complete and correct: every reply, once,
//!   with a loopback RTT p99 within [`RTT_SLACK_MS`] of a run alone;
//! - the host's peak RSS (`VmHWM`) stays under the bound the test states;
//! - stdout is one JSON document (checked for every batch).
//!
//! `every_hostile_plugin_has_a_test` keeps the catalogue and the tests in
//! step.
//!
//! [`hostile_batch`]: super::hostile_batch
//! [`RTT_SLACK_MS`]: super::hostile_batch::RTT_SLACK_MS

use std::time::Duration;

use serde_json::{Value, json};

use super::hostile_batch::{NEIGHBOUR_COUNT, batch, batch_refused, component, neighbour};
use super::netns::Netns;
use super::util::{icmp_host, require_root, run};

/// Peak RSS of a host running two small tenants, with room to spare: about
/// 15 MiB measured with a warm compiled-plugin cache, about 40 MiB cold.
const BASE_RSS_MIB: u64 = 64;

/// Hostile plugins and the tests below that run them.
const TESTED: &[&str] = &[
    "trap",
    "spin",
    "hog",
    "forbidden",
    "unknown-interface",
    "unknown-function",
    "memories",
    "tables",
    "instances",
    "key-flood",
    "send-many",
    "queue-flood",
    "output-flood",
    "escape",
    "thief",
    "sleeper",
    "socket-leak",
    "panic",   // tests/e2e/sdk.rs
    "residue", // host/src/runtime/mod.rs: a pooled slot's next run
];

#[test]
fn every_hostile_plugin_has_a_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/tests");
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let file = entry.file_name().into_string().unwrap();
        let name = match file.strip_suffix(".wat") {
            Some(name) => name,
            None if entry.path().is_dir() => &file,
            None => continue, // shared source (hostile_prelude.rs)
        };
        assert!(TESTED.contains(&name), "plugins/tests/{file} has no test");
        assert!(component(name).exists(), "{name}.wasm was not built");
    }
}

fn hostile(name: &str, extra: Value) -> Value {
    let mut run = json!({"name": name, "plugin": component(name)});
    for (k, v) in extra.as_object().unwrap() {
        run[k] = v.clone();
    }
    run
}

/// Runs `name` (with manifest fields `extra`) next to the neighbour and
/// makes the checks every hostile test makes.
fn contained(
    name: &str,
    extra: Value,
    words: &[&str],
    rss_mib: u64,
) -> super::hostile_batch::Batch {
    let b = batch(
        &[hostile(name, extra), neighbour(NEIGHBOUR_COUNT)],
        None,
        &[],
    );
    b.assert_stopped(name, words)
        .assert_neighbour_exact(NEIGHBOUR_COUNT)
        .assert_peak_rss_below(rss_mib);
    b
}

/// A namespace of the test's own, `lo` up, where nothing can leave.
fn sandbox(tag: &str) -> Netns {
    Netns::new(tag)
}

// ---- Attacks that already held before issue 8 ----

#[test]
fn trap() {
    if !require_root("trap") {
        return;
    }
    let b = contained("trap", json!({}), &["plugin trapped: "], BASE_RSS_MIB);
    assert!(
        b.entry("trap")["error"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
}

#[test]
fn spin() {
    if !require_root("spin") {
        return;
    }
    let b = batch(
        &[
            hostile("spin", json!({"limits": {"cpu_seconds": 0.5}})),
            neighbour(NEIGHBOUR_COUNT),
        ],
        None,
        &[],
    );
    b.assert_stopped("spin", &["exceeded its CPU time limit of 500ms"])
        .assert_neighbour_exact(NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB);
    // With a large CPU budget, the wall clock ends it (it ignores interrupts).
    let b = batch(
        &[
            hostile(
                "spin",
                json!({"limits": {"cpu_seconds": 100, "wall_seconds": 0.5}}),
            ),
            neighbour(NEIGHBOUR_COUNT),
        ],
        None,
        &[],
    );
    b.assert_stopped("spin", &["did not finish within the wall-clock limit"])
        .assert_neighbour_exact(NEIGHBOUR_COUNT);
}

#[test]
fn hog() {
    if !require_root("hog") {
        return;
    }
    contained(
        "hog",
        json!({"limits": {"memory_mib": 32}}),
        &["exceeded its memory limit of 32 MiB"],
        BASE_RSS_MIB + 32,
    );
}

#[test]
fn forbidden() {
    if !require_root("forbidden") {
        return;
    }
    // It imports the WASI filesystem, which the host serves with no
    // directory at all: it loads, and reading /etc/passwd finds nothing.
    contained(
        "forbidden",
        json!({}),
        &["No such file or directory"],
        BASE_RSS_MIB,
    );
}

#[test]
fn thief() {
    if !require_root("thief") {
        return;
    }
    // Same guest id as the neighbour (7), same target, at the same time.
    let b = batch(
        &[
            hostile(
                "thief",
                json!({"args": ["--id", "7"], "limits": {"wall_seconds": 1.5}}),
            ),
            neighbour(NEIGHBOUR_COUNT),
        ],
        None,
        &[],
    );
    b.assert_stopped("thief", &["stole 0 replies"])
        .assert_neighbour_exact(NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB);
    let error = b.entry("thief")["error"].as_str().unwrap().to_owned();
    assert!(!error.contains("received 0 of its own"), "{error}");
}

#[test]
fn escape() {
    if !require_root("escape") {
        return;
    }
    // In a namespace of its own: even a policy failure could reach nothing
    // but that namespace's loopback.
    let ns = sandbox("escape");
    let targets = [
        "127.0.0.1",
        "::1",
        "0.0.0.0",
        "::",
        "::ffff:127.0.0.1",
        "::7f00:1",
        "64:ff9b::7f00:1",
        "64:ff9b:1::7f00:1",
        "2002:7f00:1::1",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
    ];
    let b = batch(
        &[
            hostile(
                "escape",
                json!({"args": targets, "policy": {"deny": ["127.0.0.0/8", "::1"]}}),
            ),
            neighbour(NEIGHBOUR_COUNT),
        ],
        Some(&ns),
        &[],
    );
    b.assert_stopped("escape", &["all refused: "])
        .assert_neighbour_exact(NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB);
    let error = b.entry("escape")["error"].as_str().unwrap().to_owned();
    for words in [
        "0.0.0.0 reaches this host's loopback",
        ":: reaches this host's loopback",
        "::7f00:1 carries 127.0.0.1 (IPv4-compatible)",
        "64:ff9b::7f00:1 carries 127.0.0.1 (NAT64)",
        "64:ff9b:1::7f00:1 carries 127.0.0.1 (local-use NAT64)",
        "2002:7f00:1::1 carries 127.0.0.1 (6to4)",
        "224.0.0.1 is a multicast address",
        "ff02::1 is a multicast address",
        "255.255.255.255 is the broadcast address",
        "set-broadcast: Error::PolicyDenied(Denial { rule: PolicyRule::Broadcast",
    ] {
        assert!(error.contains(words), "{words:?} in {error}");
    }
}

// ---- Issue 8, item 3: memory across memories, tables and instances ----

#[test]
fn memories() {
    if !require_root("memories") {
        return;
    }
    // Eight memories of 240 MiB, each under the 256 MiB limit.
    contained(
        "memories",
        json!({"limits": {"memory_mib": 256}}),
        &["memory limit"],
        BASE_RSS_MIB + 256,
    );
}

#[test]
fn tables() {
    if !require_root("tables") {
        return;
    }
    contained(
        "tables",
        json!({"limits": {"memory_mib": 16}}),
        &["memory limit", "table limit", "table elements"],
        BASE_RSS_MIB + 16,
    );
}

#[test]
fn instances() {
    if !require_root("instances") {
        return;
    }
    // 64 instances, each with a 16 MiB memory: 1 GiB under a 256 MiB limit.
    contained(
        "instances",
        json!({"limits": {"memory_mib": 256}}),
        &["memory limit", "instance limit", "instances"],
        BASE_RSS_MIB + 256,
    );
}

#[test]
fn oversized_component_file() {
    if !require_root("oversized_component_file") {
        return;
    }
    // A valid component followed by a 1 GiB custom section (sparse: it
    // costs no disk, only whoever reads it).
    let path = std::env::temp_dir().join(format!("icmp-host-huge-{}.wasm", std::process::id()));
    // Without the padding it runs and succeeds (`--limits`).
    let small = std::fs::read(component("sleeper")).unwrap();
    let size: u64 = 1 << 30;
    let mut bytes = small;
    bytes.push(0); // custom section
    let name = b"padding";
    let mut len = size + 1 + name.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        bytes.push(if len == 0 { byte } else { byte | 0x80 });
        if len == 0 {
            break;
        }
    }
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    let header = bytes.len() as u64;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(header + size)
        .unwrap();
    // Its size is known before anything runs: the manifest naming it is
    // refused as a whole (as a wrong sha256 is), without reading it.
    let b = batch_refused(&[
        json!({"name": "huge", "plugin": path, "args": ["--limits"]}),
        neighbour(NEIGHBOUR_COUNT),
    ]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(b.code, 2, "{}", b.stderr);
    assert!(b.stdout.is_empty(), "{}", b.stdout);
    assert!(
        ["plugins may be at most", "too large", "size limit"]
            .iter()
            .any(|w| b.stderr.contains(w)),
        "names the size limit: {}",
        b.stderr
    );
    b.assert_peak_rss_below(BASE_RSS_MIB);
}

// ---- Issue 8, items 1 and 2: the shared key table, bounded host calls ----

/// A namespace where 127.0.0.99 is silent: its echo requests are dropped
/// on the way in (sends succeed; no reply ever comes).
fn silent_sandbox(tag: &str) -> Netns {
    let ns = sandbox(tag);
    ns.nft(
        "table inet lab {\n  chain input {\n    type filter hook input priority 0;\n    \
         ip daddr 127.0.0.99 icmp type echo-request drop\n  }\n}\n",
    );
    ns
}

/// Replies the neighbour of a key flood waits for: long enough (5 s) to
/// still be sending when a flood without a quota has filled the table.
const FLOOD_NEIGHBOUR_COUNT: u64 = 100;

#[test]
fn key_flood() {
    if !require_root("key_flood") {
        return;
    }
    let ns = silent_sandbox("keyflood");
    let b = batch(
        &[
            hostile(
                "key-flood",
                json!({"args": ["--target", "127.0.0.99"], "limits": {"wall_seconds": 8}}),
            ),
            neighbour(FLOOD_NEIGHBOUR_COUNT),
        ],
        Some(&ns),
        &[],
    );
    // Its own quota of keys in flight stops it, with the host's words.
    b.assert_stopped("key-flood", &["ResourceExhausted"])
        .assert_neighbour_exact(FLOOD_NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB + 64);
    let error = b.entry("key-flood")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("in flight"), "names the quota: {error}");
}

#[test]
fn key_flood_after_retention_poisoning() {
    if !require_root("key_flood_after_retention_poisoning") {
        return;
    }
    // `receive(_, u64::MAX)` first: keys must not be kept longer for it.
    let ns = silent_sandbox("poison");
    let b = batch(
        &[
            hostile(
                "key-flood",
                json!({"args": ["--target", "127.0.0.99", "--poison"],
                       "limits": {"wall_seconds": 8}}),
            ),
            neighbour(FLOOD_NEIGHBOUR_COUNT),
        ],
        Some(&ns),
        &[],
    );
    b.assert_stopped("key-flood", &["ResourceExhausted"])
        .assert_neighbour_exact(FLOOD_NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB + 64);
}

#[test]
fn send_many() {
    if !require_root("send_many") {
        return;
    }
    // Two of them: a million requests refused whole, then full batches in a
    // loop; the limits must hold however long each host call runs.
    let limits = json!({"limits": {"cpu_seconds": 0.5, "wall_seconds": 1}});
    let mut second = hostile("send-many", limits.clone());
    second["name"] = json!("send-many-2");
    // Floods run in a namespace of their own: on the host's loopback every
    // other test's raw receiver would get a copy of each reply.
    let ns = sandbox("sendmany");
    let b = batch(
        &[
            hostile("send-many", limits),
            second,
            neighbour(NEIGHBOUR_COUNT),
        ],
        Some(&ns),
        &[],
    );
    for name in ["send-many", "send-many-2"] {
        b.assert_stopped(name, &["CPU time limit of 500ms", "wall-clock limit of 1s"]);
    }
    // Each guest holds its million requests (about 100 MiB) itself.
    b.assert_neighbour_exact(NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB + 2 * 160);
    // Limits of 1 s, a grace of 2 s, a neighbour of 1 s: nothing near the
    // 12 s a million-request call once took.
    assert!(b.elapsed < Duration::from_secs(8), "{:?}", b.elapsed);
}

/// `start-sending` abused: a million requests, a third batch, a finish
/// with nothing begun, batches left on a closed socket, then batches begun
/// and never finished with starts refused in a loop. Each promise broken
/// ends the run early with its own message; kept, only the limits end it,
/// and the neighbour is exact.
#[test]
fn start_sending_abused() {
    if !require_root("start_sending_abused") {
        return;
    }
    let limits = json!({"args": ["--started"],
                        "limits": {"cpu_seconds": 0.5, "wall_seconds": 1}});
    let ns = sandbox("started");
    let b = batch(
        &[hostile("send-many", limits), neighbour(NEIGHBOUR_COUNT)],
        Some(&ns),
        &[],
    );
    b.assert_stopped(
        "send-many",
        &["CPU time limit of 500ms", "wall-clock limit of 1s"],
    )
    .assert_neighbour_exact(NEIGHBOUR_COUNT)
    .assert_peak_rss_below(BASE_RSS_MIB + 160);
}

/// Eighty tenants sending full batches in a loop keep the async workers
/// busy: the neighbour's replies must still be routed before its receive
/// deadlines (the planes' reader has a thread of its own; among the
/// workers it once waited its turn past them, and 1 or 2 replies in 20
/// that had arrived in time were reported lost).
#[test]
fn many_send_many_tenants() {
    if !require_root("many_send_many_tenants") {
        return;
    }
    let limits = json!({"limits": {"cpu_seconds": 2, "wall_seconds": 3}});
    let mut runs: Vec<Value> = (0..80)
        .map(|i| {
            let mut run = hostile("send-many", limits.clone());
            run["name"] = json!(format!("send-many-{i}"));
            run["args"] = json!(["--batches-only"]);
            run
        })
        .collect();
    runs.push(neighbour(NEIGHBOUR_COUNT));
    let ns = sandbox("manysend");
    let b = batch(&runs, Some(&ns), &[]);
    for i in 0..80 {
        b.assert_stopped(
            &format!("send-many-{i}"),
            &["CPU time limit of 2s", "wall-clock limit of 3s"],
        );
    }
    b.assert_neighbour_exact(NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB + 256);
}

#[test]
fn queue_flood() {
    if !require_root("queue_flood") {
        return;
    }
    let ns = sandbox("qflood");
    let b = batch(
        &[
            hostile(
                "queue-flood",
                json!({"policy": {"allow": ["127.0.0.0/8"]}, "limits": {"wall_seconds": 8}}),
            ),
            neighbour(FLOOD_NEIGHBOUR_COUNT),
        ],
        Some(&ns),
        &[],
    );
    b.assert_stopped(
        "queue-flood",
        &["resource-exhausted", "wall-clock limit", "CPU time limit"],
    )
    .assert_neighbour_exact(FLOOD_NEIGHBOUR_COUNT)
    .assert_peak_rss_below(BASE_RSS_MIB + 64);
}

#[test]
fn socket_leak() {
    if !require_root("socket_leak") {
        return;
    }
    // Datagram sockets: one kernel socket each, unless the host lets go.
    let ns = sandbox("sockleak");
    ns.sysctl("net.ipv4.ping_group_range", "0 2147483647");
    let b = batch(
        &[
            hostile(
                "socket-leak",
                json!({"args": ["--unprivileged", "--count", "2000"],
                       "policy": {"max_sockets": 16}}),
            ),
            neighbour(NEIGHBOUR_COUNT),
        ],
        Some(&ns),
        &[],
    );
    b.assert_stopped("socket-leak", &["open #", "opened and closed"])
        .assert_neighbour_exact(NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB);
    assert!(
        b.peak_fds < 128,
        "the host held {} descriptors for 16 sockets",
        b.peak_fds
    );
}

// ---- Issue 8, items 5 and 7: output, interrupts, defaults ----

#[test]
fn output_flood() {
    if !require_root("output_flood") {
        return;
    }
    let b = batch(
        &[
            hostile(
                "output-flood",
                json!({"args": ["--flood-mib", "16", "--text-mib", "8"],
                       "limits": {"output_mib": 4}}),
            ),
            neighbour(NEIGHBOUR_COUNT),
        ],
        None,
        &["--progress", "text"],
    );
    b.assert_stopped("output-flood", &["exceeds the output limit of 4 MiB"])
        .assert_neighbour_exact(NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB + 64);
    // No forged entry: the report is exactly the two runs.
    assert_eq!(b.report.len(), 2, "{}", b.stdout);
    let e = b.entry("output-flood");
    // Only the valid lines, compact, inside its entry (the last one fits
    // in what the flood left of the 4 MiB).
    assert_eq!(
        e["result_lines"],
        json!([{"watched": true}, {"kept": 1}, {"after": "flood"}]),
        "{e}"
    );
    // The forged and invalid lines, the oversized ones, the flood past
    // 4 MiB (12 of its 16 MiB, in 1 KiB notes).
    assert!(e["events_dropped"].as_u64().unwrap() >= 12 * 1024, "{e}");
    // Progress on stderr stays near the budget (4 MiB plus the neighbour's).
    assert!(
        b.stderr.len() < 6 << 20,
        "{} bytes of stderr",
        b.stderr.len()
    );
    assert!(
        b.stderr
            .contains("[output-flood] PING overflow (None) 4294967295(4294967323)")
            || b.stderr.contains("4294967323"),
        "the u32 payload size renders without overflow"
    );
}

#[test]
fn output_flood_in_run_keeps_stdout_to_json_lines() {
    if !require_root("output_flood_in_run_keeps_stdout_to_json_lines") {
        return;
    }
    let mut cmd = icmp_host();
    cmd.args(["run", "--progress", "none"])
        .arg(component("output-flood"))
        .args(["--flood-mib", "1", "--text-mib", "1"]);
    let r = run(cmd, Duration::from_secs(60));
    r.assert_no_panic().assert_code(0);
    let mut lines = r.stdout.lines();
    // Nobody sees its progress: the flood of notes costs nothing.
    assert_eq!(lines.next(), Some(r#"{"watched":false}"#));
    assert_eq!(lines.next(), Some(r#"{"kept":1}"#));
    assert_eq!(lines.next(), Some(r#"{"after":"flood"}"#));
    // Then the text result itself (1 MiB, under the 64 MiB limit).
    assert_eq!(lines.next().map(str::len), Some(1 << 20));
    assert_eq!(lines.next(), None);
}

/// `write-report` called 1,024 times with 64 KiB: the host keeps 4 MiB of
/// it and no more, the run fails on the limit, the neighbour is exact.
#[test]
fn report_parts_past_the_output_limit() {
    if !require_root("report_parts_past_the_output_limit") {
        return;
    }
    let b = batch(
        &[
            hostile(
                "output-flood",
                json!({"args": ["--flood-mib", "0", "--report-mib", "64"],
                       "limits": {"output_mib": 4}}),
            ),
            neighbour(NEIGHBOUR_COUNT),
        ],
        None,
        &[],
    );
    b.assert_stopped("output-flood", &["exceeds the output limit of 4 MiB"])
        .assert_neighbour_exact(NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB + 32);

    // Returning text instead of the report does not escape the limit.
    let b = batch(
        &[
            hostile(
                "output-flood",
                json!({"args": ["--flood-mib", "0", "--report-mib", "8", "--then-text"],
                       "limits": {"output_mib": 4}}),
            ),
            neighbour(NEIGHBOUR_COUNT),
        ],
        None,
        &[],
    );
    b.assert_stopped("output-flood", &["exceeds the output limit of 4 MiB"])
        .assert_neighbour_exact(NEIGHBOUR_COUNT);
}

/// Report parts go to stdout in order, after the result lines, and with
/// what `run` returned make one JSON document on one line.
#[test]
fn report_parts_in_run_make_one_document() {
    if !require_root("report_parts_in_run_make_one_document") {
        return;
    }
    // Events dropped (the plugin's invalid result lines, and in compact
    // layout the one after the first part).
    let mut dropped = Vec::new();
    for layout in ["compact", "pretty"] {
        let mut cmd = icmp_host();
        cmd.args(["run", "--progress", "none", "--json", layout])
            .arg(component("output-flood"))
            .args(["--flood-mib", "0", "--report-mib", "3"]);
        let r = run(cmd, Duration::from_secs(60));
        r.assert_no_panic().assert_code(0);
        let (lines, report) = r.stdout.split_at(r.stdout.find("\n[").unwrap() + 1);
        // The result line sent after the first part would land inside a
        // report written as it comes (compact): dropped and counted. Before
        // a report laid out at the end, it is a line like the others.
        let mut expected = "{\"watched\":false}\n{\"kept\":1}\n{\"after\":\"flood\"}\n".to_owned();
        if layout == "pretty" {
            expected.push_str("{\"inside\":\"report\"}\n");
        }
        assert_eq!(lines, expected, "{layout}");
        dropped.push(
            r.stderr
                .split_once(" progress events dropped")
                .and_then(|(before, _)| before.rsplit(' ').next()?.parse::<u32>().ok())
                .unwrap_or_else(|| panic!("no drop count: {}", r.stderr)),
        );
        assert!(report.ends_with("]\n"), "{layout}");
        assert_eq!(report.lines().count() == 1, layout == "compact", "{layout}");
        let items: Vec<String> = serde_json::from_str(report).unwrap();
        assert_eq!(items.len(), 3 * 16 + 1, "{layout}");
        assert!(items[..48].iter().all(|i| i.len() == (64 << 10) - 3));
        assert_eq!(items[48], "end");
    }
    assert_eq!(dropped[0], dropped[1] + 1, "compact, pretty: {dropped:?}");
}

#[test]
fn plugin_text_is_escaped_on_a_terminal() {
    if !require_root("plugin_text_is_escaped_on_a_terminal") {
        return;
    }
    // `script` gives the host a terminal for stdout and stderr.
    let command = format!(
        "{} run --progress text {} --flood-mib 0 --text-mib 0",
        super::util::bin(),
        component("output-flood").display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qefc", &command, "/dev/null"])
        .env("ICMP_HOST_CACHE_DIR", super::util::cache_dir());
    let r = run(cmd, Duration::from_secs(60));
    r.assert_no_panic();
    assert!(
        r.stdout
            .contains(r"\u001b]0;owned\u0007\u001b[2J\u009b31mred"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains('\u{1b}'),
        "a raw ESC reached the terminal"
    );
    assert!(
        !r.stdout.contains('\u{9b}'),
        "a raw CSI reached the terminal"
    );
}

#[test]
fn sleeper() {
    if !require_root("sleeper") {
        return;
    }
    let b = batch(
        &[
            hostile("sleeper", json!({"limits": {"wall_seconds": 1}})),
            json!({"name": "limits", "plugin": component("sleeper"), "args": ["--limits"]}),
            neighbour(NEIGHBOUR_COUNT),
        ],
        None,
        &[],
    );
    // `std::thread::sleep` woke at the wall-clock limit and the plugin
    // returned what it had, well before the grace period ran out.
    let e = b.entry("sleeper");
    assert_eq!(e["outcome"], "partial", "{e}");
    let slept = e["result"]["slept_ms"].as_u64().unwrap();
    assert!((900..2500).contains(&slept), "slept {slept} ms");
    // A run that sets no wall-clock limit gets the batch's default.
    assert_eq!(
        b.entry("limits")["result"]["wall_ns"],
        json!(300_000_000_000u64)
    );
    b.assert_neighbour_exact(NEIGHBOUR_COUNT)
        .assert_peak_rss_below(BASE_RSS_MIB);
}

#[test]
fn unknown_interface() {
    if !require_root("unknown_interface") {
        return;
    }
    contained(
        "unknown-interface",
        json!({}),
        &["imports `icmp-host:probe/telepathy@0.2.0`, which icmp-host does not provide"],
        BASE_RSS_MIB,
    );
}

#[test]
fn unknown_function() {
    if !require_root("unknown_function") {
        return;
    }
    let b = contained(
        "unknown-function",
        json!({}),
        &["escape-sandbox"],
        BASE_RSS_MIB,
    );
    let error = b.entry("unknown-function")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("icmp-host:probe/control@0.2.0"), "{error}");
}

#[test]
fn rate_below_the_floor_is_refused_not_a_panic() {
    // `--max-pps 1e-30` once panicked the host and lost every result.
    let b = super::util::run(
        {
            let path =
                std::env::temp_dir().join(format!("icmp-host-pps-{}.json", std::process::id()));
            std::fs::write(
                &path,
                json!({"runs": [{"name": "slow", "plugin": "ping", "args": ["127.0.0.1"],
                                 "policy": {"max_pps": 1e-30}}]})
                .to_string(),
            )
            .unwrap();
            let mut cmd = icmp_host();
            cmd.arg("batch").arg(path);
            cmd
        },
        Duration::from_secs(30),
    );
    b.assert_no_panic().assert_code(2);
    assert!(b.stderr.contains("max pps must be between"), "{}", b.stderr);
    let mut cmd = icmp_host();
    cmd.args(["run", "--max-pps", "1e-30", "ping", "127.0.0.1"]);
    let r = run(cmd, Duration::from_secs(30));
    r.assert_no_panic().assert_code(2);
    assert!(r.stderr.contains("max pps must be between"), "{}", r.stderr);
}

#[test]
fn cache_tampering_is_detected() {
    if !require_root("cache_tampering_is_detected") {
        return;
    }
    // A cache of this test's own, filled by a first batch.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tamper-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_string_lossy().into_owned();
    let args = ["--cache-dir", dir_arg.as_str()];
    // Built-ins are precompiled into the binary; a plugin file is cached.
    let mut from_file = neighbour(NEIGHBOUR_COUNT);
    from_file["plugin"] = json!(super::util::plugin("ping"));
    batch(&[from_file.clone()], None, &args).assert_neighbour_exact(NEIGHBOUR_COUNT);
    let artifacts: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert!(!artifacts.is_empty(), "nothing cached in {}", dir.display());
    // Flip bytes of the native code: the digest no longer matches.
    for a in &artifacts {
        let mut bytes = std::fs::read(a).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        std::fs::write(a, bytes).unwrap();
    }
    let b = batch(&[from_file.clone()], None, &args);
    b.assert_neighbour_exact(NEIGHBOUR_COUNT);
    // A directory others may write is not trusted at all.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let b = batch(&[from_file], None, &args);
    b.assert_neighbour_exact(NEIGHBOUR_COUNT);
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
