//! `replicate`: copies each original backup of this region into its DR regions.
//!
//! Layout:
//! - `event`: the payloads (AMI state change, EBS snapshot notification, the schedule, ids),
//!   parsed into [`ReplicateRequest`].
//! - `plan`: pure decisions (is it an original of ours, where does it go, which copies are
//!   missing, the copy's tags, name, token and encryption).
//! - `report`: the result.
//!
//! A run: describe the sources in the home region; describe the copies of ours in each
//! destination (one paginated describe per destination and kind, never one per backup);
//! plan; copy with bounded concurrency; then write `P:copies` on each original.

pub use backup_core::replicate::event;
pub use backup_core::replicate::plan;

mod share;
mod vault;

use crate::report::Failed;
pub use crate::report::ReplicateReport;
pub use event::{Completion, ReplicateRequest, ReplicateWork, parse_body, parse_replicate_request};

use crate::backup::{Backup, BackupQuery, Copies, State};
use crate::clients::Clients;
use crate::config::Config;
use crate::ec2::Ec2;
use crate::error::Error;
use crate::invocation::{Function, Setting};
use crate::region::Region;
use crate::report::Common;
use crate::sqs::WorkQueue;
use crate::tags::{Kind, TagKeys, key};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use plan::{Copied, CopyJob, CopyOutcome, Eligible};
use std::collections::BTreeMap;
use tracing::{error, info, warn};

/// Copy calls in flight at once, over all destinations. CopyImage's request bucket refills at
/// one per second and CopySnapshot allows 20 copies in flight: a few at a time, with the SDK's
/// retries on throttling, stays well inside both.
pub const COPY_CONCURRENCY: usize = 4;

/// A CreateTags call's usual time, with room to spare: what the record step needs of the
/// deadline for each round of writes it makes at once.
const TAG_CALL_TIME: std::time::Duration = std::time::Duration::from_millis(250);

/// Why an event from `region` is not for the function of `home`, if it is one (an event that
/// names no region is taken as home's).
fn not_home(home: &Region, region: &Option<String>) -> Option<String> {
    region
        .as_deref()
        .filter(|r| *r != home.as_str())
        .map(|r| format!("the event is from {r}; this function replicates backups of {home}"))
}

/// Whether the run looks at the named backups or sweeps the region.
enum Scope {
    Named,
    Sweep,
}

/// What one invocation works with.
struct Run<'a> {
    config: &'a Config,
    keys: TagKeys,
    clients: &'a Clients,
    home: Ec2,
}

impl Run<'_> {
    /// Why an event from another region is not for this function, if it is one.
    fn not_home(&self, region: &Option<String>) -> Option<String> {
        not_home(self.home.region(), region)
    }

    async fn by_id(&self, kind: Kind, ids: &[String]) -> Result<Vec<Backup>, Error> {
        self.home
            .backups(&self.keys, &BackupQuery::by_id(kind, ids))
            .await
    }
}

/// One invocation, from the parsed request to the report, in named steps: read the sources,
/// decide which are eligible and where they go, find the copies already there, plan the missing
/// ones, copy, and record the copies on each original. Fails as a whole only when the home
/// region cannot be read.
pub async fn run(
    config: &Config,
    clients: &Clients,
    request: ReplicateRequest,
    now: DateTime<Utc>,
) -> Result<ReplicateReport, Error> {
    let run = Run {
        config,
        keys: TagKeys::new(&config.tag_prefix),
        clients,
        home: clients.home(),
    };
    let mut report = ReplicateReport::new(config.dry_run);
    // A vault's continuation: the shares it names (shareSnapshot notifications now due,
    // deferred copies), or its copies to lock once usable.
    let request = match request {
        ReplicateRequest::Continued(work) if !work.to_lock.is_empty() => {
            let named: Vec<(Region, Kind, String)> = work
                .to_lock
                .iter()
                .filter_map(|c| Some((Region::parse(&c.region).ok()?, c.kind()?, c.id.clone())))
                .collect();
            vault::lock_named(&run, &named, now, &mut report).await;
            report.sort();
            return Ok(report);
        }
        ReplicateRequest::Continued(work) if !work.shared.is_empty() => {
            ReplicateRequest::Shared(work.shared.iter().map(|s| s.notice()).collect())
        }
        other => other,
    };
    if let ReplicateRequest::Shared(notices) = request {
        vault::run(&run, Some(notices), now, &mut report).await;
        report.sort();
        return Ok(report);
    }
    let sweep = matches!(request, ReplicateRequest::Sweep { .. });
    let Some((sources, scope)) = read_sources(&run, request, &mut report).await? else {
        return Ok(report);
    };
    // Sharing with the DR account looks at the same sources, copied or not.
    let to_share = config.dr_account.is_some().then(|| sources.clone());
    // A vault's own copies named by their `available` events: locked now.
    let vault_copies: Vec<Backup> = sources
        .iter()
        .filter(|b| config.is_vault() && b.source_account.is_some())
        .cloned()
        .collect();
    let mut eligible = eligible(&run, sources, &mut report);
    let existing = find_copies(&run, &scope, &mut eligible, &mut report).await;
    let plan = plan::missing_copies(&run.keys, config, &eligible, &existing, now);
    report.skipped.extend(plan.skipped);
    report.deferred.extend(plan.deferred);
    report.common.warnings.extend(plan.warnings);
    for d in &report.deferred {
        warn!(source = %d.source, region = %d.region, reason = %d.reason, "copy deferred");
    }
    let due = tag_writes(&run.keys, &eligible, &plan.existing)
        .into_iter()
        .map(|(id, _)| id.to_string());
    let made = copy_all(&run, plan.jobs, Records::new(due), &mut report).await;
    if !config.dry_run {
        let known: Vec<Copied> = plan.existing.into_iter().chain(made).collect();
        record_copies(&run, &eligible, &known, &mut report).await;
    }
    if let Some(sources) = to_share {
        share::run(&run, &sources, &mut report).await;
    }
    if config.is_vault() {
        if sweep {
            vault::run(&run, None, now, &mut report).await;
        } else if !vault_copies.is_empty() && !config.dry_run {
            vault::protect(&run, &vault_copies, now, &mut report).await;
        }
    }
    report.sort();
    Ok(report)
}

