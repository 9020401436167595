//! expire: deletes this deployment's expired backups in every region it may have left them,
//! never the last good one, and never leaves an untracked snapshot behind.
//!
//! Layout:
//! - `plan`: the pure rules (what is deleted, what is kept and why) and the regions swept;
//! - here: the payloads, the crash-safe order of the deletions, and the report.
//!
//! An image is deleted in steps, so that a crash at any point leaves nothing a later run cannot
//! find: (1) its snapshots get our `P:managed-by` and `P:expires-at` if they lack them (those
//! without any tag of ours only once a describe shows no one else manages them), (2)
//! DeregisterImage, with DeleteAssociatedSnapshots when every snapshot it lists goes, (3)
//! DeleteSnapshot of each snapshot (2) did not answer for. A snapshot left by a crash after (2),
//! or that (2) could not delete, is an orphan: ours, expired, used by no image, deleted by the
//! next run.

pub use backup_core::expire::plan;
pub use backup_core::expire::request::{
    ExpireRequest, ExpireWork, FUNCTION, MAX_ATTEMPTS, parse_expire_request,
};

use crate::backup::{Backup, BackupQuery};
use crate::clients::Clients;
use crate::codes::{IMAGE_GONE, SNAPSHOT_GONE, SNAPSHOT_IN_USE};
use crate::config::Config;
use crate::ec2::{Ec2, SnapshotOutcome};
use crate::error::Error;
use crate::invocation::{Function, Report, Setting};
use crate::region::Region;
use crate::report::Common;
use crate::report::{Deleted, ExpireReport, Failed, RegionReport};
use crate::sqs::WorkQueue;
use crate::tags::Kind;
use crate::tags::{TagKeys, Warning, format_time, key};
use chrono::{DateTime, Utc};
use futures::future::join_all;
use futures::stream::{self, StreamExt};
use plan::{
    DeleteReason, ImageDeletion, KeepReason, Kept, RegionPlan, Rules, SnapshotDeletion,
    SnapshotRemoval,
};
use serde_json::Value;
use std::collections::BTreeSet;
use tracing::{info, warn};

/// Deletions in flight at once in one region. DeregisterImage and DeleteSnapshot buckets refill
/// at 5 per second per region; a few calls in flight stay near that, and the SDK's retries
/// (with backoff on `RequestLimitExceeded`) absorb the rest.
pub const DELETE_CONCURRENCY: usize = 4;

/// One region's backups, read with one paginated describe of each kind, lean (only what the
/// rules read), one after the other (a page in memory at a time).
async fn list(
    ec2: &Ec2,
    keys: &TagKeys,
    deployment: &str,
) -> Result<(Vec<Backup>, Vec<Backup>), Error> {
    let images = BackupQuery::everything(Kind::Image, deployment).lean();
    let snapshots = BackupQuery::everything(Kind::Snapshot, deployment).lean();
    let images = ec2.backups(keys, &images).await?;
    Ok((images, ec2.backups(keys, &snapshots).await?))
}

/// A planned deletion, as one unit of work.
enum Work {
    Image(ImageDeletion),
    Snapshot(SnapshotDeletion),
}

fn gone(err: &Error, codes: &[&str]) -> bool {
    err.code().is_some_and(|c| codes.contains(&c))
}

