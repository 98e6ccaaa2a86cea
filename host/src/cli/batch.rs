//! `icmp-host batch`: several plugins side by side in one host, as tenants:
//! each under its own policy and limits, all sharing the host's sockets.
//! One plugin failing — trapping, spinning, denied — does not disturb the
//! others.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use icmp_host::icmp::{Engine, EngineConfig};
use icmp_host::policy::PolicySpec;
use icmp_host::runtime::{Interrupt, Limits, Plugin, Runtime, Session, sha256_hex, types};

use super::args::{BatchArgs, ProgressFormat};
use super::render::Renderer;
use super::{
    Ending, Source, Workers, async_runtime, plugin_bytes, plugin_source, print_stdout,
    privileged_sockets, watch_ctrl_c,
};

/// Most runs alive at once: the instance pool's size (runs beyond it wait
/// for a slot). Each slot reserves address space, not memory.
const MAX_CONCURRENT: usize = 1000;

/// The manifest file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    runs: Vec<Entry>,
}

/// One run of the manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// Names the run in output and progress.
    name: String,
    /// A built-in name or a path to a component.
    plugin: String,
    /// Refuse to run unless the plugin's bytes have this SHA-256.
    #[serde(default)]
    sha256: Option<String>,
    /// The plugin's arguments.
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    policy: PolicySpec,
    #[serde(default)]
    limits: LimitSpec,
}

/// Limits of one run; unset ones take the defaults of `icmp-host run`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LimitSpec {
    memory_mib: Option<usize>,
    cpu_seconds: Option<f64>,
    wall_seconds: Option<f64>,
}

impl LimitSpec {
    fn build(&self) -> anyhow::Result<Limits> {
        let mut limits = Limits::default();
        if let Some(m) = self.memory_mib {
            limits.memory = m.checked_mul(1 << 20).context("memory_mib is too large")?;
        }
        if let Some(c) = self.cpu_seconds {
            limits.cpu = Duration::try_from_secs_f64(c).context("cpu_seconds")?;
        }
        if let Some(w) = self.wall_seconds {
            limits.wall = Some(Duration::try_from_secs_f64(w).context("wall_seconds")?);
        }
        Ok(limits)
    }
}

/// A run, validated and ready.
struct Prepared {
    name: String,
    /// The manifest's `plugin`: runs naming the same one share it.
    plugin: String,
    label: String,
    args: Vec<String>,
    policy: icmp_host::policy::Policy,
    limits: Limits,
}

/// A plugin some runs name, as read (and checked against pins).
struct Named {
    label: String,
    source: Source,
    wasm: std::borrow::Cow<'static, [u8]>,
    /// Its SHA-256, once a pin asks for it.
    sha256: std::cell::OnceCell<String>,
}

