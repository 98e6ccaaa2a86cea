//! A small command-line parser for plugins: long (`--count 4`,
//! `--count=4`) and short (`-c 4`, `-c4`, `-46`) options, positional
//! values, and usage errors that name the option. Numbers with decimals
//! (`-W 0.5`) are read exactly, without float parsing.
//!
//! ```
//! use icmp_host_sdk::{Arg, Args};
//! let mut args = Args::new(vec!["-c3".into(), "--timeout=0.5".into(), "host".into()])
//!     .with_shorts(&[('c', "count")]);
//! let (mut count, mut timeout, mut target) = (1u32, None, None);
//! while let Some(arg) = args.next_arg()? {
//!     match arg {
//!         Arg::Long(n) if n == "count" => count = args.parse()?,
//!         Arg::Long(n) if n == "timeout" => timeout = Some(args.seconds()?),
//!         Arg::Value(v) => target = Some(v),
//!         other => return Err(Args::unexpected(&other)),
//!     }
//! }
//! assert_eq!((count, timeout.unwrap().as_millis(), target.as_deref()), (3, 500, Some("host")));
//! # Ok::<(), icmp_host_sdk::UsageError>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// A command-line mistake; the host prints it and exits with status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// One item of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `--name` (the value, if any, comes from [`Args::value`]).
    Long(String),
    /// `-n`.
    Short(char),
    /// A positional value.
    Value(String),
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Long(n) => write!(f, "--{n}"),
            Arg::Short(c) => write!(f, "-{c}"),
            Arg::Value(v) => write!(f, "\"{v}\""),
        }
    }
}

/// A cursor over a plugin's arguments.
#[derive(Debug)]
pub struct Args {
    items: std::vec::IntoIter<String>,
    /// Value attached with `=` to the last long option.
    attached: Option<String>,
    /// Remaining characters of a short-option cluster (`-46`, `-c4`).
    cluster: Option<(Vec<char>, usize)>,
    last: Option<Arg>,
    only_values: bool,
    shorts: Vec<(char, &'static str)>,
}

impl Args {
    /// Wraps the arguments given to `run`.
    pub fn new(args: Vec<String>) -> Args {
        Args {
            items: args.into_iter(),
            attached: None,
            cluster: None,
            last: None,
            only_values: false,
            shorts: Vec::new(),
        }
    }

    /// Reports these short options as their long names: with
    /// `[('c', "count")]`, `-c 4` comes back as `Arg::Long("count")`.
    pub fn with_shorts(mut self, shorts: &[(char, &'static str)]) -> Args {
        self.shorts.extend_from_slice(shorts);
        self
    }

    /// The next item, or `None` at the end.
    pub fn next_arg(&mut self) -> Result<Option<Arg>, UsageError> {
        if let Some(v) = self.attached.take() {
            let opt = self.last.clone().map(|a| a.to_string()).unwrap_or_default();
            return Err(UsageError(format!("{opt} takes no value (got \"{v}\")")));
        }
        if let Some((chars, pos)) = self.cluster.take()
            && pos < chars.len()
        {
            let c = chars[pos];
            self.cluster = Some((chars, pos + 1));
            return Ok(Some(self.remember(Arg::Short(c))));
        }
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        if self.only_values {
            return Ok(Some(Arg::Value(item)));
        }
        if item == "--" {
            self.only_values = true;
            return self.next_arg();
        }
        if let Some(long) = item.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (long.to_owned(), None),
            };
            self.attached = value;
            return Ok(Some(self.remember(Arg::Long(name))));
        }
        // A lone "-" is a value (stdin, by convention). `strip_prefix`, not
        // slicing: a slice's panic would link `Debug` escaping of strings.
        if let Some(cluster) = item.strip_prefix('-')
            && !cluster.is_empty()
        {
            let chars: Vec<char> = cluster.chars().collect();
            let c = chars[0];
            self.cluster = Some((chars, 1));
            return Ok(Some(self.remember(Arg::Short(c))));
        }
        Ok(Some(Arg::Value(item)))
    }

