//! Issue 2: `icmp-host run ping 127.0.0.1` end to end, and the CLI's
//! contract for bad input.

use std::process::Stdio;
use std::time::Duration;

use super::netns::Netns;
use super::util::{f, finish, icmp_host, plugin, require_root, run, u};

const LIMIT: Duration = Duration::from_secs(30);

/// Structural checks every successful ping result must pass.
fn assert_all_replies(v: &serde_json::Value, count: u64, ttl: u64) {
    assert_eq!(u(v, "packets_sent"), count, "{v}");
    assert_eq!(u(v, "packets_received"), count, "{v}");
    assert_eq!(v["rtts"].as_array().unwrap().len() as u64, count);
    assert_eq!(f(v, "packet_loss"), 0.0);
    assert_eq!(v["is_alive"], true);
    let (min, avg, max) = (f(v, "min_rtt"), f(v, "avg_rtt"), f(v, "max_rtt"));
    assert!(0.0 < min && min <= avg && avg <= max, "{min} {avg} {max}");
    for p in v["probes"].as_array().unwrap() {
        assert_eq!(p["status"], "reply", "{p}");
        assert_eq!(u(p, "ttl"), ttl, "{p}");
        // The kernel stamped the request as it left and the reply on arrival.
        assert_eq!(p["timestamp_source"], "kernel-both", "{p}");
    }
}

