//! What a sweep deletes and what it keeps, and why: pure decisions over what one region's
//! describes returned, with `now` passed in. No AWS here.
//!
//! The rules, in the order they are applied to each backup of this deployment:
//! - an image still `pending` (or a snapshot still `pending`) is never touched;
//! - `P:hold` (true, or any value that is not clearly false) keeps it, whatever else holds;
//! - an image in state `failed` is deleted at once;
//! - a missing or unreadable `P:expires-at` keeps it, with a warning;
//! - an `P:expires-at` still in the future keeps it;
//! - the newest `KEEP_LAST` available backups of each source in the region are kept, even
//!   when expired (originals and copies counted apart);
//! - so is the last one a drill proved restorable (its last drill passed, the newest such
//!   pass of its source in the region), until a newer one is proven;
//! - anything else expired is deleted.
//!
//! Snapshots are judged by who uses them: a snapshot listed by one of our registered images
//! goes with that image (deleted after it, never while a kept image still lists it); a
//! standalone snapshot backup (`P:kind=snapshot`) follows the rules above; any other snapshot
//! of ours that no image uses is an orphan of an earlier run, deleted once expired.
//!
//! An image goes in one call with its snapshots (DeregisterImage with
//! DeleteAssociatedSnapshots) only when every snapshot it lists is to go: EC2 spares a snapshot
//! that another AMI also lists, but not one held. A snapshot of an image of ours that carries no
//! tag of ours is claimed (tagged ours) before the image goes, unless it turns out to be managed
//! by someone else ([`settle_claims`]).

use crate::backup::{Backup, State};
use crate::config::parse_bool;
use crate::region::Region;
use crate::tags::{Kind, TagKeys, Tags, Warning, key, parse_copy_to, parse_time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Why a backup stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    /// `P:hold=true`.
    Hold,
    /// Among the newest `KEEP_LAST` available backups of its source in this region.
    KeepLast,
    /// The newest backup of its source in this region that a drill proved restorable
    /// (`P:drill-result=passed`): kept until a newer one is proven, so the source's last proof
    /// stays readable (the drill's interval, monitor's `NotDrilled`) and restorable.
    LastProven,
    /// A registered image we keep still uses the snapshot (or EC2 said so).
    InUse,
    NotExpired,
    /// `P:expires-at` missing or not a time: never deleted by guesswork.
    UnreadableExpiry,
    /// Still being created.
    Pending,
    /// Expired, but a snapshot lock (a vault's copy) still stops its deletion: kept until the
    /// lock ends.
    Locked,
}

/// Why a backup goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeleteReason {
    Expired,
    /// An image in state `failed`: never a usable backup.
    Failed,
    /// A snapshot of ours that no registered image uses, expired.
    Orphan,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Kept {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub reason: KeepReason,
}

/// An image to delete, crash-safe: tag `tag_snapshots`, then deregister it and delete
/// `snapshots` (in one call or one by one: `removal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDeletion {
    pub id: String,
    pub source: Option<String>,
    pub reason: DeleteReason,
    /// Its snapshots that lack our `P:managed-by` or a readable `P:expires-at`: tagged before
    /// the image is deregistered, so a crash in between leaves orphans a later run finds (and
    /// so that IAM, which lets expire delete only snapshots tagged ours, lets it delete them).
    pub tag_snapshots: Vec<String>,
    /// Of `tag_snapshots`, those the listing did not show at all (no `P:managed-by` of ours):
    /// claimed only once a describe by id shows they are this account's and no one else's
    /// ([`settle_claims`]); empty once settled.
    pub unlisted: Vec<String>,
    /// The `P:expires-at` written on them (already passed).
    pub snapshot_expiry: DateTime<Utc>,
    /// Its snapshots to delete with it.
    pub snapshots: Vec<String>,
    pub removal: SnapshotRemoval,
    /// Its deregistration protection is on (a vault's copy): turned off first.
    pub protected: bool,
}

/// How an image's snapshots go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotRemoval {
    /// In the same call: DeregisterImage with DeleteAssociatedSnapshots. Only when `snapshots`
    /// is every snapshot the image lists: EC2 deletes all of them that no other AMI lists,
    /// a held one too.
    WithImage,
    /// DeregisterImage, then one DeleteSnapshot for each of `snapshots`: some snapshot it
    /// lists stays (a kept image uses it, another image being deleted lists it, it is held, or
    /// it is not ours), or it lists none.
    OneByOne,
}

impl SnapshotRemoval {
    /// `WithImage` when the image lists snapshots and all of them are to go.
    fn of(listed: usize, deleted: usize) -> Self {
        if listed > 0 && deleted == listed {
            Self::WithImage
        } else {
            Self::OneByOne
        }
    }
}

/// A standalone snapshot backup or an orphan to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDeletion {
    pub id: String,
    pub source: Option<String>,
    pub reason: DeleteReason,
}

/// One region's sweep, before anything is done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionPlan {
    pub images: Vec<ImageDeletion>,
    pub snapshots: Vec<SnapshotDeletion>,
    pub kept: Vec<Kept>,
    pub warnings: Vec<Warning>,
}

/// What the rules need besides the backups.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub keys: &'a TagKeys,
    pub deployment: &'a str,
    pub keep_last: u32,
    /// `DRILL_INTERVAL`: how long a source's last proven backup is kept once the source's
    /// backups stop coming (with the drill's grace of a day).
    pub drill_interval: crate::duration::Duration,
    /// The region's snapshot locks (a vault reads them; `None`: no snapshot is locked).
    pub locks: Option<&'a HashMap<String, crate::lock::LockInfo>>,
}

impl Rules<'_> {
    fn locked(&self, backup: &Backup, now: DateTime<Utc>) -> bool {
        self.locks
            .is_some_and(|locks| crate::lock::is_locked(backup, locks, now))
    }

    fn ours(&self, backup: &Backup) -> bool {
        backup.managed_by.as_deref() == Some(self.deployment)
    }
}

/// The verdict on one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep(KeepReason),
    Delete(DeleteReason),
}

/// The facts about one backup the rules look at.
struct Facts<'a> {
    id: &'a str,
    source: Option<&'a str>,
    /// The tags read as they are written (`P:hold`, `P:expires-at`, `P:copy-of`): a value
    /// that cannot be read is warned of.
    tags: &'a [(String, String)],
    /// `available` for images, `completed` for snapshots: what keep-last counts.
    usable: bool,
    pending: bool,
    failed: bool,
    /// [`Backup::created_at`].
    created: Option<DateTime<Utc>>,
    /// When a drill last proved it restorable, if the last drill of it passed.
    proven: Option<DateTime<Utc>>,
    /// A snapshot lock still stops its deletion.
    locked: bool,
}

