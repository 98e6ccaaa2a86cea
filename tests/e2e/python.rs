//! Python probes: the Python SDK's own unit tests, and plugins built from
//! Python with componentize-py (`python3 -m icmp_host build`) run by the
//! real host on loopback — the examples next to the Rust plugins,
//! `inspect`, an import the host does not serve, and hostile Python next
//! to well-behaved tenants. The lab comparisons are in `python_lab.rs`.
//!
//! The plugins are built once per test run, only when an input changed
//! (`--if-changed`), into `target/python-plugins/` — where `.ci/run` builds
//! them too. Without python3 or componentize-py these tests are skipped
//! loudly, and fail under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use super::tenants::batch;
use super::util::{cache_dir, icmp_host, require_root, run, u};

const LIMIT: Duration = Duration::from_secs(120);

/// The repository.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// The Python SDK.
fn sdk() -> PathBuf {
    root().join("guest-sdk-python")
}

/// Where the Python plugins are built.
fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("python-plugins")
}

/// Every Python plugin the tests use: name, source directory, extra
/// build arguments.
const SOURCES: &[(&str, &str, &[&str])] = &[
    ("python-ping", "plugins/examples/python-ping", &[]),
    ("python-trace", "plugins/examples/python-trace", &[]),
    ("python-sockets", "plugins/examples/python-sockets", &[]),
    ("python-hostile", "tests/python/hostile", &[]),
    (
        "python-evil",
        "tests/python/evil",
        &["--world", "icmp-host-tests:evil/evil"],
    ),
];

/// A tool these tests need is missing: skip loudly, or fail under CI.
fn unavailable(test: &str, why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}, and CI=true forbids skipping it");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// `python3` with the SDK importable.
fn python3() -> Command {
    let mut c = Command::new("python3");
    c.env("PYTHONPATH", sdk()).current_dir(sdk());
    c
}

/// Why Python tests cannot run here, if they cannot.
fn python_missing() -> Option<String> {
    let check = python3()
        .args([
            "-c",
            "import sys; assert sys.version_info >= (3, 9), sys.version",
        ])
        .output();
    match check {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "python3 ≥ 3.9 is needed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("python3 is needed ({e})")),
    }
}

/// Builds `name` from `dir` (when an input changed), then compiles it
/// into the tests' cache so that runs start at once.
fn build_one(name: &str, dir: &str, extra: &[&str]) {
    let out = out_dir().join(format!("{name}.wasm"));
    let source = root().join(dir);
    let mut cmd = python3();
    cmd.args(["-m", "icmp_host", "build", "-q", "--if-changed", "-o"])
        .arg(&out)
        .arg(&source)
        .args(extra);
    if source.join("wit").is_dir() {
        cmd.arg("--wit").arg(source.join("wit"));
    }
    let o = cmd.output().expect("running python3 -m icmp_host build");
    assert!(
        o.status.success(),
        "building {name} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Compiling an 18 MB component takes seconds: once, not per test.
    let mut inspect = icmp_host();
    inspect.arg("inspect").arg(&out);
    let r = run(inspect, LIMIT);
    r.assert_no_panic();
    assert!(
        r.code == 0 || name == "python-evil",
        "{name} does not load: {}",
        r.stderr
    );
}

/// Builds the Python plugins (once per test run) for `test`; `false`,
/// after skipping loudly, when python3 or componentize-py is missing —
/// under `CI=true` that fails instead. Without componentize-py,
/// `.cargo/runner` leaves out by name every test that calls this, so they
/// never pass without running.
pub fn python_plugins(test: &str) -> bool {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        if let Some(why) = python_missing() {
            return Err(why);
        }
        let found = python3()
            .args([
                "-c",
                "import icmp_host.build as b; print(b.componentize_py())",
            ])
            .output()
            .expect("running python3");
        if !found.status.success() {
            return Err(format!(
                "componentize-py is needed to build Python plugins ({}); .ci/run installs it",
                String::from_utf8_lossy(&found.stderr).trim()
            ));
        }
        // Two at a time: the machine has two cores.
        for pair in SOURCES.chunks(2) {
            std::thread::scope(|s| {
                for (name, dir, extra) in pair {
                    s.spawn(move || build_one(name, dir, extra));
                }
            });
        }
        Ok(())
    });
    match result {
        Ok(()) => true,
        Err(why) => {
            unavailable(test, why);
            false
        }
    }
}

