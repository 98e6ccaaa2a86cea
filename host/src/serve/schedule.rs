/*!
Schedules: each target of a `[[schedule]]` probed with its module every
`every`, as smokeping_prober does, feeding `/metrics` — requests, replies
and an RTT histogram per module and target. Targets start spread over the
period; a probe never outlasts its period (its wall-clock limit is the
period); a tick that comes while the previous probe still runs is skipped.
A reload stops the old loops after their current probe and starts the new.
*/

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::{Instant, MissedTickBehavior};

use super::config::Config;
use super::metrics::ProbeLabels;
use super::{Service, log};
use crate::runtime::Interrupt;

/// The loops of one configuration.
#[derive(Debug, Default)]
pub struct Schedules {
    stop: Interrupt,
    probes: Vec<ProbeLabels>,
}

impl Schedules {
    /// Starts a loop per target of every schedule of `config`.
    pub fn start(service: &Arc<Service>, config: &Config) -> Schedules {
        let stop = Interrupt::new();
        let mut probes = Vec::new();
        for s in &config.schedules {
            let n = s.targets.len() as u32;
            for (i, target) in s.targets.iter().enumerate() {
                let labels = ProbeLabels {
                    module: s.module.clone(),
                    target: target.clone(),
                };
                // Spread the targets over the period, like smokeping_prober.
                let offset = s.every / n * i as u32;
                tokio::spawn(probe_loop(
                    Arc::clone(service),
                    labels.clone(),
                    s.every,
                    offset,
                    stop.clone(),
                ));
                probes.push(labels);
            }
        }
        Schedules { stop, probes }
    }

    /// The (module, target) pairs probed.
    pub fn probes(&self) -> &[ProbeLabels] {
        &self.probes
    }

    /// Ends the loops (a probe in progress finishes first).
    pub fn stop(&self) {
        self.stop.trigger();
    }
}

async fn probe_loop(
    service: Arc<Service>,
    labels: ProbeLabels,
    every: Duration,
    offset: Duration,
    stop: Interrupt,
) {
    let mut tick = tokio::time::interval_at(Instant::now() + offset, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // Why the last probe did not start: logged when it changes, not at
    // every tick.
    let mut not_started: Option<String> = None;
    loop {
        tokio::select! {
            biased;
            () = stop.wait() => return,
            _ = tick.tick() => {}
        }
        let now = probe_once(&service, &labels, every).await.err();
        if now != not_started {
            match &now {
                Some(e) => log(format!(
                    "schedule {} {}: not started: {e}",
                    labels.module, labels.target
                )),
                None => log(format!(
                    "schedule {} {}: probing again",
                    labels.module, labels.target
                )),
            }
            not_started = now;
        }
    }
}

/// One probe of a schedule, fed to the metrics; `Err` when it could not
/// start.
async fn probe_once(
    service: &Arc<Service>,
    labels: &ProbeLabels,
    every: Duration,
) -> Result<(), String> {
    let m = service.metrics();
    let config = service.config();
    // Gone in a reload: this loop is being stopped.
    let Some(module) = config.modules.get(&labels.module) else {
        return Ok(());
    };
    let Some(tenant) = config.tenant(&module.tenant) else {
        return Ok(());
    };
    let mut args = module.args.clone();
    args.push(labels.target.clone());
    let run = match service.start(tenant, &module.plugin, args, false, Some(every)) {
        Ok(run) => run,
        Err(e) => {
            m.schedule_errors.get_or_create(labels).inc();
            return Err(e.to_string());
        }
    };
    let envelope = run.finished().await;
    if envelope.exit == Some(2) {
        m.schedule_errors.get_or_create(labels).inc();
    }
    let Some(answers) = answers(&envelope.result, &labels.target) else {
        return Ok(());
    };
    let count = |key: &str| answers.get(key).and_then(Value::as_u64).unwrap_or(0);
    m.schedule_requests
        .get_or_create(labels)
        .inc_by(count("packets_sent"));
    m.schedule_replies
        .get_or_create(labels)
        .inc_by(count("packets_received"));
    let histogram = m.schedule_rtt.get_or_create(labels);
    for rtt in answers["rtts"].as_array().into_iter().flatten() {
        if let Some(ms) = rtt.as_f64() {
            histogram.observe(super::probe::seconds_of_ms(ms));
        }
    }
    Ok(())
}

/// The record with the target's answers: a `Host` (ping, or multiping's
/// entry for the target) or a traceroute's last hop.
fn answers<'v>(result: &'v Value, target: &str) -> Option<&'v Value> {
    super::probe::host_of(result, target).or_else(|| {
        result
            .as_array()?
            .last()
            .filter(|hop| hop.get("distance").is_some())
    })
}
