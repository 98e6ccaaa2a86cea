//! Shrinks a built-in plugin before the host embeds it, keeping what a
//! trap report needs (every function's name):
//!
//! - each core module goes through `wasm-opt -Oz` when binaryen is
//!   installed (`--debuginfo`: the name section is kept), which removes
//!   about a fifth of the code rustc's `opt-level = "z"` leaves (`-O3`
//!   for a plugin built for speed, [`Goal`]);
//! - function names are stored as trap reports show them
//!   (`src/runtime/symbols.rs`: `icmp_host_sdk::flight::Flight<N>::receive`,
//!   not `_ZN13icmp_host_sdk6flight15Flight$LT$N$GT$7receive17h…E`;
//!   `drop_in_place<Flight<HostNetwork>>`, type arguments without paths);
//! - custom sections nothing reads at run time are dropped (`producers`,
//!   `target_features`, the component's `component-name`).
//!
//! Only the component's own top-level sections are rewritten; every other
//! byte is copied, so imports, exports and types are untouched. As with
//! LLVM's inlining, a trap report names the function the trapping code
//! ended up in: wasm-opt inlines more, and names a function it made from
//! several alike ones after the first (`byn$mgfn-shared$…`).

use std::path::{Path, PathBuf};
use std::process::Command;

use wasm_encoder::RawSection;
use wasmparser::{BinaryReader, CustomSectionReader, Parser};

use crate::symbols;

/// Custom sections dropped from components and their core modules.
const UNUSED_CUSTOM: [&str; 3] = ["component-name", "producers", "target_features"];

/// Bytes before the first section, in a module and in a component.
const HEADER_LEN: usize = 8;
const CUSTOM: u8 = 0;
/// A core module nested in a component.
const CORE_MODULE: u8 = 1;

/// How core modules are optimised.
pub enum Optimiser {
    /// `wasm-opt` at this path; `scratch` holds its input and output.
    WasmOpt { program: PathBuf, scratch: PathBuf },
    /// binaryen is not installed: names and sections only.
    None,
}

impl Optimiser {
    /// `wasm-opt` from `$WASM_OPT` or the `PATH`, if there is one.
    pub fn find(scratch: &Path) -> Optimiser {
        let program = std::env::var_os("WASM_OPT").map(PathBuf::from).or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("wasm-opt"))
                .find(|path| path.is_file())
        });
        match program {
            Some(program) => Optimiser::WasmOpt {
                program,
                scratch: scratch.to_path_buf(),
            },
            None => Optimiser::None,
        }
    }
}

/// What a plugin is built for: its cargo profile and `wasm-opt` level.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// The smallest code (`opt-level = "z"`, `-Oz`): plugins that run
    /// briefly.
    Size,
    /// The fastest (`opt-level = 3` for the plugin and the SDK, `-O3`,
    /// inlining more): a plugin whose own code is on the critical path of
    /// long runs (multiping's sweep), and whose size no goal bounds.
    Speed,
}

impl Goal {
    /// The cargo profile plugins are built with (`plugins/Cargo.toml`).
    pub fn profile(self) -> &'static str {
        match self {
            Goal::Size => "release",
            Goal::Speed => "speed",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Goal::Size => "-Oz",
            Goal::Speed => "-O3",
        }
    }
}

/// Whether this build runs in CI (`CI=true`), which installs a working
/// binaryen: there, not optimising is an error.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| v == "true")
}

/// The component `wasm`, shrunk (its code optimised for `goal`); `name`
/// keeps its scratch files apart from other components' shrinking at the
/// same time.
pub fn component(
    name: &str,
    wasm: &[u8],
    optimiser: &Optimiser,
    goal: Goal,
) -> Result<Vec<u8>, String> {
    if !Parser::is_component(wasm) {
        return Err("not a WebAssembly component".into());
    }
    let mut out = wasm_encoder::Component::new();
    for (i, section) in sections(wasm)?.iter().enumerate() {
        match section.id {
            CUSTOM if is_unused(&custom(section)?) => {}
            CORE_MODULE => {
                let module = module(&format!("{name}.{i}"), section.data, optimiser, goal)?;
                out.section(&RawSection {
                    id: CORE_MODULE,
                    data: &module,
                });
            }
            _ => {
                out.section(section);
            }
        }
    }
    let out = out.finish();
    // wasmtime validates it again when precompiling, but not when the
    // build cross-compiles (nothing is precompiled then).
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out)
        .map_err(|e| format!("the shrunk component is invalid: {e}"))?;
    Ok(out)
}

