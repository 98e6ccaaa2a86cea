//! Builds the plugins (their own workspace, `wasm32-wasip2`) so the host can
//! embed the built-in ones and tests can load the hostile ones.
//!
//! The nested cargo uses its own target directory: sharing the outer one
//! deadlocks on cargo's build-directory lock.

use std::path::PathBuf;
use std::process::Command;

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
    println!("cargo:rerun-if-env-changed=ICMP_HOST_PLUGINS_OFFLINE");

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--locked")
        .args(["--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
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
    let wasm_dir = target_dir.join("wasm32-wasip2/release");
    println!(
        "cargo:rustc-env=ICMP_HOST_PLUGIN_DIR={}",
        wasm_dir.display()
    );
}
