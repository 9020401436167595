//! What monitor computes, pure: per region, the resources it protects and how many of them are
//! late or have no backup, the worst recovery point, the DR copies missing, the backups stuck
//! pending and the orphaned snapshots; and the lists of what is late, unprotected or uncopied,
//! with the reason in words. No AWS here; `now` is passed in.
//!
//! Each figure reuses the rule that already decides it elsewhere: the RPO rows of
//! [`crate::status::status`], where a backup goes ([`copy_targets`]), when a copy would be
//! expired ([`copy_life`]), and what an orphan is ([`orphans`], expire's rule).

use crate::backup::Backup;
use crate::config::Config;
use crate::duration::age;
use crate::expire::plan::{Rules, orphans};
use crate::metrics::{Metric, Values, count};
use crate::region::Region;
use crate::replicate::plan::{copy_life, copy_targets};
use crate::report::Omitted;
use crate::status::{Inputs, Resource, Row, Rpo, grace};
use crate::tags::{Kind, TagKeys, format_time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One region's figures (and, summed, the deployment's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// The status rows in the region: at home every opted-in resource; in a DR region the
    /// resources whose copy-to names it.
    pub protected: usize,
    /// Rows whose newest usable backup is older than the interval plus grace ([`Rpo::Late`]).
    pub late: usize,
    /// Rows with no usable backup at all ([`Rpo::None`]).
    pub without_backup: usize,
    /// DR regions only: usable originals at home, older than `COPY_GRACE`, that are to be
    /// copied here and have no usable copy here (see [`copies_missing`]).
    pub copies_missing: usize,
    /// Backups and copies here still pending (neither usable nor failed) for longer than
    /// `PENDING_LIMIT`, by EC2's own start time.
    pub pending_too_long: usize,
    /// Snapshots of ours here that no image of ours lists and that are no standalone backup.
    pub orphaned_snapshots: usize,
    /// The age, in seconds, of the oldest of the newest usable backups of the rows here that
    /// have one; 0 when none has.
    pub worst_rpo_seconds: i64,
}

impl Figures {
    /// The seven figures as metrics (`shared/metrics.json`, monitor's `region` and
    /// `deployment` sets).
    pub fn metric_values(&self) -> Values {
        vec![
            (Metric::Protected, count(self.protected)),
            (Metric::Late, count(self.late)),
            (Metric::WithoutBackup, count(self.without_backup)),
            (Metric::CopiesMissing, count(self.copies_missing)),
            (Metric::PendingTooLong, count(self.pending_too_long)),
            (Metric::OrphanedSnapshots, count(self.orphaned_snapshots)),
            (Metric::WorstRpoSeconds, self.worst_rpo_seconds as f64),
        ]
    }

    /// The deployment's figures: the sums over the regions, and the worst RPO of any region.
    pub fn total<'a>(regions: impl IntoIterator<Item = &'a Figures>) -> Figures {
        regions
            .into_iter()
            .fold(Figures::default(), |t, f| Figures {
                protected: t.protected + f.protected,
                late: t.late + f.late,
                without_backup: t.without_backup + f.without_backup,
                copies_missing: t.copies_missing + f.copies_missing,
                pending_too_long: t.pending_too_long + f.pending_too_long,
                orphaned_snapshots: t.orphaned_snapshots + f.orphaned_snapshots,
                worst_rpo_seconds: t.worst_rpo_seconds.max(f.worst_rpo_seconds),
            })
    }
}

/// A resource whose recovery point is not met in a region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub resource: String,
    pub region: Region,
    pub reason: String,
}

/// An original backup that has no usable copy yet in a DR region it is to be copied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingCopy {
    pub backup: String,
    /// The instance or volume it is a backup of.
    pub source: Option<String>,
    pub region: Region,
    pub reason: String,
    /// When the original was made (the order of the list: oldest first).
    #[serde(skip)]
    pub made_at: DateTime<Utc>,
}

/// A backup or copy pending for longer than `PENDING_LIMIT`: logged, counted, not listed in the
/// result (whose lists are the late, unprotected and uncopied resources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub backup: String,
    pub source: Option<String>,
    pub region: Region,
    pub reason: String,
}

