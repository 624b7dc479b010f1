//! http-statistics, ported from the official Scope plugin: on each process that
//! serves HTTP, the requests it reads per second and the responses it writes per
//! second for each status code.
//!
//! The original attached kprobes through bcc in a privileged container; here
//! the host counts with eBPF on syscall tracepoints and hands the plugin only
//! the counters (`http-traffic`, granted explicitly). Rates are the growth of
//! the counters between two reports over the time between them, and the last
//! `HISTORY` of them are kept per process so the UI draws a sparkline.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use scope_plugin::http_traffic::{self, HttpTrafficError, ProcessCounters};
use scope_plugin::*;

/// Rates kept per process (one per report: 15 s at the probe's 1 s cadence).
const HISTORY: usize = 15;
const REQUESTS_METRIC: &str = "http_requests_per_second";

/// One reading of a process's counters.
#[derive(Clone, Default)]
struct Totals {
    requests: u64,
    responses: BTreeMap<u16, u64>,
}

impl From<&ProcessCounters> for Totals {
    fn from(counters: &ProcessCounters) -> Self {
        Self {
            requests: counters.total_requests(),
            responses: counters.responses.iter().map(|r| (r.code, r.count)).collect(),
        }
    }
}

/// Rates over one interval.
struct Rates {
    at: TimestampMs,
    requests: f64,
    responses: BTreeMap<u16, f64>,
}

#[derive(Default)]
struct HttpStatistics {
    /// The previous reading: when, and every process's totals then.
    previous: Option<(TimestampMs, BTreeMap<u32, Totals>)>,
    /// Recent rates of each live process, oldest first.
    history: BTreeMap<u32, VecDeque<Rates>>,
}

impl HttpStatistics {
    /// Reads the counters and appends each process's rates since the previous reading.
    fn update(&mut self) -> Result<(), String> {
        let counters = http_traffic::counters().map_err(|err| match err {
            HttpTrafficError::Unavailable(why) => format!("HTTP statistics are unavailable on this host: {why}"),
            HttpTrafficError::Denied(why) => format!("HTTP statistics are not allowed: {why}"),
            HttpTrafficError::Timeout => "the host did not answer in time".to_owned(),
        })?;
        let now = host::now();
        let totals: BTreeMap<u32, Totals> = counters.iter().map(|c| (c.pid, Totals::from(c))).collect();
        if let Some((then, before)) = &self.previous
            && now > *then
        {
            let seconds = (now - then) as f64 / 1000.0;
            for (pid, current) in &totals {
                // A process first seen now had all its traffic since the previous reading.
                let base = before.get(pid).cloned().unwrap_or_default();
                if current.requests < base.requests {
                    continue; // the PID was reused: no rate this time
                }
                let responses = current
                    .responses
                    .iter()
                    .map(|(code, count)| (*code, count.saturating_sub(base.responses.get(code).copied().unwrap_or(0)) as f64 / seconds))
                    .collect();
                let rates = Rates { at: now, requests: (current.requests - base.requests) as f64 / seconds, responses };
                let history = self.history.entry(*pid).or_default();
                if history.len() == HISTORY {
                    history.pop_front();
                }
                history.push_back(rates);
            }
        }
        // Processes that exited are no longer counted.
        self.history.retain(|pid, _| totals.contains_key(pid));
        self.previous = Some((now, totals));
        Ok(())
    }

    fn render(&self) -> Report {
        let hostname = host::hostname();
        let mut topology = Topology::new(TopologyKind::Process)
            .metric_template(MetricTemplate::new(REQUESTS_METRIC, "HTTP Req/Second").priority(0.1));
        let mut codes_shown = BTreeSet::new();
        for (pid, history) in &self.history {
            let mut node = Node::new(ids::process(&hostname, *pid))
                .metric(series(REQUESTS_METRIC, history.iter().map(|r| (r.at, r.requests))));
            // Only codes this process answered with lately, as the original.
            let codes: BTreeSet<u16> = history
                .iter()
                .flat_map(|r| r.responses.iter().filter(|(_, rate)| **rate > 0.0).map(|(code, _)| *code))
                .collect();
            for code in codes {
                let rates = history.iter().map(|r| (r.at, r.responses.get(&code).copied().unwrap_or(0.0)));
                node = node.metric(series(&response_metric(code), rates));
                codes_shown.insert(code);
            }
            topology = topology.node(node);
        }
        for code in codes_shown {
            let template = MetricTemplate::new(response_metric(code), format!("HTTP Resp {code}/Second"))
                .priority(f64::from(code) / 1000.0);
            topology = topology.metric_template(template);
        }
        Report::new().with(topology)
    }
}

fn response_metric(code: u16) -> String {
    format!("http_{code}_responses_per_second")
}

/// A metric from (time, rate) samples, scaled from 0 to its highest rate.
fn series(key: &str, samples: impl Iterator<Item = (TimestampMs, f64)>) -> Metric {
    let mut metric = Metric::new(key, 0.0, 0.0);
    for (at, rate) in samples {
        metric = metric.sample(at, rate);
        metric.max = metric.max.max(rate);
    }
    metric
}

impl Plugin for HttpStatistics {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("HTTP Statistics", "Adds http request metrics to processes")
    }

    fn report(&mut self) -> Result<Report, String> {
        self.update()?;
        Ok(self.render())
    }
}

export_plugin!(HttpStatistics);
