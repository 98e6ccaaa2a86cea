//! The repository's Rust bindings are generated ahead of time, so building
//! a plugin needs no wit-bindgen macro (and none of the WIT parser and
//! component tooling behind it). This test generates each again from its
//! WIT, with the options `wit_bindgen::generate!` would have been given,
//! and fails when a checked-in file differs. After changing `wit/`:
//!
//! ```sh
//! ICMP_HOST_BLESS=1 cargo test -p icmp-host-sdk --test bindings
//! ```

use std::path::{Path, PathBuf};

use wit_bindgen_core::wit_parser::Resolve;
use wit_bindgen_core::{Files, WorldGenerator};
use wit_bindgen_rust::Opts;

/// One checked-in file of bindings.
struct Bindings {
    /// The file, from the repository's root.
    file: &'static str,
    /// Its WIT package, from the repository's root.
    wit: &'static str,
    world: &'static str,
    opts: fn() -> Opts,
}

const BINDINGS: [Bindings; 3] = [
    // The SDK's: private, wrapped by the rest of the crate; plugins export
    // through `icmp_host_sdk::export_probe!`.
    Bindings {
        file: "guest-sdk/src/bindings/probe.rs",
        wit: "guest-sdk/wit",
        world: "probe",
        opts: || Opts {
            pub_export_macro: true,
            export_macro_name: Some("__export_probe_world".into()),
            default_bindings_module: Some("icmp_host_sdk::__private::bindings".into()),
            runtime_path: Some("icmp_host_sdk::__private::wit_bindgen::rt".into()),
            format: true,
            ..Opts::default()
        },
    },
    // The hostile test plugins': wit-bindgen's defaults, straight from the
    // contract, as any tenant could build them.
    Bindings {
        file: "plugins/tests/bindings.rs",
        wit: "wit",
        world: "probe",
        opts: || Opts {
            format: true,
            ..Opts::default()
        },
    },
    // A plugin of the first contract, which the host still serves.
    Bindings {
        file: "plugins/compat/v0-1/src/bindings.rs",
        wit: "wit/0.1.0",
        world: "probe",
        opts: || Opts {
            format: true,
            ..Opts::default()
        },
    },
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What wit-bindgen generates for `b`, with a header saying how.
fn generate(b: &Bindings) -> String {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(root().join(b.wit))
        .unwrap_or_else(|e| panic!("{}: {e:#}", b.wit));
    let world = resolve
        .select_world(&[package], Some(b.world))
        .unwrap_or_else(|e| panic!("{}: {e:#}", b.wit));
    let mut files = Files::default();
    (b.opts)()
        .build()
        .generate(&mut resolve, world, &mut files)
        .unwrap_or_else(|e| panic!("{}: {e:#}", b.wit));
    let (_, source) = files.iter().next().expect("one file of bindings");
    let source = std::str::from_utf8(source).expect("UTF-8 bindings");
    format!(
        "// Generated from `{}` (world `{}`) by guest-sdk/tests/bindings.rs;\n\
         // regenerate with `ICMP_HOST_BLESS=1 cargo test -p icmp-host-sdk --test bindings`.\n\
         {source}",
        b.wit, b.world
    )
}

#[test]
fn checked_in_bindings_match_their_wit() {
    let bless = std::env::var_os("ICMP_HOST_BLESS").is_some_and(|v| v == "1");
    assert!(
        !(bless && std::env::var_os("CI").is_some_and(|v| v == "true")),
        "ICMP_HOST_BLESS=1 under CI: the checked-in bindings are what is tested"
    );
    let mut stale = Vec::new();
    for b in &BINDINGS {
        let path = root().join(b.file);
        let want = generate(b);
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have == want {
            continue;
        }
        if bless {
            std::fs::write(&path, want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else {
            stale.push(b.file);
        }
    }
    assert!(
        stale.is_empty(),
        "bindings out of date with their WIT: {stale:?}; regenerate them with \
         `ICMP_HOST_BLESS=1 cargo test -p icmp-host-sdk --test bindings`"
    );
}