/// The built Python plugin `name`.
pub fn python_plugin(name: &str) -> PathBuf {
    out_dir().join(format!("{name}.wasm"))
}

/// `icmp-host run` of a plugin with `args`.
fn icmp_host_run(host_args: &[&str], plugin: &str, args: &[&str]) -> super::util::Run {
    let mut cmd = icmp_host();
    cmd.arg("run").args(host_args).arg(plugin).args(args);
    let r = run(cmd, LIMIT);
    r.assert_no_panic();
    r
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

#[test]
fn python_sdk_unit_tests() {
    if let Some(why) = python_missing() {
        panic!("{why}: the Python SDK's tests cannot run (apt-get install python3)");
    }
    let o = python3()
        .args(["-m", "unittest", "discover", "-s", "tests", "-t", "."])
        .output()
        .expect("running python3 -m unittest");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let ran: u32 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Ran "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(ran >= 50, "only {ran} Python tests ran:\n{stderr}");
}

#[test]
fn python_ping_on_loopback_matches_the_rust_ping() {
    if !require_root("python_ping_on_loopback_matches_the_rust_ping")
        || !python_plugins("python_ping_on_loopback_matches_the_rust_ping")
    {
        return;
    }
    let py = python_plugin("python-ping");
    let args = ["127.0.0.1", "-c", "3", "-i", "0.05"];
    let p = icmp_host_run(&[], py.to_str().unwrap(), &args);
    let r = icmp_host_run(&[], "ping", &args);
    p.assert_code(0);
    r.assert_code(0);
    let (p, pj, rj) = (&p, p.json(), r.json());
    assert_eq!(keys(&pj), keys(&rj), "same Host record");
    for key in [
        "address",
        "target",
        "packets_sent",
        "packets_received",
        "is_alive",
    ] {
        assert_eq!(pj[key], rj[key], "{key}");
    }
    assert_eq!(u(&pj, "packets_received"), 3);
    let probes = pj["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 3);
    for (n, (pp, rp)) in probes
        .iter()
        .zip(rj["probes"].as_array().unwrap())
        .enumerate()
    {
        assert_eq!(keys(pp), keys(rp));
        assert_eq!(pp["sequence"], n as u64 + 1);
        assert_eq!(pp["status"], "reply");
        assert_eq!(pp["timestamp_source"], rp["timestamp_source"]);
    }
    // ping's progress lines, rendered by the host from the Python events.
    for line in [
        "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.",
        "64 bytes from 127.0.0.1: icmp_seq=3 ttl=64 time=",
        "3 packets transmitted, 3 received, 0% packet loss",
    ] {
        assert!(p.stderr.contains(line), "{line}:\n{}", p.stderr);
    }
}

#[test]
fn python_multiping_traceroute_and_sockets_on_loopback() {
    if !require_root("python_multiping_traceroute_and_sockets_on_loopback")
        || !python_plugins("python_multiping_traceroute_and_sockets_on_loopback")
    {
        return;
    }
    let hosts = ["127.0.0.1", "::1", "127.0.0.2"];
    let mut args = hosts.to_vec();
    args.extend(["-c", "2", "-i", "0.05"]);
    let p = icmp_host_run(
        &["-q"],
        python_plugin("python-ping").to_str().unwrap(),
        &args,
    );
    let r = icmp_host_run(&["-q"], "multiping", &args);
    p.assert_code(0);
    r.assert_code(0);
    let (pj, rj) = (p.json(), r.json());
    let (pl, rl) = (pj.as_array().unwrap(), rj.as_array().unwrap());
    assert_eq!(pl.len(), 3);
    for ((ph, rh), target) in pl.iter().zip(rl).zip(hosts) {
        assert_eq!(keys(ph), keys(rh));
        assert_eq!(ph["target"], target, "input order");
        assert_eq!(u(ph, "packets_received"), 2);
        assert_eq!(ph["packets_sent"], rh["packets_sent"]);
    }

    let p = icmp_host_run(
        &[],
        python_plugin("python-trace").to_str().unwrap(),
        &["127.0.0.1"],
    );
    let r = icmp_host_run(&[], "traceroute", &["127.0.0.1"]);
    p.assert_code(0);
    r.assert_code(0);
    let (pj, rj) = (p.json(), r.json());
    assert_eq!(pj.as_array().unwrap().len(), 1);
    assert_eq!(keys(&pj[0]), keys(&rj[0]), "same Hop record");
    assert_eq!(pj[0]["address"], "127.0.0.1");
    assert_eq!(u(&pj[0], "packets_received"), 2);
    assert!(p.stderr.contains(" 1  127.0.0.1  "), "{}", p.stderr);

    let s = icmp_host_run(
        &[],
        python_plugin("python-sockets").to_str().unwrap(),
        &["::1"],
    );
    s.assert_code(0);
    let hops = s.json();
    assert_eq!(hops[0]["ttl"], 1);
    assert_eq!(hops[0]["source"], "::1");
    assert!(hops[0]["rtt"].as_f64().unwrap() > 0.0);
}

/// A Python report over 1 MiB goes to the host in parts, as a Rust one
/// does: 4,096 hosts' records (1.5 MB) arrive whole, in input order.
#[test]
fn python_large_report_arrives_whole_in_input_order() {
    if !require_root("python_large_report_arrives_whole_in_input_order")
        || !python_plugins("python_large_report_arrives_whole_in_input_order")
    {
        return;
    }
    let targets: Vec<String> = (0..4096)
        .map(|i| format!("127.1.{}.{}", i >> 8, i & 0xff))
        .collect();
    let mut args: Vec<&str> = targets.iter().map(String::as_str).collect();
    args.extend(["-c", "1", "-W", "1"]);
    let p = icmp_host_run(
        &["-q"],
        python_plugin("python-ping").to_str().unwrap(),
        &args,
    );
    p.assert_code(0);
    assert!(p.stdout.len() > 1 << 20, "{} bytes", p.stdout.len());
    assert_eq!(p.stdout.lines().count(), 1);
    let hosts = p.json();
    let hosts = hosts.as_array().unwrap();
    let order: Vec<&str> = hosts
        .iter()
        .map(|h| h["target"].as_str().unwrap())
        .collect();
    assert_eq!(order, targets);
    assert!(hosts.iter().all(|h| h["is_alive"] == true));
}

#[test]
fn python_usage_help_and_policy_errors() {
    if !require_root("python_usage_help_and_policy_errors")
        || !python_plugins("python_usage_help_and_policy_errors")
    {
        return;
    }
    let py = python_plugin("python-ping");
    let py = py.to_str().unwrap();
    let help = icmp_host_run(&[], py, &["--help"]);
    help.assert_code(0);
    assert!(
        help.stdout
            .starts_with("usage: icmp-host run python-ping.wasm")
    );
    assert!(help.stdout.contains("--payload-size"), "{}", help.stdout);

    let bad = icmp_host_run(&[], py, &["127.0.0.1", "-c", "lots"]);
    bad.assert_code(2);
    assert!(
        bad.stderr
            .contains("argument -c/--count: invalid int value: 'lots'"),
        "{}",
        bad.stderr
    );

    // A refusal carries its rule, as the Rust plugins report it.
    let denied = icmp_host_run(&["--deny", "127.0.0.0/8"], py, &["127.0.0.1", "-c", "1"]);
    denied.assert_code(2);
    assert!(
        denied.stderr.contains("denied by policy (destination)"),
        "{}",
        denied.stderr
    );
    assert!(denied.stdout.is_empty());
    let raw = icmp_host_run(&["--no-privileged"], py, &["127.0.0.1", "--privileged"]);
    raw.assert_code(2);
    assert!(
        raw.stderr.contains("denied by policy (privileged)"),
        "{}",
        raw.stderr
    );
}

#[test]
fn inspect_shows_how_each_python_import_is_served() {
    if !require_root("inspect_shows_how_each_python_import_is_served")
        || !python_plugins("inspect_shows_how_each_python_import_is_served")
    {
        return;
    }
    let mut cmd = icmp_host();
    cmd.arg("inspect").arg(python_plugin("python-ping"));
    let r = run(cmd, LIMIT);
    r.assert_code(0);
    for line in [
        "status:  loads; every import is served",
        "icmp-host:probe/sockets@0.2.2",
        "provided: icmp-host, under the run's policy",
        "denied: no directories: nothing to open",
        "denied: TCP is refused before any socket exists",
        "denied: empty: no variables, no arguments, no working directory",
    ] {
        assert!(r.stdout.contains(line), "{line}:\n{}", r.stdout);
    }
    let filesystem = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("wasi:filesystem/types@0.2."))
        .unwrap_or_else(|| panic!("no filesystem import:\n{}", r.stdout));
    assert!(filesystem.ends_with("denied: no directories: nothing to open"));

    // A Rust plugin's imports are what they were: no filesystem, no sockets.
    let mut cmd = icmp_host();
    cmd.arg("inspect").arg("ping");
    let rust = run(cmd, LIMIT);
    rust.assert_code(0);
    assert!(!rust.stdout.contains("wasi:filesystem"), "{}", rust.stdout);
    assert!(!rust.stdout.contains("wasi:sockets"), "{}", rust.stdout);
}

#[test]
fn an_import_the_host_does_not_serve_is_refused_naming_it() {
    if !require_root("an_import_the_host_does_not_serve_is_refused_naming_it")
        || !python_plugins("an_import_the_host_does_not_serve_is_refused_naming_it")
    {
        return;
    }
    let evil = python_plugin("python-evil");
    let mut cmd = icmp_host();
    cmd.arg("inspect").arg(&evil);
    let r = run(cmd, LIMIT);
    r.assert_no_panic().assert_code(2);
    assert!(r.stdout.contains("status:  refused"), "{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("icmp-host-tests:evil/exfil")
                && l.ends_with("NOT SERVED: the plugin is refused")),
        "{}",
        r.stdout
    );
    let run_it = icmp_host_run(&[], evil.to_str().unwrap(), &["secret"]);
    run_it.assert_code(2);
    assert!(
        run_it
            .stderr
            .contains("imports `icmp-host-tests:evil/exfil`, which icmp-host does not provide"),
        "{}",
        run_it.stderr
    );
}

