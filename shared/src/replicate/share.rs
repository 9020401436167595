//! The home side of an isolated DR account: each usable original of ours is shared with
//! `DR_ACCOUNT` (through a shareable copy on the share key when the DR account could not use
//! its key), the DR account is told with a `Backup Shared` event, and the backup is marked
//! `P:shared-with`. Each step is safe to do again: sharing twice changes nothing, the vault
//! makes one copy of a backup however often it is told, and the mark comes last, so a run cut
//! short is finished by the next one (the reconcile sweep looks at every unmarked original).

use super::{COPY_CONCURRENCY, ReplicateReport, Run};
use crate::backup::{Backup, BackupQuery, Copies};
use crate::error::Error;
use crate::report::{Copied, Failed, SharedEntry};
use crate::tags::{Kind, key};
use backup_core::dr::SharedDetail;
use backup_core::dr::share::{self, ShareStep};
use futures::stream::{self, StreamExt};
use std::collections::HashMap;
use tracing::{error, info, warn};

/// Shares what of `sources` is to be shared.
pub(super) async fn run(run: &Run<'_>, sources: &[Backup], report: &mut ReplicateReport) {
    let (keys, config) = (&run.keys, run.config);
    let Some(dr) = config.dr_account.as_deref() else {
        return;
    };
    let mut owned: Vec<Backup> = sources
        .iter()
        // What is not a candidate (shared already: the steady state) is not reported: every
        // sweep would list every backup.
        .filter(|b| share::is_candidate(keys, config, b).is_ok())
        .cloned()
        .collect();
    if owned.is_empty() {
        return;
    }
    image_keys(run, &mut owned, report).await;
    let candidates: Vec<&Backup> = owned.iter().collect();
    // The shareable copies of the originals the DR account could not use as they are.
    let needing: Vec<String> = candidates
        .iter()
        .filter(|b| b.share_of.is_none() && !share::usable_by_dr(config, b))
        .map(|b| b.id.clone())
        .collect();
    let mut shareable: HashMap<String, Vec<Backup>> = HashMap::new();
    let mut unread: Vec<String> = Vec::new();
    for kind in [Kind::Image, Kind::Snapshot] {
        let ids: Vec<String> = needing
            .iter()
            .filter(|id| candidates.iter().any(|b| &&b.id == id && b.kind == kind))
            .cloned()
            .collect();
        if ids.is_empty() {
            continue;
        }
        let query = BackupQuery::managed(kind, &config.deployment_name)
            .copies(Copies::ShareOf(ids.clone()));
        match run.home.backups(keys, &query).await {
            Ok(found) => {
                for c in found {
                    if let Some(of) = c.share_of.clone() {
                        shareable.entry(of).or_default().push(c);
                    }
                }
            }
            Err(e) => {
                // Those that need a shareable copy wait for the next run; the others go on.
                warn!(error = %e, "cannot read the shareable copies");
                for id in &ids {
                    report.failed.push(Failed::from_error(id, None, &e));
                    unread.push(id.clone());
                }
            }
        }
    }
    let mut shares = Vec::new();
    for original in candidates.into_iter().filter(|b| !unread.contains(&b.id)) {
        let copies: Vec<&Backup> = shareable
            .get(&original.id)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        match share::next_step(keys, config, original, &copies, &mut report.common.warnings) {
            ShareStep::Share { target, original } => shares.push((*target, original)),
            ShareStep::Copy(job) => {
                if config.dry_run {
                    info!(source = %job.source_id, "dry run: would make a shareable copy");
                    continue;
                }
                let made = match job.kind {
                    Kind::Image => run.home.copy_image(&job).await,
                    Kind::Snapshot => run.home.copy_snapshot(&job).await,
                };
                match made {
                    Ok(id) => {
                        info!(source = %job.source_id, copy_id = %id, "shareable copy started");
                        report.copied.push(Copied {
                            source: job.source_id.clone(),
                            region: job.destination.clone(),
                            id: Some(id),
                        });
                    }
                    Err(e) => {
                        error!(source = %job.source_id, error = %e, "cannot make the shareable copy");
                        report
                            .failed
                            .push(Failed::from_error(&job.source_id, None, &e));
                    }
                }
            }
            ShareStep::Skip(reason) => report.skip(&original.id, None, reason),
            ShareStep::Refuse(reason) => {
                error!(source = %original.id, error = %reason, "cannot be shared");
                report.failed.push(Failed {
                    id: None,
                    source: original.id.clone(),
                    region: None,
                    error: reason,
                    code: Some(crate::codes::SHARE_KEY_MISSING.into()),
                });
            }
        }
    }
    if config.dry_run {
        for (target, original) in shares {
            info!(source = %original, backup = %target.id, "dry run: would share");
            report.shared.push(SharedEntry {
                source: original,
                shared: target.id,
                with: dr.to_string(),
            });
        }
        return;
    }
    share_all(run, dr, shares, report).await;
}

