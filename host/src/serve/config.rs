/*!
The service's configuration: a TOML file (or the built-in default),
parsed and checked as a whole, so a reload either replaces the running
configuration entirely or not at all.

```toml
listen = "127.0.0.1:9730"

[[tenant]]
name = "team-a"
token_sha256 = "<hex sha256 of the bearer token>"
plugins = ["ping", "multiping", "traceroute"]
max_concurrent = 8
[tenant.policy]            # PolicySpec, as in batch manifests
allow = ["192.0.2.0/24"]
[tenant.limits]            # LimitSpec
wall_seconds = 30

[[module]]
name = "icmp"
tenant = "team-a"
plugin = "ping"
args = ["-c", "3", "-i", "0.2"]

[[schedule]]
module = "icmp"
targets = ["192.0.2.1"]
every = "10s"
```
*/

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::auth::TokenDigest;
use crate::builtin;
use crate::policy::{PolicySpec, SHARED_HOST_PPS};
use crate::runtime::{LimitSpec, Limits};

/// Where the service listens without a `listen` key or `--listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9730";

/// A run's wall-clock limit when the tenant sets none: a service never
/// runs a plugin without one.
pub const DEFAULT_WALL: Duration = Duration::from_secs(60);

/// Time a client has to send a request body, unless `body_timeout` says.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest `max_upload_mib` a tenant may be given: what the runtime
/// loads at most.
pub const MAX_UPLOAD_MIB: usize = crate::runtime::MAX_PLUGIN_BYTES >> 20;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    body_timeout: Option<String>,
    #[serde(default, rename = "tenant")]
    tenants: Vec<TenantSpec>,
    #[serde(default, rename = "module")]
    modules: Vec<ModuleSpec>,
    #[serde(default, rename = "schedule")]
    schedules: Vec<ScheduleSpec>,
}

