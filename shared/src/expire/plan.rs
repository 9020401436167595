//! What a sweep deletes and what it keeps, and why: pure decisions over what one region's
//! describes returned, with `now` passed in. No AWS here.
//!
//! The rules (issue 4), in the order they are applied to each backup of this deployment:
//! - an image still `pending` (or a snapshot still `pending`) is never touched;
//! - `P:hold` (true, or any value that is not clearly false) keeps it, whatever else holds;
//! - an image in state `failed` is deleted at once;
//! - a missing or unreadable `P:expires-at` keeps it, with a warning;
//! - an `P:expires-at` still in the future keeps it;
//! - the newest `KEEP_LAST` available backups of each source in the region are kept, even
//!   when expired (originals and copies counted apart);
//! - anything else expired is deleted.
//!
//! Snapshots are judged by who uses them: a snapshot listed by one of our registered images
//! goes with that image (deleted after it, never while a kept image still lists it); a
//! standalone snapshot backup (`P:kind=snapshot`) follows the rules above; any other snapshot
//! of ours that no image uses is an orphan of an earlier run, deleted once expired.

use crate::config::parse_bool;
use crate::region::{Region, parse_region_list};
use crate::tags::{Kind, TagKeys, Tags, Warning, key, parse_time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// An AMI of this deployment, as DescribeImages answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    /// `available`, `pending`, `failed`, ...
    pub state: String,
    pub tags: Tags,
    /// The EBS snapshots in its block device mappings.
    pub snapshot_ids: Vec<String>,
    /// AWS's creation date: orders backups when `P:created-at` is missing.
    pub created: Option<DateTime<Utc>>,
}

/// An EBS snapshot of this deployment, as DescribeSnapshots answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub id: String,
    /// `pending`, `completed`, `error`, ...
    pub state: String,
    pub tags: Tags,
    pub started: Option<DateTime<Utc>>,
}

/// Why a backup stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    /// `P:hold=true`.
    Hold,
    /// Among the newest `KEEP_LAST` available backups of its source in this region.
    KeepLast,
    /// A registered image we keep still uses the snapshot (or EC2 said so).
    InUse,
    NotExpired,
    /// `P:expires-at` missing or not a time: never deleted by guesswork.
    UnreadableExpiry,
    /// Still being created.
    Pending,
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

/// An image to delete, crash-safe: tag `tag_snapshots`, deregister, then delete `snapshots`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDeletion {
    pub id: String,
    pub source: Option<String>,
    pub reason: DeleteReason,
    /// Its snapshots that lack our `P:managed-by` or a readable `P:expires-at`: tagged before
    /// the image is deregistered, so a crash in between leaves orphans a later run finds.
    pub tag_snapshots: Vec<String>,
    /// The `P:expires-at` written on them (already passed).
    pub snapshot_expiry: DateTime<Utc>,
    /// Its snapshots to delete once it is deregistered.
    pub snapshots: Vec<String>,
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
}

impl Rules<'_> {
    fn ours(&self, tags: &[(String, String)]) -> bool {
        self.keys.get(tags, key::MANAGED_BY) == Some(self.deployment)
    }
}

/// The verdict on one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep(KeepReason),
    Delete(DeleteReason),
}

/// The facts about one backup the rules look at.
struct Backup<'a> {
    id: &'a str,
    tags: &'a [(String, String)],
    /// `available` for images, `completed` for snapshots: what keep-last counts.
    usable: bool,
    pending: bool,
    failed: bool,
    created: Option<DateTime<Utc>>,
}

