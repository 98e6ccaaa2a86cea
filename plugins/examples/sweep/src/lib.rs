//! Example plugin: `sweep 192.0.2.0/28` pings every address of each prefix
//! at once and streams each live host as a JSON line the moment it answers.

use std::time::Duration;

use icmp_host_sdk::json::{self, Millis};
use icmp_host_sdk::{
    Arg, Args, Cidr, EchoRequest, Fate, HostNetwork, Outcome, Output, PacketArgs, PacketOptions,
    PolicyRule, Probe, RunError, UsageError, note, probe_all, result_line,
};

const HELP: &str = "Usage: icmp-host run sweep.wasm [OPTIONS] <CIDR>...

Ping every host address of each CIDR at once; print each live one as a
JSON line {\"address\", \"rtt\"} as soon as it answers.

Options:
  -W, --timeout <SECONDS>    time to wait for each reply [default: 1]
";

struct Sweep;

impl Probe for Sweep {
    fn run(args: Vec<String>) -> Result<Output, RunError> {
        let (mut timeout, mut packet, mut prefixes) =
            (Duration::from_secs(1), PacketOptions::default(), Vec::new());
        let mut args = Args::new(args).with_shorts(&[('W', "timeout")]);
        while let Some(arg) = args.next_arg()? {
            match arg {
                _ if PacketArgs::SOCKET.take(&mut packet, &arg, &mut args)? => {}
                Arg::Long(n) if n == "help" => {
                    return Ok(Output::Text(HELP.to_owned() + &PacketArgs::SOCKET.help()));
                }
                Arg::Long(n) if n == "timeout" => timeout = args.seconds()?,
                Arg::Value(v) => prefixes.push(v.parse::<Cidr>().map_err(UsageError::from)?),
                other => return Err(Args::unexpected(&other).into()),
            }
        }
        if prefixes.is_empty() {
            return Err(UsageError("no CIDR given (try --help)".into()).into());
        }
        let addresses = prefixes.iter().flat_map(Cidr::hosts).enumerate();
        let requests = addresses.map(|(i, a)| EchoRequest::new(a, (i >> 16) as u16, i as u16));
        let (mut alive, mut total, flight) = (0, 0, packet.flight(timeout));
        probe_all(&mut HostNetwork, requests, flight, |_, e| {
            total += usize::from(!matches!(e.fate, Fate::Duplicate(_)));
            let why = match e.fate {
                Fate::Reply(r) if r.is_echo_reply() => {
                    alive += 1;
                    return result_line(&json::object(|o| {
                        o.field("address", &e.destination)
                            .field("rtt", &Millis(r.rtt));
                    }));
                }
                Fate::Reply(r) => {
                    format!("{} from {}", r.describe().unwrap_or_default(), r.source)
                }
                Fate::Failed(err) if err.denied_by() == Some(PolicyRule::Destination) => {
                    "not allowed".into()
                }
                Fate::Failed(err) => err.to_string(),
                Fate::Timeout | Fate::Duplicate(_) => return,
            };
            note(format!("{}: {why}", e.destination));
        })?;
        Ok(Output::streamed(Outcome::of(alive, total)))
    }
}

icmp_host_sdk::export_probe!(Sweep);
