//! Issue 8, item 6: while a plugin runs, no thread of the host holds any
//! capability and every thread has `NoNewPrivs: 1` — whether the host was
//! started as root, or as an ordinary user from a binary given
//! `cap_net_raw+ep` or `cap_net_raw+p` (permitted only: the host raises it
//! to open its raw sockets, then drops everything).
//!
//! Each case runs `ping --privileged` on the loopback of a namespace of its
//! own, so the raw sockets are proven to work, and reads
//! `/proc/<pid>/task/*/status` of every thread several times during the run.
//! A binary with file capabilities keeps no compiled-plugin cache.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::netns::{Netns, sh};
use super::util::{bin, finish, plugin, require_root, u};

const LIMIT: Duration = Duration::from_secs(60);
/// `nobody` / `nogroup`.
const UID: u32 = 65534;
/// Replies each run waits for: long enough to sample the threads.
const COUNT: u64 = 30;

/// The privilege fields of one thread's status.
#[derive(Debug, PartialEq, Eq)]
struct ThreadPrivileges {
    thread: String,
    inheritable: u64,
    permitted: u64,
    effective: u64,
    ambient: u64,
    no_new_privs: bool,
}

fn read_threads(pid: u32) -> Vec<ThreadPrivileges> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new(); // it has exited
    };
    tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let status = std::fs::read_to_string(t.path().join("status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .unwrap_or_else(|| panic!("no {name} in\n{status}"))
                    .to_owned()
            };
            let mask = |name: &str| u64::from_str_radix(&field(name), 16).unwrap();
            Some(ThreadPrivileges {
                thread: format!("{} ({})", field("Name:"), t.file_name().to_string_lossy()),
                inheritable: mask("CapInh:"),
                permitted: mask("CapPrm:"),
                effective: mask("CapEff:"),
                ambient: mask("CapAmb:"),
                no_new_privs: field("NoNewPrivs:") == "1",
            })
        })
        .collect()
}

/// A copy of the binary in a directory `nobody` can reach, with file
/// capabilities `caps` (`setcap` syntax); removed on drop.
struct CapableCopy {
    dir: PathBuf,
    bin: PathBuf,
}