/// Step 1: the backups the request is about, described at home; `None` when the request is
/// settled without a copy (ignored, failed, from another region).
async fn read_sources(
    run: &Run<'_>,
    request: ReplicateRequest,
    report: &mut ReplicateReport,
) -> Result<Option<(Vec<Backup>, Scope)>, Error> {
    match request {
        ReplicateRequest::Ignored { source, reason, .. } => {
            info!(source = %source, reason = %reason, "event ignored");
            report.skip(&source, None, reason);
            Ok(None)
        }
        ReplicateRequest::ImageFailed {
            region,
            id,
            message,
            ..
        } => {
            match run.not_home(&region) {
                Some(reason) => report.skip(&id, None, reason),
                None => failed_image(run, &id, &message, report).await?,
            }
            Ok(None)
        }
        ReplicateRequest::Completed(events) => {
            // A repeated event (EventBridge delivers at least once) is one source.
            let (mut images, mut snapshots) = (Vec::new(), Vec::new());
            for event in events {
                if let Some(reason) = run.not_home(&event.region) {
                    report.skip(&event.id, None, reason);
                    continue;
                }
                let ids = match event.kind {
                    Kind::Image => &mut images,
                    Kind::Snapshot => &mut snapshots,
                };
                if !ids.contains(&event.id) {
                    ids.push(event.id);
                }
            }
            named(run, images, snapshots, true, report).await
        }
        ReplicateRequest::OnDemand {
            image_ids,
            snapshot_ids,
        } => named(run, image_ids, snapshot_ids, false, report).await,
        ReplicateRequest::Continued(work) => {
            named(run, work.image_ids, work.snapshot_ids, true, report).await
        }
        ReplicateRequest::Shared(_) => Ok(None),
        ReplicateRequest::Sweep { .. } => {
            let mut found = Vec::new();
            for kind in [Kind::Image, Kind::Snapshot] {
                let originals = BackupQuery::managed(kind, &run.config.deployment_name)
                    .in_states([State::ready(kind)])
                    .copies(Copies::None);
                found.extend(run.home.backups(&run.keys, &originals).await?);
            }
            Ok(Some((found, Scope::Sweep)))
        }
    }
}

/// The named backups of an on-demand request, a continuation or events, described at home,
/// one describe per kind (200 ids a call). One that is not there fails an on-demand request
/// (a person named it), but is only skipped otherwise (it went away since, e.g. expired).
async fn named(
    run: &Run<'_>,
    image_ids: Vec<String>,
    snapshot_ids: Vec<String>,
    continued: bool,
    report: &mut ReplicateReport,
) -> Result<Option<(Vec<Backup>, Scope)>, Error> {
    let mut found = Vec::new();
    for (kind, ids) in [(Kind::Image, image_ids), (Kind::Snapshot, snapshot_ids)] {
        if ids.is_empty() {
            continue;
        }
        let described = run.by_id(kind, &ids).await?;
        let home = run.home.region();
        for id in ids
            .iter()
            .filter(|id| !described.iter().any(|b| &b.id == *id))
        {
            if continued {
                report.skip(
                    id,
                    None,
                    format!("{} {id} is no longer in {home}", kind.as_str()),
                );
                continue;
            }
            report.failed.push(Failed {
                id: None,
                source: id.clone(),
                region: Some(home.clone()),
                error: format!("{} {id} was not found in {home}", kind.as_str()),
                code: Some(kind.not_found_code().into()),
            });
        }
        found.extend(described);
    }
    Ok(Some((found, Scope::Named)))
}