/// DeleteSnapshot: gone already counts as done; in use is kept for a later run, not failed.
async fn delete_snapshot(
    ec2: &Ec2,
    id: &str,
    source: Option<&String>,
    image: Option<&str>,
    reason: DeleteReason,
    out: &mut RegionReport,
) {
    let region = ec2.region();
    let deleted = || Deleted {
        id: id.to_string(),
        source: source.cloned(),
        image: image.map(str::to_string),
        reason,
    };
    match ec2.delete_snapshot(id).await {
        Ok(()) => {
            info!(snapshot_id = %id, image_id = image.unwrap_or(""), region = %region, reason = ?reason, "snapshot deleted");
            out.deleted_snapshots.push(deleted());
        }
        Err(e) if gone(&e, SNAPSHOT_GONE) => {
            info!(snapshot_id = %id, region = %region, "snapshot already gone");
            out.deleted_snapshots.push(deleted());
        }
        Err(e) if e.code() == Some(SNAPSHOT_IN_USE) => {
            info!(snapshot_id = %id, region = %region, error = %e, "snapshot in use: kept for a later run");
            out.kept.push(Kept {
                id: id.to_string(),
                source: source.cloned(),
                reason: KeepReason::InUse,
            });
        }
        Err(Error::Deadline { .. }) => {
            info!(snapshot_id = %id, region = %region, "snapshot delete not started: the deadline is near; the next run deletes it");
            out.remaining += 1;
        }
        Err(e) => {
            warn!(snapshot_id = %id, region = %region, error = %e, code = e.code().unwrap_or(""), "snapshot delete failed");
            out.failed.push(Failed::of_backup(id, source, &e));
        }
    }
}

/// The crash-safe steps of one image's deletion (claims already checked: [`check_claims`]).
async fn delete_image(
    ec2: &Ec2,
    keys: &TagKeys,
    deployment: &str,
    d: ImageDeletion,
) -> RegionReport {
    let region = ec2.region();
    let mut out = RegionReport::default();
    // 1. Every snapshot it leaves behind must be findable as ours, and expired; and IAM lets
    // expire delete only snapshots tagged ours, in the one call too.
    if !d.tag_snapshots.is_empty() {
        let tags = vec![
            (keys.key(key::MANAGED_BY), deployment.to_string()),
            (keys.key(key::EXPIRES_AT), format_time(d.snapshot_expiry)),
        ];
        if let Err(e) = ec2.tag_resources(&d.tag_snapshots, &tags).await {
            if matches!(e, Error::Deadline { .. }) {
                info!(image_id = %d.id, region = %region, "not started: the deadline is near; the next run deletes it");
                out.remaining += 1;
                return out;
            }
            warn!(image_id = %d.id, region = %region, error = %e, "could not tag its snapshots: image left registered");
            out.failed
                .push(Failed::of_backup(&d.id, d.source.as_ref(), &e));
            return out;
        }
        info!(image_id = %d.id, region = %region, snapshots = ?d.tag_snapshots, "snapshots tagged before deregistering");
    }
    // 2. A vault's copy is protected from deregistration: its protection goes first (its
    // snapshot locks have ended, or it would have been kept).
    if d.protected {
        match ec2.unprotect_image(&d.id).await {
            Ok(()) => {
                info!(image_id = %d.id, region = %region, "deregistration protection turned off")
            }
            Err(e @ Error::Deadline { .. }) => {
                info!(image_id = %d.id, region = %region, error = %e, "not started: the deadline is near; the next run deletes it");
                out.remaining += 1;
                return out;
            }
            Err(e) => {
                warn!(image_id = %d.id, region = %region, error = %e, "could not turn its deregistration protection off: image left registered");
                out.failed
                    .push(Failed::of_backup(&d.id, d.source.as_ref(), &e));
                return out;
            }
        }
    }
    // 3. Deregister, with its snapshots in the same call when all of them go.
    let answered = match d.removal {
        SnapshotRemoval::WithImage => ec2.deregister_image_with_snapshots(&d.id).await,
        SnapshotRemoval::OneByOne => ec2.deregister_image(&d.id).await.map(|()| Vec::new()),
    };
    let answered = match answered {
        Ok(answered) => {
            info!(image_id = %d.id, region = %region, reason = ?d.reason, with_snapshots = d.removal == SnapshotRemoval::WithImage, "deregistered");
            answered
        }
        Err(e) if gone(&e, IMAGE_GONE) => {
            // Gone before this call: its snapshots, if any are left, go one by one.
            info!(image_id = %d.id, region = %region, "image already deregistered");
            Vec::new()
        }
        Err(Error::Deadline { .. }) => {
            info!(image_id = %d.id, region = %region, "deregister not started: the deadline is near; the next run deletes it");
            out.remaining += 1;
            return out;
        }
        Err(e) => {
            warn!(image_id = %d.id, region = %region, error = %e, code = e.code().unwrap_or(""), "deregister failed");
            out.failed
                .push(Failed::of_backup(&d.id, d.source.as_ref(), &e));
            return out;
        }
    };
    out.deregistered.push(Deleted {
        id: d.id.clone(),
        source: d.source.clone(),
        image: None,
        reason: d.reason,
    });
    let mut done = BTreeSet::new();
    for (snapshot, outcome) in answered {
        deleted_with_image(ec2, &d, &snapshot, outcome, &mut out);
        done.insert(snapshot);
    }
    // 3. The snapshots the deregistration did not answer for, one at a time inside this unit
    // (the region's bound holds).
    for snapshot in d.snapshots.iter().filter(|s| !done.contains(*s)) {
        delete_snapshot(
            ec2,
            snapshot,
            d.source.as_ref(),
            Some(&d.id),
            d.reason,
            &mut out,
        )
        .await;
    }
    out
}

