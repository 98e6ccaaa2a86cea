//! A small command-line parser for plugins: long (`--count 4`,
//! `--count=4`) and short (`-c 4`, `-c4`, `-46`) options, positional
//! values, and usage errors that name the option.

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
            Arg::Value(v) => write!(f, "{v:?}"),
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
            return Err(UsageError(format!("{opt} takes no value (got {v:?})")));
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
        // A lone "-" is a value (stdin, by convention).
        if item.len() > 1 && item.starts_with('-') {
            let chars: Vec<char> = item[1..].chars().collect();
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
        let opt = self.last.clone().map(|a| a.to_string()).unwrap_or_default();
        self.items
            .next()
            .ok_or_else(|| UsageError(format!("{opt} needs a value")))
    }

    /// The value of the option just returned, parsed.
    pub fn parse<T>(&mut self) -> Result<T, UsageError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let opt = self.last.clone().map(|a| a.to_string()).unwrap_or_default();
        let raw = self.value()?;
        raw.parse()
            .map_err(|e| UsageError(format!("{opt}: invalid value {raw:?}: {e}")))
    }

    /// A duration in seconds, as icmplib takes them (`0.5`, `2`).
    pub fn seconds(&mut self) -> Result<std::time::Duration, UsageError> {
        let opt = self.last.clone().map(|a| a.to_string()).unwrap_or_default();
        let secs: f64 = self.parse()?;
        std::time::Duration::try_from_secs_f64(secs)
            .map_err(|_| UsageError(format!("{opt}: {secs} is not a duration in seconds")))
    }

    /// A hex string (`--payload 0a0b0c`) as bytes.
    pub fn hex(&mut self) -> Result<Vec<u8>, UsageError> {
        let opt = self.last.clone().map(|a| a.to_string()).unwrap_or_default();
        let raw = self.value()?;
        let bad = || UsageError(format!("{opt}: {raw:?} is not hex bytes"));
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
            Arg::Value(v) => UsageError(format!("unexpected argument {v:?}")),
            other => UsageError(format!("unknown option {other} (try --help)")),
        }
    }
}

/// Parses the options every built-in probe shares into
/// [`crate::PacketOptions`]: `--source`/`-I`, `--interface`, `--payload`,
/// `--payload-size`/`-s`, `--traffic-class`/`-Q`, `--privileged`,
/// `--unprivileged`, `-4`, `-6`.
pub struct PacketArgs;

impl PacketArgs {
    /// Help lines for these options.
    pub const HELP: &'static str = "\
  -I, --source <ADDRESS>     source address
      --interface <NAME>     send through this interface
      --payload <HEX>        exact payload, as hex bytes
  -s, --payload-size <N>     random payload bytes [default: 56]
  -Q, --traffic-class <N>    IPv4 TOS / IPv6 traffic class [default: 0]
      --privileged           raw socket (needs CAP_NET_RAW)
      --unprivileged         datagram socket (needs net.ipv4.ping_group_range)
  -4, -6                     resolve names to IPv4 / IPv6 only
";

    /// Short flags of these options, to add to a plugin's own.
    pub const SHORTS: &'static [(char, &'static str)] = &[
        ('I', "source"),
        ('s', "payload-size"),
        ('Q', "traffic-class"),
    ];

    /// Applies `arg` to `o` if it is one of these options; `Ok(false)` otherwise.
    pub fn take(
        o: &mut crate::PacketOptions,
        arg: &Arg,
        args: &mut Args,
    ) -> Result<bool, UsageError> {
        match arg {
            Arg::Long(name) => match name.as_str() {
                "source" => o.source = Some(args.parse()?),
                "interface" => o.interface = Some(args.value()?),
                "payload" => o.payload = Some(args.hex()?),
                "payload-size" => o.payload_size = args.parse()?,
                "traffic-class" => o.traffic_class = args.parse()?,
                "privileged" => o.mode = crate::Mode::Privileged,
                "unprivileged" => o.mode = crate::Mode::Unprivileged,
                _ => return Ok(false),
            },
            Arg::Short('4') => o.family = Some(crate::Family::V4),
            Arg::Short('6') => o.family = Some(crate::Family::V6),
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
}
