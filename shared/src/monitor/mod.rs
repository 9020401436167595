//! monitor: where the deployment stands, on a schedule, as metrics and a result: per region, the
//! resources protected, late and without a backup, the worst recovery point, the DR copies
//! missing, the backups stuck pending and the orphaned snapshots. It only reads (describes).
//!
//! Layout:
//! - `summary`: the pure figures and lists, from what `status::gather` read and the
//!   `status::status` rows (the same code as the CLI's `ec2-backup status`);
//! - here: the payload, the run, the log lines and the metrics.

pub use backup_core::monitor::request::{MonitorRequest, parse_monitor_request};
pub use backup_core::monitor::summary;

pub use crate::report::{Figures, Finding, MissingCopy, MonitorReport};
pub use summary::summarize;

use crate::clients::Clients;
use crate::config::Config;
use crate::error::Error;
use crate::invocation::{Function, Report, Setting};
use crate::metrics::{Publisher, Values};
use crate::report::LIST_LIMIT;
use crate::status::{Listing, gather, status};
use crate::tags::TagKeys;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{info, warn};

/// One run: gather (every region's full listing, for the orphans), the status rows, the
/// summary; a log line per finding as it is known, and one per region.
pub async fn run(
    config: &Config,
    clients: &Clients,
    now: DateTime<Utc>,
) -> Result<MonitorReport, Error> {
    let keys = TagKeys::new(&config.tag_prefix);
    let home = clients.home_region();
    let inputs = gather(config, &keys, clients, &[], Listing::Everything)
        .await
        .inspect_err(|e| {
            warn!(error = %e.source, code = e.source.code().unwrap_or(""), doing = %e.doing, "could not read: no figures this run");
        })?;
    let rows = status(
        home,
        &[],
        &inputs.resources,
        &inputs.backups,
        &inputs.existing_sources,
        now,
    )
    .rows;
    let mut report = summarize(home, &inputs, &rows, config, now);
    dr_figures(
        config,
        &keys,
        clients,
        &inputs.regions,
        &inputs.backups,
        &mut report,
        now,
    )
    .await?;
    log(&report);
    report.cap(LIST_LIMIT);
    Ok(report)
}

/// The isolated DR account's figures: at home `NotShared`; in a vault, per source account,
/// `WorstDrRpoSeconds`, `Unlocked` and `SharedNotCopied` (one DescribeLockedSnapshots per region
/// read, and one describe per kind of what the source accounts share).
async fn dr_figures(
    config: &Config,
    keys: &TagKeys,
    clients: &Clients,
    regions: &[crate::region::Region],
    backups: &[crate::backup::Backup],
    report: &mut MonitorReport,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let home = clients.home_region();
    if config.dr_account.is_some() {
        let not_shared = crate::dr::share::not_shared(config, home, backups, now);
        report.regions.entry(home.clone()).or_default().not_shared = not_shared.len();
        for b in not_shared {
            report.dr_findings.push(crate::report::Stuck {
                backup: b.id.clone(),
                source: b.source.clone(),
                region: b.region.clone(),
                reason: format!(
                    "not shared with the DR account {} after {}",
                    config.dr_account.as_deref().unwrap_or(""),
                    config.copy_grace
                ),
            });
        }
    }
    if config.is_vault() {
        // What cannot be read leaves the vault's figures out of this run (their alarms see no
        // data), not the rest of monitor's.
        let read = async {
            let mut locks = std::collections::HashMap::new();
            for region in regions {
                locks.extend(clients.region(region).locked_snapshots().await?);
            }
            let mut shared = Vec::new();
            for kind in [crate::tags::Kind::Image, crate::tags::Kind::Snapshot] {
                let found = clients
                    .home()
                    .shared_with_me(keys, kind, Some(&config.source_accounts), None)
                    .await?;
                shared.extend(found);
            }
            Ok::<_, Error>((locks, shared))
        };
        let (locks, shared) = match read.await {
            Ok(read) => read,
            Err(e) => {
                warn!(error = %e, code = e.code().unwrap_or(""), "could not read the vault's locks or shares: no vault figures this run");
                return Ok(());
            }
        };
        let (vault, findings) =
            crate::dr::vault::figures(keys, config, home, backups, &shared, &locks, now);
        report.vault = vault;
        report.dr_findings.extend(findings);
    }
    Ok(())
}

