//! How the binary is linked: a static position-independent executable on
//! x86_64 glibc Linux (`.cargo/rustc-wrapper`), so that no dynamic
//! loader runs at start and ASLR still places it at a random address;
//! and with the code a start runs first in `.text` (`host/build.rs`).

#![cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]

use std::collections::HashMap;

use crate::util::bin;

/// `ET_DYN`: a position-independent executable (or a shared library).
const ET_DYN: usize = 3;
/// A program header naming the dynamic loader.
const PT_INTERP: usize = 3;
/// The section of the full symbol table.
const SHT_SYMTAB: usize = 2;
/// A symbol that names a function.
const STT_FUNC: usize = 2;

/// A 64-bit little-endian ELF file, read field by field.
struct Elf(Vec<u8>);

impl Elf {
    fn read(path: &std::path::Path) -> Elf {
        let file = std::fs::read(path).unwrap();
        assert_eq!(&file[..4], b"\x7fELF", "not an ELF file");
        assert_eq!(file[4], 2, "not a 64-bit ELF file");
        assert_eq!(file[5], 1, "not a little-endian ELF file");
        Elf(file)
    }

    /// The little-endian field of `len` bytes at `at`.
    fn field(&self, at: usize, len: usize) -> usize {
        self.0[at..at + len]
            .iter()
            .rev()
            .fold(0, |n, &b| n << 8 | usize::from(b))
    }

    /// The ELF header's type.
    fn e_type(&self) -> usize {
        self.field(16, 2)
    }

    /// The program headers' types.
    fn segment_types(&self) -> Vec<usize> {
        let (phoff, phentsize, phnum) = (self.field(32, 8), self.field(54, 2), self.field(56, 2));
        (0..phnum)
            .map(|i| self.field(phoff + i * phentsize, 4))
            .collect()
    }

    /// Offsets of the section headers.
    fn sections(&self) -> impl Iterator<Item = usize> + '_ {
        let (shoff, shentsize, shnum) = (self.field(40, 8), self.field(58, 2), self.field(60, 2));
        (0..shnum).map(move |i| shoff + i * shentsize)
    }

    /// The NUL-terminated string at `at`.
    fn string(&self, at: usize) -> &str {
        let end = at + self.0[at..].iter().position(|&b| b == 0).unwrap();
        std::str::from_utf8(&self.0[at..end]).unwrap()
    }

    /// The address and size of the section named `name`.
    fn section(&self, name: &str) -> Option<(usize, usize)> {
        let names = self.sections().nth(self.field(62, 2))?;
        let names = self.field(names + 24, 8);
        self.sections()
            .find(|&s| self.string(names + self.field(s, 4)) == name)
            .map(|s| (self.field(s + 16, 8), self.field(s + 32, 8)))
    }

    /// Every function symbol's name and address.
    fn functions(&self) -> HashMap<&str, usize> {
        let symtab = self
            .sections()
            .find(|&s| self.field(s + 4, 4) == SHT_SYMTAB)
            .expect("no symbol table: is the binary stripped?");
        let strings = self.sections().nth(self.field(symtab + 40, 4)).unwrap();
        let strings = self.field(strings + 24, 8);
        let (offset, size) = (self.field(symtab + 24, 8), self.field(symtab + 32, 8));
        (offset..offset + size)
            .step_by(24)
            .filter(|&sym| self.field(sym + 4, 1) & 0xf == STT_FUNC)
            .map(|sym| {
                (
                    self.string(strings + self.field(sym, 4)),
                    self.field(sym + 8, 8),
                )
            })
            .collect()
    }
}

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

/// The functions a start runs lead `.text` (`host/build/startup.order`):
/// the first 200 the binary has lie in its first 4 MiB of 19, where an
/// unordered link scatters them over all of it.
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
    let (text, _) = elf.section(".text").expect("no .text section");
    let functions = elf.functions();
    let order = include_str!("../../host/build/startup.order");
    let placed: Vec<(&str, usize)> = order
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|name| Some((name, *functions.get(name)?)))
        .take(200)
        .collect();
    assert_eq!(
        placed.len(),
        200,
        "the order names too few functions of this build"
    );
    let far: Vec<_> = placed
        .iter()
        .filter(|(_, at)| *at >= text + (4 << 20))
        .collect();
    assert!(
        far.is_empty(),
        "placed past the first 4 MiB of .text: {far:?}"
    );
}
