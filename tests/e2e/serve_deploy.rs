//! What `deploy/` ships works as shipped: the service configurations load,
//! the Prometheus configuration passes `promtool`, the systemd unit passes
//! `systemd-analyze verify`, and the Kubernetes configuration serves probes
//! as a non-root user through ICMP datagram sockets allowed by
//! `ping_group_range` — in a namespace of the test's own, on its loopback.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::netns::Netns;
use super::serve_util::{Server, have, temp_path};
use super::util::{bin, icmp_host, require_root, run};

const LIMIT: Duration = Duration::from_secs(60);
const MONITORING_TOKEN: &str = "example-monitoring-token";
/// The user the unprivileged agent runs as (`nobody`).
const UID: u32 = 65534;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

/// The `serve.toml` of the Kubernetes ConfigMap.
fn kubernetes_config() -> String {
    let yaml = std::fs::read_to_string(deploy("kubernetes/icmp-host.yaml")).unwrap();
    let mut lines = yaml
        .lines()
        .skip_while(|l| l.trim() != "serve.toml: |")
        .skip(1);
    let mut toml = String::new();
    for line in lines.by_ref() {
        if !line.is_empty() && !line.starts_with("    ") {
            break;
        }
        toml.push_str(line.strip_prefix("    ").unwrap_or(line));
        toml.push('\n');
    }
    assert!(
        toml.contains("[[tenant]]"),
        "no serve.toml in the ConfigMap"
    );
    toml
}

fn check(config: &Path) -> super::util::Run {
    let mut cmd = icmp_host();
    cmd.args(["serve", "--check", "--config"]).arg(config);
    run(cmd, LIMIT)
}

#[test]
fn serve_deploy_files_are_valid() {
    let r = check(&deploy("serve.toml"));
    r.assert_no_panic().assert_code(0);
    assert!(
        r.stdout
            .contains("configuration OK: listen 0.0.0.0:9730, 2 tenants, 3 modules, 1 schedules"),
        "{}",
        r.stdout
    );

    let k8s = temp_path("k8s.toml");
    std::fs::write(&k8s, kubernetes_config()).unwrap();
    let r = check(&k8s);
    let _ = std::fs::remove_file(&k8s);
    r.assert_no_panic().assert_code(0);

    // promtool comes with Debian's prometheus package (.ci/run installs it).
    if have("promtool") {
        // The README's two-minute path.
        let readme = std::fs::read_to_string(deploy("../README.md")).unwrap();
        let start = readme
            .find("cat > prometheus.yml <<'YAML'\n")
            .expect("the README's Prometheus config");
        let yaml = readme[start..].lines().skip(1).take_while(|l| *l != "YAML");
        let path = temp_path("readme-prometheus.yml");
        std::fs::write(&path, yaml.collect::<Vec<_>>().join("\n")).unwrap();
        let out = Command::new("promtool")
            .args(["check", "config"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "README: {}",
            String::from_utf8_lossy(&out.stdout)
        );

        let dir = temp_path("promtool");
        std::fs::create_dir_all(&dir).unwrap();
        let config = std::fs::read_to_string(deploy("prometheus/prometheus.yml"))
            .unwrap()
            .replace("/etc/prometheus/", &format!("{}/", dir.display()));
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        std::fs::write(dir.join("icmp-host.token"), MONITORING_TOKEN).unwrap();
        std::fs::write(
            dir.join("icmp-host-agents.yml"),
            "- targets: [\"agent-a.example:9730\"]\n",
        )
        .unwrap();
        let out = Command::new("promtool")
            .args(["check", "config"])
            .arg(dir.join("prometheus.yml"))
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool is missing (apt-get install prometheus)"
        );
        eprintln!("SKIPPED promtool check: promtool not installed");
    }

    if have("systemd-analyze") {
        // The unit as installed, with the binary where the unit expects it.
        let dir = temp_path("systemd");
        std::fs::create_dir_all(&dir).unwrap();
        let unit = std::fs::read_to_string(deploy("systemd/icmp-host.service"))
            .unwrap()
            .replace("/usr/local/bin/icmp-host", bin());
        std::fs::write(dir.join("icmp-host.service"), unit).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.join("icmp-host.service"))
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !said.contains("icmp-host.service"),
            "systemd-analyze: {said}"
        );
    } else {
        eprintln!("SKIPPED systemd-analyze verify: not installed");
    }
}

/// A compiled-plugin cache `nobody` owns (the host trusts no other).
fn user_cache() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-cache-uid{UID}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(UID), Some(UID)).unwrap();
    dir
}

#[test]
fn serve_kubernetes_config_probes_without_root() {
    if !require_root("serve_kubernetes_config_probes_without_root") {
        return;
    }
    // A namespace with loopback only: the ConfigMap's schedule target has
    // no route there, so nothing it sends can leave.
    let ns = Netns::new("k8s");
    ns.sysctl("net.ipv4.ping_group_range", &format!("{UID} {UID}"));
    let config = temp_path("k8s.toml");
    std::fs::write(&config, kubernetes_config()).unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, "setpriv"])
        .args([format!("--reuid={UID}"), format!("--regid={UID}")])
        .args([
            "--clear-groups",
            "--",
            bin(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .env("ICMP_HOST_CACHE_DIR", user_cache());
    let server = Server::spawn(cmd, config, Some(&ns.name));
    let text = server
        .get(
            "/probe?module=icmp&target=127.0.0.1",
            Some(MONITORING_TOKEN),
        )
        .expect(200)
        .text();
    assert!(
        text.lines().any(|l| l == "probe_success 1.0"),
        "{text}\n{}",
        server.log()
    );
    assert!(
        text.lines().any(|l| l == "probe_icmp_packets_received 3.0"),
        "{text}"
    );
    let trace = server
        .get(
            "/probe?module=traceroute&target=127.0.0.1",
            Some(MONITORING_TOKEN),
        )
        .expect(200)
        .text();
    assert!(
        trace.contains("probe_traceroute_hop_rtt_seconds{distance=\"1\",address=\"127.0.0.1\"}"),
        "{trace}"
    );
}
