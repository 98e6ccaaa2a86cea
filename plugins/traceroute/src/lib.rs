//! `traceroute`: trace the path to a host and report a JSON list of Hop
//! records (schema v1, see the README).

use icmp_host_sdk::{
    Arg, Args, HostNetwork, Outcome, Output, PacketArgs, Probe, RunError, TracerouteOptions,
    UsageError,
};

const HELP: &str = "\
Usage: icmp-host run traceroute [OPTIONS] <HOST>

Trace the path to HOST with ICMP Echo Requests of growing TTL and print a
JSON list of Hop records: silent hops included, every responder of a hop
kept, stopping at the destination or at a Destination Unreachable.

Options:
  -q, --count <N>            probes per hop [default: 2]
  -z, --interval <SECONDS>   time between two probes [default: 0.05]
  -w, --timeout <SECONDS>    time to wait for each probe [default: 2]
  -f, --first-hop <N>        first TTL [default: 1]
  -m, --max-hops <N>         last TTL [default: 30]
  -N, --in-flight <N>        probes unanswered at once, at most [default: 16]
      --fast                 move to the next hop after a hop's first answer
      --id <ID>              ICMP identifier
  -h, --help                 print this help
";

const SHORTS: &[(char, &str)] = &[
    ('q', "count"),
    ('z', "interval"),
    ('w', "timeout"),
    ('f', "first-hop"),
    ('m', "max-hops"),
    ('N', "in-flight"),
    ('h', "help"),
];

struct Traceroute;

impl Probe for Traceroute {
    fn run(args: Vec<String>) -> Result<Output, RunError> {
        let Some((target, options)) = parse(args)? else {
            return Ok(Output::Text(format!("{HELP}{}", PacketArgs::ALL.help())));
        };
        let trace = icmp_host_sdk::traceroute(&mut HostNetwork::new(), &target, &options)?;
        let outcome = if trace.reached {
            Outcome::Reached
        } else {
            Outcome::NotReached
        };
        Ok(Output::json(&trace.hops, outcome))
    }
}

fn parse(args: Vec<String>) -> Result<Option<(String, TracerouteOptions)>, UsageError> {
    let mut o = TracerouteOptions::default();
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
                "first-hop" => o.first_hop = args.parse()?,
                "max-hops" => o.max_hops = args.parse()?,
                "in-flight" => o.in_flight = args.parse()?,
                "fast" => o.fast = true,
                "id" => o.id = Some(args.parse()?),
                _ => return Err(Args::unexpected(&arg)),
            },
            Arg::Value(v) if target.is_none() => target = Some(v.clone()),
            other => return Err(Args::unexpected(other)),
        }
    }
    if o.count == 0 || o.in_flight == 0 {
        return Err(UsageError(
            "--count and --in-flight must be at least 1".into(),
        ));
    }
    if o.first_hop == 0 || o.first_hop > o.max_hops {
        return Err(UsageError("need 1 ≤ --first-hop ≤ --max-hops".into()));
    }
    let target = target.ok_or_else(|| UsageError("missing HOST (try --help)".into()))?;
    Ok(Some((target, o)))
}

icmp_host_sdk::export_probe!(Traceroute);
