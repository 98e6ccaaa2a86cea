//! A 64-bit little-endian ELF file, read field by field: enough for the
//! tests and the start-up bench to check how the binary was linked.
//! (Included by `host/benches/startup.rs` too.)

#![allow(dead_code)]

use std::collections::HashMap;

/// The section of the full symbol table.
const SHT_SYMTAB: usize = 2;
/// A symbol that names a function.
const STT_FUNC: usize = 2;

/// A 64-bit little-endian ELF file, read field by field.
pub struct Elf(Vec<u8>);

impl Elf {
    /// Reads the file at `path`, which must be a 64-bit little-endian ELF.
    pub fn read(path: &std::path::Path) -> Elf {
        Elf::new(std::fs::read(path).unwrap())
    }

    /// The ELF file `file`, which must be 64-bit little-endian.
    pub fn new(file: Vec<u8>) -> Elf {
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
    pub fn e_type(&self) -> usize {
        self.field(16, 2)
    }

    /// The program headers' types.
    pub fn segment_types(&self) -> Vec<usize> {
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

    /// The header of the section named `name`.
    fn section_header(&self, name: &str) -> Option<usize> {
        let names = self.sections().nth(self.field(62, 2))?;
        let names = self.field(names + 24, 8);
        self.sections()
            .find(|&s| self.string(names + self.field(s, 4)) == name)
    }

    /// The address and size of the section named `name`.
    pub fn section(&self, name: &str) -> Option<(usize, usize)> {
        let s = self.section_header(name)?;
        Some((self.field(s + 16, 8), self.field(s + 32, 8)))
    }

    /// The file offset and size of the section named `name`.
    fn section_in_file(&self, name: &str) -> Option<(usize, usize)> {
        let s = self.section_header(name)?;
        Some((self.field(s + 24, 8), self.field(s + 32, 8)))
    }

    /// The addresses the loader writes at every start of a position
    /// independent executable linked with `-z now` (as ours is): those of
    /// the `.rela.dyn` and `.rela.plt` entries, and those `.relr.dyn`
    /// packs (an address, then bitmaps of the 63 words after the last one
    /// covered). Found by section name: a stripped file has none.
    pub fn relocated(&self) -> Vec<usize> {
        let mut relocated = Vec::new();
        for table in [".rela.dyn", ".rela.plt"] {
            if let Some((offset, size)) = self.section_in_file(table) {
                let entries = (offset..offset + size).step_by(24);
                relocated.extend(entries.map(|r| self.field(r, 8)));
            }
        }
        if let Some((offset, size)) = self.section_in_file(".relr.dyn") {
            let mut next = 0;
            for entry in (offset..offset + size).step_by(8).map(|e| self.field(e, 8)) {
                if entry & 1 == 0 {
                    relocated.push(entry);
                    next = entry + 8;
                } else {
                    let words = (0..63).filter(|bit| entry >> (bit + 1) & 1 == 1);
                    relocated.extend(words.map(|bit| next + 8 * bit));
                    next += 63 * 8;
                }
            }
        }
        relocated
    }

    /// Every defined function symbol's name and address.
    pub fn functions(&self) -> HashMap<&str, usize> {
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
            // Defined: an undefined (weak) one has section 0 and address 0.
            .filter(|&sym| self.field(sym + 6, 2) != 0)
            .map(|sym| {
                (
                    self.string(strings + self.field(sym, 4)),
                    self.field(sym + 8, 8),
                )
            })
            .collect()
    }
}

/// The functions `host/build/startup.order` names, in its order.
pub fn startup_order() -> impl Iterator<Item = &'static str> {
    include_str!("../../host/build/startup.order")
        .lines()
        .filter(|l| !l.starts_with('#'))
}
