//! The command line: parse, validate, run, and decide the exit status in
//! one place ([`exit_code`]).

mod args;
mod render;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use icmp_host::icmp::{Engine, EngineConfig, RawSockets};
use icmp_host::policy::{Cidr, Policy, RateLimiter};
use icmp_host::runtime::{Interrupt, Limits, Runtime, Session, types};
use icmp_host::{builtin, sys};

use args::{Cli, Command, ProgressFormat, RunArgs};
use render::Renderer;

/// How a run ended, before it becomes an exit status.
enum Ending {
    /// Every target answered.
    Reached,
    /// The plugin ran; some or all targets did not answer.
    NotReached,
    /// Help or other text was printed.
    Informational,
}

/// 0 reached, 1 not reached, 2 error — decided here only.
fn exit_code(result: &anyhow::Result<Ending>) -> ExitCode {
    match result {
        Ok(Ending::Reached | Ending::Informational) => ExitCode::SUCCESS,
        Ok(Ending::NotReached) => ExitCode::from(1),
        Err(_) => ExitCode::from(2),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::List => list(),
        Command::Inspect { plugin } => inspect(&plugin),
    };
    if let Err(e) = &result {
        let _ = writeln!(std::io::stderr(), "icmp-host: {e:#}");
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

/// The plugin's bytes: a built-in, or a file when the name looks like a path.
fn plugin_bytes(name: &str) -> anyhow::Result<(String, std::borrow::Cow<'static, [u8]>)> {
    let looks_like_path = name.contains('/') || name.ends_with(".wasm");
    if !looks_like_path {
        if let Some(b) = builtin::find(name) {
            return Ok((b.name.to_owned(), b.wasm.into()));
        }
        let known: Vec<&str> = builtin::BUILT_INS.iter().map(|b| b.name).collect();
        bail!(
            "unknown plugin {name:?}: built-ins are {} (give a path to run a .wasm file)",
            known.join(", ")
        );
    }
    let bytes = std::fs::read(name).with_context(|| format!("cannot read plugin {name}"))?;
    let label = Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned());
    Ok((label, bytes.into()))
}

fn inspect(name: &str) -> anyhow::Result<Ending> {
    let (label, wasm) = plugin_bytes(name)?;
    let runtime = Runtime::new(None)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "plugin:  {label}");
    let _ = writeln!(out, "size:    {} bytes", wasm.len());
    let _ = writeln!(out, "sha256:  {}", icmp_host::runtime::sha256_hex(&wasm));
    let plugin = runtime.load(&label, &wasm)?;
    let _ = writeln!(out, "status:  loads; imports only what icmp-host provides");
    let _ = writeln!(out, "imports:");
    for import in plugin.imports() {
        let _ = writeln!(out, "  {import}");
    }
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
    let mut policy = if a.strict {
        Policy::strict()
    } else {
        Policy::default()
    };
    let cidrs = |list: &[String]| -> anyhow::Result<Vec<Cidr>> {
        list.iter()
            .map(|c| c.parse::<Cidr>().map_err(anyhow::Error::msg))
            .collect()
    };
    policy.allow.extend(cidrs(&a.allow).context("--allow")?);
    policy.deny.extend(cidrs(&a.deny).context("--deny")?);
    policy.allow_broadcast |= a.allow_broadcast;
    policy.allow_multicast |= a.allow_multicast;
    policy.allow_privileged &= !a.no_privileged;
    policy.allow_names &= !a.no_names;
    if let Some(pps) = a.max_pps {
        if !(pps > 0.0 && pps.is_finite()) {
            bail!("--max-pps must be a positive number");
        }
        policy.send_rate = Some(RateLimiter::new(pps, pps.max(1.0)));
    }
    if let Some(n) = a.max_packets {
        policy.max_packets = Some(policy.max_packets.map_or(n, |m| m.min(n)));
    }
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
    let (name, plugin_args) = args
        .command
        .split_first()
        .context("missing PLUGIN (try icmp-host list)")?;
    let (label, wasm) = plugin_bytes(name)?;

    // Privileged sockets first, then no privileges at all, before any
    // plugin is compiled or run. Capabilities are per thread: this happens
    // before the async runtime starts its threads.
    let config = EngineConfig::default();
    let raw = if settings.policy.allow_privileged {
        RawSockets::open(config.receive_buffer)
    } else {
        RawSockets::none("disabled by --no-privileged")
    };
    if sys::privilege::effective().unwrap_or(0) != 0 {
        sys::privilege::drop_all().context("dropping capabilities")?;
    }

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio.block_on(async move {
        let runtime = Runtime::new(settings.cache_dir.clone())?;
        if let Some(w) = runtime.cache_warning() {
            eprintln!("icmp-host: warning: compiled-plugin cache disabled: {w}");
        }
        let plugin = runtime.load(&label, &wasm)?;
        let engine = Engine::new(config, raw).context("starting the ICMP engine")?;
        let interrupt = Interrupt::new();
        let session = Session {
            engine,
            policy: Arc::new(settings.policy),
            sink: Arc::new(Renderer::new(settings.progress)),
            interrupt: interrupt.clone(),
        };
        let limits = settings.limits.clone();
        let plugin_args = plugin_args.to_vec();
        // The plugin runs in a task of its own: its epoch yields must not
        // delay anything else.
        let task =
            tokio::spawn(async move { runtime.run(&plugin, plugin_args, session, &limits).await });
        tokio::spawn(watch_ctrl_c(interrupt));
        let finished = task.await.context("the plugin task failed")?;
        let finished = finished.map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        if settings.progress != ProgressFormat::None && !finished.guest_output.is_empty() {
            for line in String::from_utf8_lossy(&finished.guest_output).lines() {
                eprintln!("[{label}] {line}");
            }
        }
        match finished.output {
            Ok(types::RunOutput::Text(text)) => {
                print_stdout(&text);
                Ok(Ending::Informational)
            }
            Ok(types::RunOutput::Report(report)) => {
                if let Some(json) = report.json {
                    print_stdout(&json);
                }
                Ok(match report.outcome {
                    types::Outcome::Reached => Ending::Reached,
                    types::Outcome::NotReached | types::Outcome::Partial => Ending::NotReached,
                })
            }
            Err(types::RunError::Usage(m)) => bail!("{label}: {m}"),
            Err(types::RunError::Failed(m)) => bail!("{label}: {m}"),
        }
    })
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
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}