fn ping(target: &str) {
    let mut cmd = icmp_host();
    cmd.args(["run", "ping", target, "-c", "3", "-i", "0.05"]);
    let r = run(cmd, LIMIT);
    r.assert_no_panic().assert_code(0);
    assert_all_replies(&r.json(), 3, 64);
    assert!(
        r.stderr
            .contains(&format!("bytes from {target}: icmp_seq=1 ttl=64 time=")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{}",
        r.stderr
    );
}

#[test]
fn ping_ipv4_loopback() {
    if require_root("ping_ipv4_loopback") {
        ping("127.0.0.1");
    }
}

#[test]
fn ping_ipv6_loopback() {
    if require_root("ping_ipv6_loopback") {
        ping("::1");
    }
}

#[test]
fn ping_localhost_by_name_in_a_namespace() {
    if !require_root("ping_localhost_by_name_in_a_namespace") {
        return;
    }
    // The namespace's own hosts file answers; its resolv.conf points at
    // 127.0.0.1, so no query can leave the machine.
    let ns = Netns::new("name");
    let mut cmd = ns.icmp_host();
    cmd.args(["run", "-q", "ping", "localhost", "-c", "2", "-i", "0.05"]);
    let r = run(cmd, LIMIT);
    r.assert_no_panic().assert_code(0);
    let v = r.json();
    assert_eq!(v["address"], "127.0.0.1");
    assert_eq!(v["target"], "localhost");
    assert_all_replies(&v, 2, 64);
    // -6 picks the IPv6 entry of the same name.
    let mut cmd = ns.icmp_host();
    cmd.args(["run", "-q", "ping", "-6", "localhost", "-c", "1"]);
    let r = run(cmd, LIMIT);
    r.assert_code(0);
    assert_eq!(r.json()["address"], "::1");
    // An unknown name fails cleanly (and only asks 127.0.0.1).
    let mut cmd = ns.icmp_host();
    cmd.args(["run", "ping", "nowhere.lab.test", "-c", "1"]);
    let r = run(cmd, LIMIT);
    r.assert_no_panic().assert_code(2);
    assert!(
        r.stderr.contains("cannot resolve nowhere.lab.test"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_plugin_arguments_exit_2() {
    for args in [
        &["run", "ping", "--bogus"][..],
        &["run", "ping"],
        &["run", "ping", "-c", "many", "127.0.0.1"],
        &["run", "ping", "-c", "0", "127.0.0.1"],
        &["run", "ping", "--payload", "xyz", "127.0.0.1"],
        &["run", "ping", "127.0.0.1", "extra"],
    ] {
        let mut cmd = icmp_host();
        cmd.args(args);
        let r = run(cmd, LIMIT);
        r.assert_no_panic().assert_code(2);
        assert!(
            r.stderr.starts_with("icmp-host: ping: "),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    }
}

#[test]
fn bad_host_arguments_exit_2() {
    for args in [
        &["run"][..],
        &["run", "--memory", "lots", "ping"],
        &["run", "--allow", "10.0.0.0/99", "ping", "127.0.0.1"],
        &["frobnicate"],
    ] {
        let mut cmd = icmp_host();
        cmd.args(args);
        let r = run(cmd, LIMIT);
        r.assert_no_panic().assert_code(2);
    }
}

#[test]
fn unknown_plugin_exit_2() {
    let mut cmd = icmp_host();
    cmd.args(["run", "pingg", "127.0.0.1"]);
    let r = run(cmd, LIMIT);
    r.assert_no_panic().assert_code(2);
    assert!(
        r.stderr.contains("unknown plugin \"pingg\""),
        "{}",
        r.stderr
    );
    let mut cmd = icmp_host();
    cmd.args(["run", "./no/such/plugin.wasm"]);
    let r = run(cmd, LIMIT);
    r.assert_no_panic().assert_code(2);
    assert!(r.stderr.contains("cannot read plugin"), "{}", r.stderr);
}

#[test]
fn non_wasm_file_exit_2() {
    let path = std::env::temp_dir().join(format!("not-a-plugin-{}.wasm", std::process::id()));
    std::fs::write(&path, b"#!/bin/sh\necho I am not wasm\n").unwrap();
    let mut cmd = icmp_host();
    cmd.arg("run").arg(&path);
    let r = run(cmd, LIMIT);
    let _ = std::fs::remove_file(&path);
    r.assert_no_panic().assert_code(2);
    assert!(
        r.stderr.contains("is not a valid WebAssembly component"),
        "{}",
        r.stderr
    );
}

#[test]
fn help_everywhere() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["list", "--help"],
        &["run", "ping", "--help"],
    ] {
        let mut cmd = icmp_host();
        cmd.args(args);
        let r = run(cmd, LIMIT);
        r.assert_no_panic().assert_code(0);
        assert!(r.stdout.contains("Usage"), "{args:?}: {}", r.stdout);
    }
    let mut cmd = icmp_host();
    cmd.arg("list");
    let r = run(cmd, LIMIT);
    r.assert_code(0);
    assert!(r.stdout.contains("ping "), "{}", r.stdout);
}

#[test]
fn host_options_stop_at_the_plugin_name() {
    // `-q` after the plugin belongs to the plugin (ping has none): exit 2.
    let mut cmd = icmp_host();
    cmd.args(["run", "ping", "-q", "127.0.0.1"]);
    let r = run(cmd, LIMIT);
    r.assert_code(2);
    assert!(
        r.stderr.contains("icmp-host: ping: unknown option -q"),
        "{}",
        r.stderr
    );
}

#[test]
fn closed_stdout_is_not_an_error() {
    if !require_root("closed_stdout_is_not_an_error") {
        return;
    }
    let mut cmd = icmp_host();
    cmd.args(["run", "-q", "ping", "127.0.0.1", "-c", "1"]);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take()); // like `| head -0`
    let status = child.wait().unwrap();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
}

#[test]
fn ctrl_c_prints_the_summary_so_far() {
    if !require_root("ctrl_c_prints_the_summary_so_far") {
        return;
    }
    let mut cmd = icmp_host();
    cmd.args(["run", "ping", "127.0.0.1", "-c", "1000", "-i", "0.05"]);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Interrupt once replies are flowing (not after a fixed delay: a busy
    // machine may still be compiling the plugin).
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    use std::io::BufRead;
    while !seen.contains("icmp_seq=3 ") {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("icmp-host ended early: {seen}");
        }
        seen.push_str(&line);
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        use std::io::Read;
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut r = super::util::finish(child, LIMIT);
    r.stderr = seen + &rest.join().unwrap();
    r.assert_no_panic().assert_code(0);
    let v = r.json();
    let sent = u(&v, "packets_sent");
    assert!((3..100).contains(&sent), "sent {sent}");
    assert_eq!(u(&v, "packets_received"), sent);
    assert!(
        r.stderr.contains("--- 127.0.0.1 ping statistics ---"),
        "{}",
        r.stderr
    );
}

#[test]
fn user_plugin_by_path() {
    if !require_root("user_plugin_by_path") {
        return;
    }
    let mut cmd = icmp_host();
    cmd.args(["run", "-q"])
        .arg(plugin("ping"))
        .args(["127.0.0.1", "-c", "1"]);
    let r = run(cmd, LIMIT);
    r.assert_code(0);
    assert_eq!(u(&r.json(), "packets_received"), 1);
}

/// A built-in's native code runs where the binary maps it (x86-64), and
/// the ping answers; profiled (`ICMP_HOST_PERFMAP`), it is copied, so that
/// perf can name its functions.
#[test]
fn built_ins_run_in_place_unless_profiled() {
    if !require_root("built_ins_run_in_place_unless_profiled") {
        return;
    }
    let code = |profiled: bool| {
        let mut cmd = icmp_host();
        cmd.env_remove("ICMP_HOST_PERFMAP");
        if profiled {
            cmd.env("ICMP_HOST_PERFMAP", "1");
        }
        cmd.args(["inspect", "ping"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawning icmp-host");
        let map = format!("/tmp/perf-{}.map", child.id());
        let r = finish(child, LIMIT);
        // wasmtime names the native functions for perf there.
        let _ = std::fs::remove_file(map);
        r.assert_code(0);
        let line = r.stdout.lines().find(|l| l.starts_with("code:"));
        line.unwrap_or_else(|| panic!("no code line:\n{}", r.stdout))
            .to_owned()
    };
    let expected = match cfg!(target_arch = "x86_64") {
        true => "run where the binary maps it",
        false => "copied to memory",
    };
    let (plain, profiled) = (code(false), code(true));
    assert!(plain.ends_with(expected), "{plain}");
    assert!(profiled.ends_with("copied to memory"), "{profiled}");
    let mut cmd = icmp_host();
    cmd.args(["run", "-q", "ping", "127.0.0.1", "-c", "1"]);
    let r = run(cmd, LIMIT);
    r.assert_code(0);
    assert_eq!(u(&r.json(), "packets_received"), 1);
}
