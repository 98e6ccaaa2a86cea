//! The bootstrap's last wall: while a plugin runs, every thread of the host
//! has `no_new_privs` and the system-call filter (seccomp mode 2).

use std::process::Stdio;
use std::time::Duration;

use super::util::{finish, icmp_host, require_root};

fn status_of_every_thread(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[test]
fn every_thread_is_filtered_while_plugins_run() {
    if !require_root("every_thread_is_filtered_while_plugins_run") {
        return;
    }
    let mut cmd = icmp_host();
    cmd.args(["run", "-q", "ping", "127.0.0.1", "-c", "4", "-i", "0.25"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(400));
    let statuses = status_of_every_thread(pid);
    let r = finish(child, Duration::from_secs(30));
    r.assert_code(0);
    assert!(statuses.len() > 1, "the run had its threads: {statuses:?}");
    for s in &statuses {
        assert_eq!(field(s, "NoNewPrivs"), Some("1"), "{s}");
        assert_eq!(field(s, "Seccomp"), Some("2"), "{s}");
        assert_eq!(field(s, "CapEff"), Some("0000000000000000"), "{s}");
    }
}