/// A failed AMI: nothing to copy, but a person must hear of it when it is ours.
async fn failed_image(
    run: &Run<'_>,
    id: &str,
    message: &str,
    report: &mut ReplicateReport,
) -> Result<(), Error> {
    let found = run.by_id(Kind::Image, &[id.to_string()]).await?;
    let ours = found
        .iter()
        .any(|b| b.managed_by.as_deref() == Some(run.config.deployment_name.as_str()));
    if ours || found.is_empty() {
        // Not found: a failed AMI may already be gone; still worth a person's attention.
        error!(image_id = %id, region = %run.home.region(), error_message = %message, "backup AMI failed");
        let message = if message.is_empty() {
            "no message"
        } else {
            message
        };
        report.skip(
            id,
            None,
            format!("the AMI failed ({message}): nothing to copy; expire removes failed AMIs"),
        );
    } else {
        report.skip(
            id,
            None,
            "a failed AMI that is not a backup of this deployment",
        );
    }
    Ok(())
}

/// Step 2: which sources are originals of ours to copy, and where to.
fn eligible(run: &Run<'_>, sources: Vec<Backup>, report: &mut ReplicateReport) -> Vec<Eligible> {
    let mut eligible = Vec::new();
    for backup in sources {
        match plan::copy_targets(&run.keys, run.config, &backup, &mut report.common.warnings) {
            Ok(targets) => eligible.push(Eligible { backup, targets }),
            Err(reason) => {
                info!(source = %backup.id, reason = %reason, "not copied");
                report.skip(&backup.id, None, reason);
            }
        }
    }
    eligible
}

/// The copies of one kind found in one destination, or why they could not be read.
type Lookup = ((Region, Kind), Result<Vec<Backup>, Error>);

