//! `icmp-host serve` over real HTTP on loopback: tenants with their own
//! tokens, policies and quotas; uploads; isolation; the error statuses;
//! the live event stream; cancel; SIGHUP; SIGTERM with runs in flight; and
//! a bounded load test. Probes go to 127.0.0.0/8 only.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use super::serve_util::{Server, token_hash};
use super::util::{icmp_host, plugin, require_root, run};

const A: &str = "token-of-team-a";
const B: &str = "token-of-team-b";

/// team-a may ping loopback, two runs at a time, and keep one upload.
fn team_a() -> String {
    format!(
        r#"
[[tenant]]
name = "team-a"
token_sha256 = "{}"
plugins = ["ping", "multiping", "traceroute"]
max_concurrent = 2
max_uploads = 1
max_upload_mib = 1
[tenant.policy]
allow = ["127.0.0.0/8"]
[tenant.limits]
wall_seconds = 20
"#,
        token_hash(A)
    )
}

/// Two tenants: team-a, and team-b, which is denied loopback and may run
/// `ping` only, one run at a time; an `icmp` module of team-a's.
fn two_tenants() -> String {
    format!(
        r#"body_timeout = "1s"
{}
[[tenant]]
name = "team-b"
token_sha256 = "{}"
plugins = ["ping"]
max_concurrent = 1
[tenant.policy]
deny = ["127.0.0.0/8", "::1/128"]

[[module]]
name = "icmp"
tenant = "team-a"
plugin = "ping"
args = ["-c", "2", "-i", "0.05", "-W", "1"]
"#,
        team_a(),
        token_hash(B)
    )
}

fn ping(args: &[&str], wait: bool) -> Value {
    json!({"plugin": "ping", "args": args, "wait": wait})
}

