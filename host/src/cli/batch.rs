//! `icmp-host batch`: several plugins side by side in one host, as tenants:
//! each under its own policy and limits, all sharing the host's sockets.
//! One plugin failing — trapping, spinning, denied, even crashing the host
//! code that serves it — does not disturb the others, and every run gets
//! its entry in the report.
//!
//! Stdout is one JSON document, the report: a run's streamed result lines
//! go inside its entry, never raw on stdout. Plugins are compiled on the
//! blocking pool and progress is written by the [`Writer`]'s thread, so the
//! async workers that read replies never wait on either.
//!
//! Each distinct plugin is read, checked and loaded once, whatever the
//! number of runs naming it; instances come from a pool sized for the
//! batch. Plugins compile one at a time while the runs start: a run waits
//! for its own plugin only, so a component slow to compile delays nobody
//! else's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use icmp_host::icmp::{Engine, EngineConfig, Quota, ReaderPlace};
use icmp_host::policy::{PolicySpec, SHARED_HOST_PPS};
use icmp_host::report::{self, RawResult, shorten};
use icmp_host::runtime::{Interrupt, LimitSpec, Limits, Plugin, Runtime, Session, sha256_hex};
use icmp_host::sys::clock::thread_cpu_ns;

use super::args::{BatchArgs, ProgressFormat};
use super::render::Renderer;
use super::writer::Writer;
use super::{
    Ending, Source, Workers, async_runtime, plugin_bytes, plugin_source, print_stdout,
    privileged_sockets, watch_ctrl_c,
};

/// Most runs alive at once: the instance pool's size (runs beyond it wait
/// for a slot). A slot reserves address space, not memory.
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

/// Wall-clock limit of a batch run that sets none, so no run holds the
/// batch's report forever.
pub const DEFAULT_WALL: Duration = Duration::from_secs(300);

