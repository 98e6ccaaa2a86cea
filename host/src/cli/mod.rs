//! The command line: parse, validate, run, and decide the exit status in
//! one place ([`exit_code`]).

mod args;
mod batch;
mod new;
mod new_python;
mod render;
mod serve;
mod writer;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use icmp_host::builtin;
use icmp_host::icmp::{Engine, EngineConfig, Quota, RawSockets, ReaderPlace};
use icmp_host::policy::{Policy, PolicySpec};
use icmp_host::runtime::{
    DataInit, GuestOutput, Interrupt, Limits, PartSink, Plugin, ReportTo, Runtime, Session, types,
};

use args::{Cli, Command, JsonLayout, ProgressFormat, RunArgs};
use render::Renderer;

/// How a run ended, before it becomes an exit status.
pub(crate) enum Ending {
    /// Every target answered.
    Reached,
    /// The plugin ran; some or all targets did not answer.
    NotReached,
    /// Help or other text was printed.
    Informational,
}

/// 0 reached, 1 not reached, 2 error. (`main.rs` adds 2 when the process
/// cannot be prepared and 101 for a panic; a second Ctrl-C exits 130.)
fn exit_code(result: &anyhow::Result<Ending>) -> i32 {
    match result {
        Ok(Ending::Reached | Ending::Informational) => 0,
        Ok(Ending::NotReached) => 1,
        Err(_) => 2,
    }
}

/// Runs the command line; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::List => list(),
        Command::Inspect {
            plugin,
            cache_dir,
            no_cache,
        } => inspect(&plugin, cache_dir, no_cache),
        Command::Batch(args) => batch::run(args),
        Command::Serve(args) => serve::run(args),
        Command::New(args) => new::run(args),
    };
    if let Err(e) = &result {
        // The error may quote a plugin's words.
        let text = format!("icmp-host: {e:#}");
        let text = match std::io::stderr().is_terminal() {
            true => writer::escape_controls(&text),
            false => text.as_str().into(),
        };
        let _ = writeln!(std::io::stderr(), "{text}");
    }
    exit_code(&result)
}

fn list() -> anyhow::Result<Ending> {
    let mut out = std::io::stdout().lock();
    for b in builtin::BUILT_INS {
        let _ = writeln!(out, "{:<12} {}", b.name, b.summary);
    }
    Ok(Ending::Informational)
}

/// Where a plugin comes from.
enum Source {
    /// Compiled into the binary.
    BuiltIn(&'static builtin::BuiltIn),
    /// A component file.
    File(std::path::PathBuf),
}

impl Source {
    /// How plugins from `sources`, run by one engine, get their data: a
    /// built-in's few pages are best copied, written at once; a file's
    /// compiled code is cached once for every command, with mapped data
    /// (see `DataInit`), so one file among them maps them all.
    fn data_init<'a>(sources: impl IntoIterator<Item = &'a Source>) -> DataInit {
        match sources.into_iter().all(|s| matches!(s, Source::BuiltIn(_))) {
            true => DataInit::Copied,
            false => DataInit::Mapped,
        }
    }
}

/// A plugin's label and source: a built-in, or a file when the name looks
/// like a path.
fn plugin_source(name: &str) -> anyhow::Result<(String, Source)> {
    let looks_like_path = name.contains('/') || name.ends_with(".wasm");
    if !looks_like_path {
        if let Some(b) = builtin::find(name) {
            return Ok((b.name.to_owned(), Source::BuiltIn(b)));
        }
        let known: Vec<&str> = builtin::BUILT_INS.iter().map(|b| b.name).collect();
        bail!(
            "unknown plugin {name:?}: built-ins are {} (give a path to run a .wasm file)",
            known.join(", ")
        );
    }
    let label = Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned());
    Ok((label, Source::File(name.into())))
}

/// A plugin's bytes (for its digest and size).
fn plugin_bytes(source: &Source) -> anyhow::Result<std::borrow::Cow<'static, [u8]>> {
    Ok(match source {
        Source::BuiltIn(b) => b.wasm.into(),
        Source::File(path) => {
            let name = path.display().to_string();
            icmp_host::runtime::read_plugin(&name, path)
                .with_context(|| format!("cannot read plugin {name}"))?
                .into()
        }
    })
}

/// Loads a plugin: built-ins from their precompiled code, files through
/// the cache without rereading them when they have not changed.
fn load(runtime: &Runtime, label: &str, source: &Source) -> anyhow::Result<Plugin> {
    Ok(match source {
        Source::BuiltIn(b) => runtime.load_builtin(b)?,
        Source::File(path) => runtime.load_file(label, path)?,
    })
}

