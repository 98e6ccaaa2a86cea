//! Function names as people read them in trap reports. `build.rs`
//! includes this file too: it stores the built-ins' names this way, so a
//! plugin reads the same built in or loaded from a file.

/// `name` demangled without its hash; a name that is not a Rust symbol
/// (`dlmalloc`, C or Python's runtime, one already readable) as it is.
/// wasm-opt names a function it made from several alike ones after the
/// first, behind a prefix that is kept.
pub fn readable(name: &str) -> String {
    const MERGED: &str = "byn$mgfn-shared$";
    if let Some(first) = name.strip_prefix(MERGED) {
        return format!("{MERGED}{}", readable(first));
    }
    match rustc_demangle::try_demangle(name) {
        Ok(demangled) => format!("{demangled:#}"),
        Err(_) => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn rust_symbols_are_demangled_and_others_kept() {
        let legacy = "_ZN13icmp_host_sdk6flight15Flight$LT$N$GT$7receive17h0123456789abcdefE";
        assert_eq!(
            readable(legacy),
            "icmp_host_sdk::flight::Flight<N>::receive"
        );
        assert_eq!(
            readable("_RNvNtCs9pv848UzQwQ_4core3fmt5write"),
            "core::fmt::write"
        );
        assert_eq!(
            readable("byn$mgfn-shared$_ZN4core3fmt5write17h0123456789abcdefE"),
            "byn$mgfn-shared$core::fmt::write"
        );
        // Already readable (a built-in's), or not Rust at all.
        for name in [
            "icmp_host_sdk::args::Args::next_arg",
            "dlmalloc",
            "PyObject_Call",
        ] {
            assert_eq!(readable(name), name);
        }
    }
}