#[test]
fn hostile_python_is_contained_next_to_well_behaved_tenants() {
    if !require_root("hostile_python_is_contained_next_to_well_behaved_tenants")
        || !python_plugins("hostile_python_is_contained_next_to_well_behaved_tenants")
    {
        return;
    }
    let hostile = python_plugin("python-hostile");
    let hostile = hostile.to_str().unwrap();
    let neighbour = json!(["127.0.0.1", "-c", "20", "-i", "0.02"]);
    let loopback = json!({"allow": ["127.0.0.0/8"]});
    let mut runs = vec![
        json!({"name": "rust-neighbour", "plugin": "ping", "args": neighbour, "policy": loopback}),
        json!({"name": "python-neighbour", "plugin": python_plugin("python-ping"),
               "args": neighbour, "policy": loopback}),
        json!({"name": "spin", "plugin": hostile, "args": ["spin"],
               "limits": {"cpu_seconds": 1}}),
        json!({"name": "bomb", "plugin": hostile, "args": ["bomb"],
               "limits": {"memory_mib": 64}}),
    ];
    for mode in ["passwd", "listdir", "connect", "tcp", "udp", "environ"] {
        runs.push(json!({"name": mode, "plugin": hostile, "args": [mode]}));
    }
    let r = batch(&json!({ "runs": runs }));
    r.assert_code(2);
    let report = r.json();
    let entry = |n: &str| {
        report
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("no entry {n}: {report}"))
            .clone()
    };
    let error = |n: &str| {
        let e = entry(n);
        assert_eq!(e["exit"], 2, "{e}");
        e["error"].as_str().unwrap_or_default().to_owned()
    };
    for n in ["rust-neighbour", "python-neighbour"] {
        let e = entry(n);
        assert_eq!(e["outcome"], "reached", "{e}");
        assert_eq!(u(&e["result"], "packets_received"), 20, "{e}");
        assert_eq!(u(&e["result"], "duplicates"), 0, "{e}");
    }
    let contained = [
        ("spin", "exceeded its CPU time limit of 1s"),
        ("bomb", "exceeded its memory limit of 64 MiB"),
        (
            "passwd",
            "FileNotFoundError: [Errno 44] No such file or directory: '/etc/passwd'",
        ),
        ("listdir", "FileNotFoundError"),
        ("tcp", "PermissionError"),
        ("udp", "PermissionError"),
    ];
    for (name, words) in contained {
        let e = error(name);
        assert!(e.contains(words), "{name}: {e}");
    }
    // create_connection resolves first, and every lookup fails.
    let e = error("connect");
    assert!(
        e.contains("gaierror") || e.contains("PermissionError"),
        "connect: {e}"
    );
    let env = entry("environ");
    assert_eq!(env["exit"], 0, "{env}");
    assert_eq!(env["result"]["environ"], json!({}), "{env}");
    assert_eq!(env["result"]["argv"], json!([]), "{env}");
}