impl Facts<'_> {
    fn source(&self) -> Option<String> {
        self.source.map(str::to_string)
    }

    /// Backups count against each other for keep-last when they are of the same kind, the same
    /// source, and both originals or both copies. One without a source is a group of its own.
    fn group(&self, keys: &TagKeys, kind: Kind) -> Group<'_> {
        let source = match self.source {
            Some(s) => GroupOf::Source(s),
            None => GroupOf::Itself(self.id),
        };
        let copy = keys.get(self.tags, key::COPY_OF).is_some();
        (kind, source, copy)
    }
}

/// Whether `P:hold` keeps a backup. A value that is not clearly false holds (and warns): when
/// in doubt, keep.
fn held(keys: &TagKeys, id: &str, tags: &[(String, String)], warnings: &mut Vec<Warning>) -> bool {
    match keys.get(tags, key::HOLD) {
        None => false,
        Some(v) => match parse_bool(v) {
            Some(hold) => hold,
            None => {
                warnings.push(Warning::new(
                    id,
                    &keys.key(key::HOLD),
                    v,
                    "expected true or false; held, to be safe",
                ));
                true
            }
        },
    }
}

/// The expiry of a backup, or a warning saying why it has none we can use.
fn expiry(
    keys: &TagKeys,
    id: &str,
    tags: &[(String, String)],
    warnings: &mut Vec<Warning>,
) -> Option<DateTime<Utc>> {
    let value = keys.get(tags, key::EXPIRES_AT);
    let parsed = value.and_then(parse_time);
    if parsed.is_none() {
        warnings.push(Warning::new(
            id,
            &keys.key(key::EXPIRES_AT),
            value.unwrap_or(""),
            match value {
                None => "no expiry tag: kept".to_string(),
                Some(_) => "not an RFC 3339 time: kept".to_string(),
            },
        ));
    }
    parsed
}

/// Whose backups a keep-last group holds: a source's, or one backup's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum GroupOf<'a> {
    Source(&'a str),
    Itself(&'a str),
}

/// A keep-last group: kind, whose, copies or not.
type Group<'a> = (Kind, GroupOf<'a>, bool);

/// The ids of the newest `keep_last` usable backups of each group.
fn newest_per_group<'a>(
    rules: &Rules<'_>,
    kind: Kind,
    backups: &'a [Facts<'a>],
) -> HashSet<&'a str> {
    let mut groups: HashMap<Group<'a>, Vec<&'a Facts<'a>>> = HashMap::new();
    for b in backups.iter().filter(|b| b.usable) {
        groups.entry(b.group(rules.keys, kind)).or_default().push(b);
    }
    let mut newest = HashSet::new();
    for mut members in groups.into_values() {
        // Newest first; a backup with no time at all counts as the oldest; ties by id.
        members.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(a.id)));
        newest.extend(
            members
                .into_iter()
                .take(rules.keep_last as usize)
                .map(|b| b.id),
        );
    }
    newest
}

/// The ids of the last proven usable backup of each group still backed up: the one whose
/// passed drill is the newest, in a group whose newest usable backup is younger than
/// `DRILL_INTERVAL` and a day. A source no longer backed up there (deleted, opted out, its
/// DR region dropped) is no longer drilled there either: its proof is then released.
fn last_proven_per_group<'a>(
    rules: &Rules<'_>,
    kind: Kind,
    backups: &'a [Facts<'a>],
    now: DateTime<Utc>,
) -> HashSet<&'a str> {
    let mut last: HashMap<Group<'a>, &'a Facts<'a>> = HashMap::new();
    let mut newest: HashMap<Group<'a>, Option<DateTime<Utc>>> = HashMap::new();
    for b in backups.iter().filter(|b| b.usable) {
        let group = b.group(rules.keys, kind);
        let n = newest.entry(group).or_default();
        *n = (*n).max(b.created);
        if b.proven.is_some() {
            let entry = last.entry(group).or_insert(b);
            if (b.proven, b.id) > (entry.proven, entry.id) {
                *entry = b;
            }
        }
    }
    let live = rules.drill_interval.to_delta() + crate::drill::plan::not_drilled_grace();
    last.into_iter()
        .filter(|(group, _)| {
            newest
                .get(group)
                .copied()
                .flatten()
                .is_some_and(|t| now - t <= live)
        })
        .map(|(_, b)| b.id)
        .collect()
}

/// What keeps an expired usable backup: keep-last, and the last proven one.
struct Keepers<'a> {
    newest: HashSet<&'a str>,
    proven: HashSet<&'a str>,
}

fn judge(
    rules: &Rules<'_>,
    backup: &Facts<'_>,
    keepers: &Keepers<'_>,
    now: DateTime<Utc>,
    warnings: &mut Vec<Warning>,
) -> Verdict {
    if backup.pending {
        return Verdict::Keep(KeepReason::Pending);
    }
    if held(rules.keys, backup.id, backup.tags, warnings) {
        return Verdict::Keep(KeepReason::Hold);
    }
    if backup.failed {
        return Verdict::Delete(DeleteReason::Failed);
    }
    let Some(expires_at) = expiry(rules.keys, backup.id, backup.tags, warnings) else {
        return Verdict::Keep(KeepReason::UnreadableExpiry);
    };
    if expires_at > now {
        return Verdict::Keep(KeepReason::NotExpired);
    }
    if backup.locked {
        return Verdict::Keep(KeepReason::Locked);
    }
    if keepers.newest.contains(backup.id) {
        return Verdict::Keep(KeepReason::KeepLast);
    }
    if keepers.proven.contains(backup.id) {
        return Verdict::Keep(KeepReason::LastProven);
    }
    Verdict::Delete(DeleteReason::Expired)
}

/// When a drill last proved `b` restorable, if its last drill passed.
fn passed_at(b: &Backup) -> Option<DateTime<Utc>> {
    b.drill
        .filter(|d| d.result == crate::backup::DrillResult::Passed)
        .map(|d| d.at)
}

/// How many images list each snapshot (each image counted once per snapshot).
pub fn snapshot_users<'a>(images: impl IntoIterator<Item = &'a Backup>) -> HashMap<&'a str, usize> {
    let mut users: HashMap<&str, usize> = HashMap::new();
    for image in images {
        let unique: BTreeSet<&str> = image.snapshot_ids.iter().map(String::as_str).collect();
        for s in unique {
            *users.entry(s).or_default() += 1;
        }
    }
    users
}