/// Polls `GET /v1/runs/<id>` until the run is done.
fn wait_done(server: &Server, token: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let v = server
            .get(&format!("/v1/runs/{id}"), Some(token))
            .expect(200)
            .json();
        if v["state"] == "done" {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "run {id} never finished: {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A metric's value in `/metrics` (the line that starts with `series`).
fn metric(server: &Server, series: &str) -> Option<f64> {
    let text = server.get("/metrics", None).expect(200).text();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn serve_runs_under_each_tenants_policy_and_keeps_tenants_apart() {
    if !require_root("serve_runs_under_each_tenants_policy_and_keeps_tenants_apart") {
        return;
    }
    let server = Server::start(&two_tenants());
    // Who is asking: no token, an unknown token, another scheme.
    server
        .post_json("/v1/runs", None, &ping(&["127.0.0.1"], true))
        .expect_error(401, "missing Authorization");
    let r = server
        .post_json("/v1/runs", Some("nobody"), &ping(&["127.0.0.1"], true))
        .expect_error(401, "unknown token");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    server
        .request("GET", "/v1/runs", None)
        .header("Authorization", "Basic dGVhbS1hOng=")
        .send()
        .expect_error(401, "Bearer");

    // The same probe: team-a may, team-b is refused by its policy — still a run.
    let a = server
        .post_json(
            "/v1/runs",
            Some(A),
            &ping(&["127.0.0.1", "-c", "2", "-i", "0.05"], true),
        )
        .expect(200)
        .json();
    for key in [
        "id", "tenant", "plugin", "exit", "outcome", "cpu_ms", "result", "error",
    ] {
        assert!(a.get(key).is_some(), "{key} missing in {a}");
    }
    assert_eq!(a["tenant"], "team-a");
    assert_eq!(a["plugin"], "ping");
    assert_eq!(a["state"], "done");
    assert_eq!(a["exit"], 0);
    assert_eq!(a["outcome"], "reached");
    assert_eq!(a["result"]["packets_received"], 2);
    assert!(a["cpu_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(a["error"], Value::Null);
    let b = server
        .post_json("/v1/runs", Some(B), &ping(&["127.0.0.1", "-c", "2"], true))
        .expect(200)
        .json();
    assert_eq!(b["tenant"], "team-b");
    assert_eq!(b["exit"], 2, "{b}");
    let why = b["error"].as_str().unwrap();
    assert!(
        why.contains("denied") && why.contains("127.0.0.0/8"),
        "{why}"
    );

    // What team-b may not run, and what does not exist.
    let traceroute = json!({"plugin": "traceroute", "args": ["127.0.0.1"], "wait": true});
    server
        .post_json("/v1/runs", Some(B), &traceroute)
        .expect_error(403, "traceroute");
    let pong = json!({"plugin": "pong", "wait": true});
    server
        .post_json("/v1/runs", Some(B), &pong)
        .expect_error(404, "unknown plugin");

    // team-a's run is invisible to team-b: 404, as for an id that never was.
    let id = a["id"].as_str().unwrap();
    server.get(&format!("/v1/runs/{id}"), Some(A)).expect(200);
    for (method, path) in [
        ("GET", format!("/v1/runs/{id}")),
        ("GET", format!("/v1/runs/{id}/events")),
        ("DELETE", format!("/v1/runs/{id}")),
        (
            "GET",
            "/v1/runs/00000000000000000000000000000000".to_owned(),
        ),
    ] {
        server
            .request(method, &path, Some(B))
            .send()
            .expect_error(404, "no run");
    }
    let listed = server.get("/v1/runs", Some(A)).expect(200).json();
    assert!(listed.as_array().unwrap().iter().any(|r| r["id"] == id));
    let listed = server.get("/v1/runs", Some(B)).expect(200).json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["tenant"] == "team-b")
    );

    // /probe: the module's tenant only; blackbox's names.
    let probe = server
        .get("/probe?module=icmp&target=127.0.0.1", Some(A))
        .expect(200);
    assert!(
        probe
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = probe.text();
    for line in [
        "probe_success 1",
        "probe_ip_protocol 4",
        "probe_icmp_packets_sent 2",
        "probe_icmp_packets_received 2",
        "probe_icmp_packet_loss_ratio 0",
        "probe_icmp_reply_hop_limit 64",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line:?} not in\n{text}"
        );
    }
    for phase in ["resolve", "setup", "rtt"] {
        let series = format!("probe_icmp_duration_seconds{{phase=\"{phase}\"}}");
        assert!(text.contains(&series), "{series} not in\n{text}");
    }
    server
        .get("/probe?module=icmp&target=127.0.0.1", Some(B))
        .expect_error(403, "another tenant");
    server
        .get("/probe?module=icmp", Some(A))
        .expect_error(400, "target");
    server
        .get("/probe?module=nope&target=127.0.0.1", Some(A))
        .expect_error(400, "unknown module");
    server
        .get("/probe?module=icmp&target=-c", Some(A))
        .expect_error(400, "not a host name");

    let runs = "icmp_host_runs_total{tenant=\"team-a\",outcome=\"reached\"}";
    assert_eq!(metric(&server, runs), Some(2.0));
    let denied = "icmp_host_runs_total{tenant=\"team-b\",outcome=\"error\"}";
    assert_eq!(metric(&server, denied), Some(1.0));
    let denials = "icmp_host_policy_denials_total{tenant=\"team-b\"}";
    assert_eq!(metric(&server, denials), Some(1.0));
    assert_eq!(
        metric(&server, "icmp_host_policy_denials_total{tenant=\"team-a\"}"),
        None
    );
    let sent = "icmp_host_packets_sent_total{tenant=\"team-a\"}";
    assert_eq!(metric(&server, sent), Some(4.0));
}

#[test]
fn serve_429_beyond_max_concurrent_and_delete_interrupts() {
    if !require_root("serve_429_beyond_max_concurrent_and_delete_interrupts") {
        return;
    }
    let server = Server::start(&two_tenants());
    let long = ping(&["127.0.0.1", "-c", "100", "-i", "0.1"], false);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = server.post_json("/v1/runs", Some(A), &long).expect(202);
        let v = r.json();
        assert_eq!(v["state"], "running");
        let id = v["id"].as_str().unwrap().to_owned();
        assert_eq!(
            r.header("location"),
            Some(format!("/v1/runs/{id}").as_str())
        );
        ids.push(id);
    }
    let r = server
        .post_json("/v1/runs", Some(A), &long)
        .expect_error(429, "max_concurrent");
    assert_eq!(r.header("retry-after"), Some("1"));
    // team-b's quota is its own.
    server
        .post_json("/v1/runs", Some(B), &ping(&["127.0.0.1"], true))
        .expect(200);
    std::thread::sleep(Duration::from_millis(350));
    for id in &ids {
        server
            .request("DELETE", &format!("/v1/runs/{id}"), Some(A))
            .send()
            .expect(202);
    }
    for id in &ids {
        let v = wait_done(&server, A, id);
        assert_eq!(v["interrupted"], true, "{v}");
        let sent = v["result"]["packets_sent"].as_u64().unwrap();
        assert!((2..100).contains(&sent), "partial result: {v}");
        let received = v["result"]["packets_received"].as_u64().unwrap();
        assert!(received + 1 >= sent, "{v}");
        assert_eq!(v["exit"], 0);
    }
    // The slots are free again.
    server
        .post_json("/v1/runs", Some(A), &ping(&["127.0.0.1", "-c", "1"], true))
        .expect(200);
    let refused = "icmp_host_runs_refused_total{tenant=\"team-a\",reason=\"concurrency\"}";
    assert_eq!(metric(&server, refused), Some(1.0));
}

#[test]
fn serve_streams_a_runs_events_live() {
    if !require_root("serve_streams_a_runs_events_live") {
        return;
    }
    let server = Server::start(&two_tenants());
    let v = server
        .post_json(
            "/v1/runs",
            Some(A),
            &ping(&["127.0.0.1", "-c", "5", "-i", "0.3"], false),
        )
        .expect(202)
        .json();
    let id = v["id"].as_str().unwrap();
    let (head, mut lines) = server
        .request("GET", &format!("/v1/runs/{id}/events"), Some(A))
        .stream_lines();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/x-ndjson"));
    let first: Value = serde_json::from_str(&lines.next().unwrap()).unwrap();
    assert_eq!(first["event"], "start");
    assert_eq!(first["address"], "127.0.0.1");
    // Live: the first reply arrives while the run is still going.
    let reply: Value = serde_json::from_str(&lines.next().unwrap()).unwrap();
    assert_eq!(reply["event"], "reply");
    let now = server.get(&format!("/v1/runs/{id}"), Some(A)).json();
    assert_eq!(now["state"], "running", "{now}");
    let rest: Vec<Value> = lines.map(|l| serde_json::from_str(&l).unwrap()).collect();
    // The stream closes when the run ends.
    let done = server.get(&format!("/v1/runs/{id}"), Some(A)).json();
    assert_eq!(done["state"], "done");
    let replies = 1 + rest.iter().filter(|e| e["event"] == "reply").count();
    assert_eq!(replies, 5);
    assert_eq!(rest.last().unwrap()["event"], "summary");
    assert_eq!(rest.last().unwrap()["packets_received"], 5);
    // Read again after the end: the whole log, then closed.
    let again = server
        .get(&format!("/v1/runs/{id}/events"), Some(A))
        .expect(200);
    assert_eq!(again.text().lines().count(), 2 + rest.len());
}

/// What `icmp-host inspect` says of a component: the reference for uploads.
fn inspect(path: &std::path::Path) -> super::util::Run {
    let mut cmd = icmp_host();
    cmd.arg("inspect").arg(path);
    run(cmd, Duration::from_secs(60))
}

fn upload(server: &Server, token: &str, bytes: Vec<u8>) -> super::serve_util::Response {
    server
        .request("POST", "/v1/plugins", Some(token))
        .header("Content-Type", "application/wasm")
        .body(bytes)
        .send()
}

#[test]
fn serve_uploads_are_checked_like_run_and_stay_their_tenants() {
    if !require_root("serve_uploads_are_checked_like_run_and_stay_their_tenants") {
        return;
    }
    let server = Server::start(&two_tenants());
    let wasm = std::fs::read(plugin("ping")).unwrap();
    let stored = upload(&server, A, wasm.clone()).expect(201).json();
    let digest = stored["sha256"].as_str().unwrap().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{stored}"
    );
    assert_eq!(stored["size"], wasm.len());
    let imports: Vec<&str> = stored["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("icmp-host:probe/sockets")),
        "{imports:?}"
    );
    // The same bytes again: known, 200.
    assert_eq!(upload(&server, A, wasm.clone()).expect(200).json(), stored);
    let listed = server.get("/v1/plugins", Some(A)).expect(200).json();
    assert_eq!(listed, json!([stored]));

    // Run it by digest; it is team-a's only.
    let by_digest = json!({"plugin": digest, "args": ["127.0.0.1", "-c", "1"], "wait": true});
    let v = server
        .post_json("/v1/runs", Some(A), &by_digest)
        .expect(200)
        .json();
    assert_eq!(v["exit"], 0, "{v}");
    assert_eq!(v["plugin"], digest);
    server
        .post_json("/v1/runs", Some(B), &by_digest)
        .expect_error(404, "no upload");
    server
        .get(&format!("/v1/plugins/{digest}"), Some(B))
        .expect_error(404, "no upload");
    server
        .request("DELETE", &format!("/v1/plugins/{digest}"), Some(B))
        .send()
        .expect_error(404, "no upload");
    assert_eq!(
        server.get("/v1/plugins", Some(B)).expect(200).json(),
        json!([])
    );

    // Bounds: count (max_uploads = 1), size (max_upload_mib = 1), type.
    let other = std::fs::read(plugin("traceroute")).unwrap();
    upload(&server, A, other).expect_error(403, "1 uploads");
    let announced = server
        .request("POST", "/v1/plugins", Some(A))
        .header("Content-Type", "application/wasm")
        .open_without_body((1 << 20) + 1);
    super::serve_util::read_response(announced).expect_error(413, "larger than");
    server
        .request("POST", "/v1/plugins", Some(A))
        .header("Content-Type", "application/octet-stream")
        .body(wasm.clone())
        .send()
        .expect_error(415, "application/wasm");
    // Junk and a core module: the one-line reason `run` would give.
    upload(&server, B, b"not wasm at all".to_vec())
        .expect_error(400, "not a valid WebAssembly component");
    upload(&server, B, b"\0asm\x01\0\0\0".to_vec())
        .expect_error(400, "not a valid WebAssembly component");
    // A component importing what the host does not offer: whatever
    // `icmp-host inspect` says of it, the service says too.
    let forbidden = plugin("forbidden");
    let verdict = inspect(&forbidden);
    let r = upload(&server, B, std::fs::read(&forbidden).unwrap());
    if verdict.code == 0 {
        r.expect(201);
    } else {
        // The same words, after the plugin's name (a path there, a digest here).
        let message = verdict.stderr.trim().trim_start_matches("icmp-host: ");
        let words = message.split_once(' ').map_or(message, |(_, w)| w);
        r.expect_error(400, words);
    }

    // Deleting frees the slot; the digest no longer runs.
    server
        .request("DELETE", &format!("/v1/plugins/{digest}"), Some(A))
        .send()
        .expect(200);
    server
        .post_json("/v1/runs", Some(A), &by_digest)
        .expect_error(404, "no upload");
    let stored = "icmp_host_uploads_total{tenant=\"team-a\",reason=\"stored\"}";
    assert_eq!(metric(&server, stored), Some(1.0));
}