/// What DeregisterImage with DeleteAssociatedSnapshots said of one of the image's snapshots.
/// One it could not delete carries our tags (step 1) and an expiry that has passed: a later run
/// finds it as an orphan.
fn deleted_with_image(
    ec2: &Ec2,
    d: &ImageDeletion,
    snapshot: &str,
    outcome: SnapshotOutcome,
    out: &mut RegionReport,
) {
    let region = ec2.region();
    if !d.snapshots.iter().any(|s| s == snapshot) {
        // Not one the plan deletes: never expected, as the one call is made only when every
        // snapshot the image lists goes; logged so that it would be seen.
        warn!(image_id = %d.id, snapshot_id = %snapshot, region = %region, outcome = ?outcome, "the deregistration answered for a snapshot the plan did not list");
        if outcome != SnapshotOutcome::Deleted {
            return;
        }
    }
    match outcome {
        SnapshotOutcome::Deleted => {
            info!(snapshot_id = %snapshot, image_id = %d.id, region = %region, reason = ?d.reason, "snapshot deleted");
            out.deleted_snapshots.push(Deleted {
                id: snapshot.to_string(),
                source: d.source.clone(),
                image: Some(d.id.clone()),
                reason: d.reason,
            });
        }
        SnapshotOutcome::Skipped => {
            info!(snapshot_id = %snapshot, image_id = %d.id, region = %region, "snapshot in use by another image: kept for a later run");
            out.kept.push(Kept {
                id: snapshot.to_string(),
                source: d.source.clone(),
                reason: KeepReason::InUse,
            });
        }
        SnapshotOutcome::NotDeleted(code) => {
            let e = Error::Aws {
                operation: "DeregisterImage",
                region: region.to_string(),
                message: format!(
                    "{} was deregistered but its snapshot {snapshot} was not deleted ({code}); it carries our tags and a passed expiry, so a later run deletes it as an orphan",
                    d.id
                ),
                code,
            };
            warn!(snapshot_id = %snapshot, image_id = %d.id, region = %region, error = %e, code = e.code().unwrap_or(""), "snapshot not deleted with its image");
            out.failed
                .push(Failed::of_backup(snapshot, d.source.as_ref(), &e));
        }
    }
}

