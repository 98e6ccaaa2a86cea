//! Driving `icmp-host serve` from tests: a server process on a loopback
//! port of its own, in the root namespace or a lab namespace, talked to
//! with [`super::http_client`].

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use super::http_client::{Request, Response, read_response};
use super::util::{bin, cache_dir};

/// The hex SHA-256 of a token, as `token_sha256` wants it.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `program` is installed.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A unique path in the temp directory.
pub fn temp_path(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "icmp-host-serve-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A running `icmp-host serve`, stopped (by its PID) on drop.
pub struct Server {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The configuration file.
    pub config: PathBuf,
    /// The network namespace it runs in, if any.
    pub netns: Option<String>,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts a server with `config` (TOML; `listen` is set to a free
    /// loopback port unless the text sets it).
    pub fn start(config: &str) -> Server {
        Server::start_in(None, config)
    }

    /// Starts a server inside network namespace `netns` (checked to be a
    /// lab namespace by the caller).
    pub fn start_in(netns: Option<&str>, config: &str) -> Server {
        if let Some(ns) = netns {
            assert!(
                ns.starts_with(super::netns::PREFIX),
                "{ns} is not a lab namespace"
            );
        }
        let path = temp_path("config.toml");
        let text = if config.contains("listen") {
            config.to_owned()
        } else {
            format!("listen = \"127.0.0.1:0\"\n{config}")
        };
        std::fs::write(&path, text).unwrap();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin()]);
                c
            }
            None => Command::new(bin()),
        };
        cmd.env("ICMP_HOST_CACHE_DIR", cache_dir())
            .arg("serve")
            .arg("--config")
            .arg(&path);
        Server::spawn(cmd, path, netns)
    }

    /// Starts `cmd` (an `icmp-host serve` command line) and waits until it listens.
    pub fn spawn(mut cmd: Command, config: PathBuf, netns: Option<&str>) -> Server {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning icmp-host serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("icmp-host serve: listening on http://") {
                    let _ = tx.send(addr.parse::<SocketAddr>().ok());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(addr)) => addr,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!("icmp-host serve did not start:\n{}", log.lock().unwrap());
            }
        };
        Server {
            child: Some(child),
            addr,
            config,
            netns: netns.map(str::to_owned),
            log,
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends `signal` to it.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().unwrap().id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
    }

    /// Waits for it to exit (at most `limit`); its exit status.
    pub fn wait(&mut self, limit: Duration) -> (i32, Duration) {
        let start = Instant::now();
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return (status.code().unwrap_or(-1), start.elapsed());
            }
            assert!(
                start.elapsed() < limit,
                "icmp-host serve still running after {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A request to this server as `token` (none when `None`).
    pub fn request(&self, method: &str, path: &str, token: Option<&str>) -> Request {
        let r = Request::new(self.addr, self.netns.as_deref(), method, path);
        match token {
            Some(t) => r.header("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    /// `GET path` as `token`.
    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request("GET", path, token).send()
    }

    /// `POST path` with a JSON body as `token`.
    pub fn post_json(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> Response {
        self.request("POST", path, token).json(body).send()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.config);
    }
}