fn default_max_concurrent() -> usize {
    4
}
fn default_max_uploads() -> usize {
    16
}
fn default_max_upload_mib() -> usize {
    8
}
fn default_keep_runs() -> usize {
    100
}
fn default_keep_for() -> String {
    "15m".into()
}
fn default_keep_mib() -> usize {
    64
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantSpec {
    name: String,
    token_sha256: Option<String>,
    #[serde(default)]
    plugins: Vec<String>,
    #[serde(default = "default_max_concurrent")]
    max_concurrent: usize,
    #[serde(default)]
    policy: PolicySpec,
    #[serde(default)]
    limits: LimitSpec,
    #[serde(default = "default_max_uploads")]
    max_uploads: usize,
    #[serde(default = "default_max_upload_mib")]
    max_upload_mib: usize,
    #[serde(default = "default_keep_runs")]
    keep_runs: usize,
    #[serde(default = "default_keep_for")]
    keep_for: String,
    #[serde(default = "default_keep_mib")]
    keep_mib: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleSpec {
    name: String,
    tenant: String,
    plugin: String,
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleSpec {
    module: String,
    targets: Vec<String>,
    every: String,
}

/// A tenant: who it is, what it may run, and under which rules.
#[derive(Debug)]
pub struct Tenant {
    /// Its name (labels, envelopes, logs).
    pub name: String,
    /// The digest of its bearer token; `None` for the anonymous tenant.
    pub token: Option<TokenDigest>,
    /// Built-in plugins it may run (its own uploads it always may).
    pub plugins: BTreeSet<String>,
    /// Runs at once.
    pub max_concurrent: usize,
    /// Its policy as written (each run gets a fresh [`crate::policy::Policy`]).
    pub policy: PolicySpec,
    /// Its runs' limits (always with a wall-clock limit).
    pub limits: Limits,
    /// Uploads it may keep.
    pub max_uploads: usize,
    /// Largest upload, bytes.
    pub max_upload_bytes: usize,
    /// Finished runs kept for `GET /v1/runs/<id>`.
    pub keep_runs: usize,
    /// How long a finished run is kept.
    pub keep_for: Duration,
    /// Most bytes of finished runs' results and events kept.
    pub keep_bytes: usize,
}

/// A `/probe` module: a tenant's plugin with fixed arguments, the target last.
#[derive(Debug, Clone)]
pub struct Module {
    /// Its name (`/probe?module=`).
    pub name: String,
    /// The tenant it runs as.
    pub tenant: String,
    /// A built-in name or `sha256:<hex>` of the tenant's upload.
    pub plugin: String,
    /// Arguments before the target.
    pub args: Vec<String>,
}

/// Continuous probing of targets with a module.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The module.
    pub module: String,
    /// Targets, each probed every `every`.
    pub targets: Vec<String>,
    /// The period.
    pub every: Duration,
}

/// A checked configuration.
#[derive(Debug)]
pub struct Config {
    /// The listening address.
    pub listen: SocketAddr,
    /// Time a client has to send a request body (else 408).
    pub body_timeout: Duration,
    /// Tenants in file order.
    pub tenants: Vec<Arc<Tenant>>,
    /// Modules by name.
    pub modules: BTreeMap<String, Module>,
    /// Schedules in file order.
    pub schedules: Vec<Schedule>,
}

impl Config {
    /// The configuration without a file: one anonymous tenant allowed every
    /// built-in under the default policy, and an `icmp` module (ping, three
    /// requests) for `/probe`.
    pub fn local() -> Config {
        let tenant = Tenant {
            name: "local".into(),
            token: None,
            plugins: builtin::BUILT_INS
                .iter()
                .map(|b| b.name.to_owned())
                .collect(),
            max_concurrent: 16,
            policy: PolicySpec::default(),
            limits: with_wall(Limits::default()),
            max_uploads: default_max_uploads(),
            max_upload_bytes: default_max_upload_mib() << 20,
            keep_runs: default_keep_runs(),
            keep_for: Duration::from_secs(15 * 60),
            keep_bytes: default_keep_mib() << 20,
        };
        let icmp = Module {
            name: "icmp".into(),
            tenant: tenant.name.clone(),
            plugin: "ping".into(),
            args: ["-c", "3", "-i", "0.2", "-W", "1"]
                .map(String::from)
                .to_vec(),
        };
        Config {
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            tenants: vec![Arc::new(tenant)],
            modules: BTreeMap::from([(icmp.name.clone(), icmp)]),
            schedules: Vec::new(),
        }
    }

    /// Reads and checks `path`; the error is one line naming the file.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks a configuration.
    pub fn parse(text: &str) -> Result<Config, String> {
        let file: File = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        check(file)
    }

    /// The tenants' names.
    pub fn tenant_names(&self) -> Vec<&str> {
        self.tenants.iter().map(|t| t.name.as_str()).collect()
    }

    /// The tenant called `name`.
    pub fn tenant(&self, name: &str) -> Option<&Arc<Tenant>> {
        self.tenants.iter().find(|t| t.name == name)
    }

    /// Overrides the listening address (`--listen`), checking it again.
    pub fn with_listen(mut self, listen: SocketAddr) -> Result<Config, String> {
        self.listen = listen;
        check_exposure(&self)?;
        Ok(self)
    }
}

/// `line:column: message`, one line.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

fn with_wall(mut limits: Limits) -> Limits {
    limits.wall.get_or_insert(DEFAULT_WALL);
    limits
}

/// Parses a period such as `10s`, `500ms` or `1m30s`.
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration ({e})"))
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name {name:?} must be 1-64 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// Whether a target is something a plugin should get as its last argument:
/// a name or an address, never an option.
pub fn check_target(target: &str) -> Result<(), String> {
    let ok = !target.is_empty()
        && target.len() <= 255
        && !target.starts_with('-')
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'%'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "target {target:?} is not a host name or an address"
        ))
    }
}

fn check(file: File) -> Result<Config, String> {
    let listen = file
        .listen
        .as_deref()
        .unwrap_or(DEFAULT_LISTEN)
        .parse::<SocketAddr>()
        .map_err(|_| {
            format!(
                "listen: {:?} is not an address:port",
                file.listen.unwrap_or_default()
            )
        })?;
    if file.tenants.is_empty() {
        return Err("no [[tenant]]: nobody could use the service".into());
    }
    let mut tenants: Vec<Arc<Tenant>> = Vec::new();
    for spec in file.tenants {
        let tenant = check_tenant(spec)?;
        if tenants.iter().any(|t| t.name == tenant.name) {
            return Err(format!("two tenants are named {:?}", tenant.name));
        }
        if let Some(other) = tenants
            .iter()
            .find(|t| t.token.is_some() && t.token == tenant.token)
        {
            return Err(format!(
                "tenants {:?} and {:?} have the same token",
                other.name, tenant.name
            ));
        }
        if tenant.token.is_none() && tenants.iter().any(|t| t.token.is_none()) {
            return Err(
                "more than one tenant without token_sha256 (at most one may be anonymous)".into(),
            );
        }
        tenants.push(Arc::new(tenant));
    }
    let mut modules = BTreeMap::new();
    for spec in file.modules {
        let context = format!("module {:?}", spec.name);
        check_name("module", &spec.name)?;
        let tenant = tenants
            .iter()
            .find(|t| t.name == spec.tenant)
            .ok_or_else(|| format!("{context}: no tenant is named {:?}", spec.tenant))?;
        if !spec.plugin.starts_with("sha256:") && !tenant.plugins.contains(&spec.plugin) {
            return Err(format!(
                "{context}: tenant {:?} may not run {:?} (add it to its plugins)",
                tenant.name, spec.plugin
            ));
        }
        let module = Module {
            name: spec.name,
            tenant: spec.tenant,
            plugin: spec.plugin,
            args: spec.args,
        };
        if modules.insert(module.name.clone(), module).is_some() {
            return Err(format!("two modules are named {context}"));
        }
    }
    let mut schedules = Vec::new();
    for spec in file.schedules {
        let context = format!("schedule of module {:?}", spec.module);
        if !modules.contains_key(&spec.module) {
            return Err(format!("{context}: no such module"));
        }
        if spec.targets.is_empty() {
            return Err(format!("{context}: no targets"));
        }
        for t in &spec.targets {
            check_target(t).map_err(|e| format!("{context}: {e}"))?;
        }
        let every = duration(&spec.every).map_err(|e| format!("{context}: every: {e}"))?;
        if every < Duration::from_secs(1) {
            return Err(format!("{context}: every must be at least 1s"));
        }
        schedules.push(Schedule {
            module: spec.module,
            targets: spec.targets,
            every,
        });
    }
    let body_timeout = match &file.body_timeout {
        Some(t) => duration(t).map_err(|e| format!("body_timeout: {e}"))?,
        None => DEFAULT_BODY_TIMEOUT,
    };
    let config = Config {
        listen,
        body_timeout,
        tenants,
        modules,
        schedules,
    };
    check_exposure(&config)?;
    Ok(config)
}