/// Size, digest, every import and how the host serves it, where its
/// native code comes from, and whether the plugin loads; exit 2 when it
/// does not.
fn inspect(
    name: &str,
    cache_dir: Option<std::path::PathBuf>,
    no_cache: bool,
) -> anyhow::Result<Ending> {
    let (label, source) = plugin_source(name)?;
    let wasm = plugin_bytes(&source)?;
    let cache_dir = match no_cache {
        true => None,
        false => cache_dir.or_else(icmp_host::runtime::default_cache_dir),
    };
    let runtime = Runtime::new(cache_dir, DataInit::Mapped)?;
    let inspection = match source {
        Source::BuiltIn(b) => runtime.inspect_builtin(b)?,
        Source::File(_) => runtime.inspect(&label, &wasm)?,
    };
    if let Some(w) = runtime.cache_warning() {
        eprintln!("icmp-host: warning: compiled-plugin cache disabled: {w}");
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "plugin:  {label}");
    let _ = writeln!(out, "size:    {} bytes", wasm.len());
    let _ = writeln!(out, "sha256:  {}", icmp_host::runtime::sha256_hex(&wasm));
    let status = match &inspection.load {
        Ok(()) => "loads; every import is served (the denied ones fail when used)",
        Err(_) => "refused",
    };
    let _ = writeln!(out, "status:  {status}");
    let _ = writeln!(out, "code:    {}", inspection.code);
    let _ = writeln!(out, "imports:");
    let width = inspection
        .imports
        .iter()
        .map(|(i, _)| i.len())
        .max()
        .unwrap_or(0);
    for (import, service) in &inspection.imports {
        let how = match service {
            Some(s) => s.to_string(),
            None => "NOT SERVED: the plugin is refused".to_owned(),
        };
        let _ = writeln!(out, "  {import:<width$}  {how}");
    }
    let _ = out.flush();
    inspection.load?;
    Ok(Ending::Informational)
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| anyhow::anyhow!("{what}: {s} is not a number of seconds"))
}

/// Validated host options.
struct Settings {
    policy: Policy,
    limits: Limits,
    progress: ProgressFormat,
    cache_dir: Option<std::path::PathBuf>,
}

fn settings(a: &RunArgs) -> anyhow::Result<Settings> {
    let spec = PolicySpec {
        strict: a.strict,
        allow: a.allow.clone(),
        deny: a.deny.clone(),
        allow_broadcast: a.allow_broadcast,
        allow_multicast: a.allow_multicast,
        no_privileged: a.no_privileged,
        no_names: a.no_names,
        max_pps: a.max_pps,
        max_packets: a.max_packets,
        max_payload: None,
        max_sockets: None,
    };
    let policy = spec.build().map_err(anyhow::Error::msg)?;
    let limits = Limits {
        memory: a
            .memory
            .checked_mul(1 << 20)
            .context("--memory is too large")?,
        cpu: seconds("--cpu-time", a.cpu_time)?,
        wall: a.wall_time.map(|w| seconds("--wall-time", w)).transpose()?,
        stdin: a.stdin,
        ..Limits::default()
    };
    let progress = if a.quiet {
        ProgressFormat::None
    } else {
        a.progress
    };
    let cache_dir = if a.no_cache {
        None
    } else {
        a.cache_dir
            .clone()
            .or_else(icmp_host::runtime::default_cache_dir)
    };
    Ok(Settings {
        policy,
        limits,
        progress,
        cache_dir,
    })
}