    fn remember(&mut self, arg: Arg) -> Arg {
        let arg = match arg {
            Arg::Short(c) => match self.shorts.iter().find(|(s, _)| *s == c) {
                Some((_, long)) => Arg::Long((*long).to_owned()),
                None => Arg::Short(c),
            },
            other => other,
        };
        self.last = Some(arg.clone());
        arg
    }

    /// The value of the option just returned by [`Args::next_arg`].
    pub fn value(&mut self) -> Result<String, UsageError> {
        if let Some(v) = self.attached.take() {
            return Ok(v);
        }
        if let Some((chars, pos)) = self.cluster.take()
            && pos < chars.len()
        {
            return Ok(chars[pos..].iter().collect());
        }
        let opt = self.last_name();
        self.items
            .next()
            .ok_or_else(|| UsageError(format!("{opt} needs a value")))
    }

    fn last_name(&self) -> String {
        self.last
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    /// The value of the option just returned, parsed.
    pub fn parse<T>(&mut self) -> Result<T, UsageError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let opt = self.last_name();
        let raw = self.value()?;
        raw.parse()
            .map_err(|e| UsageError(format!("{opt}: invalid value \"{raw}\": {e}")))
    }

    /// A non-negative decimal (`0.5`, `2`, `1000`) as `(units, places)`:
    /// `"0.25"` is `(25, 2)`. Exact, with at most 9 decimal places.
    pub fn decimal(&mut self) -> Result<(u64, u32), UsageError> {
        let opt = self.last_name();
        let raw = self.value()?;
        parse_decimal(&raw)
            .ok_or_else(|| UsageError(format!("{opt}: \"{raw}\" is not a non-negative number")))
    }

    /// A duration in seconds, as icmplib takes them (`0.5`, `2`), exact to
    /// the nanosecond.
    pub fn seconds(&mut self) -> Result<std::time::Duration, UsageError> {
        let opt = self.last_name();
        let (units, places) = self.decimal()?;
        units
            .checked_mul(10u64.pow(9 - places))
            .map(std::time::Duration::from_nanos)
            .ok_or_else(|| UsageError(format!("{opt}: too long a duration")))
    }

    /// A hex string (`--payload 0a0b0c`) as bytes.
    pub fn hex(&mut self) -> Result<Vec<u8>, UsageError> {
        let opt = self.last_name();
        let raw = self.value()?;
        let bad = || UsageError(format!("{opt}: \"{raw}\" is not hex bytes"));
        if raw.len() % 2 != 0 {
            return Err(bad());
        }
        (0..raw.len())
            .step_by(2)
            .map(|i| {
                raw.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)
    }

    /// An error for an option this plugin does not know.
    pub fn unexpected(arg: &Arg) -> UsageError {
        match arg {
            Arg::Value(v) => UsageError(format!("unexpected argument \"{v}\"")),
            other => UsageError(format!("unknown option {other} (try --help)")),
        }
    }
}

/// `units.fraction` with at most 9 decimals, as `(units, places)`.
fn parse_decimal(s: &str) -> Option<(u64, u32)> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 9 {
        return None;
    }
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    let mut units = 0u64;
    for b in int.bytes().chain(frac.bytes()) {
        units = units.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((units, frac.len() as u32))
}

/// The options every built-in probe shares, in parts a plugin can pick:
/// [`PacketArgs::SOCKET`] (`-I`/`--source`, `--interface`,
/// `--privileged`, `--unprivileged`), [`PacketArgs::PAYLOAD`]
/// (`--payload`, `-s`/`--payload-size`, `-Q`/`--traffic-class`),
/// [`PacketArgs::FAMILY`] (`-4`, `-6`), or [`PacketArgs::ALL`]. Parsed
/// into [`crate::PacketOptions`].
///
/// ```
/// use icmp_host_sdk::{Args, PacketArgs, PacketOptions};
/// let parts = PacketArgs::SOCKET.and(PacketArgs::FAMILY);
/// let mut args = Args::new(vec!["-6".into(), "-I".into(), "fd00::1".into()]);
/// let mut packet = PacketOptions::default();
/// while let Some(arg) = args.next_arg()? {
///     assert!(parts.take(&mut packet, &arg, &mut args)?);
/// }
/// assert_eq!(packet.source.unwrap().to_string(), "fd00::1");
/// assert!(parts.help().starts_with("  -I, --source"));
/// # Ok::<(), icmp_host_sdk::UsageError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketArgs(u8);

/// Per part: help lines, short flags.
const PARTS: [(&str, &[(char, &str)]); 3] = [
    (
        "  -I, --source <ADDRESS>     source address\n\
         \x20     --interface <NAME>     send through this interface\n\
         \x20     --privileged           raw socket (needs CAP_NET_RAW)\n\
         \x20     --unprivileged         datagram socket (needs net.ipv4.ping_group_range)\n",
        &[('I', "source")],
    ),
    (
        "      --payload <HEX>        exact payload, as hex bytes\n\
         \x20 -s, --payload-size <N>     random payload bytes [default: 56]\n\
         \x20 -Q, --traffic-class <N>    IPv4 TOS / IPv6 traffic class [default: 0]\n",
        &[('s', "payload-size"), ('Q', "traffic-class")],
    ),
    (
        "  -4, -6                     resolve names to IPv4 / IPv6 only\n",
        &[],
    ),
];

impl PacketArgs {
    /// Source address, interface, socket mode.
    pub const SOCKET: PacketArgs = PacketArgs(1);
    /// Payload and traffic class.
    pub const PAYLOAD: PacketArgs = PacketArgs(2);
    /// `-4` / `-6`.
    pub const FAMILY: PacketArgs = PacketArgs(4);
    /// Every part.
    pub const ALL: PacketArgs = PacketArgs(7);