/// The copies of ours in every destination the sources go to: one paginated describe per
/// destination and kind. A destination that cannot be read fails its copies, not the others.
/// Step 3: the copies of ours in every destination the sources go to.
async fn find_copies(
    run: &Run<'_>,
    scope: &Scope,
    eligible: &mut [Eligible],
    report: &mut ReplicateReport,
) -> Vec<Backup> {
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
            let ec2 = run.clients.region(&region);
            // An AMI copy's snapshots carry kind=image: they are not snapshot copies.
            let copies = match scope {
                Scope::Named => Copies::Of(ids),
                Scope::Sweep => Copies::All,
            };
            let query = BackupQuery::managed(kind, &run.config.deployment_name).copies(copies);
            let found = ec2.backups(&run.keys, &query).await;
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
                        if plan::is_deferrable(&e) {
                            let d = plan::deferred(&el.backup.id, &region, kind, &e);
                            report.deferred.push(d);
                        } else {
                            report.failed.push(Failed::from_error(
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

/// The originals the record step will write `P:copies` on: those that do not list yet a copy
/// found in a destination, and those with a copy started (or starting) in this run, each with
/// the number of its copies that hold it there.
struct Records(std::sync::Mutex<BTreeMap<String, usize>>);

impl Records {
    fn new(due: impl IntoIterator<Item = String>) -> Self {
        Self(std::sync::Mutex::new(
            due.into_iter().map(|id| (id, 1)).collect(),
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, usize>> {
        // A poisoned lock only means another task panicked while holding it; the counts are
        // still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a copy of `source` about to start: how many originals the record step then writes.
    fn start(&self, source: &str) -> usize {
        let mut records = self.lock();
        *records.entry(source.to_string()).or_default() += 1;
        records.len()
    }

    /// A copy of `source` that made none.
    fn unstart(&self, source: &str) {
        let mut records = self.lock();
        if let Some(n) = records.get_mut(source) {
            *n -= 1;
            if *n == 0 {
                records.remove(source);
            }
        }
    }
}

/// What the record step needs of the deadline, before its margin, for `writes` CreateTags at
/// home: their turns in CreateTags' bucket, a call's time for each round of
/// [`COPY_CONCURRENCY`] writes, and one for the last copies to return.
fn record_time(home: &Ec2, writes: usize) -> std::time::Duration {
    let rounds = writes.div_ceil(COPY_CONCURRENCY) + 1;
    home.pace_wait("CreateTags", writes) + TAG_CALL_TIME * u32::try_from(rounds).unwrap_or(u32::MAX)
}

/// Step 5: the copy calls (a few at a time); in a dry run, reports them instead. Returns the
/// copies made.
///
/// A copy is started only while the deadline leaves room for the record step after it (the
/// writes of the copies started so far, this one's included): a copy started is done, and
/// one that would leave no time to record it is deferred and handed on, as one the deadline
/// cut off.
async fn copy_all(
    run: &Run<'_>,
    jobs: Vec<CopyJob>,
    records: Records,
    report: &mut ReplicateReport,
) -> Vec<Copied> {
    if run.config.dry_run {
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
    let records = &records;
    let outcomes: Vec<(CopyJob, CopyOutcome)> = stream::iter(jobs)
        .map(|job| async move {
            let room = record_time(&run.home, records.start(&job.source_id));
            let ec2 = run.clients.region(&job.destination).keeping(room);
            let outcome = copy_one(run, &ec2, &job).await;
            log_copy(&job, &outcome);
            if !matches!(outcome, CopyOutcome::Started(_)) {
                records.unstart(&job.source_id);
            }
            (job, outcome)
        })
        .buffer_unordered(COPY_CONCURRENCY)
        .collect()
        .await;
    let mut made = Vec::new();
    for (job, outcome) in outcomes {
        let (source, region) = (job.source_id, job.destination);
        match outcome {
            CopyOutcome::Started(id) => {
                let copied = Copied {
                    source,
                    region,
                    id: Some(id),
                };
                report.copied.push(copied.clone());
                made.push(copied);
            }
            CopyOutcome::StillThere(listed) => {
                let reason = format!("already copied to {region} as {listed}");
                report.skip(&source, Some(&region), reason);
            }
            CopyOutcome::Concurrent(reason) => report.skip(&source, Some(&region), reason),
            CopyOutcome::Deferred(d) => report.deferred.push(d),
            CopyOutcome::Failed(e) => {
                report
                    .failed
                    .push(Failed::from_error(&source, Some(&region), &e))
            }
        }
    }
    made
}

/// One copy job on `ec2` (the destination's adapter).
async fn copy_one(run: &Run<'_>, ec2: &Ec2, job: &CopyJob) -> CopyOutcome {
    // The original lists a copy here that the describe did not show: only a copy that is
    // really gone is made again (a fresh copy can be missing from a describe).
    if let Some(listed) = &job.listed_copy {
        let query = BackupQuery::by_id(job.kind, std::slice::from_ref(listed));
        match ec2.backups(&run.keys, &query).await {
            Ok(found) if found.iter().any(Backup::is_live) => {
                return CopyOutcome::StillThere(listed.clone());
            }
            Ok(_) => {}
            Err(e) => return CopyOutcome::of(job, Err(e)),
        }
    }
    let result = match job.kind {
        Kind::Image => ec2.copy_image(job).await,
        Kind::Snapshot => ec2.copy_snapshot(job).await,
    };
    CopyOutcome::of(job, result)
}

/// One copy's log line, written as its call ends (a timeout then loses none).
fn log_copy(job: &CopyJob, outcome: &CopyOutcome) {
    let (source, region) = (&job.source_id, &job.destination);
    match outcome {
        CopyOutcome::Started(id) => {
            info!(source = %source, region = %region, copy_id = %id, "copy started")
        }
        CopyOutcome::StillThere(listed) => {
            info!(source = %source, region = %region, copy_id = %listed, "listed copy is there")
        }
        CopyOutcome::Concurrent(_) => {
            info!(source = %source, region = %region, name = %job.name, "already copied by a concurrent invocation")
        }
        CopyOutcome::Deferred(d) => {
            warn!(source = %source, region = %region, code = d.code.as_deref().unwrap_or(""), error = %d.reason, "copy deferred")
        }
        CopyOutcome::Failed(e) => {
            error!(source = %source, region = %region, error = %e, code = e.code().unwrap_or(""), "copy failed")
        }
    }
}

/// The `P:copies` writes that `copies` call for: each original whose value (`region=copy-id,...`,
/// merged with what is there) changes, with its new value.
fn tag_writes<'a>(
    keys: &TagKeys,
    eligible: &'a [Eligible],
    copies: &[Copied],
) -> Vec<(&'a str, String)> {
    eligible
        .iter()
        .filter_map(|Eligible { backup, .. }| {
            let pairs: Vec<(Region, String)> = copies
                .iter()
                .filter(|c| c.source == backup.id)
                .filter_map(|c| Some((c.region.clone(), c.id.clone()?)))
                .collect();
            if pairs.is_empty() {
                return None;
            }
            let current = current_copies(keys, backup);
            let value = plan::merge_copies(current, &pairs);
            (current != Some(value.as_str())).then_some((backup.id.as_str(), value))
        })
        .collect()
}

/// Step 6: writes `P:copies` (`region=copy-id,...`, merged with what is there) on each original whose
/// value changes: a person sees its DR state at a glance. One CreateTags per original (the
/// values differ), a few at a time, paced by CreateTags' bucket.
///
/// A write the deadline leaves no time for is not a failure: the copy is made, and the next run
/// that looks at the original (a continuation, a replayed event, the reconcile sweep) finds the
/// copy by its own `P:copy-of` tag and writes the value then.
async fn record_copies(
    run: &Run<'_>,
    eligible: &[Eligible],
    copies: &[Copied],
    report: &mut ReplicateReport,
) {
    let (keys, home) = (&run.keys, &run.home);
    let copies_key = keys.key(key::COPIES);
    let writes = tag_writes(keys, eligible, copies);
    let failures: Vec<Failed> = stream::iter(writes)
        .map(|(id, value)| {
            let tag = vec![(copies_key.clone(), value)];
            async move {
                match home.tag_resources(&[id.to_string()], &tag).await {
                    Ok(()) => {
                        info!(source = %id, copies = %tag[0].1, "copies recorded");
                        None
                    }
                    Err(e @ Error::Deadline { .. }) => {
                        info!(source = %id, copies = %tag[0].1, error = %e, "copies not recorded: no time left; the next run records them");
                        None
                    }
                    Err(e) => {
                        warn!(source = %id, error = %e, "cannot record the copies on the original");
                        Some(Failed::from_error(id, Some(home.region()), &e))
                    }
                }
            }
        })
        .buffer_unordered(COPY_CONCURRENCY)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    report.failed.extend(failures);
}

fn current_copies<'a>(keys: &TagKeys, backup: &'a Backup) -> Option<&'a str> {
    keys.get(&backup.tags, key::COPIES)
}

use backup_core::replicate::FUNCTION;

/// replicate as the invocation pipeline runs it (see [`crate::invocation`]).
pub struct Replicate<'a> {
    pub setting: Setting<'a>,
    pub clients: Clients,
}

impl Function for Replicate<'_> {
    type Request = ReplicateRequest;
    type Report = ReplicateReport;

    fn span(&self, request: &ReplicateRequest) -> tracing::Span {
        tracing::info_span!("replicate", event_id = request.event_id().unwrap_or(""))
    }
    /// The copies made, then the deferred ones handed on.
    async fn run(&self, request: ReplicateRequest) -> Result<ReplicateReport, Error> {
        let attempt = match &request {
            ReplicateRequest::Continued(work) => work.attempt + 1,
            _ => 0,
        };
        let Setting { config, queue, now } = self.setting;
        let mut early = ReplicateReport::new(config.dry_run);
        let request = match (request, queue) {
            (ReplicateRequest::Shared(notices), Some(queue)) if !config.dry_run => {
                let rest = defer_share_notifications(config, queue, notices, &mut early).await;
                if rest.is_empty() {
                    early.sort();
                    return Ok(early);
                }
                ReplicateRequest::Shared(rest)
            }
            (request, _) => request,
        };
        let mut report = run(config, &self.clients, request, now).await?;
        report.merge(early);
        if let Some(queue) = queue
            && !config.dry_run
        {
            hand_on(config, queue, attempt, &mut report).await;
        }
        Ok(report)
    }
    /// The `available` events of this region in one SQS batch (from a standard queue: a FIFO
    /// queue's records are done in order, one by one), done as one run: one describe of their
    /// sources at home, one of their copies per destination, the copies paced together. Returns
    /// each of those records' answer by its place in the batch (its sources' part of the run's
    /// report, see [`record_outcome`]), and the messages the run sent to the work queue. The
    /// other records (continuations, a failed AMI, another region's event, a body refused) are
    /// done one by one, but a vault's shares (`Backup Shared` events, `shareSnapshot`
    /// notifications), which are one run of their own.
    async fn batch(
        &self,
        records: &[aws_lambda_events::sqs::SqsMessage],
    ) -> (BTreeMap<usize, Result<serde_json::Value, Error>>, usize) {
        let home = self.clients.home().region().clone();
        let mut events = Vec::new();
        let mut members = Vec::new();
        // A vault's shares (Backup Shared events, shareSnapshot notifications) of the batch, as
        // one run too: one describe of what is shared, one of the copies per region.
        let mut shares = Vec::new();
        let mut share_members = Vec::new();
        for (i, record) in records.iter().enumerate() {
            if crate::continuation::is_fifo(record) {
                continue;
            }
            let parsed = parse_body(self.setting.config, record.body.as_deref().unwrap_or(""));
            if let Ok(ReplicateRequest::Shared(notices)) = &parsed {
                let message_id = record.message_id.as_deref().unwrap_or("");
                for n in notices {
                    info!(message_id, event_id = n.event_id.as_deref().unwrap_or(""), backup = %n.backup, "share joins the batch's run");
                }
                share_members.push((
                    i,
                    notices.iter().map(|n| n.backup.clone()).collect::<Vec<_>>(),
                ));
                shares.extend(notices.iter().cloned());
                continue;
            }
            let Ok(ReplicateRequest::Completed(completed)) = parsed else {
                continue;
            };
            // Another region's event is skipped in its own record, with its reason.
            if completed
                .iter()
                .any(|c| not_home(&home, &c.region).is_some())
            {
                continue;
            }
            let message_id = record.message_id.as_deref().unwrap_or("");
            for c in &completed {
                info!(message_id, event_id = c.event_id.as_deref().unwrap_or(""), source = %c.id, "event joins the batch's run");
            }
            members.push((
                i,
                completed.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
            ));
            events.extend(completed);
        }
        let mut outcomes = BTreeMap::new();
        let mut continuations = 0;
        for (request, members) in [
            (ReplicateRequest::Completed(events), members),
            (ReplicateRequest::Shared(shares), share_members),
        ] {
            if members.is_empty() {
                continue;
            }
            let report = crate::invocation::run_and_publish(self, Ok(request))
                .await
                .0;
            continuations += report.as_ref().map_or(0, |r| r.common.continuations);
            for (i, sources) in members {
                outcomes.insert(i, record_outcome(&report, &sources));
            }
        }
        (outcomes, continuations)
    }
    fn parse(&self, payload: &serde_json::Value) -> Result<ReplicateRequest, Error> {
        parse_replicate_request(payload)
    }
    /// A continuation, or an EventBridge event its rules put on the queue.
    fn parse_body(&self, body: &str) -> Result<ReplicateRequest, Error> {
        parse_body(self.setting.config, body)
    }
    fn name(&self) -> &'static str {
        FUNCTION
    }
    fn setting(&self) -> Setting<'_> {
        self.setting
    }
    fn throttles(&self) -> u64 {
        self.clients.throttles()
    }
}

impl crate::invocation::Report for ReplicateReport {
    fn log(&self) {
        info!(
            copied = self.copied.len(),
            skipped = self.skipped.len(),
            deferred = self.deferred.len(),
            failed = self.failed.len(),
            warnings = self.common.warnings.len(),
            continuations = self.common.continuations,
            dry_run = self.common.dry_run,
            "done"
        );
    }
    fn metric_values(&self) -> crate::metrics::Values {
        ReplicateReport::metric_values(self)
    }
    fn metric_values_by_region(&self) -> BTreeMap<Region, crate::metrics::Values> {
        ReplicateReport::metric_values_by_region(self)
    }
    fn failed(&self) -> usize {
        self.failed.len()
    }
    fn common(&mut self) -> Option<&mut Common> {
        Some(&mut self.common)
    }
}

/// The whole handler (see [`crate::invocation::handle`]): the one request it was invoked with,
/// or an SQS event of its work queue, whose `available` events are done together as one run
/// ([`Replicate::batch`]), then the other records one by one.
pub async fn handle(
    config: &Config,
    clients: &Clients,
    queue: Option<&WorkQueue>,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, Error> {
    let replicate = Replicate {
        setting: Setting { config, queue, now },
        clients: clients.clone(),
    };
    crate::invocation::handle(&replicate, payload).await
}

/// One record's outcome in a batch's run: what the run did for its sources; the run's error
/// when it failed as a whole; unfinished when its deferred copies could not be handed on
/// (done again, it finds the copies made).
fn record_outcome(
    report: &Result<ReplicateReport, Error>,
    sources: &[String],
) -> Result<serde_json::Value, Error> {
    let report = report.as_ref().map_err(Clone::clone)?;
    let mine = report.of_sources(sources);
    let unfinished = report.common.unfinished.clone().filter(|_| {
        mine.deferred
            .iter()
            .any(|d| report.not_handed_on.contains(&d.source))
    });
    let failed = mine.failed.len();
    crate::report::into_outcome_unless_unfinished(mine, failed, unfinished)
}

/// A vault's `shareSnapshot` notifications (those with no `Backup Shared` claim) handed on to
/// the work queue, due in [`SHARE_NOTIFICATION_DELAY`] seconds: the `Backup Shared` event of the
/// same share, handled meanwhile, makes the copies, and the notification then finds them (it
/// still copies a share whose event was lost). Returns the notices to act on now. A queue that
/// refuses them: they are acted on now.
async fn defer_share_notifications(
    config: &Config,
    queue: &WorkQueue,
    notices: Vec<crate::dr::SharedNotice>,
    report: &mut ReplicateReport,
) -> Vec<crate::dr::SharedNotice> {
    let (hints, now): (Vec<_>, Vec<_>) = notices
        .into_iter()
        .partition(|n| n.claimed.is_none() && n.kind == Kind::Snapshot && config.is_vault());
    if hints.is_empty() {
        return now;
    }
    let work = ReplicateWork {
        image_ids: Vec::new(),
        snapshot_ids: Vec::new(),
        attempt: 0,
        shared: hints.iter().map(event::SharedBackup::of).collect(),
        to_lock: Vec::new(),
    };
    let what = "shareSnapshot notifications";
    let delay = event::SHARE_NOTIFICATION_DELAY;
    match crate::continuation::hand_on(queue, config, FUNCTION, what, &[work], delay).await {
        Ok(sent) => {
            report.common.continuations += sent;
            for n in &hints {
                report.skip(
                    &n.backup,
                    None,
                    format!("deferred: a shareSnapshot notification is acted on {delay} s later, once the Backup Shared event of the same share has made the copies"),
                );
            }
            now
        }
        Err(reason) => {
            warn!(reason = %reason, "shareSnapshot notifications acted on now");
            now.into_iter().chain(hints).collect()
        }
    }
}

/// Hands the deferred copies on: those that wait on a limit or on throttling in a delayed
/// message, those the deadline cut off at once. Past [`MAX_ATTEMPTS`] they are left to the
/// reconcile sweep. A queue that refuses them is a failure (the sweep still finds them).
async fn hand_on(config: &Config, queue: &WorkQueue, attempt: u32, report: &mut ReplicateReport) {
    if !report.follow_up.is_empty() {
        if attempt <= event::MAX_ATTEMPTS {
            hand_on_vault_work(config, queue, attempt, report).await;
        } else {
            let why = "the vault's shares and copies to lock were handed on too often: left to the reconcile sweep";
            warn!(attempt, "{why}");
            report
                .common
                .warnings
                .push(crate::tags::Warning::new("", "", "", why));
        }
    }
    if attempt > event::MAX_ATTEMPTS {
        if !report.deferred.is_empty() {
            warn!(
                attempt,
                deferred = report.deferred.len(),
                "handed on too often: left to the reconcile sweep"
            );
        }
        return;
    }
    for wait in [false, true] {
        let mut work = ReplicateWork {
            image_ids: Vec::new(),
            snapshot_ids: Vec::new(),
            attempt,
            shared: Vec::new(),
            to_lock: Vec::new(),
        };
        // One message per source: a source goes at once when any of its copies was cut off by
        // the deadline, delayed only when all of them wait (on a limit or on throttling).
        let all_wait = |source: &str| {
            report
                .deferred
                .iter()
                .filter(|d| d.source == source)
                .all(|d| d.wait)
        };
        // A vault's deferred copies go as the shares they are of (below), not as ours.
        let vault_share = |source: &str| {
            report
                .follow_up
                .shared
                .iter()
                .any(|(_, _, id)| id == source)
        };
        for d in report
            .deferred
            .iter()
            .filter(|d| all_wait(&d.source) == wait && !vault_share(&d.source))
        {
            let ids = match d.kind {
                Kind::Image => &mut work.image_ids,
                Kind::Snapshot => &mut work.snapshot_ids,
            };
            if !ids.contains(&d.source) {
                ids.push(d.source.clone());
            }
        }
        let works: Vec<ReplicateWork> = chunks(&work.image_ids)
            .map(|ids| ReplicateWork {
                image_ids: ids.to_vec(),
                snapshot_ids: Vec::new(),
                attempt,
                shared: Vec::new(),
                to_lock: Vec::new(),
            })
            .chain(chunks(&work.snapshot_ids).map(|ids| ReplicateWork {
                image_ids: Vec::new(),
                snapshot_ids: ids.to_vec(),
                attempt,
                shared: Vec::new(),
                to_lock: Vec::new(),
            }))
            .collect();
        if works.is_empty() {
            continue;
        }
        let delay = if wait {
            ReplicateWork::delay_seconds(attempt)
        } else {
            0
        };
        let what = "the deferred copies";
        match crate::continuation::hand_on(queue, config, FUNCTION, what, &works, delay).await {
            Ok(sent) => report.common.continuations += sent,
            Err(reason) => {
                report.common.unfinished = Some(reason);
                let ids = works
                    .iter()
                    .flat_map(|w| w.image_ids.iter().chain(&w.snapshot_ids));
                report.not_handed_on.extend(ids.cloned());
            }
        }
    }
}

/// A vault's follow-up (see [`crate::report::VaultFollowUp`]): the shares whose copies were
/// deferred, and the copies to lock once usable, each looked at again after
/// [`ReplicateWork::delay_seconds`].
async fn hand_on_vault_work(
    config: &Config,
    queue: &WorkQueue,
    attempt: u32,
    report: &mut ReplicateReport,
) {
    let follow = std::mem::take(&mut report.follow_up);
    let shared: Vec<event::SharedBackup> = follow
        .shared
        .iter()
        .map(|(account, kind, id)| event::SharedBackup {
            account: account.clone(),
            kind: kind.as_str().to_string(),
            backup: id.clone(),
            region: None,
        })
        .collect();
    let to_lock: Vec<event::CopyToLock> = follow
        .to_lock
        .iter()
        .map(|(region, kind, id)| event::CopyToLock {
            region: region.to_string(),
            kind: kind.as_str().to_string(),
            id: id.clone(),
        })
        .collect();
    let mut works = Vec::new();
    for chunk in shared.chunks(crate::continuation::IDS_PER_MESSAGE) {
        works.push(ReplicateWork {
            image_ids: Vec::new(),
            snapshot_ids: Vec::new(),
            attempt,
            shared: chunk.to_vec(),
            to_lock: Vec::new(),
        });
    }
    for chunk in to_lock.chunks(crate::continuation::IDS_PER_MESSAGE) {
        works.push(ReplicateWork {
            image_ids: Vec::new(),
            snapshot_ids: Vec::new(),
            attempt,
            shared: Vec::new(),
            to_lock: chunk.to_vec(),
        });
    }
    let what = "the vault's shares to copy and copies to lock";
    let delay = ReplicateWork::delay_seconds(attempt);
    match crate::continuation::hand_on(queue, config, FUNCTION, what, &works, delay).await {
        Ok(sent) => report.common.continuations += sent,
        // The sweep copies and locks them; the result says so.
        Err(reason) => {
            warn!(reason = %reason, "left to the reconcile sweep");
            report.common.warnings.push(crate::tags::Warning::new(
                "",
                "",
                "",
                format!("{reason}: the reconcile sweep copies and locks them"),
            ));
        }
    }
}

fn chunks(ids: &[String]) -> std::slice::Chunks<'_, String> {
    ids.chunks(crate::continuation::IDS_PER_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Copied, Deferred, Failed};

    fn dr() -> Region {
        Region::parse("us-west-2").unwrap()
    }

    /// A batch's run: `ami-1` copied, `ami-2` failed, `ami-3` and `ami-5` deferred (`ami-3`'s not
    /// handed on when the run is `unfinished`).
    fn run_report(unfinished: Option<&str>) -> ReplicateReport {
        let mut report = ReplicateReport::new(false);
        report.copied.push(Copied {
            source: "ami-1".into(),
            region: dr(),
            id: Some("ami-9".into()),
        });
        report.failed.push(Failed {
            id: None,
            source: "ami-2".into(),
            region: Some(dr()),
            error: "CopyImage failed".into(),
            code: Some("InvalidParameter".into()),
        });
        report.deferred.push(Deferred {
            source: "ami-3".into(),
            region: dr(),
            kind: Kind::Image,
            reason: "limit".into(),
            code: Some("ResourceLimitExceeded".into()),
            wait: true,
        });
        // Handed on in the other message (at once, not delayed), which the queue took.
        report.deferred.push(Deferred {
            source: "ami-5".into(),
            region: dr(),
            kind: Kind::Image,
            reason: "the deadline".into(),
            code: None,
            wait: false,
        });
        report.common.continuations = 1;
        report.common.unfinished = unfinished.map(str::to_string);
        if unfinished.is_some() {
            report.not_handed_on.push("ami-3".into());
        }
        report
    }

    fn ids(id: &str) -> Vec<String> {
        vec![id.to_string()]
    }

    #[test]
    fn each_record_of_a_batch_answers_for_its_own_sources() {
        let report = Ok(run_report(None));
        let done = record_outcome(&report, &ids("ami-1")).unwrap();
        assert_eq!(done["copied"][0]["source"], "ami-1");
        assert_eq!(done["failed"], serde_json::json!([]));
        assert!(done.get("continuations").is_none(), "{done}");
        match record_outcome(&report, &ids("ami-2")) {
            Err(Error::SomeFailed { failed: 1, result }) => {
                assert!(!result.contains("ami-1"), "{result}")
            }
            other => panic!("{other:?}"),
        }
        // Deferred and handed on: done.
        let deferred = record_outcome(&report, &ids("ami-3")).unwrap();
        assert_eq!(deferred["deferred"][0]["source"], "ami-3");
    }

    #[test]
    fn a_batch_whose_hand_on_failed_leaves_unfinished_only_the_records_not_handed_on() {
        let report = Ok(run_report(Some("the queue refused")));
        assert!(record_outcome(&report, &ids("ami-1")).is_ok());
        assert!(record_outcome(&report, &ids("ami-5")).is_ok());
        match record_outcome(&report, &ids("ami-3")) {
            Err(Error::Unfinished { reason, .. }) => assert_eq!(reason, "the queue refused"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_that_failed_as_a_whole_fails_every_record_with_its_error() {
        let report = Err(Error::Deadline {
            operation: "DescribeImages",
            region: "us-east-1".into(),
        });
        for id in ["ami-1", "ami-4"] {
            assert!(matches!(
                record_outcome(&report, &ids(id)),
                Err(Error::Deadline { .. })
            ));
        }
    }
}
