//! The vault side of an isolated DR account: what `SOURCE_ACCOUNTS` share with this account
//! is copied into its own account in each of its regions, re-encrypted with its own keys, and
//! each copy's snapshots locked until the copy's expiry (its AMI protected from
//! deregistration). Told by `Backup Shared` events and `shareSnapshot` notifications, and by
//! the reconcile sweep of everything shared with it; each step is safe to do again.

use super::{Records, ReplicateReport, Run, copy_all};
use crate::backup::{Backup, BackupQuery, Copies};
use crate::dr::SharedNotice;
use crate::dr::vault::{self, Accepted, NOT_FROM_A_SOURCE_ACCOUNT, NOT_READY, Protect};
use crate::error::Error;
use crate::region::Region;
use crate::report::{Failed, LockedEntry};
use crate::tags::{Kind, format_time};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};
use tracing::{error, info, warn};

/// The shared backups named by `notices` (`None`: the sweep, everything shared with this
/// account by its source accounts), copied where a copy is missing; then the copies locked.
pub(super) async fn run(
    run: &Run<'_>,
    notices: Option<Vec<SharedNotice>>,
    now: DateTime<Utc>,
    report: &mut ReplicateReport,
) {
    let config = run.config;
    if !config.is_vault() {
        for n in notices.unwrap_or_default() {
            report.skip(
                &n.backup,
                None,
                format!("{NOT_FROM_A_SOURCE_ACCOUNT}: shared by {}, but this deployment is no vault (SOURCE_ACCOUNTS is empty)", n.account),
            );
        }
        return;
    }
    let sweep = notices.is_none();
    let home = run.home.region().clone();
    let mut by_backup: BTreeMap<String, SharedNotice> = BTreeMap::new();
    for n in notices.unwrap_or_default() {
        if !config.source_accounts.contains(&n.account) {
            warn!(backup = %n.backup, account = %n.account, "a share from an account not in SOURCE_ACCOUNTS: ignored");
            report.skip(
                &n.backup,
                None,
                format!(
                    "{NOT_FROM_A_SOURCE_ACCOUNT}: shared by {}, which SOURCE_ACCOUNTS ({}) does not list",
                    n.account,
                    config.source_accounts.join(",")
                ),
            );
            continue;
        }
        if let Some(region) = n.region.as_deref().filter(|r| *r != home.as_str()) {
            report.skip(
                &n.backup,
                None,
                format!(
                    "{}: the shared backup is in {region}; this vault keeps what is shared in {home}",
                    vault::OTHER_REGION
                ),
            );
            continue;
        }
        by_backup.insert(n.backup.clone(), n);
    }
    if !sweep && by_backup.is_empty() {
        return;
    }
    let shared = read_shared(run, sweep, &by_backup, report).await;
    let accepted = accept_all(run, sweep, &shared, &by_backup, now, report);
    let destinations = vault::destinations(config, &home);
    let ids: Vec<String> = accepted.iter().map(|a| a.shared.id.clone()).collect();
    let which = || {
        if sweep {
            Copies::All
        } else {
            Copies::Of(ids.clone())
        }
    };
    let (existing, unread) = vault_copies(run, &destinations, which(), report).await;
    let mut plan = vault::missing_copies(&run.keys, config, &home, &accepted, &existing, now);
    // A region whose copies could not be read gets no copy: one may be there already, and
    // CopySnapshot takes no ClientToken. The next run tries again.
    plan.jobs.retain(|job| {
        let read = !unread.contains(&job.destination);
        if !read {
            report.failed.push(Failed {
                id: None,
                source: job.source_id.clone(),
                region: Some(job.destination.clone()),
                error: format!(
                    "not copied: the vault's copies in {} could not be read, and one may be there",
                    job.destination
                ),
                code: None,
            });
        }
        read
    });
    // The steady state (copied, or too old to copy) is not listed on every sweep.
    let steady = |reason: &str| {
        reason.starts_with(vault::ALREADY_COPIED) || reason.starts_with(vault::EXPIRED)
    };
    report.skipped.extend(
        plan.skipped
            .into_iter()
            .filter(|s| !sweep || !steady(&s.reason)),
    );
    let before = report.deferred.len();
    let made = copy_all(run, plan.jobs, Records::new(Vec::<String>::new()), report).await;
    // Deferred copies of shared backups are handed on as those shares, not as backups of ours.
    for d in &report.deferred[before..] {
        if let Some(a) = accepted.iter().find(|a| a.shared.id == d.source) {
            let entry = (
                a.identity.account.clone(),
                a.shared.kind,
                a.shared.id.clone(),
            );
            if !report.follow_up.shared.contains(&entry) {
                report.follow_up.shared.push(entry);
            }
        }
    }
    if config.dry_run {
        return;
    }
    // The copies now there, to lock: those listed before and those just made.
    let copies = if made.is_empty() {
        existing
    } else {
        vault_copies(run, &destinations, which(), report).await.0
    };
    protect(run, &copies, now, report).await;
}

