//! How the binary is linked: a static position-independent executable on
//! x86_64 glibc Linux (`.cargo/rustc-wrapper`), so that no dynamic
//! loader runs at start and ASLR still places it at a random address;
//! and with the code a start runs first in `.text` (`host/build.rs`).

#![cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]

use crate::elf::{Elf, startup_order};
use crate::util::bin;

/// `ET_DYN`: a position-independent executable (or a shared library).
const ET_DYN: usize = 3;
/// A program header naming the dynamic loader.
const PT_INTERP: usize = 3;

#[test]
fn the_binary_is_a_static_pie() {
    let elf = Elf::read(bin().as_ref());
    assert_eq!(
        elf.e_type(),
        ET_DYN,
        "not position-independent: ASLR cannot move it"
    );
    assert!(
        !elf.segment_types().contains(&PT_INTERP),
        "dynamically linked (it names a loader): see .cargo/rustc-wrapper"
    );
}

/// The linker applied `host/build/startup.order`: the first 200 functions
/// of it that this build has in `.text` lie in its first 4 MiB,
/// where an unordered link scatters them over all of it. This checks the
/// mechanism. A test build (dev profile) hashes the workspace's and its
/// dependencies' names differently from the release build the order was
/// sampled from, so here those are glibc's and std's; how many names a
/// release binary has is printed by `--bench startup`.
#[test]
fn startup_code_leads_the_text_section() {
    let state = env!("ICMP_HOST_CODE_ORDER");
    if state != "ordered" {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI builds with the default linker, which orders code: {state}"
        );
        eprintln!("startup_code_leads_the_text_section: {state}");
        return;
    }
    let elf = Elf::read(bin().as_ref());
    let (text, size) = elf.section(".text").expect("no .text section");
    let functions = elf.functions();
    let placed: Vec<(&str, usize)> = startup_order()
        .filter_map(|name| Some((name, *functions.get(name)?)))
        // The linker orders `.text` alone: glibc's `_init` is in `.init`.
        .filter(|(_, at)| (text..text + size).contains(at))
        .take(200)
        .collect();
    assert_eq!(
        placed.len(),
        200,
        "the order names too few functions of this build"
    );
    let far: Vec<_> = placed
        .iter()
        .filter(|(_, at)| !(text..text + (4 << 20)).contains(at))
        .collect();
    assert!(far.is_empty(), "outside the first 4 MiB of .text: {far:?}");
}