    /// These parts and `other`'s.
    pub const fn and(self, other: PacketArgs) -> PacketArgs {
        PacketArgs(self.0 | other.0)
    }

    fn has(self, part: usize) -> bool {
        self.0 & (1 << part) != 0
    }

    /// Help lines for these options, indented like a plugin's own.
    pub fn help(self) -> String {
        (0..PARTS.len())
            .filter(|&p| self.has(p))
            .map(|p| PARTS[p].0)
            .collect()
    }

    /// Applies `arg` to `o` if it is one of these options (long or short
    /// form); `Ok(false)` otherwise.
    pub fn take(
        self,
        o: &mut crate::PacketOptions,
        arg: &Arg,
        args: &mut Args,
    ) -> Result<bool, UsageError> {
        let long = match arg {
            Arg::Short(c) => PARTS
                .iter()
                .enumerate()
                .filter(|(p, _)| self.has(*p))
                .flat_map(|(_, part)| part.1)
                .find(|(short, _)| short == c)
                .map(|(_, long)| *long),
            Arg::Long(name) => Some(name.as_str()),
            Arg::Value(_) => None,
        };
        if self.has(2)
            && let Arg::Short(c @ ('4' | '6')) = arg
        {
            o.family = Some(if *c == '4' {
                crate::Family::V4
            } else {
                crate::Family::V6
            });
            return Ok(true);
        }
        match long {
            Some("source") if self.has(0) => o.source = Some(args.parse()?),
            Some("interface") if self.has(0) => o.interface = Some(args.value()?),
            Some("privileged") if self.has(0) => o.mode = crate::Mode::Privileged,
            Some("unprivileged") if self.has(0) => o.mode = crate::Mode::Unprivileged,
            Some("payload") if self.has(1) => o.payload = Some(args.hex()?),
            Some("payload-size") if self.has(1) => o.payload_size = args.parse()?,
            Some("traffic-class") if self.has(1) => o.traffic_class = args.parse()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Args {
        Args::new(a.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn long_short_and_clustered_options() {
        let mut a = args(&["--count=3", "-c", "5", "-W2", "-46", "host", "--", "-x"]);
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Long("count".into())));
        assert_eq!(a.parse::<u32>().unwrap(), 3);
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Short('c')));
        assert_eq!(a.parse::<u32>().unwrap(), 5);
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Short('W')));
        assert_eq!(a.seconds().unwrap(), std::time::Duration::from_secs(2));
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Short('4')));
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Short('6')));
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Value("host".into())));
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Value("-x".into())));
        assert_eq!(a.next_arg().unwrap(), None);
    }

    #[test]
    fn shorts_map_to_long_names() {
        let mut a = args(&["-c3", "-x"]).with_shorts(&[('c', "count")]);
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Long("count".into())));
        assert_eq!(a.parse::<u8>().unwrap(), 3);
        assert_eq!(a.next_arg().unwrap(), Some(Arg::Short('x')));
    }

    #[test]
    fn errors_name_the_option() {
        let mut a = args(&["--count"]);
        a.next_arg().unwrap();
        assert_eq!(a.value().unwrap_err().0, "--count needs a value");
        let mut a = args(&["-c", "x"]);
        a.next_arg().unwrap();
        assert!(
            a.parse::<u32>()
                .unwrap_err()
                .0
                .starts_with("-c: invalid value \"x\"")
        );
        let mut a = args(&["--quiet=yes"]);
        a.next_arg().unwrap();
        assert!(a.next_arg().unwrap_err().0.contains("takes no value"));
        let mut a = args(&["--payload", "0g"]);
        a.next_arg().unwrap();
        assert!(a.hex().is_err());
        let mut a = args(&["--payload", "00ff"]);
        a.next_arg().unwrap();
        assert_eq!(a.hex().unwrap(), vec![0, 255]);
        let mut a = args(&["-i", "-1"]);
        a.next_arg().unwrap();
        assert!(a.seconds().is_err());
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("0.5"), Some((5, 1)));
        assert_eq!(parse_decimal("2"), Some((2, 0)));
        assert_eq!(parse_decimal(".25"), Some((25, 2)));
        assert_eq!(parse_decimal("1."), Some((1, 0)));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "0.1234567891",
            "1.2.3",
            "nan",
            "99999999999999999999",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
        let mut a = args(&["-W", "0.000000001", "-i", "1.5"]);
        a.next_arg().unwrap();
        assert_eq!(a.seconds().unwrap(), std::time::Duration::from_nanos(1));
        a.next_arg().unwrap();
        assert_eq!(a.seconds().unwrap(), std::time::Duration::from_millis(1500));
    }

    #[test]
    fn packet_help_is_indented_on_every_line() {
        for parts in [
            PacketArgs::ALL,
            PacketArgs::SOCKET,
            PacketArgs::PAYLOAD,
            PacketArgs::FAMILY,
        ] {
            let help = parts.help();
            assert!(!help.is_empty());
            for line in help.lines() {
                assert!(
                    line.starts_with("  -") || line.starts_with("      --"),
                    "{line:?}"
                );
            }
        }
        assert!(
            PacketArgs::ALL
                .help()
                .starts_with("  -I, --source <ADDRESS>")
        );
    }

    #[test]
    fn packet_parts_take_only_their_options() {
        let mut o = crate::PacketOptions::default();
        let mut a = args(&["-4", "--payload-size", "9"]);
        let arg = a.next_arg().unwrap().unwrap();
        assert!(!PacketArgs::SOCKET.take(&mut o, &arg, &mut a).unwrap());
        assert!(PacketArgs::FAMILY.take(&mut o, &arg, &mut a).unwrap());
        let arg = a.next_arg().unwrap().unwrap();
        assert!(!PacketArgs::FAMILY.take(&mut o, &arg, &mut a).unwrap());
        assert!(PacketArgs::PAYLOAD.take(&mut o, &arg, &mut a).unwrap());
        assert_eq!((o.family, o.payload_size), (Some(crate::Family::V4), 9));
        let mut a = args(&["-s", "7", "-I", "192.0.2.1"]);
        let arg = a.next_arg().unwrap().unwrap();
        assert!(!PacketArgs::SOCKET.take(&mut o, &arg, &mut a).unwrap());
        assert!(PacketArgs::PAYLOAD.take(&mut o, &arg, &mut a).unwrap());
        let arg = a.next_arg().unwrap().unwrap();
        assert!(PacketArgs::ALL.take(&mut o, &arg, &mut a).unwrap());
        assert_eq!(o.payload_size, 7);
        assert_eq!(o.source.unwrap().to_string(), "192.0.2.1");
    }
}
