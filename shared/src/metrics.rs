//! Writing the metrics lines: one invocation's line (with its duration and throttles) and the
//! per-region lines, on stdout, where CloudWatch Logs turns them into metrics. The names, units
//! and documents are the core's ([`backup_core::metrics`]).

use crate::config::Config;
pub use backup_core::metrics::*;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::io::Write;

/// One invocation's metrics: started when the handler starts, finished (and written) with the
/// counts of its result, or none when it failed before it had one.
#[derive(Debug)]
pub struct Invocation {
    publisher: Publisher,
    started: std::time::Instant,
    throttles_before: u64,
}

impl Invocation {
    /// `throttles` is the adapters' throttle count so far (`Ec2::throttles`,
    /// `Clients::throttles`).
    pub fn start(config: &Config, function: &'static str, throttles: u64) -> Self {
        Self {
            publisher: Publisher::new(config, function),
            started: std::time::Instant::now(),
            throttles_before: throttles,
        }
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// The invocation's line, with `Throttles`, `Continuations` and `Duration` after `counts`,
    /// followed by `more` (per-region lines); written to stdout, and returned for the tests.
    pub fn finish(
        self,
        counts: Values,
        more: Vec<Value>,
        throttles: u64,
        continuations: usize,
        at: DateTime<Utc>,
    ) -> Vec<Value> {
        let mut values = counts;
        values.push((
            Metric::Throttles,
            throttles.saturating_sub(self.throttles_before) as f64,
        ));
        values.push((Metric::Continuations, count(continuations)));
        values.push((
            Metric::Duration,
            self.started.elapsed().as_secs_f64() * 1000.0,
        ));
        let mut documents = vec![self.publisher.invocation(&values, at)];
        documents.extend(more);
        emit(&documents);
        documents
    }
}

/// Where lines go instead of stdout: tests route them through the test harness's capture
/// (`print!`), which a raw write to stdout bypasses.
static WRITER: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Sends every line to `writer` from now on (tests only; the first call wins).
pub fn set_writer(writer: fn(&str)) {
    let _ = WRITER.set(writer);
}

/// Writes each document as one line on stdout, in one write per line so that log lines of
/// other threads cannot interleave with it. A failed write is logged, never fatal.
pub fn emit(documents: &[Value]) {
    let writer = WRITER
        .get()
        .copied()
        .or(cfg!(test).then_some((|l: &str| print!("{l}")) as fn(&str)));
    let stdout = std::io::stdout();
    for d in documents {
        let mut line = d.to_string();
        line.push('\n');
        if let Some(w) = writer {
            w(&line);
            continue;
        }
        let mut out = stdout.lock();
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|_| out.flush()) {
            tracing::warn!(error = %e, "could not write the metrics line");
        }
    }
}

/// `shared/metrics.json`, the one list.
pub const JSON: &str = include_str!("../metrics.json");

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn list() -> Value {
        serde_json::from_str(JSON).expect("metrics.json parses")
    }

    #[test]
    fn every_metric_is_in_the_list_with_its_unit_and_nothing_else_is() {
        let units: BTreeMap<String, String> =
            serde_json::from_value(list()["units"].clone()).unwrap();
        let ours: BTreeMap<String, String> = Metric::ALL
            .iter()
            .map(|m| (m.name().to_string(), m.unit().as_str().to_string()))
            .collect();
        assert_eq!(ours, units);
        assert_eq!(list()["namespace"], Config::default().metrics_namespace);
    }

    #[test]
    fn every_function_lists_only_known_metrics_and_dimension_sets() {
        let l = list();
        for (function, sets) in l["functions"].as_object().unwrap() {
            for (set, names) in sets.as_object().unwrap() {
                assert!(l["dimensions"].get(set).is_some(), "{function}: {set}");
                for name in names.as_array().unwrap() {
                    assert!(
                        Metric::ALL.iter().any(|m| m.name() == name),
                        "{function}: {name}"
                    );
                }
            }
        }
    }
}
