//! Shrinks a built-in plugin before the host embeds it, keeping what a
//! trap report needs (every function's name):
//!
//! - each core module goes through `wasm-opt -Oz` when binaryen is
//!   installed (`--debuginfo`: the name section is kept), which removes
//!   about a fifth of the code rustc's `opt-level = "z"` leaves;
//! - function names are stored demangled and without their hash
//!   (`icmp_host_sdk::flight::Flight<N>::receive`, not
//!   `_ZN13icmp_host_sdk6flight15Flight$LT$N$GT$7receive17h…E`), as
//!   trap reports show every plugin's names;
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

/// Custom sections dropped from components and their core modules.
const UNUSED_CUSTOM: [&str; 3] = ["component-name", "producers", "target_features"];

const COMPONENT_HEADER: [u8; 8] = *b"\0asm\x0d\0\x01\0";
const MODULE_HEADER: [u8; 8] = *b"\0asm\x01\0\0\0";
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

/// The component `wasm`, shrunk; `name` keeps its scratch files apart from
/// other components' shrinking at the same time.
pub fn component(name: &str, wasm: &[u8], optimiser: &Optimiser) -> Result<Vec<u8>, String> {
    let body = wasm
        .strip_prefix(&COMPONENT_HEADER)
        .ok_or("not a WebAssembly component")?;
    let mut out = COMPONENT_HEADER.to_vec();
    for (i, section) in Sections(body).enumerate() {
        let (id, contents) = section?;
        match id {
            CUSTOM if is_unused_custom(contents)? => {}
            CORE_MODULE => {
                let module = module(&format!("{name}.{i}"), contents, optimiser)?;
                push_section(&mut out, id, &module)
            }
            _ => push_section(&mut out, id, contents),
        }
    }
    // wasmtime validates it again when precompiling, but not when the
    // build cross-compiles (nothing is precompiled then).
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out)
        .map_err(|e| format!("the shrunk component is invalid: {e}"))?;
    Ok(out)
}

/// A core module, optimised, with short names and without unused sections.
fn module(name: &str, wasm: &[u8], optimiser: &Optimiser) -> Result<Vec<u8>, String> {
    let optimised = match optimiser {
        // wasm-opt can grow a module of a few hundred bytes (the
        // component's shims) by naming its functions: keep the smaller. A
        // binaryen too old for this module is not worth failing the build,
        // except in CI, which installs a working one.
        Optimiser::WasmOpt { program, scratch } => match wasm_opt(program, scratch, name, wasm) {
            Ok(optimised) => Some(optimised).filter(|o| o.len() < wasm.len()),
            Err(e) if std::env::var_os("CI").is_some_and(|v| v == "true") => return Err(e),
            Err(e) => {
                let e = e.replace('\n', " ");
                println!("cargo:warning={name}: not optimised: {e}");
                None
            }
        },
        Optimiser::None => None,
    };
    let optimised = optimised.as_deref().unwrap_or(wasm);
    let body = optimised
        .strip_prefix(&MODULE_HEADER)
        .ok_or("not a core module")?;
    let mut out = MODULE_HEADER.to_vec();
    for section in Sections(body) {
        let (id, contents) = section?;
        match id {
            CUSTOM if is_unused_custom(contents)? => {}
            CUSTOM if custom_name(contents)?.0 == "name" => {
                push_section(&mut out, CUSTOM, &demangled_names(contents)?)
            }
            _ => push_section(&mut out, id, contents),
        }
    }
    Ok(out)
}