/// Before any image is deleted: the snapshots its deletion would claim (no tag of ours, so
/// the listing did not show them) are described by id, once for the region, and only those no
/// one else manages are claimed ([`plan::settle_claims`]). Images whose claims cannot be
/// checked wait for a later run; what is not ours is dropped from the plan.
async fn check_claims(
    ec2: &Ec2,
    keys: &TagKeys,
    deployment: &str,
    plan: &mut RegionPlan,
) -> RegionReport {
    let mut out = RegionReport::default();
    let ids: BTreeSet<&String> = plan.images.iter().flat_map(|d| &d.unlisted).collect();
    if ids.is_empty() {
        return out;
    }
    let ids: Vec<String> = ids.into_iter().cloned().collect();
    let region = ec2.region();
    match ec2
        .backups(keys, &BackupQuery::by_id(Kind::Snapshot, &ids))
        .await
    {
        Ok(described) => {
            let mut not_ours = BTreeSet::new();
            for d in plan.images.iter_mut().filter(|d| !d.unlisted.is_empty()) {
                let claims = plan::settle_claims(keys, deployment, d, &described);
                for s in &claims.not_ours {
                    warn!(image_id = %d.id, snapshot_id = %s, region = %region, "a snapshot of this image is not ours (another P:managed-by, or another account's): left alone");
                }
                crate::invocation::warn_all(&claims.warnings);
                out.kept.extend(claims.kept);
                not_ours.extend(claims.not_ours);
            }
            plan.kept.retain(|k| !not_ours.contains(&k.id));
        }
        Err(e) => {
            let (waiting, ready) = std::mem::take(&mut plan.images)
                .into_iter()
                .partition(|d| !d.unlisted.is_empty());
            plan.images = ready;
            for d in waiting {
                if matches!(e, Error::Deadline { .. }) {
                    info!(image_id = %d.id, region = %region, "not started: the deadline is near; the next run deletes it");
                    out.remaining += 1;
                } else {
                    warn!(image_id = %d.id, region = %region, error = %e, "could not tell whose its snapshots are: image left registered");
                    out.failed
                        .push(Failed::of_backup(&d.id, d.source.as_ref(), &e));
                }
            }
        }
    }
    out
}

/// What a dry run reports: the plan, as if every call succeeded.
fn dry_run_report(plan: RegionPlan) -> RegionReport {
    let mut out = RegionReport {
        kept: plan.kept,
        ..RegionReport::default()
    };
    for d in plan.images {
        info!(image_id = %d.id, reason = ?d.reason, "dry run: would deregister");
        for s in &d.snapshots {
            out.deleted_snapshots.push(Deleted {
                id: s.clone(),
                source: d.source.clone(),
                image: Some(d.id.clone()),
                reason: d.reason,
            });
        }
        out.deregistered.push(Deleted {
            id: d.id,
            source: d.source,
            image: None,
            reason: d.reason,
        });
    }
    for s in plan.snapshots {
        info!(snapshot_id = %s.id, reason = ?s.reason, "dry run: would delete snapshot");
        out.deleted_snapshots.push(Deleted {
            id: s.id,
            source: s.source,
            image: None,
            reason: s.reason,
        });
    }
    out
}

/// Carries out one region's plan, at most [`DELETE_CONCURRENCY`] deletions in flight.
pub async fn execute(
    ec2: &Ec2,
    keys: &TagKeys,
    deployment: &str,
    mut plan: RegionPlan,
    dry_run: bool,
) -> RegionReport {
    let claims = check_claims(ec2, keys, deployment, &mut plan).await;
    if dry_run {
        let mut out = dry_run_report(plan);
        out.merge(claims);
        out.sort();
        return out;
    }
    let mut report = RegionReport {
        kept: plan.kept,
        ..RegionReport::default()
    };
    report.merge(claims);
    let work = plan
        .images
        .into_iter()
        .map(Work::Image)
        .chain(plan.snapshots.into_iter().map(Work::Snapshot));
    let outcomes: Vec<RegionReport> = stream::iter(work)
        .map(|w| async move {
            match w {
                Work::Image(d) => delete_image(ec2, keys, deployment, d).await,
                Work::Snapshot(s) => {
                    let mut out = RegionReport::default();
                    delete_snapshot(ec2, &s.id, s.source.as_ref(), None, s.reason, &mut out).await;
                    out
                }
            }
        })
        .buffer_unordered(DELETE_CONCURRENCY)
        .collect()
        .await;
    for o in outcomes {
        report.merge(o);
    }
    report.sort();
    report
}

/// A region that could not be read: nothing in it is touched, and it is reported failed.
fn unreadable_region(region: &Region, err: &Error) -> RegionReport {
    warn!(region = %region, error = %err, code = err.code().unwrap_or(""), "region could not be read: nothing deleted there");
    RegionReport {
        failed: vec![Failed::of_backup(region.as_str(), None, err)],
        ..RegionReport::default()
    }
}