/// What is shared with this account: the named backups (any owner: a stranger's is refused by
/// name), or on a sweep everything `SOURCE_ACCOUNTS` share; described here (owner, state, name,
/// description, snapshots).
async fn read_shared(
    run: &Run<'_>,
    sweep: bool,
    by_backup: &BTreeMap<String, SharedNotice>,
    report: &mut ReplicateReport,
) -> Vec<Backup> {
    let mut shared = Vec::new();
    for kind in [Kind::Image, Kind::Snapshot] {
        let ids: Option<Vec<String>> = (!sweep).then(|| {
            by_backup
                .values()
                .filter(|n| n.kind == kind)
                .map(|n| n.backup.clone())
                .collect()
        });
        if ids.as_ref().is_some_and(Vec::is_empty) {
            continue;
        }
        let owners = sweep.then_some(run.config.source_accounts.as_slice());
        match run
            .home
            .shared_with_me(&run.keys, kind, owners, ids.as_deref())
            .await
        {
            Ok(found) => shared.extend(found),
            Err(e) => {
                warn!(error = %e, "cannot read what is shared with this account");
                let failed_ids: Vec<String> = match &ids {
                    Some(ids) => ids.clone(),
                    None => vec![format!("shared {}s", kind.as_str())],
                };
                for id in failed_ids {
                    report.failed.push(Failed::from_error(&id, None, &e));
                }
            }
        }
    }
    for n in by_backup.values() {
        if !shared.iter().any(|b| b.id == n.backup) {
            report.skip(
                &n.backup,
                None,
                format!(
                    "{NOT_READY}: {} is not shared with this account (or no longer exists)",
                    n.backup
                ),
            );
        }
    }
    shared
}

/// The shared backups the vault copies, each with what identifies it; the others skipped with
/// their reason.
fn accept_all(
    run: &Run<'_>,
    sweep: bool,
    shared: &[Backup],
    by_backup: &BTreeMap<String, SharedNotice>,
    now: DateTime<Utc>,
    report: &mut ReplicateReport,
) -> Vec<Accepted> {
    let image_snapshots: HashSet<&str> = shared
        .iter()
        .filter(|b| b.kind == Kind::Image)
        .flat_map(|b| b.snapshot_ids.iter().map(String::as_str))
        .collect();
    let mut accepted = Vec::new();
    for b in shared {
        match vault::accept(run.config, b, by_backup.get(&b.id), &image_snapshots, now) {
            Ok(identity) => accepted.push(Accepted {
                shared: b.clone(),
                identity,
            }),
            Err(reason) => {
                if reason.starts_with(NOT_FROM_A_SOURCE_ACCOUNT) {
                    warn!(backup = %b.id, reason = %reason, "share ignored");
                }
                // A sweep meets every AMI's snapshot: only named ones are worth a line.
                if !sweep || !reason.starts_with(vault::NOT_A_BACKUP) {
                    report.skip(&b.id, None, reason);
                }
            }
        }
    }
    accepted
}

/// The vault's copies in each of `regions` (`copies` says which), images and snapshots, and
/// the regions that could not be read.
async fn vault_copies(
    run: &Run<'_>,
    regions: &[Region],
    copies: Copies,
    report: &mut ReplicateReport,
) -> (Vec<Backup>, Vec<Region>) {
    let mut out = Vec::new();
    let mut unread = Vec::new();
    for region in regions {
        let ec2 = run.clients.region(region);
        for kind in [Kind::Image, Kind::Snapshot] {
            let query =
                BackupQuery::managed(kind, &run.config.deployment_name).copies(copies.clone());
            match ec2.backups(&run.keys, &query).await {
                Ok(found) => out.extend(found.into_iter().filter(|b| b.source_account.is_some())),
                Err(e) => {
                    warn!(region = %region, error = %e, "cannot read the vault's copies");
                    report.failed.push(Failed::from_error(
                        &format!("vault copies ({})", kind.as_str()),
                        Some(region),
                        &e,
                    ));
                    if !unread.contains(region) {
                        unread.push(region.clone());
                    }
                }
            }
        }
    }
    (out, unread)
}