#[test]
fn serve_refuses_bad_requests_with_one_line_errors() {
    let server = Server::start(&two_tenants());
    let post = |body: &[u8], content_type: &str| {
        server
            .request("POST", "/v1/runs", Some(A))
            .header("Content-Type", content_type)
            .body(body.to_vec())
            .send()
    };
    post(b"{\"plugin\": ", "application/json").expect_error(400, "bad JSON");
    post(
        b"{\"plugin\": \"ping\", \"wiat\": true}",
        "application/json",
    )
    .expect_error(400, "unknown field `wiat`");
    post(b"[1, 2]", "application/json").expect_error(400, "bad JSON");
    post(b"{}", "text/plain").expect_error(415, "JSON");
    let announced = server
        .request("POST", "/v1/runs", Some(A))
        .header("Content-Type", "application/json")
        .open_without_body(100 << 10);
    super::serve_util::read_response(announced).expect_error(413, "larger than");
    let many: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
    server
        .post_json(
            "/v1/runs",
            Some(A),
            &json!({"plugin": "ping", "args": many}),
        )
        .expect_error(400, "arguments");
    // A client that announces a body and never sends it: 408 after body_timeout.
    let started = Instant::now();
    let stream = server
        .request("POST", "/v1/runs", Some(A))
        .open_without_body(100);
    super::serve_util::read_response(stream).expect_error(408, "did not arrive");
    assert!(started.elapsed() < Duration::from_secs(10));
    server
        .get("/nowhere", Some(A))
        .expect_error(404, "no such route");
    server
        .request("PUT", "/v1/runs", Some(A))
        .send()
        .expect_error(405, "method");
    server.get("/healthz", None).expect(200);
    // The service is fine after all that.
    assert!(
        server
            .get("/metrics", None)
            .expect(200)
            .text()
            .contains("icmp_host_")
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[test]
fn serve_without_config_is_one_local_tenant_and_refuses_to_be_exposed() {
    let mut cmd = icmp_host();
    // Not loopback, and no address of this host: refused before any bind,
    // and could not be bound if the check ever failed.
    cmd.args(["serve", "--listen", "198.18.0.1:0"]);
    let r = run(cmd, Duration::from_secs(30));
    r.assert_no_panic().assert_code(2);
    assert!(r.stderr.contains("not loopback"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);

    let bad = super::serve_util::temp_path("bad.toml");
    std::fs::write(&bad, "[[tenant]]\nname = \"x\"\nmax_concurent = 3\n").unwrap();
    let mut cmd = icmp_host();
    cmd.args(["serve", "--config"]).arg(&bad);
    let r = run(cmd, Duration::from_secs(30));
    let _ = std::fs::remove_file(&bad);
    r.assert_no_panic().assert_code(2);
    assert!(
        r.stderr.contains("unknown field `max_concurent`"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);

    let mut cmd = icmp_host();
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    let server = Server::spawn(cmd, super::serve_util::temp_path("none"), None);
    assert!(server.addr.ip().is_loopback());
    // No token needed: the one anonymous tenant.
    assert_eq!(server.get("/v1/runs", None).expect(200).json(), json!([]));
    server
        .get("/v1/runs", Some("a-token"))
        .expect_error(401, "unknown token");
}

#[test]
fn serve_sighup_reloads_without_dropping_runs() {
    if !require_root("serve_sighup_reloads_without_dropping_runs") {
        return;
    }
    let server = Server::start(&team_a());
    server
        .get("/v1/runs", Some(B))
        .expect_error(401, "unknown token");
    let long = ping(&["127.0.0.1", "-c", "15", "-i", "0.1"], false);
    let id = server
        .post_json("/v1/runs", Some(A), &long)
        .expect(202)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listen = format!("listen = \"{}\"\n", server.addr);
    std::fs::write(&server.config, listen.clone() + &two_tenants()).unwrap();
    server.signal(Signal::SIGHUP);
    wait_for_log(&server, "configuration loaded: 2 tenants");
    server.get("/v1/runs", Some(B)).expect(200);
    // The run that was going when the configuration changed carried on.
    let v = wait_done(&server, A, &id);
    assert_eq!(v["interrupted"], false, "{v}");
    assert_eq!(v["result"]["packets_sent"], 15);
    assert_eq!(v["result"]["packets_received"], 15);

    // A file that does not parse changes nothing, and says why.
    std::fs::write(&server.config, listen + "[[tenant]]\nname = 3\n").unwrap();
    server.signal(Signal::SIGHUP);
    wait_for_log(&server, "reload failed, keeping the running configuration");
    server.get("/v1/runs", Some(B)).expect(200);
    assert_eq!(
        metric(&server, "icmp_host_config_last_reload_successful"),
        Some(0.0)
    );
}

fn wait_for_log(server: &Server, text: &str) {
    let start = Instant::now();
    while !server.log().contains(text) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{text:?} not logged:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_sigterm_interrupts_runs_answers_and_exits_0() {
    if !require_root("serve_sigterm_interrupts_runs_answers_and_exits_0") {
        return;
    }
    let mut server = Server::start(&two_tenants());
    let long = ["127.0.0.1", "-c", "1000", "-i", "0.05"];
    let id = server
        .post_json("/v1/runs", Some(A), &ping(&long, false))
        .expect(202)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiter = {
        let request = server
            .request("POST", "/v1/runs", Some(A))
            .json(&ping(&long, true));
        std::thread::spawn(move || request.send())
    };
    let (_, mut events) = server
        .request("GET", &format!("/v1/runs/{id}/events"), Some(A))
        .stream_lines();
    // Both runs are sending.
    for _ in 0..3 {
        events.next().expect("events while the run goes on");
    }
    while metric(&server, "icmp_host_runs_active{tenant=\"team-a\"}") != Some(2.0) {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.signal(Signal::SIGTERM);
    // The waiting request gets the partial result, like after Ctrl-C.
    let answer = waiter.join().unwrap().expect(200).json();
    assert_eq!(answer["interrupted"], true, "{answer}");
    assert_eq!(answer["exit"], 0, "{answer}");
    let sent = answer["result"]["packets_sent"].as_u64().unwrap();
    assert!((1..1000).contains(&sent), "{answer}");
    // The event stream ends with the run's summary.
    let last: Value = serde_json::from_str(&events.last().unwrap()).unwrap();
    assert_eq!(last["event"], "summary");
    let (code, took) = server.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{}", server.log());
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    assert!(
        server.log().contains("SIGTERM: stopping"),
        "{}",
        server.log()
    );
}

#[test]
fn serve_load_200_waiting_runs_each_answered_or_429() {
    if !require_root("serve_load_200_waiting_runs_each_answered_or_429") {
        return;
    }
    let config = format!(
        r#"
[[tenant]]
name = "busy"
token_sha256 = "{}"
plugins = ["ping"]
max_concurrent = 8
[tenant.policy]
allow = ["127.0.0.0/8"]

[[tenant]]
name = "calm"
token_sha256 = "{}"
plugins = ["ping"]
max_concurrent = 2
[tenant.policy]
allow = ["127.0.0.0/8"]
"#,
        token_hash(A),
        token_hash(B)
    );
    let server = Server::start(&config);
    let body = ping(&["127.0.0.1", "-c", "2", "-i", "0.1"], true);
    let busy: Vec<_> = (0..200)
        .map(|_| {
            let request = server.request("POST", "/v1/runs", Some(A)).json(&body);
            std::thread::spawn(move || request.send())
        })
        .collect();
    // Meanwhile the other tenant uses its own quota, two at a time.
    let calm: Vec<_> = (0..2)
        .map(|_| {
            let requests: Vec<_> = (0..5)
                .map(|_| server.request("POST", "/v1/runs", Some(B)).json(&body))
                .collect();
            std::thread::spawn(move || requests.into_iter().map(|r| r.send()).collect::<Vec<_>>())
        })
        .collect();
    let (mut answered, mut refused) = (0, 0);
    for t in busy {
        let r = t.join().unwrap();
        match r.status {
            200 => {
                let v = r.json();
                assert_eq!(v["exit"], 0, "{v}");
                assert_eq!(v["result"]["packets_received"], 2, "{v}");
                answered += 1;
            }
            429 => {
                assert_eq!(r.header("retry-after"), Some("1"));
                refused += 1;
            }
            other => panic!("status {other}: {}", r.text()),
        }
    }
    assert_eq!(answered + refused, 200, "none lost");
    assert!(answered >= 8, "{answered} answered");
    for t in calm {
        for r in t.join().unwrap() {
            let v = r.expect(200).json();
            assert_eq!(v["exit"], 0, "{v}");
            assert_eq!(v["result"]["packets_received"], 2, "{v}");
        }
    }
    let refused_metric = "icmp_host_runs_refused_total{tenant=\"busy\",reason=\"concurrency\"}";
    assert_eq!(
        metric(&server, refused_metric).unwrap_or(0.0),
        f64::from(refused)
    );
    assert_eq!(
        metric(
            &server,
            "icmp_host_runs_total{tenant=\"calm\",outcome=\"reached\"}"
        ),
        Some(10.0)
    );
    eprintln!("load: {answered} answered, {refused} told 429");
}

#[test]
fn serve_max_pps_holds_for_a_tenants_runs_together() {
    if !require_root("serve_max_pps_holds_for_a_tenants_runs_together") {
        return;
    }
    let config = format!(
        r#"
[[tenant]]
name = "paced"
token_sha256 = "{}"
plugins = ["ping"]
max_concurrent = 2
[tenant.policy]
allow = ["127.0.0.0/8"]
max_pps = 10
"#,
        token_hash(A)
    );
    let server = Server::start(&config);
    let body = ping(&["127.0.0.1", "-c", "10", "-i", "0.01"], true);
    let start = Instant::now();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let request = server.request("POST", "/v1/runs", Some(A)).json(&body);
            std::thread::spawn(move || request.send())
        })
        .collect();
    for r in runs {
        let v = r.join().unwrap().expect(200).json();
        assert_eq!(v["result"]["packets_received"], 10, "{v}");
    }
    // 20 requests at 10 per second with a burst of 10: the second ten wait
    // for the tenant's tokens, whichever run sends them. (Each run with a
    // rate of its own would be done in a tenth of that.)
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "20 requests in {took:?}"
    );
}