/// One `warn` line per late, unprotected or uncopied resource and per backup stuck pending
/// (every one, however long the lists are), with `resource`, `region`, `reason` (and `backup`),
/// and one `info` line per region.
fn log(report: &MonitorReport) {
    for f in &report.late {
        warn!(resource = %f.resource, region = %f.region, reason = %f.reason, "resource late");
    }
    for f in &report.without_backup {
        warn!(resource = %f.resource, region = %f.region, reason = %f.reason, "resource without backup");
    }
    for c in &report.copies_missing {
        warn!(resource = c.source.as_deref().unwrap_or(""), backup = %c.backup, region = %c.region, reason = %c.reason, "copy missing");
    }
    for s in &report.stuck {
        warn!(resource = s.source.as_deref().unwrap_or(""), backup = %s.backup, region = %s.region, reason = %s.reason, "backup pending too long");
    }
    for s in &report.dr_findings {
        warn!(resource = s.source.as_deref().unwrap_or(""), backup = %s.backup, region = %s.region, reason = %s.reason, "DR account");
    }
    for (account, f) in &report.vault {
        info!(
            source_account = %account,
            resources = f.resources,
            worst_dr_rpo_seconds = f.worst_dr_rpo_seconds,
            unlocked = f.unlocked,
            shared_not_copied = f.shared_not_copied,
            "source account summary"
        );
    }
    for (region, f) in &report.regions {
        info!(
            region = %region,
            protected = f.protected,
            late = f.late,
            without_backup = f.without_backup,
            copies_missing = f.copies_missing,
            pending_too_long = f.pending_too_long,
            orphaned_snapshots = f.orphaned_snapshots,
            worst_rpo_seconds = f.worst_rpo_seconds,
            not_drilled = f.not_drilled,
            not_shared = f.not_shared,
            "region summary"
        );
    }
}

/// The figures' EMF lines: one `[Deployment, Region]` per region, then the `[Deployment]`
/// totals; a vault's figures under `[Deployment, SourceAccount]`, and their totals under
/// `[Deployment]`.
pub fn documents(publisher: &Publisher, report: &MonitorReport, now: DateTime<Utc>) -> Vec<Value> {
    let mut docs: Vec<Value> = report
        .regions
        .iter()
        .map(|(region, f)| publisher.for_region(region.as_str(), false, &f.metric_values(), now))
        .collect();
    docs.push(publisher.for_deployment(&report.total().metric_values(), now));
    // A vault: per source account, and over all of them (what the alarms read).
    for (account, f) in &report.vault {
        docs.push(publisher.for_source_account(account, &f.metric_values(), now));
    }
    if !report.vault.is_empty() {
        let total = crate::report::VaultFigures::total(report.vault.values());
        docs.push(publisher.for_deployment(&total.metric_values(), now));
    }
    docs
}

/// monitor as the invocation pipeline runs it (see [`crate::invocation`]).
pub struct Monitor {
    /// The configuration, but never a dry run: monitor never writes, so a dry run reads and
    /// publishes as always, under the dimensions alarms read (a DryRun line is for work not
    /// done).
    config: Config,
    clients: Clients,
    now: DateTime<Utc>,
}

impl Monitor {
    pub fn new(config: &Config, clients: Clients, now: DateTime<Utc>) -> Self {
        let config = Config {
            dry_run: false,
            ..config.clone()
        };
        Self {
            config,
            clients,
            now,
        }
    }
}

impl Function for Monitor {
    type Request = MonitorRequest;
    type Report = MonitorReport;
    const READS_A_QUEUE: bool = false;

    fn span(&self, request: &MonitorRequest) -> tracing::Span {
        tracing::info_span!(
            "monitor",
            event_id = request.event_id.as_deref().unwrap_or("")
        )
    }
    async fn run(&self, _request: MonitorRequest) -> Result<MonitorReport, Error> {
        run(&self.config, &self.clients, self.now).await
    }
    fn parse(&self, payload: &Value) -> Result<MonitorRequest, Error> {
        parse_monitor_request(payload)
    }
    fn name(&self) -> &'static str {
        "monitor"
    }
    fn setting(&self) -> Setting<'_> {
        Setting {
            config: &self.config,
            queue: None,
            now: self.now,
        }
    }
    fn throttles(&self) -> u64 {
        self.clients.throttles()
    }
}

impl Report for MonitorReport {
    /// Its figures are lines of their own ([`documents`]), not counts of the invocation.
    fn metric_values(&self) -> Values {
        Vec::new()
    }
    fn documents(&self, publisher: &Publisher, now: DateTime<Utc>) -> Vec<Value> {
        documents(publisher, self, now)
    }
    fn failed(&self) -> usize {
        0
    }
    /// Its findings are logged as the run finds them.
    fn log(&self) {}
    /// Its lists are capped by the run ([`MonitorReport::cap`]).
    fn into_answer(self) -> Result<Value, Error> {
        crate::report::into_outcome(self, 0)
    }
}

/// The whole handler: parse, run in a span carrying the event id, publish, and return the
/// report (an error when the payload is refused or a region could not be read; the
/// invocation's own metrics line is written either way).
pub async fn handle(
    config: &Config,
    clients: &Clients,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<Value, Error> {
    let monitor = Monitor::new(config, clients.clone(), now);
    crate::invocation::handle(&monitor, payload).await
}

/// [`handle`], also returning the EMF documents it wrote (for the tests).
pub async fn handle_published(
    config: &Config,
    clients: &Clients,
    payload: &Value,
    now: DateTime<Utc>,
) -> (Result<Value, Error>, Vec<Value>) {
    let monitor = Monitor::new(config, clients.clone(), now);
    let (report, documents) =
        crate::invocation::run_and_publish(&monitor, monitor.parse(payload)).await;
    (report.and_then(Report::into_answer), documents)
}

#[cfg(test)]
mod tests;
