//! The versioning rule: a plugin built against `icmp-host:probe@0.1.0`
//! (wit-bindgen alone, no SDK) still runs on a host serving 0.2.

use std::time::Duration;

use super::util::{icmp_host, plugin, require_root, run};

#[test]
fn a_plugin_built_against_0_1_still_runs() {
    if !require_root("a_plugin_built_against_0_1_still_runs") {
        return;
    }
    let mut cmd = icmp_host();
    cmd.args(["run", "--allow", "127.0.0.0/8"])
        .arg(plugin("compat_v0_1"))
        .arg("127.0.0.1");
    let r = run(cmd, Duration::from_secs(30));
    r.assert_no_panic().assert_code(0);
    let v = r.json();
    assert_eq!(v["batched"], 2, "send-many of 0.1 answers per request: {v}");
    assert_eq!(v["answered"], serde_json::json!([1, 2, 3]), "{v}");
    assert!(r.stderr.contains("written against 0.1.0"), "{}", r.stderr);
    // Imports are listed with their version.
    let mut inspect = icmp_host();
    inspect.arg("inspect").arg(plugin("compat_v0_1"));
    let i = run(inspect, Duration::from_secs(30));
    i.assert_code(0);
    assert!(
        i.stdout.contains("icmp-host:probe/sockets@0.1.0"),
        "{}",
        i.stdout
    );
}