fn prepare(manifest: Manifest) -> anyhow::Result<(Vec<Prepared>, HashMap<String, Named>)> {
    if manifest.runs.is_empty() {
        bail!("the manifest has no runs");
    }
    let mut names = std::collections::HashSet::new();
    let mut plugins: HashMap<String, Named> = HashMap::new();
    let runs = manifest
        .runs
        .into_iter()
        .map(|e| {
            if !names.insert(e.name.clone()) {
                bail!("two runs are named {:?}", e.name);
            }
            let context = || format!("run {:?}", e.name);
            if !plugins.contains_key(&e.plugin) {
                let (label, source) = plugin_source(&e.plugin).with_context(context)?;
                let wasm = plugin_bytes(&source).with_context(context)?;
                let named = Named {
                    label,
                    source,
                    wasm,
                    sha256: std::cell::OnceCell::new(),
                };
                plugins.insert(e.plugin.clone(), named);
            }
            let named = &plugins[&e.plugin];
            let label = &named.label;
            if let Some(want) = &e.sha256 {
                let got = named.sha256.get_or_init(|| sha256_hex(&named.wasm));
                if !got.eq_ignore_ascii_case(want) {
                    bail!(
                        "run {:?}: {} has sha256 {got}, the manifest says {want}",
                        e.name,
                        e.plugin
                    );
                }
            }
            let policy = e
                .policy
                .build()
                .map_err(anyhow::Error::msg)
                .with_context(context)?;
            let limits = e.limits.build().with_context(context)?;
            Ok(Prepared {
                name: e.name,
                label: label.clone(),
                plugin: e.plugin,
                args: e.args,
                policy,
                limits,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((runs, plugins))
}

/// Loads each plugin once — built-ins from their precompiled code, files
/// from the bytes read (and checked) — for all the runs naming it.
fn load_all(
    runtime: &Runtime,
    plugins: HashMap<String, Named>,
) -> HashMap<String, Result<Plugin, String>> {
    plugins
        .into_iter()
        .map(|(key, named)| {
            let plugin = match named.source {
                Source::BuiltIn(b) => runtime.load_builtin(b),
                Source::File(_) => runtime.load(&named.label, &named.wasm),
            };
            (key, plugin.map_err(|e| e.to_string()))
        })
        .collect()
}

pub fn run(args: BatchArgs) -> anyhow::Result<Ending> {
    let text = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("cannot read {}", args.manifest.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid manifest", args.manifest.display()))?;
    let (runs, plugins) = prepare(manifest)?;
    let any_privileged = runs.iter().any(|r| r.policy.allow_privileged);
    let raw = privileged_sockets(any_privileged)?;
    let cache_dir = args
        .cache_dir
        .clone()
        .or_else(icmp_host::runtime::default_cache_dir);
    async_runtime(Workers::PerCore)?.block_on(async move {
        let slots = runs.len().min(MAX_CONCURRENT) as u32;
        let runtime = Arc::new(Runtime::pooled(cache_dir, slots)?);
        let plugins = load_all(&runtime, plugins);
        let engine =
            Engine::new(EngineConfig::default(), raw).context("starting the ICMP engine")?;
        let all = Interrupt::new();
        let mut tasks = Vec::new();
        for run in runs {
            let interrupt = Interrupt::new();
            let (runtime, all) = (Arc::clone(&runtime), all.clone());
            let session = Session {
                engine: engine.clone(),
                policy: Arc::new(run.policy),
                sink: Arc::new(Renderer::named(args.progress, &run.name)),
                interrupt: interrupt.clone(),
            };
            let (name, label) = (run.name.clone(), run.label.clone());
            let plugin = plugins[&run.plugin].clone();
            // Each plugin in its own task; a Ctrl-C interrupts them all.
            tasks.push((
                name,
                label,
                tokio::spawn(async move {
                    let forward = tokio::spawn({
                        let interrupt = interrupt.clone();
                        async move {
                            all.wait().await;
                            interrupt.trigger();
                        }
                    });
                    let plugin = plugin?;
                    let finished = runtime
                        .run(&plugin, run.args, session, &run.limits)
                        .await
                        .map_err(|e| e.to_string());
                    forward.abort();
                    finished
                }),
            ));
        }
        tokio::spawn(watch_ctrl_c(all));
        let mut report = Vec::new();
        let mut worst = 0;
        for (name, label, task) in tasks {
            let finished = task.await.context("a plugin task failed")?;
            let (exit, entry) = summarize(&name, &label, finished, args.progress);
            worst = worst.max(exit);
            report.push(entry);
        }
        print_stdout(&serde_json::to_string_pretty(&report)?);
        match worst {
            0 => Ok(Ending::Reached),
            1 => Ok(Ending::NotReached),
            _ => bail!("at least one run failed (see its error in the report)"),
        }
    })
}

/// One run's entry of the report, and its exit status.
fn summarize(
    name: &str,
    label: &str,
    finished: Result<icmp_host::runtime::Finished, String>,
    progress: ProgressFormat,
) -> (u8, Value) {
    let entry =
        |exit: u8, outcome: &str, result: Value, error: Option<String>, cpu_ms: Option<f64>| {
            let v = json!({
                "name": name,
                "plugin": label,
                "exit": exit,
                "outcome": outcome,
                "cpu_ms": cpu_ms,
                "result": result,
                "error": error,
            });
            (exit, v)
        };
    let finished = match finished {
        Ok(f) => f,
        Err(e) => return entry(2, "error", Value::Null, Some(e), None),
    };
    if progress != ProgressFormat::None {
        super::print_guest_output(name, &finished.guest_output);
    }
    let cpu_ms = Some(finished.cpu.as_secs_f64() * 1e3);
    match finished.output {
        Ok(types::RunOutput::Text(t)) => entry(0, "text", Value::String(t), None, cpu_ms),
        Ok(types::RunOutput::Report(r)) => {
            let result = r
                .json
                .as_deref()
                .map(|j| serde_json::from_str(j).unwrap_or_else(|_| Value::String(j.to_owned())))
                .unwrap_or(Value::Null);
            let (exit, outcome) = match r.outcome {
                types::Outcome::Reached => (0, "reached"),
                types::Outcome::NotReached => (1, "not-reached"),
                types::Outcome::Partial => (1, "partial"),
            };
            entry(exit, outcome, result, None, cpu_ms)
        }
        Err(types::RunError::Usage(m) | types::RunError::Failed(m)) => {
            entry(2, "error", Value::Null, Some(m), cpu_ms)
        }
    }
}
