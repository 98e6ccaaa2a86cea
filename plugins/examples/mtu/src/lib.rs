//! Example plugin: `mtu HOST` finds the path MTU with Don't-Fragment echo
//! requests (IPv4 and IPv6) and says who reported it: this host, a router,
//! or silence (larger packets vanished).

use icmp_host_sdk::{
    Arg, Args, HostNetwork, MtuOptions, Outcome, Output, PacketArgs, Probe, RunError, UsageError,
    json, path_mtu,
};

const HELP: &str = "Usage: icmp-host run mtu.wasm [OPTIONS] <HOST>

Find the largest packet that reaches HOST without fragmentation, and who
said larger ones do not pass. Prints {\"target\", \"address\", \"mtu\",
\"reported_by\" (a router's address, \"local\" or \"silence\"), \"probes\"}.

Options:
  -W, --timeout <SECONDS>    time to wait for each probe [default: 1]
      --max <BYTES>          largest packet to try [default: the host's limit]
  -h, --help                 print this help
";

struct Mtu;

impl Probe for Mtu {
    fn run(args: Vec<String>) -> Result<Output, RunError> {
        let (mut o, mut target) = (MtuOptions::default(), None);
        let parts = PacketArgs::SOCKET.and(PacketArgs::FAMILY);
        let mut args = Args::new(args).with_shorts(&[('W', "timeout"), ('h', "help")]);
        while let Some(arg) = args.next_arg()? {
            match arg {
                _ if parts.take(&mut o.packet, &arg, &mut args)? => {}
                Arg::Long(n) if n == "help" => {
                    return Ok(Output::Text(HELP.to_owned() + &parts.help()));
                }
                Arg::Long(n) if n == "timeout" => o.timeout = args.seconds()?,
                Arg::Long(n) if n == "max" => o.max = Some(args.parse()?),
                Arg::Value(v) if target.is_none() => target = Some(v),
                other => return Err(Args::unexpected(&other).into()),
            }
        }
        let target = target.ok_or_else(|| UsageError("missing HOST (try --help)".into()))?;
        let found = path_mtu(&mut HostNetwork, &target, &o)?;
        let result = json::object(|j| {
            j.field("target", &target)
                .field("address", &found.address)
                .field("mtu", &found.mtu);
            j.field("reported_by", &found.reported_by)
                .field("probes", &found.probes);
        });
        Ok(Output::json(&result, Outcome::Reached))
    }
}

icmp_host_sdk::export_probe!(Mtu);
