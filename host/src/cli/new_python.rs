//! `icmp-host new --python PATH`: a ready Python probe — `app.py` (a
//! `@probe` entry point with `--help`), `test_app.py` (unit tests on the
//! SDK's simulated network) and `build.py`, the one build command: it runs
//! the tests, then builds `NAME.wasm` with componentize-py.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::new::{sdk_dir, write_files};

/// The Python SDK of the source tree this binary was built from.
const BUILT_WITH_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk-python");

/// Files of a new project: path, template.
const TEMPLATES: &[(&str, &str)] = &[
    ("app.py", include_str!("templates/python/app.py.in")),
    (
        "test_app.py",
        include_str!("templates/python/test_app.py.in"),
    ),
    ("build.py", include_str!("templates/python/build.py.in")),
    (".gitignore", include_str!("templates/python/gitignore.in")),
];

/// Writes the project `name` into `path` (which must not exist), using the
/// Python SDK at `sdk` (default: the one this binary was built from).
pub fn create(path: &Path, name: &str, sdk: Option<&Path>) -> anyhow::Result<()> {
    let sdk = sdk_path(sdk)?;
    write_files(path, TEMPLATES, name, &sdk)?;
    let dir = path.display();
    let _ = writeln!(
        std::io::stdout(),
        "Created Python probe `{name}` in {dir} (SDK: {sdk}). Next:\n  \
         cd {dir}\n  \
         python3 build.py        # the tests, then {name}.wasm (needs componentize-py)\n  \
         icmp-host run {name}.wasm 127.0.0.1",
        sdk = sdk.display()
    );
    Ok(())
}

/// The Python SDK: `given`, else the one this binary was built with.
fn sdk_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    sdk_dir(given, BUILT_WITH_SDK, "icmp_host/__init__.py", "Python SDK")
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;

    #[test]
    fn writes_a_project_that_names_its_sdk() {
        let dir = std::env::temp_dir().join(format!("icmp-host-new-python-{}", std::process::id()));
        let project = dir.join("probe_one");
        create(&project, "probe_one", None).unwrap();
        let build = fs::read_to_string(project.join("build.py")).unwrap();
        let sdk = sdk_path(None).unwrap();
        assert!(
            build.contains(&format!("SDK = \"{}\"", sdk.display())),
            "{build}"
        );
        assert!(build.contains("probe_one.wasm"));
        let app = fs::read_to_string(project.join("app.py")).unwrap();
        assert!(app.contains("@probe") && app.contains("icmp-host run probe_one.wasm"));
        for (file, _) in TEMPLATES {
            let text = fs::read_to_string(project.join(file)).unwrap();
            assert!(
                !text.contains("@NAME@") && !text.contains("@SDK@"),
                "{file}"
            );
        }
        assert!(
            create(&project, "probe_one", None).is_err(),
            "exists already"
        );
        fs::remove_dir_all(&dir).unwrap();
        assert!(sdk_path(Some(Path::new("/nonexistent/sdk"))).is_err());
        assert!(sdk_path(Some(&std::env::temp_dir())).is_err());
    }
}
