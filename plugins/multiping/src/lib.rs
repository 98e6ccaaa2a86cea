//! `multiping`: ping many hosts over shared sockets and report icmplib's
//! `Host` records as a JSON list, in input order.

use std::io::BufRead;

use icmp_host_sdk::json::{Decimal, OrderedList, ToJson};
use icmp_host_sdk::{
    Arg, Args, Host, HostNetwork, MultipingOptions, Outcome, Output, PacketArgs, Probe,
    REPORT_PART, RunError, UsageError,
};

const HELP: &str = "\
Usage: icmp-host run [--stdin] multiping [OPTIONS] [ADDRESS]...

Ping every ADDRESS (names or addresses) and print a JSON list of icmplib's
Host records, in input order. A name that does not resolve is reported as
not alive, with its error.

Options:
  -c, --count <N>            requests per host [default: 2]
  -i, --interval <SECONDS>   time between two requests to one host [default: 0.5]
  -W, --timeout <SECONDS>    time to wait for each reply [default: 2]
  -r, --rate <PPS>           requests per second over all hosts, 0 for no
                             limit (replaces icmplib's concurrent_tasks) [default: 1000]
  -t, --ttl <N>              TTL / hop limit [default: 64]
  -f, --file <FILE>          read addresses, one per line; only `-` (stdin, given
                             to the plugin with `icmp-host run --stdin`)
      --stream               print each host as one JSON line when it is done,
                             instead of one list at the end
  -h, --help                 print this help
";

const SHORTS: &[(char, &str)] = &[
    ('c', "count"),
    ('i', "interval"),
    ('W', "timeout"),
    ('r', "rate"),
    ('t', "ttl"),
    ('f', "file"),
    ('h', "help"),
];

struct Multiping;

struct Request {
    targets: Vec<String>,
    options: MultipingOptions,
    stream: bool,
}

impl Probe for Multiping {
    fn run(args: Vec<String>) -> Result<Output, RunError> {
        let Some(request) = parse(args)? else {
            return Ok(Output::Text(format!("{HELP}{}", PacketArgs::ALL.help())));
        };
        let (targets, options) = (&request.targets, &request.options);
        // Hosts are written as they finish, in input order, and not kept.
        let mut results = match request.stream {
            true => Results::Lines,
            false => Results::List(OrderedList::with_capacity(
                list_size(targets, options.count).min(2 * REPORT_PART),
            )),
        };
        let mut alive = 0;
        // fping's summary lines, unless nobody would see them (`-q`).
        let summaries = icmp_host_sdk::watched();
        icmp_host_sdk::multiping_each(&mut HostNetwork, targets, options, |i, host| {
            if summaries {
                icmp_host_sdk::note(summary_line(&host));
            }
            alive += usize::from(host.is_alive());
            match &mut results {
                Results::List(list) => {
                    list.push(i, &host);
                    let mut taken = true;
                    list.hand_on(REPORT_PART, |part| {
                        taken = icmp_host_sdk::write_report(part);
                    });
                    if !taken {
                        results = Results::Refused;
                    }
                }
                Results::Lines => icmp_host_sdk::result_line(&host.to_json()),
                Results::Refused => {}
            }
        })?;
        let outcome = Outcome::of(alive, targets.len());
        Ok(match results {
            Results::List(list) => Output::Report {
                json: Some(list.finish()),
                outcome,
            },
            Results::Lines | Results::Refused => Output::streamed(outcome),
        })
    }
}

/// Where finished hosts go.
enum Results {
    /// A JSON list in input order, handed to the host a part at a time.
    List(OrderedList),
    /// A result line each (`--stream`).
    Lines,
    /// Nowhere: the host took no more of the report (over the run's output
    /// limit, so the run fails).
    Refused,
}

/// Room for the JSON list, generously (room never written costs nothing,
/// while growing a list copies it); a large list needs only a part's.
fn list_size(targets: &[String], count: u32) -> usize {
    let per_request = 192 * count as usize;
    targets
        .iter()
        .map(|t| 320 + 2 * t.len() + per_request)
        .fold(2, usize::saturating_add)
}

/// fping's `-c` summary line for one host.
fn summary_line(h: &Host) -> String {
    if let Some(e) = &h.error {
        return format!("{} : {e}", h.target);
    }
    let s = h.stats();
    let mut line = String::with_capacity(h.target.len() + 64);
    line.push_str(&h.target);
    line.push_str(" : xmt/rcv/%loss = ");
    h.packets_sent.write_json(&mut line);
    line.push('/');
    s.packets_received.write_json(&mut line);
    line.push('/');
    ((s.packet_loss * 100.0).round() as u32).write_json(&mut line);
    line.push('%');
    if s.packets_received > 0 {
        line.push_str(", min/avg/max = ");
        for (i, ms) in [s.min_rtt, s.avg_rtt, s.max_rtt].into_iter().enumerate() {
            if i > 0 {
                line.push('/');
            }
            Decimal::new(ms, 3).write_json(&mut line);
        }
    }
    line
}

fn parse(args: Vec<String>) -> Result<Option<Request>, UsageError> {
    let mut o = MultipingOptions::default();
    let mut targets = Vec::new();
    let mut stream = false;
    let mut read_stdin = false;
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
                "rate" => {
                    let (units, places) = args.decimal()?;
                    let rate = units as f64 / 10f64.powi(places as i32);
                    o.rate = (rate > 0.0).then_some(rate);
                }
                "ttl" => o.ttl = args.parse()?,
                "stream" => stream = true,
                "file" => match args.value()?.as_str() {
                    "-" => read_stdin = true,
                    path => {
                        return Err(UsageError(format!(
                            "cannot open {path}: plugins have no filesystem; use \
                             `icmp-host run --stdin multiping --file - < {path}`"
                        )));
                    }
                },
                _ => return Err(Args::unexpected(&arg)),
            },
            Arg::Value(v) if v == "-" => read_stdin = true,
            Arg::Value(v) => targets.push(v.clone()),
            other => return Err(Args::unexpected(other)),
        }
    }
    if read_stdin {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| UsageError(format!("reading stdin: {e}")))?;
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                targets.push(line.to_owned());
            }
        }
    }
    if targets.is_empty() {
        return Err(UsageError("no addresses given (try --help)".into()));
    }
    if o.count == 0 || o.ttl == 0 {
        return Err(UsageError("--count and --ttl must be at least 1".into()));
    }
    Ok(Some(Request {
        targets,
        options: o,
        stream,
    }))
}

icmp_host_sdk::export_probe!(Multiping);
