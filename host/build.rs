//! Builds the plugins (their own workspace, `wasm32-wasip2`) so the host can
//! embed the built-in ones and tests can load the hostile ones, then
//! precompiles the built-ins to native code with the runtime's engine
//! configuration, so that running one maps code instead of compiling it.
//!
//! The nested cargo uses its own target directory: sharing the outer one
//! deadlocks on cargo's build-directory lock.

#[path = "src/runtime/engine_config.rs"]
mod engine_config;
#[path = "build/shrink.rs"]
mod shrink;
#[path = "src/runtime/symbols.rs"]
mod symbols;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The plugins `src/builtin.rs` embeds (it names each file; a plugin
/// missing here fails that build), and what their code is optimised for:
/// the cargo profile (`plugins/Cargo.toml`) and `wasm-opt`'s level.
const BUILT_INS: [(&str, shrink::Goal); 3] = [
    ("ping", shrink::Goal::Size),
    ("multiping", shrink::Goal::Speed),
    ("traceroute", shrink::Goal::Size),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("plugins");
    for watched in ["plugins", "guest-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-changed=src/runtime/engine_config.rs");
    println!("cargo:rerun-if-changed=build/shrink.rs");
    println!("cargo:rerun-if-changed=src/runtime/symbols.rs");
    println!("cargo:rerun-if-env-changed=ICMP_HOST_PLUGINS_OFFLINE");
    println!("cargo:rerun-if-env-changed=WASM_OPT");
    println!("cargo:rerun-if-env-changed=CI");

    // Plugins built for speed have a profile of their own: the SDK they
    // link is then optimised for speed too, not only their own crate.
    let fast: Vec<&str> = BUILT_INS
        .iter()
        .filter(|(_, goal)| matches!(goal, shrink::Goal::Speed))
        .map(|(name, _)| *name)
        .collect();
    let mut rest = vec!["--workspace"];
    rest.extend(fast.iter().flat_map(|name| ["--exclude", name]));
    build_plugins(&root, &target_dir, shrink::Goal::Size.profile(), &rest);
    if !fast.is_empty() {
        let fast: Vec<&str> = fast.iter().flat_map(|name| ["-p", name]).collect();
        build_plugins(&root, &target_dir, shrink::Goal::Speed.profile(), &fast);
    }
    let wasm_dir = target_dir.join("wasm32-wasip2");
    println!(
        "cargo:rustc-env=ICMP_HOST_PLUGIN_DIR={}",
        wasm_dir.join(shrink::Goal::Size.profile()).display()
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let built_ins = shrink_built_ins(&wasm_dir, &out_dir);
    precompile(&built_ins, &out_dir);
    // Relative relocations packed (RELR): the loader reads kilobytes, not
    // the 690 KB of RELA entries a binary this size otherwise carries.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    order_startup_code(&manifest_dir);
    check_static_link(&root);
}

/// Warns when the binary will not be a static PIE on x86-64 glibc Linux:
/// `.cargo/rustc-wrapper` links it so, and a `RUSTC_WRAPPER` of one's own
/// (sccache...) replaces it. Cargo hashes neither wrapper into its
/// fingerprints, so a change of wrapper reruns this script, and that
/// relinks the binary.
fn check_static_link(root: &Path) {
    let wrapper = root.join(".cargo/rustc-wrapper");
    println!("cargo:rerun-if-changed={}", wrapper.display());
    println!("cargo:rerun-if-env-changed=RUSTC_WRAPPER");
    println!("cargo:rerun-if-env-changed=CARGO_BUILD_RUSTC_WRAPPER");
    if std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") {
        return;
    }
    // Cargo names the wrapper it uses.
    let ours = std::env::var_os("RUSTC_WRAPPER")
        .is_some_and(|w| Path::new(&w).ends_with(".cargo/rustc-wrapper"));
    if !ours {
        println!(
            "cargo:warning=RUSTC_WRAPPER replaces .cargo/rustc-wrapper: icmp-host is linked \
             dynamically, not as a static PIE (slower to start)"
        );
    }
}

/// Has the linker put the functions a start runs first in `.text`, in the
/// order of `build/startup.order` (see `build/startup-order.sh`), where
/// the linker is the toolchain's own `rust-lld`: x86-64 glibc Linux with
/// no linker configured. The names are a release build's: other profiles
/// name this workspace's and its dependencies' functions with other
/// hashes, so there only glibc's and std's are ordered. Tells the tests
/// (`ICMP_HOST_CODE_ORDER`) whether it ordered, and if not, why.
fn order_startup_code(manifest_dir: &Path) {
    let order = manifest_dir.join("build/startup.order");
    println!("cargo:rerun-if-changed={}", order.display());
    // A linker set in the environment; one set in a config file needs
    // `cargo clean -p icmp-host` to drop the option again.
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let skipped = if target != "x86_64-unknown-linux-gnu" {
        Some(format!(
            "not ordered: target {target} may not link with rust-lld"
        ))
    } else if std::env::var_os("RUSTC_LINKER").is_some()
        || flags.contains("linker")
        || flags.contains("fuse-ld")
    {
        Some("not ordered: a linker is configured, maybe not lld".to_owned())
    } else {
        None
    };
    let state = match skipped {
        Some(reason) => reason,
        None => {
            // `-Xlinker`, not `-Wl,`: a comma in the path would split it.
            println!("cargo:rustc-link-arg-bins=-Xlinker");
            println!(
                "cargo:rustc-link-arg-bins=--symbol-ordering-file={}",
                order.display()
            );
            // Names a later build no longer has are expected.
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
            "ordered".to_owned()
        }
    };
    println!("cargo:rustc-env=ICMP_HOST_CODE_ORDER={state}");
}

/// Builds `packages` of the plugins' workspace with cargo `profile`, for
/// `wasm32-wasip2`, into `target_dir`.
fn build_plugins(root: &Path, target_dir: &Path, profile: &str, packages: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .args(["--profile", profile])
        .args(packages)
        .arg("--locked")
        .args(["--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if std::env::var_os("ICMP_HOST_PLUGINS_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    // The outer build's settings are not the plugins' (target, flags, the
    // clippy wrapper); keep the jobserver so both share the same cores.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let inherited =
            key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS";
        if inherited
            || matches!(
                key.as_str(),
                "RUSTFLAGS" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTC_WRAPPER" | "RUSTDOCFLAGS"
            )
        {
            cmd.env_remove(&key);
        }
    }
    let output = cmd.output().expect("cannot run cargo to build the plugins");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("may not be installed") || stderr.contains("wasm32-wasip2") {
            "\nhint: the plugins need the wasm32-wasip2 target: rustup target add wasm32-wasip2\n"
        } else {
            ""
        };
        panic!("building the plugins failed:\n{stderr}{hint}");
    }
}

/// Writes `<name>.wasm` for every built-in into `out_dir`: the plugin from
/// its profile's directory in `wasm_dir`, shrunk (see `build/shrink.rs`);
/// returns each name with those bytes.
fn shrink_built_ins(wasm_dir: &Path, out_dir: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let optimiser = shrink::Optimiser::find(out_dir);
    match &optimiser {
        shrink::Optimiser::WasmOpt { program, .. } => {
            println!("cargo:rerun-if-changed={}", program.display());
        }
        shrink::Optimiser::None if shrink::in_ci() => {
            panic!("wasm-opt (binaryen) not found: CI installs it (.ci/run)");
        }
        shrink::Optimiser::None => println!(
            "cargo:warning=wasm-opt (binaryen) not found: the built-in plugins are embedded \
             unoptimised, about 25% larger"
        ),
    }
    // wasm-opt takes most of a second per plugin: one thread each.
    std::thread::scope(|scope| {
        let optimiser = &optimiser;
        let shrinking: Vec<_> = BUILT_INS
            .into_iter()
            .map(|(name, goal)| {
                scope.spawn(move || {
                    let path = wasm_dir.join(goal.profile()).join(format!("{name}.wasm"));
                    let wasm = std::fs::read(&path)
                        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                    let shrunk = shrink::component(name, &wasm, optimiser, goal)
                        .unwrap_or_else(|e| panic!("shrinking {}: {e}", path.display()));
                    let path = out_dir.join(format!("{name}.wasm"));
                    std::fs::write(&path, &shrunk)
                        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
                    (name, shrunk)
                })
            })
            .collect();
        shrinking
            .into_iter()
            .map(|thread| thread.join().expect("a shrinking thread panicked"))
            .collect()
    })
}

/// Writes `<name>.<data>.cwasm` for every built-in and every
/// [`engine_config::DataInit`]: its native code for this machine, or
/// nothing when cross-compiling (the host's CPU is not the target's; the
/// runtime then compiles the component when first run).
///
/// Built with the configuration the runtime uses, by the same wasmtime
/// (the build-dependency is pinned to the same version). The runtime still
/// treats the artifact as a candidate: wasmtime checks version, target,
/// CPU features and settings when loading it and refuses a mismatch.
fn precompile(built_ins: &[(&str, Vec<u8>)], out_dir: &Path) {
    let native = std::env::var_os("HOST") == std::env::var_os("TARGET");
    use engine_config::DataInit;
    for (data, suffix) in [(DataInit::Copied, "copied"), (DataInit::Mapped, "mapped")] {
        let engine = native.then(|| {
            wasmtime::Engine::new(&engine_config::config(data))
                .unwrap_or_else(|e| panic!("the runtime's engine configuration is invalid: {e:#}"))
        });
        for (name, wasm) in built_ins {
            let artifact = match &engine {
                Some(engine) => engine
                    .precompile_component(wasm)
                    .unwrap_or_else(|e| panic!("precompiling {name}: {e:#}")),
                None => Vec::new(),
            };
            let path = out_dir.join(format!("{name}.{suffix}.cwasm"));
            std::fs::write(&path, artifact)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
    }
}