#[test]
fn python_runs_in_32_mib_from_the_cache() {
    if !require_root("python_runs_in_32_mib_from_the_cache")
        || !python_plugins("python_runs_in_32_mib_from_the_cache")
    {
        return;
    }
    // The default limit (256 MiB) is far above what a Python probe needs:
    // it runs within 32 MiB.
    let py = python_plugin("python-ping");
    let small = icmp_host_run(
        &["--memory", "32", "-q"],
        py.to_str().unwrap(),
        &["127.0.0.1", "-c", "1"],
    );
    small.assert_code(0);
    // Compiled once (by `inspect` when it was built): the cache holds it.
    let sha = icmp_host::runtime::sha256_hex(&std::fs::read(&py).unwrap());
    let cached = walk(&cache_dir()).into_iter().any(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&sha))
    });
    assert!(
        cached,
        "python-ping is not in the cache {}",
        cache_dir().display()
    );
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                found.extend(walk(&p));
            } else {
                found.push(p);
            }
        }
    }
    found
}

#[test]
fn new_python_project_tests_builds_and_runs() {
    if !require_root("new_python_project_tests_builds_and_runs")
        || !python_plugins("new_python_project_tests_builds_and_runs")
    {
        return;
    }
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("new-python-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project = dir.join("hello_py");
    let mut new = icmp_host();
    new.args(["new", "--python"]).arg(&project);
    let r = run(new, LIMIT);
    r.assert_no_panic().assert_code(0);
    assert!(r.stdout.contains("python3 build.py"), "{}", r.stdout);

    // The one build command: the project's tests, then the component.
    let o = Command::new("python3")
        .arg("build.py")
        .current_dir(&project)
        .output()
        .expect("running python3 build.py");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("Ran 2 tests") && stderr.contains("OK"),
        "{stderr}"
    );
    let wasm = project.join("hello_py.wasm");
    let r = icmp_host_run(
        &["-q"],
        wasm.to_str().unwrap(),
        &["127.0.0.1", "-c", "2", "-i", "0.05"],
    );
    r.assert_code(0);
    assert_eq!(u(&r.json(), "packets_received"), 2);
    let help = icmp_host_run(&[], wasm.to_str().unwrap(), &["--help"]);
    help.assert_code(0);
    assert!(
        help.stdout
            .starts_with("usage: icmp-host run hello_py.wasm"),
        "{}",
        help.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}
