//! How the binary is linked: a static position-independent executable on
//! x86_64 glibc Linux (`.cargo/rustc-wrapper`), so that no dynamic loader runs at
//! start and ASLR still places it at a random address.

#![cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]

use crate::util::bin;

/// `ET_DYN`: a position-independent executable (or a shared library).
const ET_DYN: u16 = 3;
/// A program header naming the dynamic loader.
const PT_INTERP: u32 = 3;

/// The ELF header's type and its program headers' types.
fn elf_types(file: &[u8]) -> (u16, Vec<u32>) {
    assert_eq!(&file[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(file[4], 2, "not a 64-bit ELF file");
    let big_endian = file[5] == 2;
    let u16_at = |at: usize| {
        let b = [file[at], file[at + 1]];
        if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |at: usize| {
        let b = file[at..at + 4].try_into().unwrap();
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let u64_at = |at: usize| {
        let b = file[at..at + 8].try_into().unwrap();
        if big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        }
    };
    let e_type = u16_at(16);
    let phoff = usize::try_from(u64_at(32)).unwrap();
    let (phentsize, phnum) = (usize::from(u16_at(54)), usize::from(u16_at(56)));
    let types = (0..phnum).map(|i| u32_at(phoff + i * phentsize)).collect();
    (e_type, types)
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
