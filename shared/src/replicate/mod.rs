//! `replicate`: copies each original backup of this region into its DR regions.
//!
//! Layout:
//! - `event`: the payloads (AMI state change, EBS snapshot notification, the schedule, ids),
//!   parsed into [`ReplicateRequest`].
//! - `plan`: pure decisions (is it an original of ours, where does it go, which copies are
//!   missing, the copy's tags, name, token and encryption).
//! - `adapter`: the EC2 calls, in an `impl Ec2` of this module's own.
//! - `report`: the result.
//!
//! A run: describe the sources in the home region; describe the copies of ours in each
//! destination (one paginated describe per destination and kind, never one per backup);
//! plan; copy with bounded concurrency; then write `P:copies` on each original.

pub mod adapter;
pub mod event;
pub mod plan;
pub mod report;

pub use event::{ReplicateRequest, parse_replicate_request};
pub use report::{CopyFailed, ReplicateReport};

use crate::clients::Clients;
use crate::config::Config;
use crate::error::Error;
use crate::region::Region;
use crate::tags::{Kind, TagKeys, key};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use plan::{Backup, Copied, CopyJob, Deferred, Eligible, ExistingCopy};
use std::collections::BTreeMap;
use tracing::{Instrument, error, info, warn};

/// Copy calls in flight at once, over all destinations. CopyImage's request bucket refills at
/// one per second and CopySnapshot allows 20 copies in flight: a few at a time, with the SDK's
/// retries on throttling, stays well inside both.
pub const COPY_CONCURRENCY: usize = 4;

/// Answers that mean "not now": the copy is left for the next reconcile sweep.
pub const DEFERRED_CODES: &[&str] = &[
    "ResourceLimitExceeded",
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ConcurrentSnapshotLimitExceeded",
];

pub fn is_deferrable(err: &Error) -> bool {
    err.code().is_some_and(|c| DEFERRED_CODES.contains(&c))
}

/// Whether the run looks at the named backups or sweeps the region.
enum Scope {
    Named,
    Sweep,
}

/// One invocation, from the parsed request to the report. Fails as a whole only when the home
/// region cannot be read.
pub async fn run(
    config: &Config,
    clients: &Clients,
    request: ReplicateRequest,
    now: DateTime<Utc>,
) -> Result<ReplicateReport, Error> {
    let keys = TagKeys::new(&config.tag_prefix);
    let home_region = clients.home_region().clone();
    let home = clients.home();
    let mut report = ReplicateReport::new(config.dry_run);
    let from_elsewhere = |region: &Option<String>| {
        region
            .as_deref()
            .filter(|r| *r != home_region.as_str())
            .map(|r| {
                format!("the event is from {r}; this function replicates backups of {home_region}")
            })
    };

    let (sources, scope) = match request {
        ReplicateRequest::Ignored { source, reason, .. } => {
            info!(source = %source, reason = %reason, "event ignored");
            report.skip(&source, None, reason);
            return Ok(report);
        }
        ReplicateRequest::ImageFailed {
            region,
            id,
            message,
            ..
        } => {
            if let Some(reason) = from_elsewhere(&region) {
                report.skip(&id, None, reason);
                return Ok(report);
            }
            let found = home
                .backups_by_id(Kind::Image, std::slice::from_ref(&id))
                .await?;
            let ours = found.iter().any(|b| {
                keys.get(&b.tags, key::MANAGED_BY) == Some(config.deployment_name.as_str())
            });
            if ours || found.is_empty() {
                // Not found: a failed AMI may already be gone; still worth a person's attention.
                error!(image_id = %id, region = %home_region, error_message = %message, "backup AMI failed");
                report.skip(
                    &id,
                    None,
                    format!(
                        "the AMI failed ({}): nothing to copy; expire removes failed AMIs",
                        if message.is_empty() {
                            "no message"
                        } else {
                            &message
                        }
                    ),
                );
            } else {
                report.skip(
                    &id,
                    None,
                    "a failed AMI that is not a backup of this deployment",
                );
            }
            return Ok(report);
        }
        ReplicateRequest::Completed {
            region, kind, id, ..
        } => {
            if let Some(reason) = from_elsewhere(&region) {
                report.skip(&id, None, reason);
                return Ok(report);
            }
            let found = home.backups_by_id(kind, std::slice::from_ref(&id)).await?;
            if found.is_empty() {
                report.skip(
                    &id,
                    None,
                    format!(
                        "{} {id} is not in {home_region} (deleted since?)",
                        kind.as_str()
                    ),
                );
            }
            (found, Scope::Named)
        }
        ReplicateRequest::OnDemand {
            image_ids,
            snapshot_ids,
        } => {
            let mut found = Vec::new();
            for (kind, ids) in [(Kind::Image, image_ids), (Kind::Snapshot, snapshot_ids)] {
                if ids.is_empty() {
                    continue;
                }
                let described = home.backups_by_id(kind, &ids).await?;
                for id in ids
                    .iter()
                    .filter(|id| !described.iter().any(|b| &b.id == *id))
                {
                    report.failed.push(CopyFailed {
                        source: id.clone(),
                        region: Some(home_region.clone()),
                        error: format!("{} {id} was not found in {home_region}", kind.as_str()),
                        code: Some(match kind {
                            Kind::Image => "InvalidAMIID.NotFound".into(),
                            Kind::Snapshot => "InvalidSnapshot.NotFound".into(),
                        }),
                    });
                }
                found.extend(described);
            }
            (found, Scope::Named)
        }
        ReplicateRequest::Sweep { .. } => {
            let mut found = home
                .original_backups(&keys, &config.deployment_name, Kind::Image)
                .await?;
            found.extend(
                home.original_backups(&keys, &config.deployment_name, Kind::Snapshot)
                    .await?,
            );
            (found, Scope::Sweep)
        }
    };

    let mut eligible = Vec::new();
    for backup in sources {
        match plan::copy_targets(&keys, config, &backup, &mut report.warnings) {
            Ok(targets) => eligible.push(Eligible { backup, targets }),
            Err(reason) => {
                info!(source = %backup.id, reason = %reason, "not copied");
                report.skip(&backup.id, None, reason);
            }
        }
    }

    let existing = find_copies(config, &keys, clients, &scope, &mut eligible, &mut report).await;
    let plan = plan::missing_copies(&keys, config, &eligible, &existing, now);
    report.skipped.extend(plan.skipped);
    report.deferred.extend(plan.deferred);
    report.warnings.extend(plan.warnings);
    for d in &report.deferred {
        warn!(source = %d.source, region = %d.region, reason = %d.reason, "copy deferred");
    }

    let made = copy_all(clients, plan.jobs, config.dry_run, &mut report).await;
    if !config.dry_run {
        let known: Vec<Copied> = plan.existing.into_iter().chain(made).collect();
        record_copies(&keys, clients, &eligible, &known, &mut report).await;
    }
    report.sort();
    Ok(report)
}