/// The regions a whole sweep covers, from home's listing: home, COPY_TO_REGIONS, those that
/// copy-to tags of this deployment's backups at home name, and CLEANUP_REGIONS. Home unreadable,
/// the tags are unknown: a warning says which regions may have been missed.
fn swept_regions(
    config: &Config,
    keys: &TagKeys,
    home: &Region,
    home_listing: &Result<(Vec<Backup>, Vec<Backup>), Error>,
    warnings: &mut Vec<Warning>,
) -> Vec<Region> {
    let deployment = config.deployment_name.as_str();
    let home_tags: Vec<(&str, &crate::tags::Tags)> = match home_listing {
        Ok((images, snapshots)) => images
            .iter()
            .chain(snapshots)
            .filter(|b| b.managed_by.as_deref() == Some(deployment))
            .map(|b| (b.id.as_str(), &b.tags))
            .collect(),
        Err(e) => {
            warnings.push(Warning::new(
                home.as_str(),
                &keys.key(key::COPY_TO),
                "",
                format!(
                    "the home region could not be read ({e}), so DR regions named only in copy-to tags were not swept this run; list them in CLEANUP_REGIONS to sweep them whatever happens"
                ),
            ));
            Vec::new()
        }
    };
    plan::regions_to_sweep(
        keys,
        home,
        &config.copy_to_regions,
        home_tags,
        &config.cleanup_regions,
        warnings,
    )
}

/// One sweep over every region, each on its own: a region that fails does not stop the others.
pub async fn run(
    config: &Config,
    clients: &Clients,
    request: &ExpireRequest,
    now: DateTime<Utc>,
) -> ExpireReport {
    let keys = TagKeys::new(&config.tag_prefix);
    let deployment = config.deployment_name.as_str();
    let dry_run = config.dry_run || request.dry_run;
    let rules = Rules {
        keys: &keys,
        deployment,
        keep_last: config.keep_last,
        drill_interval: config.drill_interval,
        locks: None,
    };
    let home = clients.home_region().clone();
    let mut warnings = Vec::new();
    let vault = config.is_vault();

    // A continuation sweeps the regions the first run named (it read home's copy-to tags then);
    // a whole sweep reads home first: its backups name the regions their copies went to.
    let (regions, mut home_listing) = match &request.regions {
        Some(named) => (named.clone(), None),
        None => {
            let listing = list(&clients.home(), &keys, deployment).await;
            let regions = swept_regions(config, &keys, &home, &listing, &mut warnings);
            (regions, Some(listing))
        }
    };
    info!(regions = ?regions.iter().map(Region::as_str).collect::<Vec<_>>(), dry_run, "sweeping");

    let sweeps = regions.into_iter().map(|region| {
        let listing = if region == home {
            home_listing.take()
        } else {
            None
        };
        let rules = &rules;
        let keys = &keys;
        async move {
            let ec2 = clients.region(&region);
            let listing = match listing {
                Some(l) => l,
                None => list(&ec2, keys, deployment).await,
            };
            // A vault reads its snapshot locks: a copy is never deleted before its lock ends.
            // So does any deployment that lists a vault's copy or a protected AMI (a vault whose
            // SOURCE_ACCOUNTS was emptied still has them).
            let vault_here = listing.as_ref().is_ok_and(|(images, snapshots)| {
                images
                    .iter()
                    .chain(snapshots)
                    .any(|b| b.source_account.is_some() || b.protected)
            });
            let locks = match vault || vault_here {
                false => Ok(None),
                true => ec2.locked_snapshots().await.map(Some),
            };
            let (out, warnings) = match (listing, locks) {
                (Err(e), _) | (_, Err(e)) => (unreadable_region(&region, &e), Vec::new()),
                (Ok((images, snapshots)), Ok(locks)) => {
                    let rules = Rules {
                        locks: locks.as_ref(),
                        ..*rules
                    };
                    let plan = plan::plan_region(&rules, &images, &snapshots, now);
                    // The plan owns what it needs: the listing's memory is free for the report.
                    drop((images, snapshots));
                    let warnings = plan.warnings.clone();
                    (
                        execute(&ec2, keys, deployment, plan, dry_run).await,
                        warnings,
                    )
                }
            };
            info!(
                region = %region,
                deregistered = out.deregistered.len(),
                deleted_snapshots = out.deleted_snapshots.len(),
                kept = out.kept.len(),
                failed = out.failed.len(),
                "region swept"
            );
            (region, out, warnings)
        }
    });
    let mut report = ExpireReport {
        common: Common::dry_run(dry_run),
        ..ExpireReport::default()
    };
    for (region, out, region_warnings) in join_all(sweeps).await {
        report.regions.insert(region, out);
        warnings.extend(region_warnings);
    }
    report.common.warnings = warnings;
    report
}