fn run(args: RunArgs) -> anyhow::Result<Ending> {
    let settings = settings(&args)?;
    let json_layout = args.json;
    let (name, plugin_args) = args
        .command
        .split_first()
        .context("missing PLUGIN (try icmp-host list)")?;
    let (label, source) = plugin_source(name)?;

    let raw = privileged_sockets(settings.policy.allow_privileged)?;
    let tokio = async_runtime(Workers::One)?;
    let ended = tokio.block_on(async move {
        let data = Source::data_init([&source]);
        let runtime = Runtime::new(settings.cache_dir.clone(), data)?;
        let plugin = load(&runtime, &label, &source)?;
        if let Some(w) = runtime.cache_warning() {
            eprintln!("icmp-host: warning: compiled-plugin cache disabled: {w}");
        }
        let config = EngineConfig {
            readers: ReaderPlace::Worker,
            ..EngineConfig::default()
        };
        let engine = Engine::new(config, raw).context("starting the ICMP engine")?;
        // The only tenant: it may use the whole key table.
        let quota = Quota {
            in_flight: engine.unreserved_in_flight(),
            ..Quota::default()
        };
        let tenant = engine.tenant(&label, quota)?;
        let interrupt = Interrupt::new();
        let writer = writer::Writer::start();
        let renderer = Arc::new(Renderer::new(settings.progress, Arc::clone(&writer)));
        let session = Session {
            engine,
            tenant,
            policy: Arc::new(settings.policy),
            sink: Arc::clone(&renderer) as Arc<dyn icmp_host::runtime::ProgressSink>,
            interrupt: interrupt.clone(),
        };
        let limits = settings.limits.clone();
        tokio::spawn(watch_ctrl_c(interrupt));
        // A compact report goes out part by part as the plugin hands it
        // over (a sweep's is tens of megabytes), through the writer: after
        // the result lines, and never blocking the plugin. An indented one
        // is laid out whole at the end.
        let report = match pretty(json_layout) {
            true => ReportTo::Caller,
            false => ReportTo::Parts(Arc::clone(&writer) as Arc<dyn PartSink>),
        };
        // The plugin runs here, on the `block_on` thread; the engine's
        // readers and the Ctrl-C watch run on the worker, so neither waits
        // for the other (an epoch yield delays nothing else).
        let finished = runtime
            .run_to(&plugin, plugin_args.to_vec(), session, &limits, report)
            .await;
        // Result lines and progress first, then the summary or the error.
        writer.finish();
        let show_output = settings.progress != ProgressFormat::None;
        let finished = match finished {
            Ok(f) => f,
            Err(stopped) => {
                // What it wrote before it was stopped often says why.
                if show_output {
                    print_guest_output(&label, &stopped.guest_output);
                }
                bail!("{label}: {stopped}");
            }
        };
        if show_output {
            print_guest_output(&label, &finished.guest_output);
        }
        let dropped = renderer.events_dropped();
        if dropped > 0 {
            eprintln!(
                "icmp-host: warning: {label}: {dropped} progress events dropped (over the \
                 output limits, not JSON, more than the terminal took, or result lines \
                 after the report began)"
            );
        }
        let ended = match finished.output {
            Ok(types::RunOutput::Text(text)) => {
                print_stdout(&text);
                Ok(Ending::Informational)
            }
            Ok(types::RunOutput::Report(report)) => {
                if let Some(json) = report.json {
                    print_stdout(&indented(json));
                }
                Ok(ending(report.outcome))
            }
            Err(types::RunError::Usage(m) | types::RunError::Failed(m)) => {
                bail!("{label}: {}", icmp_host::report::shorten(&m))
            }
        };
        // The process ends now: the kernel takes back the engine's code
        // and mappings faster than their destructors would.
        std::mem::forget((runtime, plugin));
        ended
    });
    // Likewise the async runtime: its worker is not joined.
    std::mem::forget(tokio);
    ended
}

/// Whether a plugin's JSON is indented: plugins return it compact;
/// people at a terminal get it indented.
fn pretty(layout: JsonLayout) -> bool {
    use std::io::IsTerminal;
    match layout {
        JsonLayout::Pretty => true,
        JsonLayout::Compact => false,
        JsonLayout::Auto => std::io::stdout().is_terminal(),
    }
}

/// A plugin's JSON, indented.
fn indented(json: String) -> String {
    match serde_json::from_str::<serde_json::Value>(&json) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or(json),
        Err(_) => json, // not JSON after all: as the plugin wrote it
    }
}

/// The exit-status class of a plugin's outcome.
fn ending(outcome: types::Outcome) -> Ending {
    match outcome {
        types::Outcome::Reached => Ending::Reached,
        types::Outcome::NotReached | types::Outcome::Partial => Ending::NotReached,
    }
}

/// Opens raw sockets (when allowed), drops every privilege and installs
/// the system-call filter, before the async runtime starts any thread.
fn privileged_sockets(allowed: bool) -> anyhow::Result<RawSockets> {
    Ok(icmp_host::bootstrap::start(allowed)?)
}

/// Worker threads of the async runtime.
#[derive(Debug, Clone, Copy)]
enum Workers {
    /// One run: it executes on the `block_on` thread, the engine's
    /// readers on the single worker ([`ReaderPlace::Worker`]).
    One,
    /// Many runs (tenants), spread over the cores.
    PerCore,
}

fn async_runtime(workers: Workers) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Workers::One = workers {
        builder.worker_threads(1);
    }
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// What a plugin printed (captured, never mixed into results), on stderr.
fn print_guest_output(label: &str, output: &GuestOutput) {
    let terminal = std::io::stderr().is_terminal();
    let mut err = std::io::stderr().lock();
    for line in String::from_utf8_lossy(&output.kept).lines() {
        let line = match terminal {
            true => writer::escape_controls(line),
            false => line.into(),
        };
        let _ = writeln!(err, "[{label}] {line}");
    }
    if output.dropped > 0 {
        eprintln!(
            "[{label}] ... {} more bytes of output dropped",
            output.dropped
        );
    }
}

/// First Ctrl-C: interrupt the run (the plugin reports what it has).
/// Second: leave at once.
async fn watch_ctrl_c(interrupt: Interrupt) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    interrupt.trigger();
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("icmp-host: interrupted");
        std::process::exit(130);
    }
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
fn print_stdout(text: &str) {
    let text = match std::io::stdout().is_terminal() {
        true => writer::escape_controls(text),
        false => text.into(),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}