/// The one orphan rule: a snapshot of ours that no image of ours lists (`users`, from
/// [`snapshot_users`]) and that is not a standalone snapshot backup. Expire deletes it once
/// expired; monitor counts it.
pub fn is_orphan(snapshot: &Backup, users: &HashMap<&str, usize>) -> bool {
    !users.contains_key(snapshot.id.as_str()) && !snapshot.is_standalone()
}

/// The orphans among one region's images and snapshots of this deployment, as
/// `BackupQuery::everything` lists them (an AMI's own snapshots and disabled AMIs included:
/// a disabled AMI still uses its snapshots). Only those whose `P:managed-by` is this
/// deployment count, as in [`plan_region`].
pub fn orphans<'a>(
    rules: &Rules<'_>,
    images: impl IntoIterator<Item = &'a Backup>,
    snapshots: impl IntoIterator<Item = &'a Backup>,
) -> Vec<&'a Backup> {
    let users = snapshot_users(images.into_iter().filter(|i| rules.ours(i)));
    snapshots
        .into_iter()
        .filter(|s| rules.ours(s) && is_orphan(s, &users))
        .collect()
}

/// One region's plan from its images and snapshots. Only backups whose `P:managed-by` is this
/// deployment are ever considered, whatever else was passed in.
pub fn plan_region(
    rules: &Rules<'_>,
    images: &[Backup],
    snapshots: &[Backup],
    now: DateTime<Utc>,
) -> RegionPlan {
    let keys = rules.keys;
    let mut plan = RegionPlan::default();
    let images: Vec<&Backup> = images.iter().filter(|i| rules.ours(i)).collect();
    let snapshots: BTreeMap<&str, &Backup> = snapshots
        .iter()
        .filter(|s| rules.ours(s))
        .map(|s| (s.id.as_str(), s))
        .collect();

    // Images.
    let image_backups: Vec<Facts<'_>> = images
        .iter()
        .map(|i| Facts {
            id: &i.id,
            source: i.source.as_deref(),
            tags: &i.tags,
            // A shareable copy expires with its original: it never stands in for it.
            usable: i.state == State::Available && i.share_of.is_none(),
            pending: i.state.is_pending(),
            failed: i.state == State::Failed,
            created: i.created_at,
            proven: passed_at(i),
            locked: rules.locked(i, now),
        })
        .collect();
    let keepers = Keepers {
        newest: newest_per_group(rules, Kind::Image, &image_backups),
        proven: last_proven_per_group(rules, Kind::Image, &image_backups, now),
    };
    let mut doomed: Vec<(&Backup, DeleteReason)> = Vec::new();
    // Snapshots that a kept image lists: never deleted.
    let mut protected: HashSet<&str> = HashSet::new();
    for (image, backup) in images.iter().zip(&image_backups) {
        match judge(rules, backup, &keepers, now, &mut plan.warnings) {
            Verdict::Keep(reason) => {
                protected.extend(image.snapshot_ids.iter().map(String::as_str));
                plan.kept.push(Kept {
                    id: image.id.clone(),
                    source: backup.source(),
                    reason,
                });
            }
            Verdict::Delete(reason) => doomed.push((image, reason)),
        }
    }

    let users = snapshot_users(images.iter().copied());

    let mut kept_snapshots: BTreeMap<String, Kept> = BTreeMap::new();
    for (image, reason) in doomed {
        let source = image.source.clone();
        let image_expiry = keys.get(&image.tags, key::EXPIRES_AT).and_then(parse_time);
        let snapshot_expiry = image_expiry.filter(|t| *t <= now).unwrap_or(now);
        let mut deletion = ImageDeletion {
            id: image.id.clone(),
            source: source.clone(),
            reason,
            tag_snapshots: Vec::new(),
            unlisted: Vec::new(),
            snapshot_expiry,
            snapshots: Vec::new(),
            removal: SnapshotRemoval::OneByOne,
            protected: image.protected,
        };
        let unique: BTreeSet<&str> = image.snapshot_ids.iter().map(String::as_str).collect();
        for &snapshot_id in &unique {
            let info = snapshots.get(snapshot_id);
            if info.is_none() {
                deletion.unlisted.push(snapshot_id.to_string());
            }
            let needs_tags = info.is_none_or(|s| {
                keys.get(&s.tags, key::EXPIRES_AT)
                    .and_then(parse_time)
                    .is_none()
            });
            if needs_tags {
                deletion.tag_snapshots.push(snapshot_id.to_string());
            }
            let keep = if protected.contains(snapshot_id) {
                Some(KeepReason::InUse)
            } else if users.get(snapshot_id).copied().unwrap_or(0) > 1 {
                // Another image of ours being deleted now lists it too: whichever deregisters
                // last would race the other's DeleteSnapshot. Tagged now, it is an orphan
                // that the next run deletes.
                Some(KeepReason::InUse)
            } else if info.is_some_and(|s| held(keys, &s.id, &s.tags, &mut plan.warnings)) {
                Some(KeepReason::Hold)
            } else {
                None
            };
            match keep {
                Some(reason) => {
                    kept_snapshots
                        .entry(snapshot_id.to_string())
                        .or_insert(Kept {
                            id: snapshot_id.to_string(),
                            source: source.clone(),
                            reason,
                        });
                }
                None => deletion.snapshots.push(snapshot_id.to_string()),
            }
        }
        // A snapshot a kept image protects keeps its own tags: it is no orphan while that
        // image lives.
        deletion
            .tag_snapshots
            .retain(|s| !protected.contains(s.as_str()));
        deletion
            .unlisted
            .retain(|s| !protected.contains(s.as_str()));
        deletion.removal = SnapshotRemoval::of(unique.len(), deletion.snapshots.len());
        plan.images.push(deletion);
    }

    // Snapshots no image of ours lists: standalone backups and orphans.
    let loose: Vec<&Backup> = snapshots
        .values()
        .filter(|s| !users.contains_key(s.id.as_str()))
        .copied()
        .collect();
    let snapshot_backups: Vec<Facts<'_>> = loose
        .iter()
        .map(|s| Facts {
            id: &s.id,
            source: s.source.as_deref(),
            tags: &s.tags,
            // Orphans are no usable backup: keep-last never counts them.
            usable: s.state == State::Completed && s.is_standalone() && s.share_of.is_none(),
            pending: s.state.is_pending(),
            failed: false,
            created: s.created_at,
            proven: passed_at(s),
            locked: rules.locked(s, now),
        })
        .collect();
    let keepers = Keepers {
        newest: newest_per_group(rules, Kind::Snapshot, &snapshot_backups),
        proven: last_proven_per_group(rules, Kind::Snapshot, &snapshot_backups, now),
    };
    for (snapshot, backup) in loose.iter().zip(&snapshot_backups) {
        let source = backup.source();
        match judge(rules, backup, &keepers, now, &mut plan.warnings) {
            Verdict::Keep(reason) => {
                kept_snapshots.insert(
                    snapshot.id.clone(),
                    Kept {
                        id: snapshot.id.clone(),
                        source,
                        reason,
                    },
                );
            }
            Verdict::Delete(reason) => plan.snapshots.push(SnapshotDeletion {
                id: snapshot.id.clone(),
                source,
                reason: if is_orphan(snapshot, &users) {
                    DeleteReason::Orphan
                } else {
                    reason
                },
            }),
        }
    }
    plan.kept.extend(kept_snapshots.into_values());
    plan.kept.sort();
    plan.images.sort_by(|a, b| a.id.cmp(&b.id));
    plan.snapshots.sort_by(|a, b| a.id.cmp(&b.id));
    plan
}

