//! Which resources a drill run restores, where, and from which backup; and which are not
//! proven in time (monitor's `NotDrilled`). Pure: the backups are what the adapters listed.
//!
//! - A resource with DR regions (its `P:copy-to`, else `COPY_TO_REGIONS`) is drilled in each of
//!   them, from its newest usable copy there; one with none is drilled at home, from its newest
//!   usable original ([`drill_regions`], [`drill_backup`]).
//! - It is due in a region when its last passed drill there (the newest `P:drilled-at` with
//!   `P:drill-result=passed` on any of its backups there) is older than `DRILL_INTERVAL` (less
//!   [`due_slack`]), or it was never drilled there ([`last_passed`]).
//! - The due ones are taken oldest last attempt first (never tried first, so that resources
//!   that keep failing do not starve the others), at most `DRILL_BATCH` in a run ([`plan`]);
//!   a backup with a throwaway of a run still going is left to that run.

use super::record::RestoreKind;
use crate::backup::{Backup, DrillResult};
use crate::duration::Duration;
use crate::region::Region;
use crate::status::Resource;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeMap, HashMap};

/// Where `resource` is drilled: its DR regions, or home when it has none.
pub fn drill_regions(home: &Region, copy_to: &[Region]) -> Vec<Region> {
    let dr: Vec<Region> = copy_to.iter().filter(|r| *r != home).cloned().collect();
    if dr.is_empty() {
        vec![home.clone()]
    } else {
        dr
    }
}

/// The backup a drill of a resource of `kind` in `region` restores: the newest usable backup
/// in its own right by `P:created-at`, a copy in a DR region and an original at home.
pub fn drill_backup<'a>(
    backups: &[&'a Backup],
    kind: RestoreKind,
    at_home: bool,
) -> Option<&'a Backup> {
    backups
        .iter()
        .copied()
        .filter(|b| b.kind == kind.backup_kind() && b.is_standalone() && b.is_usable())
        .filter(|b| b.is_original() == at_home)
        .filter(|b| b.created_at.is_some())
        .max_by_key(|b| b.created_at)
}

/// How much earlier than `DRILL_INTERVAL` after a pass a resource is due again: a pass is
/// stamped minutes into its run, and the run a whole interval later must find it due.
pub fn due_slack() -> TimeDelta {
    TimeDelta::hours(1)
}

/// The newest drill of any result recorded on any of `backups`.
pub fn last_attempt<'a>(backups: impl IntoIterator<Item = &'a Backup>) -> Option<DateTime<Utc>> {
    backups
        .into_iter()
        .filter_map(|b| b.drill)
        .map(|d| d.at)
        .max()
}

/// The newest passed drill recorded on any of `backups`.
pub fn last_passed<'a>(backups: impl IntoIterator<Item = &'a Backup>) -> Option<DateTime<Utc>> {
    backups
        .into_iter()
        .filter_map(|b| b.drill)
        .filter(|d| d.result == DrillResult::Passed)
        .map(|d| d.at)
        .max()
}

/// One restore a run is to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drill {
    pub resource: String,
    pub name: Option<String>,
    pub kind: RestoreKind,
    pub region: Region,
    pub backup: String,
    pub backup_created_at: DateTime<Utc>,
    /// Its last passed drill in the region, if any.
    pub last_passed: Option<DateTime<Utc>>,
    /// Its last drill of any result in the region, if any: the order of the run.
    pub last_attempt: Option<DateTime<Utc>>,
    /// The backup's EBS devices (an AMI's), each deleted with the throwaway instance.
    pub devices: Vec<String>,
}

/// A due resource the run cannot drill, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDrillable {
    pub resource: String,
    pub region: Region,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The restores, oldest last pass first, at most the batch.
    pub drills: Vec<Drill>,
    /// Due, with no usable backup to restore there.
    pub not_drillable: Vec<NotDrillable>,
    /// Resource-regions proven within the interval: nothing to do.
    pub not_due: usize,
    /// Due, and left for a later run by the batch bound.
    pub beyond_batch: usize,
    /// Due, with a throwaway of a run still going: left to that run.
    pub in_progress: usize,
}