/// expire as the invocation pipeline runs it (see [`crate::invocation`]).
pub struct Expire<'a> {
    pub setting: Setting<'a>,
    pub clients: Clients,
}

impl Function for Expire<'_> {
    type Request = ExpireRequest;
    type Report = ExpireReport;

    fn span(&self, request: &ExpireRequest) -> tracing::Span {
        tracing::info_span!(
            "expire",
            event_id = request.event_id.as_deref().unwrap_or("")
        )
    }
    /// The regions swept, then the ones the deadline cut short handed on.
    async fn run(&self, request: ExpireRequest) -> Result<ExpireReport, Error> {
        let Setting { config, queue, now } = self.setting;
        let mut report = run(config, &self.clients, &request, now).await;
        hand_on(config, queue, &request, &mut report).await;
        Ok(report)
    }
    fn parse(&self, payload: &Value) -> Result<ExpireRequest, Error> {
        parse_expire_request(payload)
    }
    fn parse_body(&self, body: &str) -> Result<ExpireRequest, Error> {
        let config = self.setting.config;
        let work = crate::continuation::parse::<ExpireWork>(config, FUNCTION, body)?.check()?;
        Ok(ExpireRequest {
            event_id: None,
            dry_run: false,
            regions: Some(work.regions),
            attempt: work.attempt + 1,
        })
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

impl Report for ExpireReport {
    fn log(&self) {
        info!(
            regions = self.regions.len(),
            failed = self.failed(),
            warnings = self.common.warnings.len(),
            continuations = self.common.continuations,
            dry_run = self.common.dry_run,
            "done"
        );
    }
    fn metric_values(&self) -> crate::metrics::Values {
        ExpireReport::metric_values(self)
    }
    fn failed(&self) -> usize {
        ExpireReport::failed(self)
    }
    fn common(&mut self) -> Option<&mut Common> {
        Some(&mut self.common)
    }
}

/// The whole handler (see [`crate::invocation::handle`]).
pub async fn handle(
    config: &Config,
    clients: &Clients,
    queue: Option<&WorkQueue>,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<Value, Error> {
    let expire = Expire {
        setting: Setting { config, queue, now },
        clients: clients.clone(),
    };
    crate::invocation::handle(&expire, payload).await
}

/// Hands on the regions whose sweep the deadline cut short; past [`MAX_ATTEMPTS`] the next
/// schedule sweeps them.
async fn hand_on(
    config: &Config,
    queue: Option<&WorkQueue>,
    request: &ExpireRequest,
    report: &mut ExpireReport,
) {
    let unfinished: Vec<Region> = report
        .regions
        .iter()
        .filter(|(_, r)| r.remaining > 0)
        .map(|(region, _)| region.clone())
        .collect();
    if request.attempt > MAX_ATTEMPTS && !unfinished.is_empty() {
        warn!(attempt = request.attempt, regions = ?unfinished.iter().map(Region::as_str).collect::<Vec<_>>(), "handed on too often: the next schedule sweeps these regions");
    } else if let Some(queue) = queue
        && !unfinished.is_empty()
        && !report.common.dry_run
    {
        let work = [ExpireWork {
            regions: unfinished,
            attempt: request.attempt,
        }];
        let what = "the rest of the sweep";
        match crate::continuation::hand_on(queue, config, FUNCTION, what, &work, 0).await {
            Ok(sent) => report.common.continuations += sent,
            Err(reason) => report.common.unfinished = Some(reason),
        }
    }
}

#[cfg(test)]
mod tests;