/// A core module, optimised, with readable names and without unused
/// sections.
fn module(name: &str, wasm: &[u8], optimiser: &Optimiser, goal: Goal) -> Result<Vec<u8>, String> {
    let optimised = match optimiser {
        // wasm-opt can grow a module of a few hundred bytes (the
        // component's shims) by naming its functions: for size, keep the
        // smaller (for speed, inlining may grow it). A binaryen too old
        // for this module is not worth failing the build, except in CI.
        Optimiser::WasmOpt { program, scratch } => {
            match wasm_opt(program, scratch, name, wasm, goal) {
                Ok(optimised) => {
                    Some(optimised).filter(|o| matches!(goal, Goal::Speed) || o.len() < wasm.len())
                }
                Err(e) if in_ci() => return Err(e),
                Err(e) => {
                    let e = e.replace('\n', " ");
                    println!("cargo:warning={name}: not optimised: {e}");
                    None
                }
            }
        }
        Optimiser::None => None,
    };
    let optimised = optimised.as_deref().unwrap_or(wasm);
    if !Parser::is_core_wasm(optimised) {
        return Err("not a core module".into());
    }
    let mut out = wasm_encoder::Module::new();
    for section in sections(optimised)? {
        if section.id == CUSTOM {
            let custom = custom(&section)?;
            if is_unused(&custom) {
                continue;
            }
            if custom.name() == "name" {
                out.section(&readable_names(&custom)?);
                continue;
            }
        }
        out.section(&section);
    }
    Ok(out.finish())
}

fn wasm_opt(
    program: &Path,
    scratch: &Path,
    name: &str,
    wasm: &[u8],
    goal: Goal,
) -> Result<Vec<u8>, String> {
    let input = scratch.join(format!("{name}.in.wasm"));
    let output = scratch.join(format!("{name}.out.wasm"));
    std::fs::write(&input, wasm).map_err(|e| format!("writing {}: {e}", input.display()))?;
    let result = Command::new(program)
        // One thread: the build runs one wasm-opt per built-in at once,
        // beside cargo's own jobs.
        .env("BINARYEN_CORES", "1")
        .args([goal.flag(), "--debuginfo"])
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .map_err(|e| format!("running {}: {e}", program.display()))?;
    if !result.status.success() {
        return Err(format!(
            "{} failed: {}",
            program.display(),
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    let optimised =
        std::fs::read(&output).map_err(|e| format!("reading {}: {e}", output.display()));
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    optimised
}

/// The name section `names` with every function named as trap reports
/// show it; the module's, globals' and data segments' names kept as they
/// are.
fn readable_names(names: &CustomSectionReader<'_>) -> Result<wasm_encoder::NameSection, String> {
    let mut out = wasm_encoder::NameSection::new();
    for subsection in wasmparser::NameSectionReader::new(names.data_reader()) {
        match subsection.map_err(|e| format!("name section: {e}"))? {
            wasmparser::Name::Module { name, .. } => out.module(name),
            wasmparser::Name::Function(map) => out.functions(&name_map(map, symbols::readable)?),
            wasmparser::Name::Global(map) => out.globals(&name_map(map, str::to_owned)?),
            wasmparser::Name::Data(map) => out.data(&name_map(map, str::to_owned)?),
            // Locals, labels, types, tables…: wasm-ld writes none of these,
            // and traps do not use them.
            _ => {}
        }
    }
    Ok(out)
}

fn name_map(
    map: wasmparser::NameMap<'_>,
    rename: impl Fn(&str) -> String,
) -> Result<wasm_encoder::NameMap, String> {
    let mut out = wasm_encoder::NameMap::new();
    for naming in map {
        let naming = naming.map_err(|e| format!("name section: {e}"))?;
        out.append(naming.index, &rename(naming.name));
    }
    Ok(out)
}

/// The sections of a module or component, in order.
fn sections(wasm: &[u8]) -> Result<Vec<RawSection<'_>>, String> {
    let mut reader = BinaryReader::new(&wasm[HEADER_LEN..], HEADER_LEN);
    let mut sections = Vec::new();
    while !reader.eof() {
        let section = (|| {
            let id = reader.read_u8()?;
            let len = reader.read_var_u32()?;
            let data = reader.read_bytes(len as usize)?;
            Ok::<_, wasmparser::BinaryReaderError>(RawSection { id, data })
        })();
        sections.push(section.map_err(|e| format!("malformed section: {e}"))?);
    }
    Ok(sections)
}

/// A custom section's name and data.
fn custom<'a>(section: &RawSection<'a>) -> Result<CustomSectionReader<'a>, String> {
    CustomSectionReader::new(BinaryReader::new(section.data, 0))
        .map_err(|e| format!("malformed custom section: {e}"))
}

fn is_unused(custom: &CustomSectionReader<'_>) -> bool {
    UNUSED_CUSTOM.contains(&custom.name())
}
