//! `ping`: send ICMP Echo Requests to one host and report icmplib's `Host`
//! as JSON. Flags follow icmplib's parameter names, with iputils' short
//! forms.

use icmp_host_sdk::{
    Arg, Args, HostNetwork, Outcome, Output, PacketArgs, PingOptions, Probe, RunError, UsageError,
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
  -t, --ttl <N>              TTL / hop limit [default: 64]
      --df                   set Don't Fragment (reports the path MTU when too big)
  -b, --broadcast            ping a broadcast address; keep every responder
  -h, --help                 print this help
";

struct Ping;

impl Probe for Ping {
    fn run(args: Vec<String>) -> Result<Output, RunError> {
        let Some((target, options)) = parse(args)? else {
            return Ok(Output::Text(format!("{HELP}{}", PacketArgs::ALL.help())));
        };
        let host = icmp_host_sdk::ping(&mut HostNetwork::new(), &target, &options)?;
        let outcome = if host.is_alive() {
            Outcome::Reached
        } else {
            Outcome::NotReached
        };
        Ok(Output::json(&host, outcome))
    }
}

/// Short flags, as iputils spells them.
const SHORTS: &[(char, &str)] = &[
    ('c', "count"),
    ('i', "interval"),
    ('W', "timeout"),
    ('t', "ttl"),
    ('b', "broadcast"),
    ('h', "help"),
];

/// The target and options, or `None` when help was asked for.
fn parse(args: Vec<String>) -> Result<Option<(String, PingOptions)>, UsageError> {
    let mut o = PingOptions::default();
    let mut target = None;
    let mut args = Args::new(args).with_shorts(SHORTS);
    while let Some(arg) = args.next_arg()? {
        if PacketArgs::ALL.take(&mut o.packet, &arg, &mut args)? {
            continue;
        }
        match &arg {
            Arg::Long(name) => match name.as_str() {
                "help" => return Ok(None),
                "count" => o.count = args.parse()?,
                "interval" => o.interval = args.seconds()?,
                "timeout" => o.timeout = args.seconds()?,
                "id" => o.id = Some(args.parse()?),
                "ttl" => o.ttl = args.parse()?,
                "df" => o.dont_fragment = true,
                "broadcast" => o.broadcast = true,
                _ => return Err(Args::unexpected(&arg)),
            },
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
