//! CloudWatch metrics in the embedded metric format (EMF): the names, units and dimension sets,
//! and the JSON document of one line. The invocation pipeline writes the lines to stdout, where
//! CloudWatch Logs turns them into metrics.
//!
//! The names are part of the contract, like the tag keys: `shared/metrics.json` is the one list,
//! and [`Metric`] names each entry of it once (a unit test holds the two together).
//!
//! A small writer of our own rather than a crate such as `metrics_cloudwatch_embedded`: we emit
//! a handful of counts once per invocation, with dimension values that change per line (the
//! region of a monitor line, the destination of a copy), which a global recorder with fixed
//! dimensions does not fit; and serde_json, which every function already links, is all it needs.

use crate::config::Config;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The unit CloudWatch records a metric in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

macro_rules! metrics {
    ($($name:ident: $unit:ident),* $(,)?) => {
        /// Every metric a function publishes (`shared/metrics.json`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric { $($name),* }

        impl Metric {
            pub const ALL: &'static [Metric] = &[$(Metric::$name),*];

            /// The metric's name in CloudWatch.
            pub fn name(self) -> &'static str {
                match self { $(Metric::$name => stringify!($name)),* }
            }

            pub fn unit(self) -> Unit {
                match self { $(Metric::$name => Unit::$unit),* }
            }
        }
    };
}

metrics! {
    BackupsCreated: Count,
    BackupsSkipped: Count,
    BackupsFailed: Count,
    Warnings: Count,
    CopiesStarted: Count,
    CopiesSkipped: Count,
    CopiesDeferred: Count,
    CopiesFailed: Count,
    ImagesDeregistered: Count,
    SnapshotsDeleted: Count,
    BackupsKept: Count,
    DeletesFailed: Count,
    Throttles: Count,
    Continuations: Count,
    Duration: Milliseconds,
    Protected: Count,
    Late: Count,
    WithoutBackup: Count,
    CopiesMissing: Count,
    PendingTooLong: Count,
    OrphanedSnapshots: Count,
    WorstRpoSeconds: Seconds,
    DrillsPassed: Count,
    DrillsFailed: Count,
    DrillsTimedOut: Count,
    RestoreSeconds: Seconds,
    NotDrilled: Count,
    NotShared: Count,
    WorstDrRpoSeconds: Seconds,
    Unlocked: Count,
    SharedNotCopied: Count,
}

/// The values of one EMF line.
pub type Values = Vec<(Metric, f64)>;

/// One EMF document: the namespace, one dimension set with its values, and the metrics, at
/// `at`. Serialized as one line (no newline inside).
pub fn document(
    namespace: &str,
    dimensions: &[(&str, &str)],
    values: &[(Metric, f64)],
    at: DateTime<Utc>,
) -> Value {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": values
                    .iter()
                    .map(|(m, _)| json!({"Name": m.name(), "Unit": m.unit().as_str()}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), Value::String((*v).into()));
    }
    for (m, v) in values {
        // Counts are whole numbers; a duration in milliseconds keeps its fraction.
        let number = if v.fract() == 0.0 && v.abs() < 9.0e15 {
            json!(*v as i64)
        } else {
            json!((*v * 1000.0).round() / 1000.0)
        };
        root.insert(m.name().into(), number);
    }
    Value::Object(root)
}

/// Where a function's metrics go: the namespace and the `Deployment` dimension from the
/// configuration, the `Function` dimension from the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    pub namespace: String,
    pub deployment: String,
    pub function: &'static str,
    /// A dry run publishes under `[Deployment, Function, DryRun]`, never under the dimensions
    /// that alarms and the dashboard read: what it would have done is visible, and no alarm
    /// counts work that was not done.
    pub dry_run: bool,
}

impl Publisher {
    pub fn new(config: &Config, function: &'static str) -> Self {
        Self {
            namespace: config.metrics_namespace.clone(),
            deployment: config.deployment_name.clone(),
            function,
            dry_run: config.dry_run,
        }
    }

    /// The function's line: its counts under `[Deployment, Function]` (a dry run: with
    /// `DryRun`).
    pub fn invocation(&self, values: &[(Metric, f64)], at: DateTime<Utc>) -> Value {
        let mut dims = vec![
            ("Deployment", self.deployment.as_str()),
            ("Function", self.function),
        ];
        if self.dry_run {
            dims.push(("DryRun", "true"));
        }
        document(&self.namespace, &dims, values, at)
    }

    /// A line for one region: `[Deployment, Function, Region]` for a function's per-destination
    /// counts (`with_function`), or `[Deployment, Region]` for monitor's.
    pub fn for_region(
        &self,
        region: &str,
        with_function: bool,
        values: &[(Metric, f64)],
        at: DateTime<Utc>,
    ) -> Value {
        let mut dims = vec![("Deployment", self.deployment.as_str())];
        if with_function {
            dims.push(("Function", self.function));
        }
        dims.push(("Region", region));
        document(&self.namespace, &dims, values, at)
    }

    /// A line for one source account of a vault: `[Deployment, SourceAccount]`.
    pub fn for_source_account(
        &self,
        account: &str,
        values: &[(Metric, f64)],
        at: DateTime<Utc>,
    ) -> Value {
        document(
            &self.namespace,
            &[
                ("Deployment", self.deployment.as_str()),
                ("SourceAccount", account),
            ],
            values,
            at,
        )
    }

    /// A line for the whole deployment: `[Deployment]` (monitor's totals over the regions).
    pub fn for_deployment(&self, values: &[(Metric, f64)], at: DateTime<Utc>) -> Value {
        document(
            &self.namespace,
            &[("Deployment", self.deployment.as_str())],
            values,
            at,
        )
    }
}

/// `n` as a metric value.
pub fn count(n: usize) -> f64 {
    n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_document_follows_the_emf_specification() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let p = Publisher::new(&Config::default(), "create-image");
        let d = p.invocation(
            &[(Metric::BackupsCreated, 3.0), (Metric::Duration, 12.5)],
            at,
        );
        let aws = &d["_aws"];
        assert_eq!(aws["Timestamp"], 1_796_119_200_123_i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "EC2Backup");
        assert_eq!(directive["Dimensions"], json!([["Deployment", "Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "BackupsCreated", "Unit": "Count"}, {"Name": "Duration", "Unit": "Milliseconds"}])
        );
        assert_eq!(d["Deployment"], "ec2-backup");
        assert_eq!(d["Function"], "create-image");
        assert_eq!(d["BackupsCreated"], 3);
        assert_eq!(d["Duration"], 12.5);
        assert!(!d.to_string().contains('\n'));
    }

    #[test]
    fn a_dry_run_publishes_under_its_own_dimension_set() {
        let config = Config {
            dry_run: true,
            ..Config::default()
        };
        let d = Publisher::new(&config, "expire").invocation(&[], Utc::now());
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Deployment", "Function", "DryRun"]])
        );
        assert_eq!(d["DryRun"], "true");
    }
}