/// The result of monitor: `{"regions": {...}, "late": [...], "without_backup": [...],
/// "copies_missing": [...]}`, and `"omitted"` when a list was cut.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MonitorReport {
    pub regions: BTreeMap<Region, Figures>,
    /// Most overdue first (by how far past its interval plus grace).
    pub late: Vec<Finding>,
    /// By region, then resource.
    pub without_backup: Vec<Finding>,
    /// Oldest original first.
    pub copies_missing: Vec<MissingCopy>,
    #[serde(skip_serializing_if = "Omitted::is_empty")]
    pub omitted: Omitted,
    /// For the log lines only.
    #[serde(skip)]
    pub stuck: Vec<Stuck>,
}

impl MonitorReport {
    /// The deployment's figures.
    pub fn total(&self) -> Figures {
        Figures::total(self.regions.values())
    }

    /// Cuts each list to `limit` entries (the most urgent ones stay), saying under `omitted`
    /// how many were left off. The figures still count them all.
    pub fn cap(&mut self, limit: usize) {
        self.omitted.cap("late", &mut self.late, limit);
        self.omitted
            .cap("without_backup", &mut self.without_backup, limit);
        self.omitted
            .cap("copies_missing", &mut self.copies_missing, limit);
    }
}

/// The whole summary, every list complete (see [`MonitorReport::cap`]), for each region of
/// `inputs.regions` (the home region first): from what `status::gather` read and the
/// `status::status` rows computed from it.
pub fn summarize(
    home: &Region,
    inputs: &Inputs,
    rows: &[Row],
    config: &Config,
    now: DateTime<Utc>,
) -> MonitorReport {
    let keys = TagKeys::new(&config.tag_prefix);
    let rules = Rules {
        keys: &keys,
        deployment: &config.deployment_name,
        keep_last: config.keep_last,
    };
    let resources: HashMap<&str, &Resource> = inputs
        .resources
        .iter()
        .map(|r| (r.id.as_str(), r))
        .collect();
    let mut report = MonitorReport::default();
    for region in &inputs.regions {
        report.regions.insert(region.clone(), Figures::default());
    }

    // Rows: protected, late, without backup, worst RPO.
    // With how far past its limit each late row is, to put the most overdue first.
    let mut late: Vec<(i64, Finding)> = Vec::new();
    for row in rows {
        let figures = report.regions.entry(row.region.clone()).or_default();
        figures.protected += 1;
        if let Some(t) = row.newest_created_at {
            figures.worst_rpo_seconds = figures.worst_rpo_seconds.max((now - t).num_seconds());
        }
        match row.rpo {
            Rpo::Met => {}
            Rpo::Late => {
                figures.late += 1;
                let resource = resources.get(row.resource.as_str()).copied();
                let limit = resource.map_or(0, |r| {
                    r.interval.as_minutes() + grace(r.interval).num_minutes()
                });
                let overdue = row.age_minutes.unwrap_or(0) - limit;
                late.push((overdue, finding(row, late_reason(row, resource))));
            }
            Rpo::None => {
                figures.without_backup += 1;
                report
                    .without_backup
                    .push(finding(row, without_backup_reason(row)));
            }
        }
    }
    late.sort_by(|(a, x), (b, y)| {
        b.cmp(a)
            .then_with(|| (&x.region, &x.resource).cmp(&(&y.region, &y.resource)))
    });
    report.late = late.into_iter().map(|(_, f)| f).collect();
    report
        .without_backup
        .sort_by(|a, b| (&a.region, &a.resource).cmp(&(&b.region, &b.resource)));

    // Copies missing in each DR region read.
    report.copies_missing = copies_missing(&keys, config, home, inputs, now);
    for missing in &report.copies_missing {
        if let Some(f) = report.regions.get_mut(&missing.region) {
            f.copies_missing += 1;
        }
    }

    // Pending too long, and orphans, region by region.
    let mut listed: BTreeMap<&Region, (Vec<&Backup>, Vec<&Backup>)> = BTreeMap::new();
    for b in inputs.backups.iter().chain(&inputs.others) {
        let (images, snapshots) = listed.entry(&b.region).or_default();
        match b.kind {
            Kind::Image => images.push(b),
            Kind::Snapshot => snapshots.push(b),
        }
    }
    for b in &inputs.backups {
        if let Some(since) = pending_since(b, config, now)
            && let Some(f) = report.regions.get_mut(&b.region)
        {
            f.pending_too_long += 1;
            report.stuck.push(Stuck {
                backup: b.id.clone(),
                source: b.source.clone(),
                region: b.region.clone(),
                reason: format!(
                    "pending since {} ({}), longer than PENDING_LIMIT {}",
                    format_time(since),
                    age((now - since).num_minutes()),
                    config.pending_limit
                ),
            });
        }
    }
    for (region, (images, snapshots)) in &listed {
        if let Some(f) = report.regions.get_mut(*region) {
            f.orphaned_snapshots =
                orphans(&rules, images.iter().copied(), snapshots.iter().copied()).len();
        }
    }
    report
}

