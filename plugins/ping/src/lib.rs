//! `ping`: send ICMP Echo Requests to one host and report icmplib's `Host`
//! as JSON. Flags follow icmplib's parameter names, with iputils' short
//! forms.

use icmp_host_sdk::{
    Arg, Args, Family, HostNetwork, Mode, Outcome, Output, PingOptions, Probe, RunError, UsageError,
};

const HELP: &str = "\
Usage: icmp-host run ping [OPTIONS] <HOST>

Send ICMP Echo Requests to HOST (a name or an address) and print icmplib's
Host record as JSON.

Options:
  -c, --count <N>            requests to send [default: 4]
  -i, --interval <SECONDS>   time between requests [default: 1]
  -W, --timeout <SECONDS>    time to wait for each reply [default: 2]
      --id <ID>              ICMP identifier (the host maps it; any value is safe)
  -I, --source <ADDRESS>     source address
      --interface <NAME>     send through this interface
      --payload <HEX>        exact payload, as hex bytes
  -s, --payload-size <N>     random payload bytes [default: 56]
  -Q, --traffic-class <N>    IPv4 TOS / IPv6 traffic class [default: 0]
  -t, --ttl <N>              TTL / hop limit [default: 64]
      --df                   set Don't Fragment
      --privileged           raw socket (needs CAP_NET_RAW)
      --unprivileged         datagram socket (needs net.ipv4.ping_group_range)
  -4, -6                     resolve HOST to IPv4 / IPv6 only
  -h, --help                 print this help
";

struct Ping;

impl Probe for Ping {
    fn run(args: Vec<String>) -> Result<Output, RunError> {
        let Some((target, options)) = parse(args)? else {
            return Ok(Output::Text(HELP.to_owned()));
        };
        let host = icmp_host_sdk::ping(&mut HostNetwork::new(), &target, &options)?;
        let outcome = if host.is_alive() {
            Outcome::Reached
        } else {
            Outcome::NotReached
        };
        Output::json(&host, outcome)
    }
}

/// Short flags, as iputils spells them.
const SHORTS: &[(char, &str)] = &[
    ('c', "count"),
    ('i', "interval"),
    ('W', "timeout"),
    ('I', "source"),
    ('s', "payload-size"),
    ('Q', "traffic-class"),
    ('t', "ttl"),
    ('h', "help"),
];

/// The target and options, or `None` when help was asked for.
fn parse(args: Vec<String>) -> Result<Option<(String, PingOptions)>, UsageError> {
    let mut o = PingOptions::default();
    let mut target = None;
    let mut args = Args::new(args).with_shorts(SHORTS);
    while let Some(arg) = args.next_arg()? {
        match &arg {
            Arg::Long(name) => match name.as_str() {
                "help" => return Ok(None),
                "count" => o.count = args.parse()?,
                "interval" => o.interval = args.seconds()?,
                "timeout" => o.timeout = args.seconds()?,
                "id" => o.id = Some(args.parse()?),
                "source" => o.source = Some(args.parse()?),
                "interface" => o.interface = Some(args.value()?),
                "payload" => o.payload = Some(args.hex()?),
                "payload-size" => o.payload_size = args.parse()?,
                "traffic-class" => o.traffic_class = args.parse()?,
                "ttl" => o.ttl = args.parse()?,
                "df" => o.dont_fragment = true,
                "privileged" => o.mode = Mode::Privileged,
                "unprivileged" => o.mode = Mode::Unprivileged,
                _ => return Err(Args::unexpected(&arg)),
            },
            Arg::Short('4') => o.family = Some(Family::V4),
            Arg::Short('6') => o.family = Some(Family::V6),
            Arg::Value(v) if target.is_none() => target = Some(v.clone()),
            other => return Err(Args::unexpected(other)),
        }
    }
    if o.count == 0 {
        return Err(UsageError("--count must be at least 1".into()));
    }
    if o.ttl == 0 {
        return Err(UsageError("--ttl must be at least 1".into()));
    }
    let target = target.ok_or_else(|| UsageError("missing HOST (try --help)".into()))?;
    Ok(Some((target, o)))
}

icmp_host_sdk::export_probe!(Ping);
