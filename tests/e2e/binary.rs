//! How the binary is linked: a static position-independent executable on
//! x86_64 glibc Linux (`.cargo/rustc-wrapper`), so that no dynamic
//! loader runs at start and ASLR still places it at a random address.

#![cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]

use crate::util::bin;

/// `ET_DYN`: a position-independent executable (or a shared library).
const ET_DYN: usize = 3;
/// A program header naming the dynamic loader.
const PT_INTERP: usize = 3;

/// The ELF header's type and its program headers' types.
fn elf_types(file: &[u8]) -> (usize, Vec<usize>) {
    assert_eq!(&file[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(file[4], 2, "not a 64-bit ELF file");
    assert_eq!(file[5], 1, "not a little-endian ELF file");
    // The little-endian field of `len` bytes at `at`.
    let field = |at: usize, len: usize| {
        file[at..at + len]
            .iter()
            .rev()
            .fold(0, |n, &b| n << 8 | usize::from(b))
    };
    let (phoff, phentsize, phnum) = (field(32, 8), field(54, 2), field(56, 2));
    let types = (0..phnum)
        .map(|i| field(phoff + i * phentsize, 4))
        .collect();
    (field(16, 2), types)
}

#[test]
fn the_binary_is_a_static_pie() {
    let file = std::fs::read(bin()).unwrap();
    let (e_type, segments) = elf_types(&file);
    assert_eq!(
        e_type, ET_DYN,
        "not position-independent: ASLR cannot move it"
    );
    assert!(
        !segments.contains(&PT_INTERP),
        "dynamically linked (it names a loader): see .cargo/rustc-wrapper"
    );
}
