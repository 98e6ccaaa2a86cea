//! Running the real `icmp-host` binary from tests.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_icmp-host")
}

/// A plugin built from `plugins/` (including the hostile test ones).
pub fn plugin(name: &str) -> PathBuf {
    PathBuf::from(env!("ICMP_HOST_PLUGIN_DIR")).join(format!("{name}.wasm"))
}

/// The compiled-plugin cache shared by the tests of this build.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("icmp-host-cache")
}

/// Whether this test may run: root is needed for raw sockets and
/// namespaces. `cargo test` runs this binary through `.cargo/runner`,
/// which elevates it with sudo or leaves these tests out by name (the
/// summary counts them as filtered out). Reaching here without root means
/// the binary was run some other way: the test fails rather than pass
/// without running (and `CI=true` changes nothing: a skip is a failure).
pub fn require_root(test: &str) -> bool {
    assert!(
        nix::unistd::geteuid().is_root(),
        "{test} needs root (raw sockets / network namespaces): run the tests with `cargo \
         test`, which elevates them with sudo or leaves them out"
    );
    true
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON result.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Never a panic, whatever the input.
    pub fn assert_no_panic(&self) -> &Run {
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "the host panicked:\n{}",
            self.stderr
        );
        self
    }

    /// Exit status `code`, with output shown when not.
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// `icmp-host` with the tests' cache directory.
pub fn icmp_host() -> Command {
    let mut c = Command::new(bin());
    c.env("ICMP_HOST_CACHE_DIR", cache_dir());
    c
}

/// Runs to completion, killing the child (by PID, ours) after `limit`.
pub fn run(mut cmd: Command, limit: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawning icmp-host");
    finish(child, limit)
}

/// Waits for a spawned child with piped output.
pub fn finish(mut child: Child, limit: Duration) -> Run {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for icmp-host") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("icmp-host ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A f64 field of a JSON object.
pub fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// A u64 field of a JSON object.
pub fn u(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}