/// What a run narrows the drill to (`{"resource_ids": [...], "regions": [...]}`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Only<'a> {
    pub resources: Option<&'a [String]>,
    pub regions: Option<&'a [Region]>,
    /// The backups with a throwaway of a run still going (its `P:drill-of`).
    pub in_progress: Option<&'a std::collections::HashSet<String>>,
}

/// The backups of each region by source.
fn by_region_and_source(backups: &[Backup]) -> HashMap<(&Region, &str), Vec<&Backup>> {
    let mut index: HashMap<(&Region, &str), Vec<&Backup>> = HashMap::new();
    for b in backups {
        if let Some(source) = b.source.as_deref() {
            index.entry((&b.region, source)).or_default().push(b);
        }
    }
    index
}

/// The restores of one run (see the module's rules).
pub fn plan(
    home: &Region,
    resources: &[Resource],
    backups: &[Backup],
    only: Only<'_>,
    interval: Duration,
    batch: usize,
    now: DateTime<Utc>,
) -> Plan {
    let index = by_region_and_source(backups);
    let none = Vec::new();
    let mut plan = Plan::default();
    let mut due = Vec::new();
    for resource in resources {
        if only
            .resources
            .is_some_and(|ids| !ids.contains(&resource.id))
        {
            continue;
        }
        let kind = RestoreKind::of(resource.kind);
        for region in drill_regions(home, &resource.copy_to) {
            if only.regions.is_some_and(|rs| !rs.contains(&region)) {
                continue;
            }
            let here = index.get(&(&region, resource.id.as_str())).unwrap_or(&none);
            let last = last_passed(here.iter().copied());
            if last.is_some_and(|t| now - t < interval.to_delta() - due_slack()) {
                plan.not_due += 1;
                continue;
            }
            match drill_backup(here, kind, &region == home) {
                Some(b) if only.in_progress.is_some_and(|busy| busy.contains(&b.id)) => {
                    plan.in_progress += 1;
                }
                Some(b) => due.push(Drill {
                    resource: resource.id.clone(),
                    name: resource.name.clone(),
                    kind,
                    region: region.clone(),
                    backup: b.id.clone(),
                    backup_created_at: b.created_at.unwrap_or(now),
                    last_passed: last,
                    last_attempt: last_attempt(here.iter().copied()),
                    devices: b.ebs_devices.clone(),
                }),
                None => plan.not_drillable.push(NotDrillable {
                    resource: resource.id.clone(),
                    reason: format!(
                        "no usable {} of {} in {region} to restore",
                        if &region == home { "backup" } else { "DR copy" },
                        resource.id
                    ),
                    region,
                }),
            }
        }
    }
    // Never tried first (None sorts first), then the oldest attempt; ties in a fixed order.
    due.sort_by(|a, b| {
        (a.last_attempt, &a.region, &a.resource).cmp(&(b.last_attempt, &b.region, &b.resource))
    });
    plan.beyond_batch = due.len().saturating_sub(batch);
    due.truncate(batch);
    plan.drills = due;
    plan
}

/// How long past `DRILL_INTERVAL` a resource may go unproven before monitor counts it: a day,
/// one missed daily run.
pub fn not_drilled_grace() -> TimeDelta {
    TimeDelta::days(1)
}