impl Backup<'_> {
    fn source(&self, keys: &TagKeys) -> Option<String> {
        keys.get(self.tags, key::SOURCE).map(str::to_string)
    }

    /// Backups count against each other for keep-last when they are of the same kind, the same
    /// source, and both originals or both copies. One without a source is a group of its own.
    fn group(&self, keys: &TagKeys, kind: Kind) -> (Kind, String, bool) {
        let source = keys
            .get(self.tags, key::SOURCE)
            .map(|s| format!("source:{s}"))
            .unwrap_or_else(|| format!("self:{}", self.id));
        let copy = keys.get(self.tags, key::COPY_OF).is_some();
        (kind, source, copy)
    }

    fn created_at(&self, keys: &TagKeys) -> Option<DateTime<Utc>> {
        keys.get(self.tags, key::CREATED_AT)
            .and_then(parse_time)
            .or(self.created)
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

/// The ids of the newest `keep_last` usable backups of each group.
fn newest_per_group(
    rules: &Rules<'_>,
    kind: Kind,
    backups: &[Backup<'_>],
) -> HashSet<String> {
    let mut groups: HashMap<(Kind, String, bool), Vec<&Backup<'_>>> = HashMap::new();
    for b in backups.iter().filter(|b| b.usable) {
        groups.entry(b.group(rules.keys, kind)).or_default().push(b);
    }
    let mut newest = HashSet::new();
    for mut members in groups.into_values() {
        // Newest first; a backup with no time at all counts as the oldest; ties by id.
        members.sort_by(|a, b| {
            b.created_at(rules.keys)
                .cmp(&a.created_at(rules.keys))
                .then_with(|| b.id.cmp(a.id))
        });
        newest.extend(
            members
                .into_iter()
                .take(rules.keep_last as usize)
                .map(|b| b.id.to_string()),
        );
    }
    newest
}

fn judge(
    rules: &Rules<'_>,
    backup: &Backup<'_>,
    newest: &HashSet<String>,
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
    if newest.contains(backup.id) {
        return Verdict::Keep(KeepReason::KeepLast);
    }
    Verdict::Delete(DeleteReason::Expired)
}

/// One region's plan from its images and snapshots. Only backups whose `P:managed-by` is this
/// deployment are ever considered, whatever else was passed in.
pub fn plan_region(
    rules: &Rules<'_>,
    images: &[ImageInfo],
    snapshots: &[SnapshotInfo],
    now: DateTime<Utc>,
) -> RegionPlan {
    let keys = rules.keys;
    let mut plan = RegionPlan::default();
    let images: Vec<&ImageInfo> = images.iter().filter(|i| rules.ours(&i.tags)).collect();
    let snapshots: BTreeMap<&str, &SnapshotInfo> = snapshots
        .iter()
        .filter(|s| rules.ours(&s.tags))
        .map(|s| (s.id.as_str(), s))
        .collect();

    // Images.
    let image_backups: Vec<Backup<'_>> = images
        .iter()
        .map(|i| Backup {
            id: &i.id,
            tags: &i.tags,
            usable: i.state == "available",
            pending: i.state == "pending",
            failed: i.state == "failed",
            created: i.created,
        })
        .collect();
    let newest = newest_per_group(rules, Kind::Image, &image_backups);
    let mut doomed: Vec<(&ImageInfo, DeleteReason)> = Vec::new();
    // Snapshots that a kept image lists: never deleted.
    let mut protected: HashSet<&str> = HashSet::new();
    for (image, backup) in images.iter().zip(&image_backups) {
        match judge(rules, backup, &newest, now, &mut plan.warnings) {
            Verdict::Keep(reason) => {
                protected.extend(image.snapshot_ids.iter().map(String::as_str));
                plan.kept.push(Kept {
                    id: image.id.clone(),
                    source: backup.source(keys),
                    reason,
                });
            }
            Verdict::Delete(reason) => doomed.push((image, reason)),
        }
    }

    // How many of our images list each snapshot.
    let mut users: HashMap<&str, usize> = HashMap::new();
    for image in &images {
        let unique: BTreeSet<&str> = image.snapshot_ids.iter().map(String::as_str).collect();
        for s in unique {
            *users.entry(s).or_default() += 1;
        }
    }

    let mut kept_snapshots: BTreeMap<String, Kept> = BTreeMap::new();
    for (image, reason) in doomed {
        let source = keys.get(&image.tags, key::SOURCE).map(str::to_string);
        let image_expiry = keys.get(&image.tags, key::EXPIRES_AT).and_then(parse_time);
        let snapshot_expiry = image_expiry.filter(|t| *t <= now).unwrap_or(now);
        let mut deletion = ImageDeletion {
            id: image.id.clone(),
            source: source.clone(),
            reason,
            tag_snapshots: Vec::new(),
            snapshot_expiry,
            snapshots: Vec::new(),
        };
        let unique: BTreeSet<&str> = image.snapshot_ids.iter().map(String::as_str).collect();
        for snapshot_id in unique {
            let info = snapshots.get(snapshot_id);
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
        plan.images.push(deletion);
    }

    // Snapshots no image of ours lists: standalone backups and orphans.
    let loose: Vec<&SnapshotInfo> = snapshots
        .values()
        .filter(|s| !users.contains_key(s.id.as_str()))
        .copied()
        .collect();
    let is_standalone =
        |s: &SnapshotInfo| keys.get(&s.tags, key::KIND) == Some(Kind::Snapshot.as_str());
    let snapshot_backups: Vec<Backup<'_>> = loose
        .iter()
        .map(|s| Backup {
            id: &s.id,
            tags: &s.tags,
            // Orphans are no usable backup: keep-last never counts them.
            usable: s.state == "completed" && is_standalone(s),
            pending: s.state == "pending",
            failed: false,
            created: s.started,
        })
        .collect();
    let newest = newest_per_group(rules, Kind::Snapshot, &snapshot_backups);
    for (snapshot, backup) in loose.iter().zip(&snapshot_backups) {
        let source = backup.source(keys);
        match judge(rules, backup, &newest, now, &mut plan.warnings) {
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
                reason: if is_standalone(snapshot) {
                    reason
                } else {
                    DeleteReason::Orphan
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
        if value.trim().is_empty() || value.trim().eq_ignore_ascii_case("none") {
            continue;
        }
        match parse_region_list(value) {
            Ok(list) => tagged.extend(list),
            Err(e) => warnings.push(Warning::new(
                id,
                &keys.key(key::COPY_TO),
                value,
                format!("{e}; its copies are found only through COPY_TO_REGIONS and CLEANUP_REGIONS"),
            )),
        }
    }
    tagged.iter().for_each(&mut add);
    cleanup_regions.iter().for_each(&mut add);
    regions
}