/// The copies a continuation names to lock, described again in their regions, locked where
/// usable; those still pending are left in the report's follow-up again.
pub(super) async fn lock_named(
    run: &Run<'_>,
    named: &[(Region, Kind, String)],
    now: DateTime<Utc>,
    report: &mut ReplicateReport,
) {
    let mut found = Vec::new();
    let mut groups: BTreeMap<(&Region, &'static str), (Kind, Vec<String>)> = BTreeMap::new();
    for (region, kind, id) in named {
        groups
            .entry((region, kind.as_str()))
            .or_insert_with(|| (*kind, Vec::new()))
            .1
            .push(id.clone());
    }
    for ((region, _), (kind, ids)) in groups {
        let query = BackupQuery::by_id(kind, &ids);
        match run.clients.region(region).backups(&run.keys, &query).await {
            Ok(listed) => {
                for id in &ids {
                    if !listed.iter().any(|b| &b.id == id) {
                        report.skip(
                            id,
                            Some(region),
                            format!("{NOT_READY}: the copy {id} is no longer in {region}"),
                        );
                    }
                }
                found.extend(listed);
            }
            Err(e) => {
                for id in &ids {
                    report.failed.push(Failed::from_error(id, Some(region), &e));
                }
            }
        }
    }
    protect(run, &found, now, report).await;
}

/// Locks the snapshots of `copies` (vault copies) until their expiry, and protects their AMIs,
/// where that is not done yet (see [`vault::protection`]); AMI copies still pending are left in
/// the report's follow-up, to lock once usable. One DescribeLockedSnapshots per region.
pub(super) async fn protect(
    run: &Run<'_>,
    copies: &[Backup],
    now: DateTime<Utc>,
    report: &mut ReplicateReport,
) {
    let mut regions: BTreeMap<&Region, Vec<Backup>> = BTreeMap::new();
    for c in copies.iter().filter(|c| c.source_account.is_some()) {
        if c.kind == Kind::Image && c.state.is_pending() {
            report
                .follow_up
                .to_lock
                .push((c.region.clone(), c.kind, c.id.clone()));
            continue;
        }
        if c.is_live() {
            regions.entry(&c.region).or_default().push(c.clone());
        }
    }
    for (region, copies) in regions {
        let ec2 = run.clients.region(region);
        let copy_of = |id: &str| {
            copies
                .iter()
                .find(|c| c.id == id)
                .and_then(|c| c.copy_of.clone())
        };
        let locks = match ec2.locked_snapshots().await {
            Ok(l) => l,
            Err(e) => {
                warn!(region = %region, error = %e, "cannot read the snapshot locks");
                for c in &copies {
                    report
                        .failed
                        .push(Failed::from_error(&c.id, Some(region), &e));
                }
                continue;
            }
        };
        for step in vault::protection(&run.keys, run.config, &copies, &locks, now) {
            let (copy, entry, result): (String, LockedEntry, Result<(), Error>) = match step {
                Protect::Lock {
                    copy,
                    snapshot,
                    mode,
                    until,
                    cool_off_hours,
                } => {
                    let result = ec2
                        .lock_snapshot(&snapshot, mode, until, cool_off_hours)
                        .await;
                    let entry = LockedEntry {
                        source: copy.clone(),
                        region: region.clone(),
                        snapshot: Some(snapshot),
                        mode: Some(mode.as_str().to_string()),
                        until: Some(format_time(until)),
                        copy_of: copy_of(&copy),
                    };
                    (copy, entry, result)
                }
                Protect::Protection { image } => {
                    let result = ec2.protect_image(&image).await;
                    let entry = LockedEntry {
                        source: image.clone(),
                        region: region.clone(),
                        snapshot: None,
                        mode: None,
                        until: None,
                        copy_of: copy_of(&image),
                    };
                    (image, entry, result)
                }
            };
            match result {
                Ok(()) => {
                    info!(copy = %copy, region = %region, snapshot = entry.snapshot.as_deref().unwrap_or(""), until = entry.until.as_deref().unwrap_or(""), "locked");
                    report.locked.push(entry);
                }
                Err(e) => {
                    error!(copy = %copy, region = %region, error = %e, "cannot lock the vault copy: it stays deletable until the next run locks it");
                    let hint = if e
                        .code()
                        .is_some_and(|c| c.contains("Unauthorized") || c.contains("AccessDenied"))
                    {
                        "; the vault's replicate role must allow LockSnapshot and EnableImageDeregistrationProtection on its copies"
                    } else {
                        "; the next run tries again"
                    };
                    report.failed.push(Failed {
                        error: format!("{e}: the copy {copy} is not locked yet{hint}"),
                        ..Failed::from_error(&copy, Some(region), &e)
                    });
                }
            }
        }
    }
}
