//! Executable memory for plugins' native code: wasmtime's
//! [`CustomCodeMemory`] hook, so that built-ins run in place.
//!
//! wasmtime copies a precompiled artifact into memory it maps, then makes
//! the copy's `.text` executable. The built-ins' artifacts are already in
//! this binary's executable segment, page-aligned (`builtin.rs`): loaded
//! with `deserialize_raw`, they need neither the copy nor the `mprotect`,
//! and their pages come from the page cache as the binary's own code does.
//! Other code (plugin files, compiled or from the cache) is made
//! executable here just as wasmtime would on x86-64: read and execute,
//! never write. (Elsewhere wasmtime also maintains the instruction cache
//! and branch protection; the runtime installs this hook on x86-64 only.)

use std::ops::Range;
use std::ptr::NonNull;
use std::sync::Mutex;

use nix::sys::mman::{ProtFlags, mprotect};
use wasmtime::CustomCodeMemory;

/// The hook: `in_place` are regions of this binary's executable segment.
#[derive(Debug)]
pub struct CodeMemory {
    in_place: Vec<Range<usize>>,
    page_size: usize,
}

impl CodeMemory {
    /// A hook that leaves code inside `in_place` as the binary maps it.
    /// Each region must lie in this executable's text segment, whose pages
    /// are read-only and executable for the life of the process.
    pub fn new(in_place: impl IntoIterator<Item = &'static [u8]>) -> CodeMemory {
        CodeMemory {
            in_place: in_place
                .into_iter()
                .map(|r| r.as_ptr_range())
                .map(addresses)
                .collect(),
            page_size: page_size(),
        }
    }

    /// Whether `bytes` can run in place: inside one of the regions and
    /// page-aligned, as wasmtime needs the artifact's `.text` to be.
    pub fn fits(&self, bytes: &[u8]) -> bool {
        bytes.as_ptr().addr().is_multiple_of(self.page_size)
            && self.contains(addresses(bytes.as_ptr_range()))
    }

    /// Whether `bytes` is to be loaded in place, claiming it for good if
    /// so. wasmtime registers code by address, process-wide, and refuses
    /// the same address twice: a region serves the process's first load
    /// alone (any runtime's); later loads copy it.
    pub fn claim(&self, bytes: &[u8]) -> bool {
        static CLAIMED: Mutex<Vec<usize>> = Mutex::new(Vec::new());
        if !self.fits(bytes) {
            return false;
        }
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        let start = bytes.as_ptr().addr();
        if claimed.contains(&start) {
            return false;
        }
        claimed.push(start);
        true
    }

    fn contains(&self, range: Range<usize>) -> bool {
        self.in_place
            .iter()
            .any(|r| r.start <= range.start && range.end <= r.end)
    }

    fn protect(&self, ptr: *const u8, len: usize, prot: ProtFlags) -> wasmtime::Result<()> {
        if len == 0 || self.contains(ptr.addr()..ptr.addr() + len) {
            return Ok(());
        }
        let addr = NonNull::new(ptr.cast_mut().cast())
            .ok_or_else(|| wasmtime::format_err!("code memory at a null address"))?;
        // SAFETY: wasmtime hands over the text of a code image it mapped
        // and owns (page-aligned, per `required_alignment`); nothing of
        // ours lives there. Changing its protection is what it asks for.
        #[allow(unsafe_code)]
        unsafe { mprotect(addr, len, prot) }
            .map_err(|e| wasmtime::format_err!("mprotect of plugin code ({len} bytes): {e}"))
    }
}

impl CustomCodeMemory for CodeMemory {
    fn required_alignment(&self) -> usize {
        self.page_size
    }

    fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        self.protect(ptr, len, ProtFlags::PROT_READ | ProtFlags::PROT_EXEC)
    }

    fn unpublish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        self.protect(ptr, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE)
    }
}

fn addresses(range: Range<*const u8>) -> Range<usize> {
    range.start.addr()..range.end.addr()
}

fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system; no memory is shared.
    #[allow(unsafe_code)]
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}