/// What settling an image deletion's claims found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// Held snapshots it would have deleted: claimed (so they stay tracked), not deleted.
    pub kept: Vec<Kept>,
    /// Snapshots that are not ours to claim: managed by someone else (another
    /// `P:managed-by`), or not this account's. Neither tagged nor deleted; the image still goes.
    pub not_ours: Vec<String>,
    pub warnings: Vec<Warning>,
}

/// Settles the snapshots `deletion` would claim (its `unlisted`), from a describe of them by
/// id (`described`: this account's snapshots among them, whatever their tags). A snapshot with
/// no `P:managed-by` (or ours) is claimed: tagged ours before the image goes. One with another
/// `P:managed-by`, or one the describe did not return (another account's), is left alone, and
/// the image goes without it, one call per snapshot. A held one is claimed but not deleted.
pub fn settle_claims(
    keys: &TagKeys,
    deployment: &str,
    deletion: &mut ImageDeletion,
    described: &[Backup],
) -> Claims {
    let mut claims = Claims::default();
    let listed = deletion.snapshots.len();
    for id in std::mem::take(&mut deletion.unlisted) {
        let found = described.iter().find(|s| s.id == id);
        let ours = found.is_some_and(|s| s.managed_by.as_deref().is_none_or(|m| m == deployment));
        if !ours {
            deletion.tag_snapshots.retain(|s| *s != id);
            deletion.snapshots.retain(|s| *s != id);
            claims.not_ours.push(id);
            continue;
        }
        let held = found.is_some_and(|s| held(keys, &s.id, &s.tags, &mut claims.warnings));
        if held && deletion.snapshots.contains(&id) {
            deletion.snapshots.retain(|s| *s != id);
            claims.kept.push(Kept {
                id,
                source: deletion.source.clone(),
                reason: KeepReason::Hold,
            });
        }
    }
    if deletion.snapshots.len() != listed {
        deletion.removal = SnapshotRemoval::OneByOne;
    }
    claims
}