/// monitor's `NotDrilled`, per drill region: the resources there with a usable backup to drill
/// (for longer than the interval's grace: a new one is not yet late) whose last passed drill
/// is older than the interval plus the grace, or that were never drilled.
pub fn not_drilled(
    home: &Region,
    resources: &[Resource],
    backups: &[Backup],
    interval: Duration,
    now: DateTime<Utc>,
) -> BTreeMap<Region, usize> {
    let index = by_region_and_source(backups);
    let none = Vec::new();
    let grace = not_drilled_grace();
    let mut counts: BTreeMap<Region, usize> = BTreeMap::new();
    for resource in resources {
        let kind = RestoreKind::of(resource.kind);
        for region in drill_regions(home, &resource.copy_to) {
            let here = index.get(&(&region, resource.id.as_str())).unwrap_or(&none);
            let drillable_since = here
                .iter()
                .filter(|b| b.kind == kind.backup_kind() && b.is_standalone() && b.is_usable())
                .filter(|b| b.is_original() == (&region == home))
                .filter_map(|b| b.created_at)
                .min();
            let late = match (last_passed(here.iter().copied()), drillable_since) {
                (Some(t), _) => now - t > interval.to_delta() + grace,
                (None, Some(since)) => now - since > grace,
                (None, None) => false,
            };
            let count = counts.entry(region).or_default();
            if late {
                *count += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::Described;
    use crate::tags::{Kind, TagKeys, format_time, parse_time};

    fn r(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn t(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    fn resource(id: &str, copy_to: &[&str]) -> Resource {
        Resource {
            id: id.into(),
            kind: if id.starts_with("vol-") {
                "volume"
            } else {
                "instance"
            },
            name: Some(format!("name-{id}")),
            interval: Duration::hours(24),
            copy_to: copy_to.iter().map(|x| r(x)).collect(),
        }
    }

    /// A backup of `source` in `region` (a copy unless home), made at `created`, with its last
    /// drill when given.
    fn backup(
        id: &str,
        source: &str,
        region: &str,
        created: &str,
        drill: Option<(&str, &str)>,
    ) -> Backup {
        let kind = if source.starts_with("vol-") {
            Kind::Snapshot
        } else {
            Kind::Image
        };
        let mut tags = vec![
            ("backup:managed-by".to_string(), "ec2-backup".to_string()),
            ("backup:kind".to_string(), kind.as_str().to_string()),
            ("backup:source".to_string(), source.to_string()),
            ("backup:created-at".to_string(), created.to_string()),
        ];
        if region != "us-east-1" {
            tags.push(("backup:copy-of".into(), format!("{id}-original")));
        }
        if let Some((at, result)) = drill {
            tags.push(("backup:drilled-at".into(), at.into()));
            tags.push(("backup:drill-result".into(), result.into()));
        }
        Backup::new(
            &TagKeys::new("backup"),
            kind,
            &r(region),
            Described {
                id: id.into(),
                state: if kind == Kind::Image {
                    "available"
                } else {
                    "completed"
                }
                .into(),
                tags,
                ..Described::default()
            },
        )
    }

    const NOW: &str = "2026-12-06T03:00:00Z";
    const HOME: &str = "us-east-1";

    fn run(resources: &[Resource], backups: &[Backup], batch: usize) -> Plan {
        plan(
            &r(HOME),
            resources,
            backups,
            Only::default(),
            Duration::days(7),
            batch,
            t(NOW),
        )
    }

    #[test]
    fn a_resource_is_drilled_in_each_dr_region_from_the_newest_copy_or_at_home_without_one() {
        let resources = [
            resource("i-0000000000000000a", &["us-west-2", "eu-west-1"]),
            resource("vol-000000000000000b", &[]),
        ];
        let backups = [
            backup(
                "ami-old",
                "i-0000000000000000a",
                "us-west-2",
                "2026-12-04T00:00:00Z",
                None,
            ),
            backup(
                "ami-new",
                "i-0000000000000000a",
                "us-west-2",
                "2026-12-05T00:00:00Z",
                None,
            ),
            backup(
                "ami-eu",
                "i-0000000000000000a",
                "eu-west-1",
                "2026-12-05T00:00:00Z",
                None,
            ),
            // The original at home is not drilled: the resource has DR regions.
            backup(
                "ami-home",
                "i-0000000000000000a",
                HOME,
                "2026-12-06T00:00:00Z",
                None,
            ),
            backup(
                "snap-1",
                "vol-000000000000000b",
                HOME,
                "2026-12-05T00:00:00Z",
                None,
            ),
        ];
        let p = run(&resources, &backups, 10);
        let got: Vec<(&str, &str, &str)> = p
            .drills
            .iter()
            .map(|d| (d.resource.as_str(), d.region.as_str(), d.backup.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("i-0000000000000000a", "eu-west-1", "ami-eu"),
                ("vol-000000000000000b", "us-east-1", "snap-1"),
                ("i-0000000000000000a", "us-west-2", "ami-new"),
            ]
        );
        assert_eq!(
            p.drills[0].name.as_deref(),
            Some("name-i-0000000000000000a")
        );
        assert_eq!(p.drills[1].kind, RestoreKind::Volume);
    }

    #[test]
    fn a_pass_within_the_interval_is_not_due_and_the_oldest_attempt_goes_first_within_the_batch() {
        let resources = [
            resource("i-0000000000000000a", &["us-west-2"]),
            resource("i-0000000000000000b", &["us-west-2"]),
            resource("i-0000000000000000c", &["us-west-2"]),
            resource("i-0000000000000000d", &["us-west-2"]),
        ];
        let backups = [
            // a: passed yesterday, on an older copy: proven.
            backup(
                "ami-a1",
                "i-0000000000000000a",
                "us-west-2",
                "2026-12-04T00:00:00Z",
                Some(("2026-12-05T03:00:00Z", "passed")),
            ),
            backup(
                "ami-a2",
                "i-0000000000000000a",
                "us-west-2",
                "2026-12-05T00:00:00Z",
                None,
            ),
            // b: passed 9 days ago; c: passed 8 days ago, failed since; d: never.
            backup(
                "ami-b",
                "i-0000000000000000b",
                "us-west-2",
                "2026-11-26T00:00:00Z",
                Some(("2026-11-27T03:00:00Z", "passed")),
            ),
            backup(
                "ami-c",
                "i-0000000000000000c",
                "us-west-2",
                "2026-11-27T00:00:00Z",
                Some(("2026-11-28T03:00:00Z", "passed")),
            ),
            backup(
                "ami-c2",
                "i-0000000000000000c",
                "us-west-2",
                "2026-12-05T00:00:00Z",
                Some(("2026-12-05T03:00:00Z", "failed")),
            ),
            backup(
                "ami-d",
                "i-0000000000000000d",
                "us-west-2",
                "2026-12-05T00:00:00Z",
                None,
            ),
        ];
        let p = run(&resources, &backups, 2);
        let got: Vec<&str> = p.drills.iter().map(|d| d.resource.as_str()).collect();
        assert_eq!(got, ["i-0000000000000000d", "i-0000000000000000b"]);
        assert_eq!((p.not_due, p.beyond_batch), (1, 1));
        assert_eq!(p.drills[1].last_passed, Some(t("2026-11-27T03:00:00Z")));
        // The newest usable copy is drilled, whatever the older ones' marks.
        let all = run(&resources, &backups, 10);
        let c = all
            .drills
            .iter()
            .find(|d| d.resource.ends_with('c'))
            .unwrap();
        assert_eq!(c.backup, "ami-c2");
    }

    #[test]
    fn a_pass_stamped_a_little_into_its_run_is_due_on_the_same_run_a_week_later() {
        let resources = [resource("i-0000000000000000a", &["us-west-2"])];
        let passed = |at: &str| {
            vec![backup(
                "ami-a",
                "i-0000000000000000a",
                "us-west-2",
                "2026-11-28T00:00:00Z",
                Some((at, "passed")),
            )]
        };
        // NOW is 2026-12-06T03:00:00Z: a week after a pass five seconds into the 03:00 run.
        assert_eq!(
            run(&resources, &passed("2026-11-29T03:00:05Z"), 10)
                .drills
                .len(),
            1
        );
        // A pass two hours before the run, a week ago less one hour: not yet.
        assert_eq!(
            run(&resources, &passed("2026-11-29T04:30:00Z"), 10).not_due,
            1
        );
        // A backup a run still going restored is left to it.
        let busy: std::collections::HashSet<String> = ["ami-a".to_string()].into();
        let p = plan(
            &r(HOME),
            &resources,
            &passed("2026-11-20T03:00:00Z"),
            Only {
                in_progress: Some(&busy),
                ..Only::default()
            },
            Duration::days(7),
            10,
            t(NOW),
        );
        assert_eq!((p.drills.len(), p.in_progress), (0, 1));
    }

    #[test]
    fn a_resource_without_a_usable_backup_there_is_reported_not_drilled_and_only_narrows() {
        let resources = [
            resource("i-0000000000000000a", &["us-west-2"]),
            resource("i-0000000000000000b", &["us-west-2"]),
        ];
        let mut pending = backup(
            "ami-p",
            "i-0000000000000000a",
            "us-west-2",
            "2026-12-05T00:00:00Z",
            None,
        );
        pending.state = crate::backup::State::Pending;
        let backups = [
            pending,
            backup(
                "ami-h",
                "i-0000000000000000a",
                HOME,
                "2026-12-05T00:00:00Z",
                None,
            ),
            backup(
                "ami-b",
                "i-0000000000000000b",
                "us-west-2",
                "2026-12-05T00:00:00Z",
                None,
            ),
        ];
        let p = run(&resources, &backups, 10);
        assert_eq!(p.drills.len(), 1);
        assert_eq!(p.not_drillable.len(), 1);
        assert!(
            p.not_drillable[0].reason.contains("no usable DR copy"),
            "{:?}",
            p.not_drillable
        );
        let ids = vec!["i-0000000000000000a".to_string()];
        let regions = vec![r("eu-west-1")];
        let narrowed = plan(
            &r(HOME),
            &resources,
            &backups,
            Only {
                resources: Some(&ids),
                ..Only::default()
            },
            Duration::days(7),
            10,
            t(NOW),
        );
        assert!(narrowed.drills.is_empty() && narrowed.not_drillable.len() == 1);
        let elsewhere = plan(
            &r(HOME),
            &resources,
            &backups,
            Only {
                regions: Some(&regions),
                ..Only::default()
            },
            Duration::days(7),
            10,
            t(NOW),
        );
        assert_eq!(elsewhere, Plan::default());
    }

    #[test]
    fn not_drilled_counts_what_is_past_the_interval_and_its_grace_per_region() {
        let resources = [
            resource("i-0000000000000000a", &["us-west-2"]),
            resource("i-0000000000000000b", &["us-west-2"]),
            resource("i-0000000000000000c", &["us-west-2"]),
            resource("i-0000000000000000d", &[]),
        ];
        let backups = [
            // a: passed 7.5 days ago: within interval + grace.
            backup(
                "ami-a",
                "i-0000000000000000a",
                "us-west-2",
                "2026-11-28T00:00:00Z",
                Some(("2026-11-28T15:00:00Z", "passed")),
            ),
            // b: passed 9 days ago: late.
            backup(
                "ami-b",
                "i-0000000000000000b",
                "us-west-2",
                "2026-11-26T00:00:00Z",
                Some(("2026-11-27T03:00:00Z", "passed")),
            ),
            // c: never drilled, its copy there 12 hours: not yet late.
            backup(
                "ami-c",
                "i-0000000000000000c",
                "us-west-2",
                "2026-12-05T15:00:00Z",
                None,
            ),
            // d: at home, never drilled, backed up for two days: late.
            backup(
                "ami-d",
                "i-0000000000000000d",
                HOME,
                "2026-12-04T03:00:00Z",
                None,
            ),
        ];
        let counts = not_drilled(&r(HOME), &resources, &backups, Duration::days(7), t(NOW));
        assert_eq!(counts[&r("us-west-2")], 1);
        assert_eq!(counts[&r(HOME)], 1);
        let _ = format_time(t(NOW));
    }
}