/// Beyond loopback, every tenant needs a token.
fn check_exposure(config: &Config) -> Result<(), String> {
    if config.listen.ip().is_loopback() {
        return Ok(());
    }
    match config.tenants.iter().find(|t| t.token.is_none()) {
        Some(t) => Err(format!(
            "refusing to listen on {} (not loopback) with tenant {:?} open to anyone: give every tenant a token_sha256",
            config.listen, t.name
        )),
        None => Ok(()),
    }
}

fn check_tenant(spec: TenantSpec) -> Result<Tenant, String> {
    check_name("tenant", &spec.name)?;
    let context = |e: String| format!("tenant {:?}: {e}", spec.name);
    let token = spec
        .token_sha256
        .as_deref()
        .map(TokenDigest::from_hex)
        .transpose()
        .map_err(context)?;
    let mut plugins = BTreeSet::new();
    for p in &spec.plugins {
        if builtin::find(p).is_none() {
            let known: Vec<&str> = builtin::BUILT_INS.iter().map(|b| b.name).collect();
            return Err(context(format!(
                "plugins: {p:?} is not a built-in ({})",
                known.join(", ")
            )));
        }
        plugins.insert(p.clone());
    }
    if !(1..=4096).contains(&spec.max_concurrent) {
        return Err(context("max_concurrent must be 1..=4096".into()));
    }
    // Tenants share the host: a rate unless the policy sets one.
    let policy = spec.policy.clone().with_default_rate(SHARED_HOST_PPS);
    policy
        .build()
        .map_err(|e| context(format!("policy: {e}")))?;
    let limits = spec
        .limits
        .build()
        .map_err(|e| context(format!("limits: {e}")))?;
    if !(1..=MAX_UPLOAD_MIB).contains(&spec.max_upload_mib) {
        return Err(context(format!(
            "max_upload_mib must be 1..={MAX_UPLOAD_MIB}"
        )));
    }
    let keep_for = duration(&spec.keep_for).map_err(|e| context(format!("keep_for: {e}")))?;
    Ok(Tenant {
        name: spec.name.clone(),
        token,
        plugins,
        max_concurrent: spec.max_concurrent,
        policy,
        limits: with_wall(limits),
        max_uploads: spec.max_uploads,
        max_upload_bytes: spec.max_upload_mib << 20,
        keep_runs: spec.keep_runs,
        keep_for,
        keep_bytes: spec
            .keep_mib
            .checked_mul(1 << 20)
            .ok_or_else(|| context("keep_mib is too large".into()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH_A: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
    const HASH_B: &str = "81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce9";

    fn issue_example() -> String {
        format!(
            r#"
listen = "127.0.0.1:9730"

[[tenant]]
name = "team-a"
token_sha256 = "{HASH_A}"
plugins = ["ping", "multiping", "traceroute"]
max_concurrent = 8
[tenant.policy]
allow = ["192.0.2.0/24"]
max_pps = 100
[tenant.limits]
memory_mib = 64
cpu_seconds = 2
wall_seconds = 30

[[module]]
name = "icmp"
tenant = "team-a"
plugin = "ping"
args = ["-c", "3", "-i", "0.2"]

[[schedule]]
module = "icmp"
targets = ["192.0.2.1", "192.0.2.7"]
every = "10s"
"#
        )
    }

    #[test]
    fn the_issue_example_parses() {
        let c = Config::parse(&issue_example()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9730".parse().unwrap());
        let t = &c.tenants[0];
        assert_eq!(t.name, "team-a");
        assert_eq!(t.token, Some(TokenDigest::from_hex(HASH_A).unwrap()));
        assert_eq!(t.max_concurrent, 8);
        assert_eq!(t.limits.memory, 64 << 20);
        assert_eq!(t.limits.cpu, Duration::from_secs(2));
        assert_eq!(t.limits.wall, Some(Duration::from_secs(30)));
        assert_eq!(t.policy.allow, ["192.0.2.0/24"]);
        assert_eq!(c.modules["icmp"].args, ["-c", "3", "-i", "0.2"]);
        assert_eq!(c.schedules[0].every, Duration::from_secs(10));
        assert_eq!(c.schedules[0].targets.len(), 2);
    }

    #[test]
    fn the_local_default_is_loopback_and_anonymous_with_a_wall_limit() {
        let c = Config::local();
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.listen.port(), 9730);
        assert_eq!(c.tenants.len(), 1);
        assert!(c.tenants[0].token.is_none());
        assert_eq!(c.tenants[0].limits.wall, Some(DEFAULT_WALL));
        assert!(c.modules.contains_key("icmp"));
        let open = c.with_listen("0.0.0.0:9730".parse().unwrap()).unwrap_err();
        assert!(open.contains("not loopback"), "{open}");
        assert!(!open.contains('\n'));
    }

    #[test]
    fn mistakes_are_one_line_errors_naming_the_culprit() {
        let example = issue_example();
        let cases: Vec<(String, &str)> = vec![
            (example.replace("max_pps", "max_ppz"), "unknown field"),
            (example.replace("192.0.2.0/24", "192.0.2.0/99"), "team-a"),
            (
                example.replace("\"multiping\", ", "\"multiplng\", "),
                "not a built-in",
            ),
            (
                example.replace("plugin = \"ping\"", "plugin = \"pong\""),
                "may not run",
            ),
            (
                example.replace("tenant = \"team-a\"", "tenant = \"team-z\""),
                "no tenant",
            ),
            (
                example.replace("module = \"icmp\"", "module = \"icmq\""),
                "no such module",
            ),
            (example.replace("\"10s\"", "\"soon\""), "not a duration"),
            (example.replace("\"10s\"", "\"10ms\""), "at least 1s"),
            (
                example.replace("\"192.0.2.7\"", "\"-c\""),
                "not a host name",
            ),
            (example.replace(HASH_A, "abc"), "64 hexadecimal"),
            (example.replace("127.0.0.1:9730", "nowhere"), "listen"),
            (
                example.replace("max_concurrent = 8", "max_concurrent = 0"),
                "max_concurrent",
            ),
            (
                example.replace("wall_seconds = 30", "wall_seconds = -1"),
                "wall_seconds",
            ),
            ("listen = [".into(), "line 1"),
            ("".into(), "no [[tenant]]"),
        ];
        for (text, expected) in cases {
            let e = Config::parse(&text).unwrap_err();
            assert!(e.contains(expected), "expected {expected:?} in {e:?}");
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn tokens_are_unique_and_anonymous_tenants_stay_on_loopback() {
        let two = |a: &str, b: &str| {
            format!("[[tenant]]\nname = \"a\"\n{a}\n[[tenant]]\nname = \"b\"\n{b}\n")
        };
        let same = two(
            &format!("token_sha256 = \"{HASH_A}\""),
            &format!("token_sha256 = \"{HASH_A}\""),
        );
        assert!(Config::parse(&same).unwrap_err().contains("same token"));
        assert!(
            Config::parse(&two("", ""))
                .unwrap_err()
                .contains("at most one")
        );
        let mixed = two(&format!("token_sha256 = \"{HASH_B}\""), "");
        assert!(Config::parse(&mixed).is_ok());
        let exposed = format!("listen = \"0.0.0.0:9730\"\n{mixed}");
        assert!(
            Config::parse(&exposed)
                .unwrap_err()
                .contains("\"b\" open to anyone")
        );
        let all_tokens = format!(
            "listen = \"[::]:9730\"\n{}",
            two(
                &format!("token_sha256 = \"{HASH_A}\""),
                &format!("token_sha256 = \"{HASH_B}\"")
            )
        );
        assert!(Config::parse(&all_tokens).is_ok());
    }

    #[test]
    fn targets_are_names_or_addresses() {
        for ok in ["192.0.2.1", "fe80::1%eth0", "host.example", "a-b_c"] {
            check_target(ok).unwrap();
        }
        for bad in ["", "-c", "a b", "a;b", "x\n", &"a".repeat(256)] {
            assert!(check_target(bad).is_err(), "{bad:?}");
        }
    }
}
