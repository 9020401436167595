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
use crate::region::Region;
use crate::replicate::plan::{copy_life, copy_targets};
use crate::report::{Figures, Finding, MissingCopy, MonitorReport, Stuck};
use crate::status::{Inputs, Resource, Row, Rpo, grace};
use crate::tags::{Kind, TagKeys, format_time};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

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
        drill_interval: config.drill_interval,
        locks: None,
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

    // Not proven restorable in time, in each drill region.
    let not_drilled = crate::drill::plan::not_drilled(
        home,
        &inputs.resources,
        &inputs.backups,
        config.drill_interval,
        now,
    );
    for (region, n) in not_drilled {
        report.regions.entry(region).or_default().not_drilled += n;
    }

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
