//! `icmp-host serve`: load the configuration, bind, open the raw sockets
//! and drop privileges, then hand over to [`icmp_host::serve`].

use anyhow::{Context, bail};

use icmp_host::serve::{self, Service, config::Config};

use super::args::ServeArgs;
use super::{Ending, Workers, async_runtime, privileged_sockets};

pub fn run(args: ServeArgs) -> anyhow::Result<Ending> {
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(anyhow::Error::msg)?,
        None => Config::local(),
    };
    let config = match args.listen {
        Some(listen) => config.with_listen(listen).map_err(anyhow::Error::msg)?,
        None => config,
    };
    if args.check {
        println!(
            "configuration OK: listen {}, {} tenants, {} modules, {} schedules",
            config.listen,
            config.tenants.len(),
            config.modules.len(),
            config.schedules.len()
        );
        return Ok(Ending::Informational);
    }
    // Bound before privileges go, so a port below 1024 works with
    // CAP_NET_BIND_SERVICE.
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let raw = privileged_sockets(true)?;
    let cache_dir = args
        .cache_dir
        .or_else(icmp_host::runtime::default_cache_dir);
    let result = async_runtime(Workers::PerCore)?.block_on(async move {
        let service = Service::new(config, args.config, args.listen.is_some(), raw, cache_dir)?;
        serve::run(service, listener).await
    });
    match result {
        Ok(()) => Ok(Ending::Informational),
        Err(e) => bail!("{e:#}"),
    }
}
