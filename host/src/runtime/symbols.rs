//! Function names as people read them in trap reports. `build.rs`
//! includes this file too: it stores the built-ins' names this way, so a
//! plugin reads the same built in or loaded from a file.

/// `name` demangled without its hash, the paths of its type arguments cut
/// to their last segment (as rustc's messages print types); a name that is
/// not a Rust symbol (`dlmalloc`, C or Python's runtime, one already
/// readable) as it is. wasm-opt names a function it made from several alike
/// ones after the first, behind a prefix that is kept.
pub fn readable(name: &str) -> String {
    const MERGED: &str = "byn$mgfn-shared$";
    if let Some(first) = name.strip_prefix(MERGED) {
        return format!("{MERGED}{}", readable(first));
    }
    match rustc_demangle::try_demangle(name) {
        Ok(demangled) => short_arguments(&format!("{demangled:#}")),
        Err(_) => short_arguments(name),
    }
}

/// Paths inside `<…>` cut to their last segment, the function's own path
/// kept: `core::ptr::drop_in_place<Flight<HostNetwork>>`, `<HostNetwork as
/// Network>::emit`. A path that continues a qualified one (`<…>::print`) is
/// kept whole.
fn short_arguments(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    // Where the path being written inside brackets began in `out`; `None`
    // for one kept whole.
    let mut path = Some(0);
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ':' if depth > 0 && chars.peek() == Some(&':') => {
                chars.next();
                if out.ends_with('>') {
                    path = None;
                }
                match path {
                    Some(start) => out.truncate(start),
                    None => out.push_str("::"),
                }
            }
            '<' | '>' | ' ' | ',' | '(' | ')' | '&' | '*' | '[' | ']' | ';' | '{' | '}' => {
                match c {
                    '<' => depth += 1,
                    '>' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                out.push(c);
                path = Some(out.len());
            }
            _ => out.push(c),
        }
    }
    out
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
        assert_eq!(
            readable(
                "_ZN4core3ptr93drop_in_place$LT$icmp_host_sdk..flight..Flight$LT$\
                 icmp_host_sdk..network..HostNetwork$GT$$GT$17h0123456789abcdefE"
            ),
            "core::ptr::drop_in_place<Flight<HostNetwork>>"
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

    #[test]
    fn type_arguments_lose_their_paths_and_nothing_else() {
        for (long, short) in [
            (
                "<icmp_host_sdk::network::HostNetwork as icmp_host_sdk::network::Network>::emit",
                "<HostNetwork as Network>::emit",
            ),
            (
                "<alloc::vec::Vec<core::net::ip_addr::IpAddr> as core::ops::drop::Drop>::drop",
                "<Vec<IpAddr> as Drop>::drop",
            ),
            (
                "<<std::sys::backtrace::BacktraceLock>::print::DisplayBacktrace as \
                 core::fmt::Display>::fmt",
                "<<BacktraceLock>::print::DisplayBacktrace as Display>::fmt",
            ),
            (
                "<core::net::parser::Parser>::read_number::<u16>::{closure#0}",
                "<Parser>::read_number::<u16>::{closure#0}",
            ),
            (
                "<impl core::convert::From<icmp_host_sdk::error::Error> for alloc::string::String>::from",
                "<impl From<Error> for String>::from",
            ),
            (
                "core::ptr::drop_in_place<[(usize, &str); 2]>",
                "core::ptr::drop_in_place<[(usize, &str); 2]>",
            ),
            (
                "icmp_host_sdk::flight::Flight<N>::receive",
                "icmp_host_sdk::flight::Flight<N>::receive",
            ),
        ] {
            assert_eq!(readable(long), short);
            assert_eq!(readable(short), short, "already short");
        }
    }
}