/// The KMS keys of the encrypted AMIs among `backups`, from their snapshots: DescribeImages
/// does not name them (an AMI's `Ebs.KmsKeyId` is a launch parameter only). One
/// DescribeSnapshots per 200 snapshots. A snapshot that cannot be read leaves its AMI's keys
/// unknown: it then gets a shareable copy, which is never wrong, only dearer.
async fn image_keys(run: &Run<'_>, backups: &mut [Backup], report: &mut ReplicateReport) {
    let ids: Vec<String> = backups
        .iter()
        .filter(|b| b.kind == Kind::Image && b.encrypted && b.kms_key_ids.is_empty())
        .flat_map(|b| b.snapshot_ids.iter().cloned())
        .collect();
    if ids.is_empty() {
        return;
    }
    let query = BackupQuery::by_id(Kind::Snapshot, &ids);
    match run.home.backups(&run.keys, &query).await {
        Ok(snapshots) => {
            let keys: HashMap<&str, &Vec<String>> = snapshots
                .iter()
                .map(|s| (s.id.as_str(), &s.kms_key_ids))
                .collect();
            for b in backups.iter_mut().filter(|b| b.kind == Kind::Image) {
                let mut found: Vec<String> = Vec::new();
                for s in &b.snapshot_ids {
                    for k in keys.get(s.as_str()).copied().into_iter().flatten() {
                        if !found.contains(k) {
                            found.push(k.clone());
                        }
                    }
                }
                if b.kms_key_ids.is_empty() {
                    b.kms_key_ids = found;
                }
            }
        }
        Err(e) => {
            warn!(error = %e, "cannot read the keys of the AMIs' snapshots: they get shareable copies");
            report.common.warnings.push(crate::tags::Warning::new(
                "",
                "",
                "",
                format!("the keys of the AMIs' snapshots could not be read: {e}"),
            ));
        }
    }
}

/// Shares each target, tells the DR account, then marks target and original shared.
async fn share_all(
    run: &Run<'_>,
    dr: &str,
    shares: Vec<(Backup, String)>,
    report: &mut ReplicateReport,
) {
    let home = &run.home;
    let results: Vec<((Backup, String), Result<(), Error>)> = stream::iter(shares)
        .map(|(target, original)| async move {
            let mut result = Ok(());
            if target.kind == Kind::Image {
                result = home.share_image(&target.id, dr).await;
            }
            for snapshot in share_targets(&target) {
                if result.is_err() {
                    break;
                }
                result = home.share_snapshot(snapshot, dr).await;
            }
            ((target, original), result)
        })
        .buffer_unordered(COPY_CONCURRENCY)
        .collect()
        .await;
    let mut told = Vec::new();
    for ((target, original), result) in results {
        match result {
            Ok(()) => told.push((target, original)),
            Err(e) => {
                error!(source = %original, backup = %target.id, error = %e, "cannot share with the DR account");
                report.failed.push(Failed::from_error(&original, None, &e));
            }
        }
    }
    if told.is_empty() {
        return;
    }
    let Some(events) = run.clients.events() else {
        for (_, original) in told {
            report.failed.push(Failed {
                id: None,
                source: original,
                region: None,
                error: "shared, but no EventBridge client to tell the DR account".into(),
                code: None,
            });
        }
        return;
    };
    let details: Vec<SharedDetail> = told
        .iter()
        .map(|(target, _)| {
            let kind = target.kind;
            let claimed = share::claimed(&run.keys, run.config, target);
            SharedDetail::new(&target.id, kind, home.region().as_str(), &claimed)
        })
        .collect();
    let sent = events.put_shared(&details).await;
    let shared_with = vec![(run.keys.key(key::SHARED_WITH), dr.to_string())];
    for ((target, original), sent) in told.into_iter().zip(sent) {
        if let Err(e) = sent {
            error!(source = %original, backup = %target.id, error = %e, "shared, but the DR account was not told");
            report.failed.push(Failed::from_error(&original, None, &e));
            continue;
        }
        let mut marked = vec![target.id.clone()];
        if original != target.id {
            marked.push(original.clone());
        }
        let marked = match home.tag_resources(&marked, &shared_with).await {
            // The original went away (expired) since its shareable copy was made.
            Err(e)
                if e.code() == Some(crate::codes::AMI_NOT_FOUND)
                    || e.code() == Some(crate::codes::SNAPSHOT_NOT_FOUND) =>
            {
                home.tag_resources(std::slice::from_ref(&target.id), &shared_with)
                    .await
            }
            other => other,
        };
        match marked {
            Ok(()) => {
                info!(source = %original, backup = %target.id, with = %dr, "shared with the DR account");
                report.shared.push(SharedEntry {
                    source: original,
                    shared: target.id,
                    with: dr.to_string(),
                });
            }
            Err(e) => {
                warn!(source = %original, error = %e, "shared and told, but not marked: the next run shares it again");
                report.failed.push(Failed::from_error(&original, None, &e));
            }
        }
    }
}

/// The snapshots shared with `target`: an AMI's each (an AMI shared without its snapshots
/// cannot be copied), or the snapshot itself.
fn share_targets(target: &Backup) -> Vec<&str> {
    match target.kind {
        Kind::Image => target.snapshot_ids.iter().map(String::as_str).collect(),
        Kind::Snapshot => vec![target.id.as_str()],
    }
}
