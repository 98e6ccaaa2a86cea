//! Command-line flags as parsed (clap), before validation.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run sandboxed WebAssembly ICMP probes.
///
/// The host owns the privileged ICMP sockets; plugins (ping, and your own)
/// run in a sandbox and see only icmp-host's probe interface. Results are
/// JSON on stdout; progress lines go to stderr.
#[derive(Debug, Parser)]
#[command(name = "icmp-host", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plugin: `icmp-host run [HOST OPTIONS] <PLUGIN> [PLUGIN ARGS]...`
    ///
    /// Host options come before the plugin; everything after the plugin's
    /// name is the plugin's (try `icmp-host run ping --help`).
    ///
    /// Exit status: 0 every target answered, 1 some or all did not, 2 error.
    Run(RunArgs),
    /// Run several plugins side by side from a manifest, each under its
    /// own policy and limits, sharing the host's sockets.
    ///
    /// Prints a JSON list with one entry per run (in manifest order). Exit
    /// status: the worst of the runs' (0, 1, 2).
    Batch(BatchArgs),
    /// Serve probes over HTTP to several tenants, each under its own
    /// policy and limits, and to Prometheus (`/probe`, `/metrics`).
    ///
    /// Without --config: one tenant without a token on 127.0.0.1:9730,
    /// with the default policy and an `icmp` module for /probe. SIGHUP
    /// reloads the configuration; SIGTERM interrupts the runs and stops.
    Serve(ServeArgs),
    /// List the built-in plugins.
    List,
    /// Show what a plugin imports, how the host serves each import, and
    /// whether this host can run it (exit 2 when not). Compiles the plugin
    /// into the cache, so the next `run` starts at once.
    Inspect {
        /// A built-in name or a path to a .wasm component.
        plugin: String,

        /// Directory of compiled plugins [default: $XDG_CACHE_HOME/icmp-host].
        #[arg(long, value_name = "DIR", env = "ICMP_HOST_CACHE_DIR")]
        cache_dir: Option<PathBuf>,

        /// Compile without the cache.
        #[arg(long)]
        no_cache: bool,
    },
    /// Create a plugin crate ready to build, test and run.
    ///
    /// `icmp-host new PATH` writes a Rust crate named after PATH's last
    /// part: a `cdylib` with a probe that takes `--help`, and a test on the
    /// SDK's simulated network. Then, in PATH: `cargo test`, `cargo build
    /// --release --target wasm32-wasip2`, and `icmp-host run
    /// target/wasm32-wasip2/release/NAME.wasm 127.0.0.1`.
    ///
    /// The crate finds the guest SDK by path (it is not on crates.io yet):
    /// by default the guest-sdk/ directory of the source tree this
    /// icmp-host was built from; --sdk chooses another.
    ///
    /// `icmp-host new --python PATH` writes a Python probe instead (the
    /// Python SDK, guest-sdk-python/, found the same way): then, in PATH,
    /// `python3 build.py` and `icmp-host run NAME.wasm 127.0.0.1`.
    New(NewArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Directory to create; its last part names the crate (lowercase
    /// letters, digits, `_`).
    pub path: PathBuf,

    /// The guest SDK directory to depend on [default: the one this
    /// icmp-host was built from].
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,

    /// Write a Python probe instead: `app.py`, its tests on the simulated
    /// network, and `build.py` (tests, then NAME.wasm with componentize-py).
    /// --sdk then names the Python SDK (guest-sdk-python/).
    #[arg(long)]
    pub python: bool,
}

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressFormat {
    /// Lines like ping and traceroute print.
    Text,
    /// One JSON object per event.
    Ndjson,
    /// Nothing.
    None,
}

/// How the JSON result is laid out on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JsonLayout {
    /// Indented when stdout is a terminal, compact otherwise.
    Auto,
    /// Indented.
    Pretty,
    /// One line.
    Compact,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Show no progress lines (same as --progress none).
    #[arg(short, long)]
    pub quiet: bool,

    /// How to show progress on stderr.
    #[arg(long, value_enum, default_value_t = ProgressFormat::Text)]
    pub progress: ProgressFormat,

    /// Layout of the JSON result.
    #[arg(long, value_enum, default_value_t = JsonLayout::Auto)]
    pub json: JsonLayout,

    /// Only allow destinations in this range (repeatable), e.g. 10.0.0.0/8.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,

    /// Never allow destinations in this range (repeatable).
    #[arg(long, value_name = "CIDR")]
    pub deny: Vec<String>,

    /// Policy for shared hosts: deny loopback, private, link-local and
    /// metadata addresses and this host's own; limit rates and budgets.
    #[arg(long)]
    pub strict: bool,

    /// Let the plugin enable broadcast on its sockets.
    #[arg(long)]
    pub allow_broadcast: bool,

    /// Let the plugin probe multicast addresses.
    #[arg(long)]
    pub allow_multicast: bool,

    /// Do not let the plugin use raw (privileged) sockets.
    #[arg(long)]
    pub no_privileged: bool,

    /// Do not let the plugin resolve names (address literals only).
    #[arg(long)]
    pub no_names: bool,

    /// Most requests per second the plugin may send.
    #[arg(long, value_name = "N")]
    pub max_pps: Option<f64>,

    /// Most requests the plugin may send in all.
    #[arg(long, value_name = "N")]
    pub max_packets: Option<u64>,

    /// Memory limit of the plugin, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub memory: usize,

    /// CPU time limit of the plugin, seconds (its own CPU time, not waiting).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub cpu_time: f64,

    /// Wall-clock limit of the run, seconds; when reached the plugin is
    /// interrupted and reports what it has.
    #[arg(long, value_name = "SECONDS")]
    pub wall_time: Option<f64>,

    /// Give the plugin this process's stdin (e.g. `multiping --file -`);
    /// otherwise its stdin is closed.
    #[arg(long)]
    pub stdin: bool,

    /// Directory of compiled plugins [default: $XDG_CACHE_HOME/icmp-host].
    #[arg(long, value_name = "DIR", env = "ICMP_HOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compile the plugin every time.
    #[arg(long)]
    pub no_cache: bool,

    /// The plugin (a built-in name or a path to a .wasm component), then its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PLUGIN [ARGS]"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// How to show progress on stderr (lines carry the run's name).
    #[arg(long, value_enum, default_value_t = ProgressFormat::None)]
    pub progress: ProgressFormat,

    /// Directory of compiled plugins [default: $XDG_CACHE_HOME/icmp-host].
    #[arg(long, value_name = "DIR", env = "ICMP_HOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// The manifest: `{"runs": [{"name", "plugin", "sha256"?, "args"?,
    /// "policy"?, "limits"?}]}` (see the README).
    pub manifest: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration (TOML: listen, [[tenant]], [[module]], [[schedule]];
    /// see the README).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where to listen, overriding the configuration [default: 127.0.0.1:9730].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,

    /// Directory of compiled plugins [default: $XDG_CACHE_HOME/icmp-host].
    #[arg(long, value_name = "DIR", env = "ICMP_HOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Check the configuration and exit (0 when it is valid).
    #[arg(long)]
    pub check: bool,
}
