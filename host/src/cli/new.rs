//! `icmp-host new PATH`: a ready plugin crate — a `cdylib` depending on the
//! guest SDK, a [`Probe`](icmp_host_sdk::Probe) with `--help`, and a test
//! on the simulated network — that builds with `cargo build --release
//! --target wasm32-wasip2` and runs with `icmp-host run`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::Ending;
use super::args::NewArgs;

/// The guest SDK of the source tree this binary was built from.
const BUILT_WITH_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// Files of a new crate: path, template.
const TEMPLATES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("templates/Cargo.toml.in")),
    ("src/lib.rs", include_str!("templates/lib.rs.in")),
    (".gitignore", include_str!("templates/gitignore.in")),
];

pub fn run(args: NewArgs) -> anyhow::Result<Ending> {
    let name = crate_name(&args.path)?;
    if args.python {
        super::new_python::create(&args.path, &name, args.sdk.as_deref())?;
        return Ok(Ending::Informational);
    }
    let sdk = sdk_path(args.sdk.as_deref())?;
    write_files(&args.path, TEMPLATES, &name, &sdk)?;
    let dir = args.path.display();
    let _ = writeln!(
        std::io::stdout(),
        "Created plugin `{name}` in {dir} (SDK: {sdk}). Next:\n  \
         cd {dir}\n  \
         cargo test\n  \
         cargo build --release --target wasm32-wasip2\n  \
         icmp-host run target/wasm32-wasip2/release/{name}.wasm 127.0.0.1",
        sdk = sdk.display()
    );
    Ok(Ending::Informational)
}

/// The crate's name: the last part of the path. Letters, digits and `_`,
/// so the built file is `NAME.wasm` (cargo turns `-` into `_` there).
fn crate_name(path: &Path) -> anyhow::Result<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} does not end in a crate name", path.display()))?;
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!(
            "{name:?} is not a plugin name: use lowercase letters, digits and `_`, starting \
             with a letter (e.g. {:?})",
            name.to_ascii_lowercase().replace('-', "_")
        );
    }
    Ok(name.to_owned())
}

/// Writes `templates` (path, text) into `dir`, which must not exist, with
/// `@NAME@` and `@SDK@` (as the inside of a quoted string) filled in.
pub(super) fn write_files(
    dir: &Path,
    templates: &[(&str, &str)],
    name: &str,
    sdk: &Path,
) -> anyhow::Result<()> {
    if dir.exists() {
        bail!("{} exists already", dir.display());
    }
    for (file, template) in templates {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let text = template
            .replace("@NAME@", name)
            .replace("@SDK@", &quoted(sdk));
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The SDK to depend on: `--sdk`, else the one this binary was built with.
fn sdk_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    sdk_dir(given, BUILT_WITH_SDK, "Cargo.toml", "guest SDK")
}

/// The SDK directory `given`, else `built_with`; it must hold `marker`.
pub(super) fn sdk_dir(
    given: Option<&Path>,
    built_with: &str,
    marker: &str,
    what: &str,
) -> anyhow::Result<PathBuf> {
    let path = given.unwrap_or(Path::new(built_with));
    let sdk = path.canonicalize().with_context(|| {
        format!(
            "no {what} at {} (give its directory with --sdk PATH)",
            path.display()
        )
    })?;
    if !sdk.join(marker).is_file() {
        bail!("{} is not the {what}: it has no {marker}", sdk.display());
    }
    Ok(sdk)
}

/// `path` as the inside of a TOML basic string or a Python string literal.
fn quoted(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_give_a_wasm_file_of_the_same_name() {
        assert_eq!(
            crate_name(Path::new("/tmp/x/ping_lab")).unwrap(),
            "ping_lab"
        );
        let err = crate_name(Path::new("my-probe")).unwrap_err().to_string();
        assert!(err.contains("\"my_probe\""), "{err}");
        assert!(crate_name(Path::new("9lives")).is_err());
        assert!(crate_name(Path::new("/")).is_err());
    }

    #[test]
    fn the_built_with_sdk_is_found() {
        let sdk = sdk_path(None).unwrap();
        assert!(sdk.ends_with("guest-sdk"));
        assert!(sdk_path(Some(Path::new("/nonexistent/sdk"))).is_err());
    }
}