/// The regions a sweep covers, in order, each once: home, `COPY_TO_REGIONS`, every region
/// named in a `P:copy-to` tag of our backups at home, and `CLEANUP_REGIONS`.
pub fn regions_to_sweep<'a>(
    keys: &TagKeys,
    home: &Region,
    copy_to_regions: &[Region],
    home_backup_tags: impl IntoIterator<Item = (&'a str, &'a Tags)>,
    cleanup_regions: &[Region],
    warnings: &mut Vec<Warning>,
) -> Vec<Region> {
    let mut regions = vec![home.clone()];
    let mut add = |r: &Region| {
        if !regions.contains(r) {
            regions.push(r.clone());
        }
    };
    copy_to_regions.iter().for_each(&mut add);
    let mut tagged: BTreeSet<Region> = BTreeSet::new();
    for (id, tags) in home_backup_tags {
        let Some(value) = keys.get(tags, key::COPY_TO) else {
            continue;
        };
        if value.trim().is_empty() {
            continue;
        }
        match parse_copy_to(value) {
            Ok(list) => tagged.extend(list),
            Err(e) => warnings.push(Warning::new(
                id,
                &keys.key(key::COPY_TO),
                value,
                format!(
                    "{e}; its copies are found only through COPY_TO_REGIONS and CLEANUP_REGIONS"
                ),
            )),
        }
    }
    tagged.iter().for_each(&mut add);
    cleanup_regions.iter().for_each(&mut add);
    regions
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    const NOW: &str = "2026-11-25T03:00:00Z";

    fn now() -> DateTime<Utc> {
        parse_time(NOW).unwrap()
    }

    fn at(days: i64) -> String {
        crate::tags::format_time(now() + TimeDelta::days(days))
    }

    fn keys() -> TagKeys {
        TagKeys::new("backup")
    }

    fn rules(keys: &TagKeys, keep_last: u32) -> Rules<'_> {
        Rules {
            keys,
            deployment: "ec2-backup",
            keep_last,
            drill_interval: crate::duration::Duration::days(7),
            locks: None,
        }
    }

    /// Our tags: source, created `created` days from now, expiring `expires` days from now.
    fn tags(kind: &str, source: &str, created: i64, expires: i64, extra: &[(&str, &str)]) -> Tags {
        let mut t: Tags = vec![
            ("backup:managed-by".into(), "ec2-backup".into()),
            ("backup:kind".into(), kind.into()),
            ("backup:source".into(), source.into()),
            ("backup:created-at".into(), at(created)),
            ("backup:expires-at".into(), at(expires)),
        ];
        for (k, v) in extra {
            t.retain(|(key, _)| key != k);
            t.push((k.to_string(), v.to_string()));
        }
        t
    }

    fn described(kind: Kind, id: &str, state: &str, tags: Tags, snapshots: &[&str]) -> Backup {
        let d = crate::backup::Described {
            id: id.into(),
            state: state.into(),
            tags,
            snapshot_ids: snapshots.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        Backup::new(&keys(), kind, &Region::parse("us-east-1").unwrap(), d)
    }

    fn image(id: &str, state: &str, tags: Tags, snapshots: &[&str]) -> Backup {
        described(Kind::Image, id, state, tags, snapshots)
    }

    fn snapshot(id: &str, state: &str, tags: Tags) -> Backup {
        described(Kind::Snapshot, id, state, tags, &[])
    }

    /// An image and its one snapshot, tagged alike (as CreateImage tags them).
    fn backup(n: u32, source: &str, created: i64, expires: i64) -> (Backup, Backup) {
        let t = tags("image", source, created, expires, &[]);
        (
            image(
                &format!("ami-{n}"),
                "available",
                t.clone(),
                &[&format!("snap-{n}")],
            ),
            snapshot(&format!("snap-{n}"), "completed", t),
        )
    }

    fn split(backups: Vec<(Backup, Backup)>) -> (Vec<Backup>, Vec<Backup>) {
        backups.into_iter().unzip()
    }

    fn deregistered(plan: &RegionPlan) -> Vec<&str> {
        plan.images.iter().map(|d| d.id.as_str()).collect()
    }

    fn kept(plan: &RegionPlan) -> Vec<(&str, KeepReason)> {
        plan.kept
            .iter()
            .map(|k| (k.id.as_str(), k.reason))
            .collect()
    }

    #[test]
    fn expired_images_go_with_their_snapshots_and_the_rest_stay() {
        // GIVEN three backups of one instance: two expired, one not, with KEEP_LAST=0
        let keys = keys();
        let (images, snapshots) = split(vec![
            backup(1, "i-1", -10, -3),
            backup(2, "i-1", -9, -2),
            backup(3, "i-1", -1, 6),
        ]);
        // WHEN planned
        let plan = plan_region(&rules(&keys, 0), &images, &snapshots, now());
        // THEN the two expired images are deregistered, each with its own snapshot
        assert_eq!(deregistered(&plan), ["ami-1", "ami-2"]);
        assert_eq!(plan.images[0].snapshots, ["snap-1"]);
        assert_eq!(plan.images[0].reason, DeleteReason::Expired);
        assert_eq!(plan.images[0].source.as_deref(), Some("i-1"));
        assert!(plan.images[0].tag_snapshots.is_empty(), "already tagged");
        assert!(plan.images[0].unlisted.is_empty());
        // AND each goes in one call with its snapshot
        assert!(
            plan.images
                .iter()
                .all(|d| d.removal == SnapshotRemoval::WithImage)
        );
        assert_eq!(kept(&plan), [("ami-3", KeepReason::NotExpired)]);
        assert!(plan.snapshots.is_empty(), "image snapshots are not orphans");
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn the_last_backup_a_drill_proved_is_kept_until_a_newer_one_is() {
        // GIVEN four expired backups of i-1: two proven (one earlier, one later), the newest
        // drilled and failed, and one never drilled; a proven one of a copy group apart
        let keys = keys();
        let drilled = |days: i64, result: &str| {
            vec![
                ("backup:drilled-at".to_string(), at(days)),
                ("backup:drill-result".to_string(), result.to_string()),
            ]
        };
        let with = |n: u32, created: i64, extra: Vec<(String, String)>| {
            let extra: Vec<(&str, &str)> = extra
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let t = tags("image", "i-1", created, -1, &extra);
            (
                image(
                    &format!("ami-{n}"),
                    "available",
                    t.clone(),
                    &[&format!("snap-{n}")],
                ),
                snapshot(&format!("snap-{n}"), "completed", t),
            )
        };
        let (images, snapshots) = split(vec![
            with(1, -20, drilled(-19, "passed")),
            with(2, -12, drilled(-11, "passed")),
            with(3, -9, drilled(-8, "failed")),
            with(4, -3, Vec::new()),
        ]);
        // WHEN planned with KEEP_LAST=0
        let plan = plan_region(&rules(&keys, 0), &images, &snapshots, now());
        // THEN the last proven stays, with its snapshot; the others go
        assert_eq!(deregistered(&plan), ["ami-1", "ami-3", "ami-4"]);
        assert_eq!(kept(&plan), [("ami-2", KeepReason::LastProven)]);
        // AND once a newer one is proven, it may go
        let (images, snapshots) = split(vec![
            with(2, -12, drilled(-11, "passed")),
            with(5, -3, drilled(-2, "passed")),
        ]);
        let plan = plan_region(&rules(&keys, 0), &images, &snapshots, now());
        assert_eq!(deregistered(&plan), ["ami-2"]);
        assert_eq!(kept(&plan), [("ami-5", KeepReason::LastProven)]);
        // AND once the source's backups stopped coming for longer than DRILL_INTERVAL and a
        // day (deleted, opted out), its proof is released too
        let (images, snapshots) = split(vec![with(2, -12, drilled(-11, "passed"))]);
        let plan = plan_region(&rules(&keys, 0), &images, &snapshots, now());
        assert_eq!(deregistered(&plan), ["ami-2"]);
    }

    #[test]
    fn an_expiry_exactly_now_has_passed() {
        let keys = keys();
        let (images, snapshots) = split(vec![backup(1, "i-1", -7, 0)]);
        let plan = plan_region(&rules(&keys, 0), &images, &snapshots, now());
        assert_eq!(deregistered(&plan), ["ami-1"]);
    }

    #[test]
    fn a_vault_copy_whose_lock_still_runs_is_kept_locked_then_goes() {
        use crate::lock::LockInfo;
        // GIVEN two expired vault copies of i-1 (the newer kept by keep-last) whose snapshots
        // are locked until tomorrow, and a third whose lock has ended
        let keys = keys();
        let vault = [
            ("backup:copy-of", "ami-s"),
            ("backup:source-account", "111122223333"),
        ];
        let copy = |n: u32, created: i64| {
            let t = tags("image", "i-1", created, -1, &vault);
            (
                image(
                    &format!("ami-{n}"),
                    "available",
                    t.clone(),
                    &[&format!("snap-{n}")],
                ),
                snapshot(&format!("snap-{n}"), "completed", t),
            )
        };
        let (images, snapshots) = split(vec![copy(1, -40), copy(2, -35), copy(3, -31)]);
        let lock = |days: i64| LockInfo {
            state: "compliance".into(),
            until: Some(now() + chrono::TimeDelta::days(days)),
        };
        let locks: HashMap<String, LockInfo> = [
            ("snap-1".to_string(), lock(1)),
            ("snap-2".to_string(), lock(-1)),
            ("snap-3".to_string(), lock(1)),
        ]
        .into();
        let rules = Rules {
            locks: Some(&locks),
            ..rules(&keys, 1)
        };
        // WHEN planned
        let plan = plan_region(&rules, &images, &snapshots, now());
        // THEN the locked ones stay (reason locked), the unlocked older one goes with its
        // snapshot
        assert_eq!(deregistered(&plan), ["ami-2"]);
        assert_eq!(
            kept(&plan),
            [("ami-1", KeepReason::Locked), ("ami-3", KeepReason::Locked)]
        );
        // AND the day after the locks end, keep-last still keeps the newest, however old
        let later = now() + chrono::TimeDelta::days(2);
        let plan = plan_region(&rules, &images, &snapshots, later);
        assert_eq!(deregistered(&plan), ["ami-1", "ami-2"]);
        assert_eq!(kept(&plan), [("ami-3", KeepReason::KeepLast)]);
    }

    #[test]
    fn a_shareable_copy_expires_with_its_original_and_never_stands_in_for_it() {
        // GIVEN an expired original and its shareable copy (same tags, P:share-of), made later
        let keys = keys();
        let (mut images, snapshots) =
            split(vec![backup(1, "i-1", -10, -3), backup(2, "i-1", -10, -3)]);
        images[1].share_of = Some("ami-1".into());
        // WHEN planned with KEEP_LAST=1
        let plan = plan_region(&rules(&keys, 1), &images, &snapshots, now());
        // THEN the original is the last backup kept, the copy goes
        assert_eq!(deregistered(&plan), ["ami-2"]);
        assert_eq!(kept(&plan), [("ami-1", KeepReason::KeepLast)]);
    }

    #[test]
    fn keep_last_keeps_the_newest_available_per_source() {
        // GIVEN every backup expired: three of i-1 (the newest pending), two of i-2, one of a
        // gone instance
        let keys = keys();
        let (mut images, snapshots) = split(vec![
            backup(1, "i-1", -10, -3),
            backup(2, "i-1", -9, -2),
            backup(3, "i-1", -8, -1),
            backup(4, "i-2", -10, -3),
            backup(5, "i-2", -9, -2),
            backup(6, "i-gone", -30, -23),
        ]);
        images[2].state = "pending".into();
        // WHEN planned with KEEP_LAST=1
        let plan = plan_region(&rules(&keys, 1), &images, &snapshots, now());
        // THEN the newest *available* of each source stays; the pending one is not touched
        assert_eq!(deregistered(&plan), ["ami-1", "ami-4"]);
        assert_eq!(
            kept(&plan),
            [
                ("ami-2", KeepReason::KeepLast),
                ("ami-3", KeepReason::Pending),
                ("ami-5", KeepReason::KeepLast),
                ("ami-6", KeepReason::KeepLast),
            ]
        );
        // AND with KEEP_LAST=2 one more per source, and with 0 none
        let plan = plan_region(&rules(&keys, 2), &images, &snapshots, now());
        assert!(deregistered(&plan).is_empty());
        let plan = plan_region(&rules(&keys, 0), &images, &snapshots, now());
        assert_eq!(
            deregistered(&plan),
            ["ami-1", "ami-2", "ami-4", "ami-5", "ami-6"]
        );
    }

    #[test]
    fn keep_last_orders_by_created_at_then_by_awss_creation_date() {
        let keys = keys();
        // No created-at tag: EC2's creation dates decide.
        let untimed = |id: &str, days: i64| {
            let mut tags = tags("image", "i-1", -9, -2, &[]);
            tags.retain(|(k, _)| k != "backup:created-at");
            let d = crate::backup::Described {
                id: id.into(),
                state: "available".into(),
                tags,
                recorded_at: Some(now() - TimeDelta::days(days)),
                ..Default::default()
            };
            Backup::new(&keys, Kind::Image, &Region::parse("us-east-1").unwrap(), d)
        };
        let (old, new) = (untimed("ami-old", 9), untimed("ami-new", 8));
        let plan = plan_region(&rules(&keys, 1), &[old, new], &[], now());
        assert_eq!(deregistered(&plan), ["ami-old"]);
        assert_eq!(kept(&plan), [("ami-new", KeepReason::KeepLast)]);
    }

    #[test]
    fn copies_are_counted_apart_from_originals() {
        // GIVEN in one region an original of i-1 and a newer copy of i-1 (from another region)
        let keys = keys();
        let original = image("ami-o", "available", tags("image", "i-1", -9, -2, &[]), &[]);
        let copy = image(
            "ami-c",
            "available",
            tags("image", "i-1", -8, -1, &[("backup:copy-of", "ami-x")]),
            &[],
        );
        // WHEN planned with KEEP_LAST=1
        let plan = plan_region(&rules(&keys, 1), &[original, copy], &[], now());
        // THEN each is the last of its own kind, and both stay
        assert_eq!(
            kept(&plan),
            [
                ("ami-c", KeepReason::KeepLast),
                ("ami-o", KeepReason::KeepLast)
            ]
        );
    }

    #[test]
    fn hold_keeps_an_expired_backup_and_an_unclear_hold_keeps_it_too() {
        let keys = keys();
        let images = vec![
            image(
                "ami-1",
                "available",
                tags("image", "i-1", -9, -2, &[("backup:hold", "true")]),
                &[],
            ),
            image(
                "ami-2",
                "available",
                tags("image", "i-2", -9, -2, &[("Backup:Hold", "maybe")]),
                &[],
            ),
            image(
                "ami-3",
                "available",
                tags("image", "i-3", -9, -2, &[("backup:hold", "false")]),
                &[],
            ),
            image(
                "ami-4",
                "failed",
                tags("image", "i-4", -1, 6, &[("backup:hold", "yes")]),
                &[],
            ),
        ];
        let plan = plan_region(&rules(&keys, 0), &images, &[], now());
        assert_eq!(deregistered(&plan), ["ami-3"]);
        assert_eq!(
            kept(&plan),
            [
                ("ami-1", KeepReason::Hold),
                ("ami-2", KeepReason::Hold),
                ("ami-4", KeepReason::Hold),
            ]
        );
        assert_eq!(plan.warnings.len(), 1);
        assert_eq!(plan.warnings[0].resource, "ami-2");
        assert_eq!(plan.warnings[0].value, "maybe");
    }

    #[test]
    fn a_failed_image_goes_at_once_and_does_not_count_for_keep_last() {
        // GIVEN a failed image, newer than the only available one, far from its expiry
        let keys = keys();
        let (mut images, snapshots) =
            split(vec![backup(1, "i-1", -1, 6), backup(2, "i-1", -9, -2)]);
        images[0].state = "failed".into();
        // WHEN planned with KEEP_LAST=1
        let plan = plan_region(&rules(&keys, 1), &images, &snapshots, now());
        // THEN the failed image and its snapshot go; the older available one is the last good
        assert_eq!(deregistered(&plan), ["ami-1"]);
        assert_eq!(plan.images[0].reason, DeleteReason::Failed);
        assert_eq!(plan.images[0].snapshots, ["snap-1"]);
        assert_eq!(kept(&plan), [("ami-2", KeepReason::KeepLast)]);
    }

    #[test]
    fn a_missing_or_unreadable_expiry_keeps_the_backup_and_warns() {
        let keys = keys();
        let mut missing = image("ami-1", "available", tags("image", "i-1", -9, -2, &[]), &[]);
        missing.tags.retain(|(k, _)| k != "backup:expires-at");
        let garbled = image(
            "ami-2",
            "available",
            tags(
                "image",
                "i-2",
                -9,
                -2,
                &[("backup:expires-at", "next tuesday")],
            ),
            &[],
        );
        let plan = plan_region(&rules(&keys, 0), &[missing, garbled], &[], now());
        assert!(deregistered(&plan).is_empty());
        assert_eq!(
            kept(&plan),
            [
                ("ami-1", KeepReason::UnreadableExpiry),
                ("ami-2", KeepReason::UnreadableExpiry)
            ]
        );
        let seen: Vec<(&str, &str)> = plan
            .warnings
            .iter()
            .map(|w| (w.resource.as_str(), w.value.as_str()))
            .collect();
        assert_eq!(seen, [("ami-1", ""), ("ami-2", "next tuesday")]);
    }

    #[test]
    fn only_this_deployments_backups_are_considered() {
        let keys = keys();
        let theirs = tags("image", "i-1", -90, -80, &[("backup:managed-by", "other")]);
        let untagged: Tags = vec![("Name".into(), "old-ami".into())];
        let images = vec![
            image("ami-theirs", "available", theirs.clone(), &["snap-theirs"]),
            image("ami-plain", "failed", untagged.clone(), &[]),
        ];
        let snapshots = vec![
            snapshot("snap-theirs", "completed", theirs),
            snapshot("snap-plain", "completed", untagged),
        ];
        let plan = plan_region(&rules(&keys, 0), &images, &snapshots, now());
        assert_eq!(plan, RegionPlan::default());
    }

    #[test]
    fn an_orphan_is_deleted_once_expired_and_never_kept_by_keep_last() {
        // GIVEN snapshots of ours that no image uses: image snapshots left by a crash, one
        // expired and one not, and one without an expiry
        let keys = keys();
        let snapshots = vec![
            snapshot("snap-1", "completed", tags("image", "i-1", -9, -2, &[])),
            snapshot("snap-2", "completed", tags("image", "i-1", -1, 6, &[])),
            snapshot(
                "snap-3",
                "completed",
                vec![("backup:managed-by".into(), "ec2-backup".into())],
            ),
        ];
        // WHEN planned with KEEP_LAST=5
        let plan = plan_region(&rules(&keys, 5), &[], &snapshots, now());
        // THEN the expired one goes as an orphan; the others are kept and reported
        assert_eq!(
            plan.snapshots,
            [SnapshotDeletion {
                id: "snap-1".into(),
                source: Some("i-1".into()),
                reason: DeleteReason::Orphan
            }]
        );
        assert_eq!(
            kept(&plan),
            [
                ("snap-2", KeepReason::NotExpired),
                ("snap-3", KeepReason::UnreadableExpiry)
            ]
        );
    }

    #[test]
    fn standalone_snapshots_follow_the_backup_rules() {
        let keys = keys();
        let snapshots = vec![
            snapshot(
                "snap-1",
                "completed",
                tags("snapshot", "vol-1", -10, -3, &[]),
            ),
            snapshot(
                "snap-2",
                "completed",
                tags("snapshot", "vol-1", -9, -2, &[]),
            ),
            snapshot("snap-3", "pending", tags("snapshot", "vol-1", -8, -1, &[])),
            snapshot(
                "snap-4",
                "completed",
                tags("snapshot", "vol-2", -9, -2, &[("backup:hold", "1")]),
            ),
        ];
        let plan = plan_region(&rules(&keys, 1), &[], &snapshots, now());
        assert_eq!(
            plan.snapshots,
            [SnapshotDeletion {
                id: "snap-1".into(),
                source: Some("vol-1".into()),
                reason: DeleteReason::Expired
            }]
        );
        assert_eq!(
            kept(&plan),
            [
                ("snap-2", KeepReason::KeepLast),
                ("snap-3", KeepReason::Pending),
                ("snap-4", KeepReason::Hold)
            ]
        );
    }

    #[test]
    fn a_snapshot_a_kept_image_uses_is_never_deleted_nor_retagged() {
        // GIVEN an expired image sharing a snapshot with a kept image
        let keys = keys();
        let images = vec![
            image(
                "ami-1",
                "available",
                tags("image", "i-1", -9, -2, &[]),
                &["snap-a", "snap-shared"],
            ),
            image(
                "ami-2",
                "available",
                tags("image", "i-2", -1, 6, &[]),
                &["snap-shared"],
            ),
        ];
        // snap-a is untagged (a copy's snapshot, say); snap-shared has no readable expiry
        let snapshots = vec![snapshot(
            "snap-shared",
            "completed",
            vec![("backup:managed-by".into(), "ec2-backup".into())],
        )];
        let plan = plan_region(&rules(&keys, 0), &images, &snapshots, now());
        assert_eq!(deregistered(&plan), ["ami-1"]);
        let d = &plan.images[0];
        assert_eq!(d.snapshots, ["snap-a"]);
        assert_eq!(d.tag_snapshots, ["snap-a"], "tagged before deregistering");
        assert_eq!(d.unlisted, ["snap-a"], "to be claimed: no tag of ours");
        assert_eq!(
            d.removal,
            SnapshotRemoval::OneByOne,
            "not in one call: snap-shared stays"
        );
        assert_eq!(
            d.snapshot_expiry,
            now() - TimeDelta::days(2),
            "the image's expiry"
        );
        assert_eq!(
            kept(&plan),
            [
                ("ami-2", KeepReason::NotExpired),
                ("snap-shared", KeepReason::InUse)
            ]
        );
    }

    #[test]
    fn a_snapshot_two_doomed_images_share_is_tagged_and_left_for_the_next_run() {
        let keys = keys();
        let images = vec![
            image(
                "ami-1",
                "available",
                tags("image", "i-1", -9, -2, &[]),
                &["snap-s"],
            ),
            image(
                "ami-2",
                "failed",
                tags("image", "i-2", -1, 6, &[]),
                &["snap-s", "snap-s"],
            ),
        ];
        let plan = plan_region(&rules(&keys, 0), &images, &[], now());
        assert_eq!(deregistered(&plan), ["ami-1", "ami-2"]);
        assert!(plan.images.iter().all(|d| d.snapshots.is_empty()));
        assert!(plan.images.iter().all(|d| d.tag_snapshots == ["snap-s"]));
        assert!(
            plan.images
                .iter()
                .all(|d| d.removal == SnapshotRemoval::OneByOne)
        );
        // The failed image is not expired: its snapshots get "now", already passed.
        assert_eq!(plan.images[1].snapshot_expiry, now());
        assert_eq!(kept(&plan), [("snap-s", KeepReason::InUse)]);
    }

    #[test]
    fn a_held_snapshot_of_a_doomed_image_stays() {
        let keys = keys();
        let (images, mut snapshots) = split(vec![backup(1, "i-1", -9, -2)]);
        snapshots[0]
            .tags
            .push(("backup:hold".into(), "true".into()));
        let plan = plan_region(&rules(&keys, 0), &images, &snapshots, now());
        assert_eq!(deregistered(&plan), ["ami-1"]);
        assert!(plan.images[0].snapshots.is_empty());
        assert_eq!(
            plan.images[0].removal,
            SnapshotRemoval::OneByOne,
            "DeleteAssociatedSnapshots would delete the held snapshot too"
        );
        assert_eq!(kept(&plan), [("snap-1", KeepReason::Hold)]);
    }

    #[test]
    fn an_image_without_snapshots_is_deregistered_alone() {
        let keys = keys();
        let images = [image(
            "ami-1",
            "failed",
            tags("image", "i-1", -1, 6, &[]),
            &[],
        )];
        let plan = plan_region(&rules(&keys, 0), &images, &[], now());
        assert_eq!(deregistered(&plan), ["ami-1"]);
        assert_eq!(plan.images[0].removal, SnapshotRemoval::OneByOne);
    }

    #[test]
    fn claims_take_only_snapshots_no_one_else_manages() {
        // GIVEN an expired image of ours listing five snapshots, none tagged ours: one with no
        // tags at all, one another deployment manages, one this account does not own (the
        // describe by id does not return it), one held, and one tagged ours since the listing
        let keys = keys();
        let listed = [
            "snap-bare",
            "snap-theirs",
            "snap-foreign",
            "snap-held",
            "snap-late",
        ];
        let images = [image(
            "ami-1",
            "available",
            tags("image", "i-1", -9, -2, &[]),
            &listed,
        )];
        let mut plan = plan_region(&rules(&keys, 0), &images, &[], now());
        let d = &mut plan.images[0];
        assert_eq!(
            d.removal,
            SnapshotRemoval::WithImage,
            "as far as the plan knows"
        );
        assert_eq!(sorted(d.unlisted.clone()), sorted_strs(&listed));
        let described = [
            snapshot("snap-bare", "completed", vec![]),
            snapshot(
                "snap-theirs",
                "completed",
                vec![("Backup:Managed-By".into(), "team-b".into())],
            ),
            snapshot(
                "snap-held",
                "completed",
                vec![("backup:hold".into(), "true".into())],
            ),
            snapshot(
                "snap-late",
                "completed",
                vec![("backup:managed-by".into(), "ec2-backup".into())],
            ),
        ];

        // WHEN settled
        let claims = settle_claims(&keys, "ec2-backup", d, &described);

        // THEN only the unmanaged and our own are claimed; the held one is claimed, not deleted
        assert_eq!(
            sorted(claims.not_ours.clone()),
            sorted_strs(&["snap-foreign", "snap-theirs"])
        );
        assert_eq!(
            sorted(d.tag_snapshots.clone()),
            sorted_strs(&["snap-bare", "snap-held", "snap-late"])
        );
        assert_eq!(
            sorted(d.snapshots.clone()),
            sorted_strs(&["snap-bare", "snap-late"])
        );
        assert_eq!(
            claims.kept,
            [Kept {
                id: "snap-held".into(),
                source: Some("i-1".into()),
                reason: KeepReason::Hold
            }]
        );
        // AND the image goes without them, one call per snapshot; nothing is left to settle
        assert_eq!(d.removal, SnapshotRemoval::OneByOne);
        assert!(d.unlisted.is_empty());

        // AND an image whose unlisted snapshots are all claimable still goes in one call
        let images = [image(
            "ami-2",
            "available",
            tags("image", "i-1", -9, -2, &[]),
            &["snap-bare"],
        )];
        let mut plan = plan_region(&rules(&keys, 0), &images, &[], now());
        let claims = settle_claims(&keys, "ec2-backup", &mut plan.images[0], &described);
        assert_eq!(claims, Claims::default());
        assert_eq!(plan.images[0].removal, SnapshotRemoval::WithImage);
        assert_eq!(plan.images[0].tag_snapshots, ["snap-bare"]);
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    fn sorted_strs(v: &[&str]) -> Vec<String> {
        sorted(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn regions_swept_are_home_config_tagged_and_cleanup_each_once() {
        let keys = keys();
        let r = |s: &str| Region::parse(s).unwrap();
        let a = tags(
            "image",
            "i-1",
            0,
            7,
            &[("backup:copy-to", "eu-west-1,us-west-2")],
        );
        let b = tags("image", "i-2", 0, 7, &[("backup:copy-to", "ap-south-1")]);
        let c = tags("image", "i-3", 0, 7, &[("backup:copy-to", "")]);
        let bad = tags("image", "i-4", 0, 7, &[("backup:copy-to", "mars")]);
        let mut warnings = Vec::new();
        let regions = regions_to_sweep(
            &keys,
            &r("us-east-1"),
            &[r("us-west-2"), r("us-east-1")],
            [
                ("ami-a", &a),
                ("ami-b", &b),
                ("ami-c", &c),
                ("ami-bad", &bad),
            ],
            &[r("eu-west-1"), r("ca-central-1")],
            &mut warnings,
        );
        let names: Vec<&str> = regions.iter().map(Region::as_str).collect();
        assert_eq!(
            names,
            [
                "us-east-1",
                "us-west-2",
                "ap-south-1",
                "eu-west-1",
                "ca-central-1"
            ]
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].resource, "ami-bad");
    }
}