fn finding(row: &Row, reason: String) -> Finding {
    Finding {
        resource: row.resource.clone(),
        region: row.region.clone(),
        reason,
    }
}

fn late_reason(row: &Row, resource: Option<&Resource>) -> String {
    let newest = row.newest.as_deref().unwrap_or("?");
    let old = age(row.age_minutes.unwrap_or(0));
    match resource {
        Some(r) => format!(
            "the newest usable backup here, {newest}, is {old} old: more than its interval {} plus {} of grace",
            r.interval,
            age(grace(r.interval).num_minutes())
        ),
        None => format!("the newest usable backup here, {newest}, is {old} old"),
    }
}

fn without_backup_reason(row: &Row) -> String {
    match (row.role, row.copies_pending) {
        ("home", _) => "no usable backup".to_string(),
        (_, 0) => "no usable copy here, and no usable backup at home to copy".to_string(),
        (_, n) => format!(
            "no usable copy here; {n} usable backup{} at home not copied here yet",
            if n == 1 { "" } else { "s" }
        ),
    }
}

/// When a backup pending for longer than `PENDING_LIMIT` started: it is still `pending`
/// (neither usable nor failed), and EC2's own record of its start is older than that. EC2's
/// record, not `P:created-at`: a DR copy's `P:created-at` is its original's time, however late
/// the copy started; without a record, the created-at rule's time.
pub fn pending_since(
    backup: &Backup,
    config: &Config,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    backup
        .recorded_at
        .or(backup.created_at)
        .filter(|since| backup.state.is_pending() && now - *since > config.pending_limit.to_delta())
}

/// The DR copies missing: for each usable original of ours at home (replicate's
/// [`copy_targets`], the one rule of what is copied where) made longer than `COPY_GRACE` ago,
/// each of its target regions that was read and holds no usable copy of it (`P:copy-of` = its
/// id). A pending or failed copy is no usable copy: it is listed with that reason.
///
/// Not counted: an original whose copy would already have expired by now ([`copy_life`], the
/// rule by which replicate skips it: with a copy retention shorter than the backup's, expire
/// deletes the copy first, so none is ever made); and a target region no resource and no
/// `COPY_TO_REGIONS` names any more (it is not read).
pub fn copies_missing(
    keys: &TagKeys,
    config: &Config,
    home: &Region,
    inputs: &Inputs,
    now: DateTime<Utc>,
) -> Vec<MissingCopy> {
    let mut copies: HashMap<(&str, &Region), Vec<&Backup>> = HashMap::new();
    for b in &inputs.backups {
        if let Some(of) = b.copy_of.as_deref() {
            copies.entry((of, &b.region)).or_default().push(b);
        }
    }
    let grace = config.copy_grace;
    let mut missing = Vec::new();
    for original in inputs
        .backups
        .iter()
        .filter(|b| &b.region == home && b.is_original())
    {
        let mut ignored = Vec::new();
        let Ok(targets) = copy_targets(keys, config, original, &mut ignored) else {
            continue;
        };
        let life = copy_life(keys, config, original, now, &mut ignored);
        if now - life.created_at <= grace.to_delta() || life.has_passed(now) {
            continue;
        }
        let made = format!(
            "made {} ({} ago)",
            format_time(life.created_at),
            age((now - life.created_at).num_minutes())
        );
        for region in targets.iter().filter(|r| inputs.regions.contains(r)) {
            let here = copies
                .get(&(original.id.as_str(), region))
                .map(Vec::as_slice)
                .unwrap_or_default();
            if here.iter().any(|c| c.is_usable()) {
                continue;
            }
            let reason = match here.iter().find(|c| c.state.is_pending()).or(here.first()) {
                None => format!("{made}; no copy here after COPY_GRACE {grace}"),
                Some(c) => format!(
                    "{made}; its copy {} here is {}, none usable after COPY_GRACE {grace}",
                    c.id, c.state
                ),
            };
            missing.push(MissingCopy {
                backup: original.id.clone(),
                source: original.source.clone(),
                region: region.clone(),
                reason,
                made_at: life.created_at,
            });
        }
    }
    missing
        .sort_by(|a, b| (a.made_at, &a.region, &a.backup).cmp(&(b.made_at, &b.region, &b.backup)));
    missing
}