/// The copies of one kind found in one destination, or why they could not be read.
type Lookup = ((Region, Kind), Result<Vec<ExistingCopy>, Error>);

/// The copies of ours in every destination the sources go to: one paginated describe per
/// destination and kind. A destination that cannot be read fails its copies, not the others.
async fn find_copies(
    config: &Config,
    keys: &TagKeys,
    clients: &Clients,
    scope: &Scope,
    eligible: &mut [Eligible],
    report: &mut ReplicateReport,
) -> Vec<ExistingCopy> {
    let mut lookups: BTreeMap<(Region, &'static str), (Kind, Vec<String>)> = BTreeMap::new();
    for e in eligible.iter() {
        for region in &e.targets {
            lookups
                .entry((region.clone(), e.backup.kind.as_str()))
                .or_insert_with(|| (e.backup.kind, Vec::new()))
                .1
                .push(e.backup.id.clone());
        }
    }
    let results: Vec<Lookup> = stream::iter(lookups)
        .map(|((region, _), (kind, ids))| async move {
            let ec2 = clients.region(&region);
            let of = match scope {
                Scope::Named => Some(ids.as_slice()),
                Scope::Sweep => None,
            };
            let found = ec2.copies(keys, &config.deployment_name, kind, of).await;
            ((region, kind), found)
        })
        .buffer_unordered(COPY_CONCURRENCY)
        .collect()
        .await;
    let mut existing = Vec::new();
    for ((region, kind), result) in results {
        match result {
            Ok(found) => existing.extend(found),
            Err(e) => {
                warn!(region = %region, error = %e, "cannot read the copies in a destination");
                for el in eligible.iter_mut().filter(|el| el.backup.kind == kind) {
                    if el.targets.contains(&region) {
                        el.targets.retain(|r| r != &region);
                        if is_deferrable(&e) {
                            report.deferred.push(Deferred {
                                source: el.backup.id.clone(),
                                region: region.clone(),
                                reason: e.to_string(),
                                code: e.code().map(str::to_string),
                            });
                        } else {
                            report.failed.push(CopyFailed::from_error(
                                &el.backup.id,
                                Some(&region),
                                &e,
                            ));
                        }
                    }
                }
            }
        }
    }
    existing
}

/// Runs the copy calls (a few at a time); in a dry run, reports them instead. Returns the
/// copies made.
/// Why a copy job made no copy.
enum Listed {
    /// The copy the original lists is there after all.
    StillThere,
    Error(Error),
}

async fn copy_all(
    clients: &Clients,
    jobs: Vec<CopyJob>,
    dry_run: bool,
    report: &mut ReplicateReport,
) -> Vec<Copied> {
    if dry_run {
        for job in jobs {
            info!(source = %job.source_id, region = %job.destination, "dry run: would copy");
            report.copied.push(Copied {
                source: job.source_id,
                region: job.destination,
                id: None,
            });
        }
        return Vec::new();
    }
    let outcomes: Vec<(CopyJob, Result<String, Listed>)> = stream::iter(jobs)
        .map(|job| async move {
            let ec2 = clients.region(&job.destination);
            // The original lists a copy here that the describe did not show: only a copy that
            // is really gone is made again (a fresh copy can be missing from a describe).
            if let Some(listed) = &job.listed_copy {
                match ec2
                    .backups_by_id(job.kind, std::slice::from_ref(listed))
                    .await
                {
                    Ok(found)
                        if found.iter().any(|b| {
                            matches!(b.state.as_str(), "pending" | "available" | "completed")
                        }) =>
                    {
                        return (job, Err(Listed::StillThere));
                    }
                    Ok(_) => {}
                    Err(e) => return (job, Err(Listed::Error(e))),
                }
            }
            let result = match job.kind {
                Kind::Image => ec2.copy_image(&job).await,
                Kind::Snapshot => ec2.copy_snapshot(&job).await,
            };
            (job, result.map_err(Listed::Error))
        })
        .buffer_unordered(COPY_CONCURRENCY)
        .collect()
        .await;
    let mut made = Vec::new();
    for (job, result) in outcomes {
        match result {
            Ok(id) => {
                info!(source = %job.source_id, region = %job.destination, copy_id = %id, "copy started");
                let copied = Copied {
                    source: job.source_id,
                    region: job.destination,
                    id: Some(id),
                };
                report.copied.push(copied.clone());
                made.push(copied);
            }
            Err(Listed::StillThere) => {
                let listed = job.listed_copy.as_deref().unwrap_or_default();
                info!(source = %job.source_id, region = %job.destination, copy_id = %listed, "listed copy is there");
                report.skip(
                    &job.source_id,
                    Some(&job.destination),
                    format!("already copied to {} as {listed}", job.destination),
                );
            }
            // AMI names are unique per region and the copy's name is derived from its source:
            // a concurrent invocation (with a token of its own) copied it first.
            Err(Listed::Error(e)) if e.code() == Some("InvalidAMIName.Duplicate") => {
                info!(source = %job.source_id, region = %job.destination, name = %job.name, "already copied by a concurrent invocation");
                report.skip(
                    &job.source_id,
                    Some(&job.destination),
                    format!(
                        "an AMI named {:?} already exists in {}: copied by a concurrent invocation",
                        job.name, job.destination
                    ),
                );
            }
            Err(Listed::Error(e)) if is_deferrable(&e) => {
                warn!(source = %job.source_id, region = %job.destination, code = e.code().unwrap_or(""), "copy deferred to the next sweep");
                report.deferred.push(Deferred {
                    source: job.source_id,
                    region: job.destination,
                    reason: format!("{e}; left for the next reconcile sweep"),
                    code: e.code().map(str::to_string),
                });
            }
            Err(Listed::Error(e)) => {
                error!(source = %job.source_id, region = %job.destination, error = %e, code = e.code().unwrap_or(""), "copy failed");
                report.failed.push(CopyFailed::from_error(
                    &job.source_id,
                    Some(&job.destination),
                    &e,
                ));
            }
        }
    }
    made
}

/// Writes `P:copies` (`region=copy-id,...`, merged with what is there) on each original whose
/// value changes: a person sees its DR state at a glance.
async fn record_copies(
    keys: &TagKeys,
    clients: &Clients,
    eligible: &[Eligible],
    copies: &[Copied],
    report: &mut ReplicateReport,
) {
    let home = clients.home();
    let copies_key = keys.key(key::COPIES);
    for Eligible { backup, .. } in eligible {
        let pairs: Vec<(Region, String)> = copies
            .iter()
            .filter(|c| c.source == backup.id)
            .filter_map(|c| Some((c.region.clone(), c.id.clone()?)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let current = current_copies(keys, backup);
        let value = plan::merge_copies(current, &pairs);
        if current == Some(value.as_str()) {
            continue;
        }
        match home.set_tag(&backup.id, &copies_key, &value).await {
            Ok(()) => info!(source = %backup.id, copies = %value, "copies recorded"),
            Err(e) => {
                warn!(source = %backup.id, error = %e, "cannot record the copies on the original");
                report
                    .failed
                    .push(CopyFailed::from_error(&backup.id, Some(home.region()), &e));
            }
        }
    }
}

fn current_copies<'a>(keys: &TagKeys, backup: &'a Backup) -> Option<&'a str> {
    keys.get(&backup.tags, key::COPIES)
}

/// The whole handler: parse, run in a span carrying the event id, and turn the report into the
/// invocation's outcome (an error only when something failed).
pub async fn handle(
    config: &Config,
    clients: &Clients,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, Error> {
    let request = parse_replicate_request(payload).inspect_err(|e| {
        warn!(error = %e, "rejected payload");
    })?;
    // Instrument, not enter: a span guard held across an await would leak into other tasks.
    let span = tracing::info_span!("replicate", event_id = request.event_id().unwrap_or(""));
    let report = run(config, clients, request, now)
        .instrument(span.clone())
        .await?;
    let _enter = span.enter();
    info!(
        copied = report.copied.len(),
        skipped = report.skipped.len(),
        deferred = report.deferred.len(),
        failed = report.failed.len(),
        warnings = report.warnings.len(),
        dry_run = report.dry_run,
        "done"
    );
    let failed = report.failed.len();
    crate::report::into_outcome(report, failed)
}
