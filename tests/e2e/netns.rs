//! Network namespaces the tests create and always remove (on drop, even
//! after a failed assertion; `.ci/run` also sweeps the `ihlab-` prefix in
//! case a test was killed). Each has its own `/etc/netns/<name>/hosts` and a
//! `resolv.conf` pointing at 127.0.0.1, so no DNS query leaves the machine.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every namespace the tests create.
pub const PREFIX: &str = "ihlab-";

/// Runs `ip` with `args`, panicking with its stderr on failure.
pub fn ip(args: &[&str]) {
    sh("ip", args);
}

/// Runs a command, panicking with its stderr on failure.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace with `lo` up.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `ihlab-<pid>-<n>-<tag>`.
    pub fn new(tag: &str) -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{PREFIX}{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        // No duplicate address detection: link-local addresses usable at
        // once, so neighbour discovery does not eat the first packets.
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
        ns.write_etc("resolv.conf", "nameserver 127.0.0.1\n");
        ns.write_etc("hosts", "127.0.0.1 localhost\n::1 localhost\n");
        ns
    }

    /// `ip -n <ns> args…`
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Runs a command inside (`ip netns exec`), panicking on failure.
    pub fn sh(&self, program: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.sh("sysctl", &["-qw", &format!("{key}={value}")]);
    }

    /// Loads an nftables script inside the namespace.
    pub fn nft(&self, script: &str) {
        let path = std::env::temp_dir().join(format!("{}.{}.nft", self.name, rand_suffix()));
        std::fs::write(&path, script).unwrap();
        let path_str = path.to_string_lossy().into_owned();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", &path_str])
            .output()
            .expect("running nft");
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "nft in {}: {}\n{script}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Packets counted so far by the named nftables counter of table `inet lab`.
    pub fn counter(&self, name: &str) -> u64 {
        let out = self.sh("nft", &["list", "counter", "inet", "lab", name]);
        out.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no packet count in {out}"))
    }

    /// Replaces a file of `/etc/netns/<ns>/`, seen as `/etc/<file>` inside.
    pub fn write_etc(&self, file: &str, content: &str) {
        let dir = format!("/etc/netns/{}", self.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{file}"), content).unwrap();
    }

    /// `icmp-host` to run inside this namespace. Asserts that the namespace
    /// is one of ours before anything is sent.
    pub fn icmp_host(&self) -> Command {
        assert!(self.name.starts_with(PREFIX));
        let listed = sh("ip", &["netns", "list"]);
        assert!(
            listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(self.name.as_str())),
            "namespace {} does not exist: refusing to probe from the root namespace",
            self.name
        );
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, super::util::bin()]);
        c.env("ICMP_HOST_CACHE_DIR", super::util::cache_dir());
        c
    }
}

fn rand_suffix() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}
