//! Example plugin: resolves each name through the host, like icmplib's
//! `resolve()`, and prints `{"name": [addresses...]}`. A starting point for
//! probes of your own: parse arguments, call the SDK, return JSON.

use std::collections::BTreeMap;

use icmp_host_sdk::json;
use icmp_host_sdk::{Arg, Args, Family, Outcome, Output, Probe, RunError, UsageError};

struct Resolve;

impl Probe for Resolve {
    fn run(args: Vec<String>) -> Result<Output, RunError> {
        let mut family = None;
        let mut names = Vec::new();
        let mut args = Args::new(args);
        while let Some(arg) = args.next_arg()? {
            match arg {
                Arg::Short('4') => family = Some(Family::V4),
                Arg::Short('6') => family = Some(Family::V6),
                Arg::Value(v) => names.push(v),
                Arg::Short('h') => {
                    return Ok(Output::Text(
                        "Usage: icmp-host run resolve.wasm [-4|-6] <NAME>...\n".into(),
                    ));
                }
                other => return Err(Args::unexpected(&other).into()),
            }
        }
        if names.is_empty() {
            return Err(UsageError("no names given".into()).into());
        }
        let mut found = BTreeMap::new();
        for name in &names {
            found.insert(name.clone(), icmp_host_sdk::resolve(name, family)?);
        }
        let result = json::object(|o| {
            for (name, addresses) in &found {
                o.field(name, addresses);
            }
        });
        Ok(Output::json(&result, Outcome::Reached))
    }
}

icmp_host_sdk::export_probe!(Resolve);