/// A run's limits: the defaults of `icmp-host run` for what the spec
/// leaves unset, except the wall-clock limit: [`DEFAULT_WALL`].
fn limits(spec: &LimitSpec) -> anyhow::Result<Limits> {
    let mut limits = spec.build().map_err(anyhow::Error::msg)?;
    limits.wall.get_or_insert(DEFAULT_WALL);
    Ok(limits)
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

/// A plugin some runs name, as read (and checked against their pins).
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
                .with_default_rate(SHARED_HOST_PPS)
                .build()
                .map_err(anyhow::Error::msg)
                .with_context(context)?;
            let limits = limits(&e.limits).with_context(context)?;
            Ok(Prepared {
                name: e.name,
                label: named.label.clone(),
                plugin: e.plugin,
                args: e.args,
                policy,
                limits,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((runs, plugins))
}

/// A plugin loaded for its runs, and the CPU time the host spent
/// compiling (or, when it was refused, checking) it.
type Loaded = (Result<Plugin, String>, Duration);

/// Where the runs naming one plugin wait for it to be loaded.
type Pending = tokio::sync::watch::Receiver<Option<Loaded>>;

/// Loads each plugin once — built-ins from their precompiled code first,
/// then files from the bytes read (and checked), one compile at a time —
/// for all the runs naming it. Each is announced on its own channel as
/// soon as it is loaded: a plugin slow to compile holds back only its
/// own runs.
fn load_all(runtime: &Runtime, plugins: Vec<(Named, tokio::sync::watch::Sender<Option<Loaded>>)>) {
    let mut plugins = plugins;
    plugins.sort_by_key(|(named, _)| !matches!(named.source, Source::BuiltIn(_)));
    for (named, loaded) in plugins {
        let load = || match named.source {
            Source::BuiltIn(b) => runtime.load_builtin(b).map_err(|e| e.to_string()),
            Source::File(_) => runtime
                .load(&named.label, &named.wasm)
                .map_err(|e| e.to_string()),
        };
        let start = thread_cpu_ns();
        // A host bug while loading fails the runs of this plugin only.
        let plugin = std::panic::catch_unwind(std::panic::AssertUnwindSafe(load))
            .unwrap_or_else(|_| Err(CRASHED_LOADING.to_owned()));
        // The pooled runtime compiles on this thread alone: a refused
        // plugin is charged what checking and compiling it took.
        let cpu = match &plugin {
            Ok(p) => p.code().compile_cpu(),
            Err(_) => Duration::from_nanos(thread_cpu_ns().saturating_sub(start)),
        };
        let _ = loaded.send(Some((plugin, cpu)));
    }
}

/// Waits for a plugin to be loaded (a loader that ended without loading
/// it is a host bug, reported in the runs' entries).
async fn loaded(mut pending: Pending) -> Loaded {
    match pending.wait_for(Option::is_some).await {
        Ok(loaded) => loaded.clone().expect("waited for Some"),
        Err(_) => (Err(CRASHED_LOADING.to_owned()), Duration::ZERO),
    }
}

pub fn run(args: BatchArgs) -> anyhow::Result<Ending> {
    let text = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("cannot read {}", args.manifest.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid manifest", args.manifest.display()))?;
    let (runs, plugins) = prepare(manifest)?;
    let data = Source::data_init(plugins.values().map(|p| &p.source));
    let any_privileged = runs.iter().any(|r| r.policy.allow_privileged);
    let raw = privileged_sockets(any_privileged)?;
    let cache_dir = args
        .cache_dir
        .clone()
        .or_else(icmp_host::runtime::default_cache_dir);
    async_runtime(Workers::PerCore)?.block_on(async move {
        let slots = runs.len().min(MAX_CONCURRENT) as u32;
        let runtime = Arc::new(Runtime::pooled(cache_dir, slots, data)?);
        let mut pending: HashMap<String, Pending> = HashMap::new();
        let mut to_load = Vec::new();
        for (key, named) in plugins {
            let (tx, rx) = tokio::sync::watch::channel(None);
            pending.insert(key, rx);
            to_load.push((named, tx));
        }
        // Compiling takes a core for a while: not on a worker. Runs start
        // meanwhile, each waiting for its own plugin only.
        let loader = Arc::clone(&runtime);
        tokio::task::spawn_blocking(move || load_all(&loader, to_load));
        let engine = Engine::new(
            EngineConfig {
                // Tenants' plugins must not delay each other's replies.
                readers: ReaderPlace::Thread,
                ..EngineConfig::default()
            },
            raw,
        )
        .context("starting the ICMP engine")?;
        let writer = Writer::start();
        let all = Interrupt::new();
        // Every run is a tenant; their in-flight quotas share the key table.
        let quota = Quota {
            in_flight: (engine.unreserved_in_flight() / runs.len().max(1))
                .min(Quota::default().in_flight),
            ..Quota::default()
        };
        let mut tasks = Vec::new();
        for run in runs {
            let tenant = engine.tenant(&run.name, quota)?;
            let interrupt = Interrupt::new();
            let (runtime, all) = (Arc::clone(&runtime), all.clone());
            let renderer = Arc::new(Renderer::named(
                args.progress,
                &run.name,
                Arc::clone(&writer),
            ));
            let session = Session {
                engine: engine.clone(),
                tenant,
                policy: Arc::new(run.policy),
                sink: Arc::clone(&renderer) as Arc<dyn icmp_host::runtime::ProgressSink>,
                interrupt: interrupt.clone(),
            };
            let (name, label) = (run.name.clone(), run.label.clone());
            let plugin = pending[&run.plugin].clone();
            // Each plugin in its own task; a Ctrl-C interrupts them all.
            let task = tokio::spawn(async move {
                let forward = tokio::spawn({
                    let interrupt = interrupt.clone();
                    async move {
                        all.wait().await;
                        interrupt.trigger();
                    }
                });
                let (plugin, compile_cpu) = loaded(plugin).await;
                let finished = match plugin {
                    Ok(plugin) => runtime
                        .run(&plugin, run.args, session, &run.limits)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                forward.abort();
                (finished, compile_cpu)
            });
            tasks.push((name, label, renderer, task));
        }
        tokio::spawn(watch_ctrl_c(all));
        let mut done = Vec::new();
        for (name, label, renderer, task) in tasks {
            // A task that panicked fails its own run only.
            let (finished, compile_cpu) = task
                .await
                .unwrap_or_else(|e| (Err(crashed(&e)), Duration::ZERO));
            done.push((name, label, compile_cpu, renderer, finished));
        }
        let lines_dropped = writer.finish();
        if lines_dropped > 0 {
            eprintln!(
                "icmp-host: warning: {lines_dropped} progress lines dropped (more than stderr took)"
            );
        }
        let mut report = Vec::new();
        let mut worst = 0;
        for (name, label, compile_cpu, renderer, finished) in done {
            let run = Summary {
                name,
                label,
                compile_cpu,
            };
            let entry = summarize(run, finished, &renderer, args.progress);
            worst = worst.max(entry.exit);
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

/// The error of the runs of a plugin whose loading panicked.
const CRASHED_LOADING: &str =
    "internal error: the host code loading this plugin panicked (please report it)";

/// The error of a run whose task panicked or was cancelled: a host bug,
/// reported in the run's entry instead of ending the batch.
fn crashed(e: &tokio::task::JoinError) -> String {
    let why = match e.is_panic() {
        true => "panicked",
        false => "was cancelled",
    };
    format!("internal error: the host code serving this run {why} (please report it)")
}

/// What the report says of a run besides how it finished.
struct Summary {
    name: String,
    label: String,
    /// CPU time compiling its plugin took in this batch (plugins are
    /// compiled serially; runs naming the same bytes each show that one
    /// compile).
    compile_cpu: Duration,
}

/// One run's entry of the report: written out as it is, the plugin's
/// result with it (not built into a tree first).
#[derive(Debug, Serialize)]
struct ReportEntry {
    name: String,
    plugin: String,
    exit: u8,
    outcome: &'static str,
    cpu_ms: Option<f64>,
    compile_cpu_ms: f64,
    result: RawResult,
    result_lines: Vec<Value>,
    events_dropped: u64,
    error: Option<String>,
}

/// One run's entry of the report.
fn summarize(
    Summary {
        name,
        label,
        compile_cpu,
    }: Summary,
    finished: Result<icmp_host::runtime::Finished, String>,
    renderer: &Renderer,
    progress: ProgressFormat,
) -> ReportEntry {
    if let Ok(f) = &finished
        && progress != ProgressFormat::None
    {
        super::print_guest_output(&name, &f.guest_output);
    }
    let e = report::Entry::raw(finished.as_ref().map_err(|e| shorten(e).into_owned()));
    ReportEntry {
        name,
        plugin: label,
        exit: e.exit,
        outcome: e.outcome,
        cpu_ms: e.cpu_ms,
        compile_cpu_ms: compile_cpu.as_secs_f64() * 1e3,
        result: e.result,
        result_lines: renderer.take_result_lines(),
        events_dropped: renderer.events_dropped(),
        error: e.error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_without_a_wall_limit_gets_the_default() {
        let built = limits(&LimitSpec::default()).unwrap();
        assert_eq!(built.wall, Some(DEFAULT_WALL));
        let built = limits(&LimitSpec {
            wall_seconds: Some(1.5),
            output_mib: Some(1),
            ..LimitSpec::default()
        })
        .unwrap();
        assert_eq!(built.wall, Some(Duration::from_millis(1500)));
        assert_eq!(built.output, 1 << 20);
    }

    #[tokio::test]
    async fn a_panicking_run_gets_an_error_entry_and_the_others_theirs() {
        let writer = Writer::start();
        let renderer = Renderer::named(ProgressFormat::None, "boom", Arc::clone(&writer));
        let task = tokio::spawn(async {
            if std::hint::black_box(true) {
                panic!("a host bug");
            }
            Err::<icmp_host::runtime::Finished, String>(String::new())
        });
        let finished = task.await.unwrap_or_else(|e| Err(crashed(&e)));
        let run = Summary {
            name: "boom".into(),
            label: "p".into(),
            compile_cpu: Duration::ZERO,
        };
        let entry = summarize(run, finished, &renderer, ProgressFormat::None);
        writer.finish();
        assert_eq!(entry.exit, 2);
        assert_eq!(entry.outcome, "error");
        let error = entry.error.unwrap_or_default();
        assert!(error.contains("panicked"), "{error}");
    }
}
