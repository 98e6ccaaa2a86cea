//! Issue 11 end to end: a panicking plugin is explained, and `icmp-host
//! new` writes a crate that builds, tests and runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::util::{icmp_host, plugin, require_root, run};

/// Item 2: a panic's message and location, and what the plugin wrote
/// before, are shown with the trap.
#[test]
fn issue11_a_panic_is_reported_with_what_the_plugin_wrote() {
    let mut cmd = icmp_host();
    cmd.arg("run").arg(plugin("panic")).args(["a", "b"]);
    let r = run(cmd, Duration::from_secs(60));
    r.assert_code(2);
    // The plugin panicked; the host did not.
    assert!(!r.stderr.contains("thread '") && !r.stderr.contains("RUST_BACKTRACE"));
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(
        lines.contains(&"[panic] partial result before the panic"),
        "{}",
        r.stderr
    );
    assert!(
        lines.iter().any(|l| l.starts_with("[panic] panicked at ")
            && l.contains("tests/panic/src/lib.rs:11:9")
            && l.ends_with(": boom: 2 arguments")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("icmp-host: panic: plugin trapped: wasm trap: wasm `unreachable`"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

/// Runs `cmd` as the user who invoked `sudo`, when the tests run as root
/// through it: files it creates stay theirs, and cargo finds their home.
fn as_invoking_user(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let id = |var: &str| std::env::var(var).ok().and_then(|v| v.parse::<u32>().ok());
    if nix::unistd::geteuid().is_root()
        && let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID"))
    {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn cargo(dir: &Path, target_dir: &Path, args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args(args)
        .arg("--offline")
        .env("CARGO_TARGET_DIR", target_dir)
        // The outer build's settings are not the new crate's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let out = as_invoking_user(&mut cmd).output().expect("running cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} in {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `icmp-host new NAME`, then the crate's own test, its release build and
/// a run on loopback, as the generated instructions say.
#[test]
fn new_writes_a_crate_that_builds_tests_and_runs() {
    if !require_root("new_writes_a_crate_that_builds_tests_and_runs") {
        return;
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // Kept across runs, so the SDK and bindings build once.
    let target_dir = tmp.join("new-plugin-target");
    let work = tmp.join(format!("new-plugin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let dir = work.join("hello_probe");

    let mut cmd = icmp_host();
    cmd.arg("new").arg(&dir);
    as_invoking_user(&mut cmd);
    let r = run(cmd, Duration::from_secs(30));
    r.assert_code(0);
    assert!(
        r.stdout
            .contains("cargo build --release --target wasm32-wasip2")
    );
    // A second time, the directory exists: refused.
    let mut again = icmp_host();
    again.arg("new").arg(&dir);
    run(again, Duration::from_secs(30)).assert_code(2);

    cargo(&dir, &target_dir, &["test"]);
    cargo(
        &dir,
        &target_dir,
        &["build", "--release", "--target", "wasm32-wasip2"],
    );
    let wasm = target_dir.join("wasm32-wasip2/release/hello_probe.wasm");

    let mut help = icmp_host();
    help.arg("run").arg(&wasm).arg("--help");
    let r = run(help, Duration::from_secs(60));
    r.assert_code(0);
    assert!(
        r.stdout
            .starts_with("Usage: icmp-host run hello_probe.wasm")
    );

    let mut ping = icmp_host();
    ping.arg("run").arg(&wasm).args(["127.0.0.1", "-c", "2"]);
    let r = run(ping, Duration::from_secs(60));
    r.assert_no_panic().assert_code(0);
    let v = r.json();
    assert_eq!(v["target"], "127.0.0.1");
    let rtts = v["rtts"].as_array().unwrap();
    assert_eq!(rtts.len(), 2);
    assert!(
        rtts.iter().all(|r| r.as_f64().is_some_and(|ms| ms > 0.0)),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// `.cargo/runner` leaves out the tests that need root by the names they
/// give `require_root`, as substrings: each must be its own test's name,
/// and no other test's name may contain it.
#[test]
fn root_tests_are_named_so_the_runner_can_leave_them_out() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e");
    let (mut root, mut all) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(&dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = source.as_str();
        while let Some(at) = rest.find("require_root(\"") {
            rest = &rest[at + 14..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(
                source.contains(&format!("fn {name}(")),
                "no test named {name}"
            );
            root.push(name.to_owned());
        }
        let mut rest = source.as_str();
        while let Some(at) = rest.find("#[test]\nfn ") {
            rest = &rest[at + 11..];
            all.push(rest[..rest.find('(').unwrap()].to_owned());
        }
    }
    assert!(root.len() > 10, "{root:?}");
    for name in &all {
        let containing: Vec<&String> = root.iter().filter(|r| name.contains(r.as_str())).collect();
        assert!(
            containing.is_empty() || root.contains(name),
            "{name} would be left out for {containing:?}"
        );
    }
}

/// Item 1: under `--max-pps` sends wait inside the host; every live host
/// must still count (it was 5 of 14, and 0 of 14 with `--rate 0`).
#[test]
fn issue11_rate_limited_multiping_keeps_every_live_host() {
    if !require_root("issue11_rate_limited_multiping_keeps_every_live_host") {
        return;
    }
    let targets: Vec<String> = (1..=14).map(|i| format!("127.0.0.{i}")).collect();
    for rate in [&[][..], &["--rate", "0"]] {
        let mut cmd = icmp_host();
        cmd.args(["run", "--max-pps", "5", "multiping", "-c", "1", "-W", "1"])
            .args(rate)
            .args(&targets);
        let r = run(cmd, Duration::from_secs(60));
        r.assert_no_panic().assert_code(0);
        let hosts = r.json();
        let alive = hosts
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["is_alive"] == true);
        assert_eq!(alive.count(), 14, "{rate:?}: {hosts}");
    }
}

/// A report over 1 MiB goes to the host in parts (`write-report`): 8,192
/// hosts' records (2.9 MB) arrive whole, once each, in input order.
#[test]
fn a_large_multiping_report_arrives_whole_in_input_order() {
    if !require_root("a_large_multiping_report_arrives_whole_in_input_order") {
        return;
    }
    let targets: Vec<String> = (0..8192)
        .map(|i| format!("127.1.{}.{}", i >> 8, i & 0xff))
        .collect();
    let mut cmd = icmp_host();
    cmd.args(["run", "-q", "multiping", "-c", "1", "-r", "0"])
        .args(&targets);
    let r = run(cmd, Duration::from_secs(60));
    r.assert_no_panic().assert_code(0);
    assert!(r.stdout.len() > 2 << 20, "{} bytes", r.stdout.len());
    assert_eq!(r.stdout.lines().count(), 1);
    let hosts = r.json();
    let hosts = hosts.as_array().unwrap();
    let addresses: Vec<&str> = hosts
        .iter()
        .map(|h| h["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, targets);
    assert!(hosts.iter().all(|h| h["is_alive"] == true));
}

/// A sweep whose report outgrows the run's output limit as it is handed
/// on: the run fails naming the limit, and a neighbour's pings stay exact.
#[test]
fn a_multiping_report_past_the_output_limit_fails_the_run_alone() {
    use super::hostile_batch::{NEIGHBOUR_COUNT, batch, neighbour};
    use serde_json::json;
    if !require_root("a_multiping_report_past_the_output_limit_fails_the_run_alone") {
        return;
    }
    let mut args: Vec<String> = (0..8192)
        .map(|i| format!("127.1.{}.{}", i >> 8, i & 0xff))
        .collect();
    args.extend(["-c", "1", "-r", "0"].map(String::from));
    let sweep = json!({
        "name": "sweep",
        "plugin": "multiping",
        "args": args,
        "policy": {"allow": ["127.0.0.0/8"]},
        "limits": {"output_mib": 1},
    });
    let b = batch(&[sweep, neighbour(NEIGHBOUR_COUNT)], None, &[]);
    b.assert_stopped("sweep", &["exceeds the output limit of 1 MiB"])
        .assert_neighbour_exact(NEIGHBOUR_COUNT);
}