fn wasm_opt(program: &Path, scratch: &Path, name: &str, wasm: &[u8]) -> Result<Vec<u8>, String> {
    let input = scratch.join(format!("{name}.in.wasm"));
    let output = scratch.join(format!("{name}.out.wasm"));
    std::fs::write(&input, wasm).map_err(|e| format!("writing {}: {e}", input.display()))?;
    let result = Command::new(program)
        // One thread: the build runs one wasm-opt per built-in at once,
        // beside cargo's own jobs.
        .env("BINARYEN_CORES", "1")
        .args(["-Oz", "--debuginfo"])
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

/// The custom section `contents` (a name, then data) with every function
/// name demangled; the module's, globals' and data segments' names are
/// kept as they are.
fn demangled_names(contents: &[u8]) -> Result<Vec<u8>, String> {
    let (_, data_offset) = custom_name(contents)?;
    let reader = wasmparser::NameSectionReader::new(wasmparser::BinaryReader::new(
        &contents[data_offset..],
        0,
    ));
    let mut names = wasm_encoder::NameSection::new();
    for subsection in reader {
        match subsection.map_err(|e| format!("name section: {e}"))? {
            wasmparser::Name::Module { name, .. } => names.module(name),
            wasmparser::Name::Function(map) => names.functions(&name_map(map, demangle)?),
            wasmparser::Name::Global(map) => names.globals(&name_map(map, str::to_owned)?),
            wasmparser::Name::Data(map) => names.data(&name_map(map, str::to_owned)?),
            // Locals, labels, types, tables…: wasm-ld writes none of these,
            // and traps do not use them.
            _ => {}
        }
    }
    let mut out = Vec::new();
    wasm_encoder::Encode::encode(&names, &mut out);
    // `encode` writes the section's size first: keep only its contents.
    let size_len = leb128_len(&out)?;
    Ok(out.split_off(size_len))
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

/// `name` demangled without its hash; a name that is not a Rust symbol
/// (`dlmalloc`, `cabi_realloc`) is kept. wasm-opt names a function it made
/// from several alike ones after the first, behind a prefix it keeps.
fn demangle(name: &str) -> String {
    const MERGED: &str = "byn$mgfn-shared$";
    if let Some(first) = name.strip_prefix(MERGED) {
        return format!("{MERGED}{}", demangle(first));
    }
    match rustc_demangle::try_demangle(name) {
        Ok(demangled) => format!("{demangled:#}"),
        Err(_) => name.to_owned(),
    }
}

fn is_unused_custom(contents: &[u8]) -> Result<bool, String> {
    Ok(UNUSED_CUSTOM.contains(&custom_name(contents)?.0))
}

/// A custom section's name, and where its data starts.
fn custom_name(contents: &[u8]) -> Result<(&str, usize), String> {
    let (len, start) = read_u32(contents)?;
    let end = start
        .checked_add(len as usize)
        .ok_or("a custom section's name is malformed")?;
    let name = contents
        .get(start..end)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .ok_or("a custom section's name is malformed")?;
    Ok((name, end))
}

fn push_section(out: &mut Vec<u8>, id: u8, contents: &[u8]) {
    out.push(id);
    let mut len = contents.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(contents);
}

/// A LEB128 `u32` at the start of `bytes`, and its length in bytes.
fn read_u32(bytes: &[u8]) -> Result<(u32, usize), String> {
    let mut value = 0u32;
    for (i, &byte) in bytes.iter().take(5).enumerate() {
        if i == 4 && byte & 0xf0 != 0 {
            break; // more than 32 bits
        }
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err("malformed LEB128 number".into())
}

fn leb128_len(bytes: &[u8]) -> Result<usize, String> {
    read_u32(bytes).map(|(_, len)| len)
}

/// The `(id, contents)` of each section in a module's or component's body.
struct Sections<'a>(&'a [u8]);

impl<'a> Iterator for Sections<'a> {
    type Item = Result<(u8, &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&id, rest) = self.0.split_first()?;
        let section = read_u32(rest).and_then(|(len, len_bytes)| {
            let contents = len_bytes
                .checked_add(len as usize)
                .and_then(|end| rest.get(len_bytes..end))
                .ok_or("a section is truncated")?;
            let end = len_bytes + contents.len();
            self.0 = &rest[end..];
            Ok((id, contents))
        });
        if section.is_err() {
            self.0 = &[];
        }
        Some(section)
    }
}