impl CapableCopy {
    fn new(caps: &str) -> CapableCopy {
        let dir = std::env::temp_dir().join(format!(
            "icmp-host-caps-{}-{}",
            std::process::id(),
            caps.replace(['+', '='], "_")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin_copy = dir.join("icmp-host");
        std::fs::copy(bin(), &bin_copy).unwrap();
        std::fs::set_permissions(&bin_copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        sh("setcap", &[caps, &bin_copy.to_string_lossy()]);
        let shown = sh("getcap", &[&bin_copy.to_string_lossy()]);
        assert!(shown.contains("cap_net_raw"), "setcap {caps}: {shown}");
        CapableCopy { dir, bin: bin_copy }
    }
}

impl Drop for CapableCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `ping --privileged` on the namespace's loopback with `program`
/// (the binary, or `setpriv … binary`), sampling every thread during the
/// run; returns the samples and the ping's result.
fn run_and_sample(
    ns: &Netns,
    as_nobody: Option<&Path>,
) -> (Vec<ThreadPrivileges>, serde_json::Value) {
    drop(ns.icmp_host()); // asserts the namespace is ours
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name]);
    match as_nobody {
        Some(binary) => {
            cmd.arg("setpriv")
                .args([format!("--reuid={UID}"), format!("--regid={UID}")])
                .args(["--clear-groups", "--"])
                .arg(binary);
        }
        None => {
            cmd.arg(bin());
        }
    }
    let count = COUNT.to_string();
    cmd.args([
        "run",
        "--no-cache",
        "-q",
        "ping",
        "--privileged",
        "127.0.0.1",
    ])
    .args(["-c", &count, "-i", "0.05"])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    // `ip netns exec` and `setpriv` exec in place: the pid is the host's.
    let mut samples = Vec::new();
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed() < Duration::from_secs(20) && rounds < 5 {
        let threads = read_threads(pid);
        // The plugin runs once the async runtime's workers exist.
        let running = threads.len() >= 3
            && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "icmp-host");
        if running {
            samples.extend(threads);
            rounds += 1;
            std::thread::sleep(Duration::from_millis(150));
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let r = finish(child, LIMIT);
    r.assert_no_panic().assert_code(0);
    assert!(rounds >= 3, "sampled the run only {rounds} times");
    (samples, r.json())
}

fn assert_unprivileged(case: &str, samples: &[ThreadPrivileges], result: &serde_json::Value) {
    assert_eq!(u(result, "packets_received"), COUNT, "{case}: {result}");
    assert!(!samples.is_empty());
    for t in samples {
        assert_eq!(
            (t.inheritable, t.permitted, t.effective, t.ambient),
            (0, 0, 0, 0),
            "{case}: thread {} holds capabilities: {t:?}",
            t.thread
        );
        assert!(
            t.no_new_privs,
            "{case}: thread {} lacks NoNewPrivs: {t:?}",
            t.thread
        );
    }
}

#[test]
fn privileges_dropped_in_every_thread_as_root() {
    if !require_root("privileges_dropped_in_every_thread_as_root") {
        return;
    }
    let ns = Netns::new("caproot");
    let (samples, result) = run_and_sample(&ns, None);
    assert_unprivileged("root", &samples, &result);
}

#[test]
fn privileges_dropped_in_every_thread_with_file_caps_ep() {
    if !require_root("privileges_dropped_in_every_thread_with_file_caps_ep") {
        return;
    }
    let ns = Netns::new("capep");
    let copy = CapableCopy::new("cap_net_raw+ep");
    let (samples, result) = run_and_sample(&ns, Some(&copy.bin));
    assert_unprivileged("cap_net_raw+ep", &samples, &result);
}

#[test]
fn privileges_dropped_in_every_thread_with_file_caps_p() {
    if !require_root("privileges_dropped_in_every_thread_with_file_caps_p") {
        return;
    }
    let ns = Netns::new("capp");
    let copy = CapableCopy::new("cap_net_raw+p");
    let (samples, result) = run_and_sample(&ns, Some(&copy.bin));
    assert_unprivileged("cap_net_raw+p", &samples, &result);
}

/// A binary with file capabilities keeps no compiled-plugin cache: the
/// cache is native code the user can write, and it would run inside a
/// process holding raw sockets the user could not open alone.
#[test]
fn a_binary_with_file_caps_uses_no_cache() {
    if !require_root("a_binary_with_file_caps_uses_no_cache") {
        return;
    }
    let copy = CapableCopy::new("cap_net_raw+ep");
    let wasm = copy.dir.join("trap.wasm");
    std::fs::copy(plugin("trap"), &wasm).unwrap();
    std::fs::set_permissions(&wasm, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A cache directory the user owns and nobody else can write: usable
    // by the same binary without capabilities.
    let cache = copy.dir.join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&cache, Some(UID), Some(UID)).unwrap();
    let inspect = |binary: &Path| {
        let mut cmd = Command::new("setpriv");
        cmd.args([format!("--reuid={UID}"), format!("--regid={UID}")])
            .args(["--clear-groups", "--"])
            .arg(binary)
            .arg("inspect")
            .arg(&wasm)
            .arg("--cache-dir")
            .arg(&cache)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let r = finish(cmd.spawn().unwrap(), LIMIT);
        r.assert_no_panic();
        r
    };
    let elevated = inspect(&copy.bin);
    assert!(
        elevated.stderr.contains("cache disabled") && elevated.stderr.contains("setcap"),
        "{}",
        elevated.stderr
    );
    assert!(
        elevated.stdout.contains("compiled now"),
        "{}",
        elevated.stdout
    );
    let cached = |dir: &Path| std::fs::read_dir(dir).unwrap().count();
    assert_eq!(cached(&cache), 0, "the elevated binary wrote to the cache");
    // The plain binary, same user, same directory: the cache works.
    let plain = copy.dir.join("icmp-host-plain");
    std::fs::copy(bin(), &plain).unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
    let first = inspect(&plain);
    assert!(!first.stderr.contains("cache disabled"), "{}", first.stderr);
    assert!(cached(&cache) > 0, "the plain binary did not cache");
    let second = inspect(&plain);
    assert!(
        second.stdout.contains("from the compiled-plugin cache"),
        "{}",
        second.stdout
    );
}
