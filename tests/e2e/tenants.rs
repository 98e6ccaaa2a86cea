//! Several untrusted plugins side by side in one host (`icmp-host batch`):
//! each under its own policy and limits; a hostile one is stopped without
//! disturbing the others, and tenants never see each other's replies.

use std::time::Duration;

use serde_json::json;

use super::util::{icmp_host, plugin, require_root, run, u};

const LIMIT: Duration = Duration::from_secs(60);

/// Runs `manifest` with `icmp-host batch`.
pub fn batch(manifest: &serde_json::Value) -> super::util::Run {
    let path = std::env::temp_dir().join(format!(
        "icmp-host-manifest-{}-{}.json",
        std::process::id(),
        rand_tag()
    ));
    std::fs::write(&path, manifest.to_string()).unwrap();
    let mut cmd = icmp_host();
    cmd.arg("batch").arg(&path);
    let r = run(cmd, LIMIT);
    let _ = std::fs::remove_file(&path);
    r.assert_no_panic();
    r
}

fn rand_tag() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn tenants_run_side_by_side_and_a_hostile_one_is_contained() {
    if !require_root("tenants_run_side_by_side_and_a_hostile_one_is_contained") {
        return;
    }
    let ping = |target: &str| json!([target, "-c", "20", "-i", "0.01", "--id", "7"]);
    let manifest = json!({"runs": [
        {"name": "team-a", "plugin": "ping", "args": ping("127.0.0.1"),
         "policy": {"allow": ["127.0.0.0/8"]}},
        {"name": "team-b", "plugin": "ping", "args": ping("127.0.0.1"),
         "policy": {"allow": ["127.0.0.0/8"], "max_pps": 500}},
        {"name": "team-c", "plugin": "multiping", "args": ["127.0.0.1", "127.0.0.2", "::1", "-c", "3"]},
        {"name": "spinner", "plugin": plugin("spin"), "limits": {"cpu_seconds": 0.3}},
        {"name": "trapper", "plugin": plugin("trap")},
        {"name": "nosy", "plugin": "ping", "args": ["::1", "-c", "1"], "policy": {"deny": ["::1/128"]}},
    ]});
    let r = batch(&manifest);
    r.assert_code(2);
    let report = r.json();
    let runs = report.as_array().unwrap();
    let by_name = |n: &str| runs.iter().find(|r| r["name"] == n).unwrap().clone();
    for team in ["team-a", "team-b"] {
        let t = by_name(team);
        assert_eq!(t["outcome"], "reached", "{t}");
        // Same guest id, same target, same time: each got its own 20 replies.
        assert_eq!(u(&t["result"], "packets_received"), 20, "{t}");
        assert_eq!(u(&t["result"], "duplicates"), 0, "{t}");
    }
    assert_eq!(by_name("team-c")["outcome"], "reached");
    assert_eq!(by_name("team-c")["result"].as_array().unwrap().len(), 3);
    let spinner = by_name("spinner");
    assert_eq!(spinner["exit"], 2);
    assert!(
        spinner["error"]
            .as_str()
            .unwrap()
            .contains("CPU time limit"),
        "{spinner}"
    );
    assert!(
        by_name("trapper")["error"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    assert!(
        by_name("nosy")["error"]
            .as_str()
            .unwrap()
            .contains("denied by policy")
    );
}

#[test]
fn manifest_errors_refuse_the_whole_batch() {
    let wrong_hash = json!({"runs": [
        {"name": "a", "plugin": "ping", "sha256": "00".repeat(32), "args": ["127.0.0.1"]}
    ]});
    let r = batch(&wrong_hash);
    r.assert_code(2);
    assert!(r.stderr.contains("has sha256"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let unknown_field = json!({"runs": [{"name": "a", "plugin": "ping", "polcy": {}}]});
    let r = batch(&unknown_field);
    r.assert_code(2);
    assert!(r.stderr.contains("not a valid manifest"), "{}", r.stderr);
    let twice = json!({"runs": [{"name": "a", "plugin": "ping"}, {"name": "a", "plugin": "ping"}]});
    let r = batch(&twice);
    r.assert_code(2);
    assert!(r.stderr.contains("two runs are named"), "{}", r.stderr);
}

/// A thousand tenants sending at once share the raw socket: when its send
/// buffer fills, every waiting sender must be woken (a single-waker wait
/// once left all but one of them stuck until the wall limit).
#[test]
fn a_thousand_tenants_at_once_all_get_their_reply() {
    if !require_root("a_thousand_tenants_at_once_all_get_their_reply") {
        return;
    }
    let runs: Vec<_> = (0..1000)
        .map(|i| {
            json!({"name": format!("t{i}"), "plugin": "ping",
                   "args": ["127.0.0.1", "-c", "1", "-W", "2"]})
        })
        .collect();
    let r = batch(&json!({ "runs": runs }));
    r.assert_code(0);
    let report = r.json();
    let runs = report.as_array().unwrap();
    assert_eq!(runs.len(), 1000);
    for run in runs {
        assert_eq!(run["outcome"], "reached", "{run}");
        assert_eq!(u(&run["result"], "packets_received"), 1, "{run}");
    }
}

/// Compiling a tenant's plugin is charged to it: each run's entry says
/// what compiling its plugin cost in this batch (each run naming the same
/// bytes shows the one compile), refused plugins included; built-ins and
/// cached plugins cost nothing.
#[test]
fn compiling_a_plugin_is_charged_to_the_runs_naming_it() {
    if !require_root("compiling_a_plugin_is_charged_to_the_runs_naming_it") {
        return;
    }
    let cache = std::env::temp_dir().join(format!("icmp-host-compile-cpu-{}", rand_tag()));
    let manifest = json!({"runs": [
        {"name": "one", "plugin": plugin("trap")},
        {"name": "two", "plugin": plugin("trap")},
        {"name": "builtin", "plugin": "ping", "args": ["127.0.0.1", "-c", "1"]},
        // Compiled, then refused (it imports what the host does not serve).
        {"name": "refused", "plugin": super::hostile_batch::component("unknown-interface")},
    ]});
    let path = std::env::temp_dir().join(format!("icmp-host-compile-cpu-{}.json", rand_tag()));
    std::fs::write(&path, manifest.to_string()).unwrap();
    let batch_in = |cache: &std::path::Path| {
        let mut cmd = icmp_host();
        cmd.arg("batch").arg(&path).arg("--cache-dir").arg(cache);
        let r = run(cmd, LIMIT);
        r.assert_no_panic();
        r.json()
    };
    let compile_ms = |report: &serde_json::Value, name: &str| {
        let entry = report
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap();
        entry["compile_cpu_ms"].as_f64().unwrap()
    };
    let first = batch_in(&cache);
    let second = batch_in(&cache);
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_file(&path);
    assert!(compile_ms(&first, "one") > 0.0, "{first}");
    assert_eq!(compile_ms(&first, "one"), compile_ms(&first, "two"));
    assert_eq!(compile_ms(&first, "builtin"), 0.0, "{first}");
    assert!(compile_ms(&first, "refused") > 0.0, "{first}");
    // The second batch finds it in the cache.
    assert_eq!(compile_ms(&second, "one"), 0.0, "{second}");
}
