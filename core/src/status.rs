//! The on-call view: per resource and backup region, the newest usable backup, whether it meets
//! the resource's interval (its recovery point objective), copies still to come, next expiry.
//!
//! Here: the pure view ([`status`]), what it is computed from ([`Inputs`]) and the choice of a
//! backup to restore. The adapters' `gather` reads the inputs from EC2 (the CLI's `status` and
//! the monitor function read through it alike).

use crate::backup::{Backup, DrillMark};
use crate::duration::Duration;
use crate::error::Error;
use crate::region::Region;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// How much of each region the gathering lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// The backups (`Ec2::managed_backups`: AMIs and standalone snapshots, originals and
    /// copies, any state): what `status` shows.
    Backups,
    /// Every image and snapshot of this deployment (`BackupQuery::everything`: an AMI's own
    /// snapshots and disabled AMIs too), in as many calls: what the orphan count needs. The
    /// backups are the part of it that [`Backup::is_managed_backup`] says `Backups` lists.
    Everything,
}

/// What the gathering read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// The home region first, then each other region read, once, sorted: `COPY_TO_REGIONS`,
    /// every resource's `P:copy-to` regions, and the extra ones asked for.
    pub regions: Vec<Region>,
    /// The opted-in instances and volumes of the home region.
    pub resources: Vec<Resource>,
    /// Every backup of this deployment in `regions`, region by region, images then snapshots.
    pub backups: Vec<Backup>,
    /// With [`Listing::Everything`], the rest of what was listed (an AMI's own snapshots,
    /// disabled AMIs); empty with [`Listing::Backups`].
    pub others: Vec<Backup>,
    /// The sources named by `backups` that still exist (a terminated instance does not).
    pub existing_sources: HashSet<String>,
}

/// A read that failed, and what was being read (the words the CLI prints before the AWS
/// error, which keeps its code).
#[derive(Debug, thiserror::Error)]
#[error("{doing}: {source}")]
pub struct GatherError {
    pub doing: String,
    #[source]
    pub source: Error,
}

impl GatherError {
    pub fn while_(doing: impl Into<String>) -> impl FnOnce(Error) -> Self {
        let doing = doing.into();
        move |source| GatherError { doing, source }
    }

    /// Listing the backups of `deployment` in `region` failed.
    pub fn listing_backups(deployment: &str, region: &Region) -> impl FnOnce(Error) -> Self {
        Self::while_(format!("listing the backups of {deployment} in {region}"))
    }
}

impl From<GatherError> for Error {
    /// The AWS error itself: it names the operation, the region and the code.
    fn from(e: GatherError) -> Self {
        e.source
    }
}

/// A resource that opts in, with what its tags resolve to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    /// `instance` or `volume`.
    pub kind: &'static str,
    pub name: Option<String>,
    pub interval: Duration,
    pub copy_to: Vec<Region>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rpo {
    Met,
    Late,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub resource: String,
    pub kind: &'static str,
    pub name: Option<String>,
    pub region: Region,
    /// `home` or `dr`.
    pub role: &'static str,
    pub newest: Option<String>,
    pub newest_created_at: Option<DateTime<Utc>>,
    pub age_minutes: Option<i64>,
    pub rpo: Rpo,
    /// Backups made at home since the newest one that reached this region.
    pub copies_pending: usize,
    pub next_expiry: Option<DateTime<Utc>>,
    pub holds: usize,
    /// The newest drill mark (`P:drilled-at`, `P:drill-result`, `P:restore-seconds`) among the
    /// usable backups here; `None` where none was drilled.
    pub last_drill: Option<DrillMark>,
}

/// A backup of ours whose source no longer exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    pub id: String,
    pub region: Region,
    pub source: String,
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub rows: Vec<Row>,
    pub orphans: Vec<Orphan>,
}

impl Status {
    /// Rows whose RPO is not met (late, or no backup at all).
    pub fn failing(&self) -> usize {
        self.rows.iter().filter(|r| r.rpo != Rpo::Met).count()
    }
}

/// How late a backup may be before it counts as late: schedules run periodically and copies
/// take time, so a tenth of the interval, at least 15 minutes.
pub fn grace(interval: Duration) -> TimeDelta {
    TimeDelta::minutes((interval.as_minutes() / 10).max(15))
}

/// Rows for each resource in home, its DR regions, and the `extra` regions asked for.
///
/// The backups are indexed by region and source once, so the work grows with resources plus
/// backups, not with their product (10,000 instances per region).
pub fn status(
    home: &Region,
    extra: &[Region],
    resources: &[Resource],
    backups: &[Backup],
    existing_sources: &HashSet<String>,
    now: DateTime<Utc>,
) -> Status {
    // Each region's backups by source, in the order given (ties of `max_by_key` depend on it).
    let mut by_source: HashMap<&Region, HashMap<&str, Vec<&Backup>>> = HashMap::new();
    for b in backups {
        if let Some(source) = b.source.as_deref() {
            let region = by_source.entry(&b.region).or_default();
            region.entry(source).or_default().push(b);
        }
    }
    let none: Vec<&Backup> = Vec::new();
    let mut rows = Vec::new();
    for resource in resources {
        let mut regions = vec![(home.clone(), "home")];
        for r in resource.copy_to.iter().chain(extra) {
            if r != home && !regions.iter().any(|(x, _)| x == r) {
                regions.push((r.clone(), "dr"));
            }
        }
        let of = |region: &Region| {
            by_source
                .get(region)
                .and_then(|sources| sources.get(resource.id.as_str()))
                .unwrap_or(&none)
        };
        let originals: Vec<&Backup> = of(home)
            .iter()
            .filter(|b| b.copy_of.is_none() && b.is_usable())
            .copied()
            .collect();
        for (region, role) in regions {
            let here = of(&region);
            let newest = here
                .iter()
                .filter(|b| b.is_usable() && b.created_at.is_some())
                .max_by_key(|b| b.created_at);
            let newest_at = newest.and_then(|b| b.created_at);
            let rpo = match newest_at {
                None => Rpo::None,
                Some(t) if now - t <= resource.interval.to_delta() + grace(resource.interval) => {
                    Rpo::Met
                }
                Some(_) => Rpo::Late,
            };
            let copies_pending = if role == "home" {
                0
            } else {
                originals
                    .iter()
                    .filter(|o| o.created_at > newest_at)
                    .count()
            };
            rows.push(Row {
                resource: resource.id.clone(),
                kind: resource.kind,
                name: resource.name.clone(),
                newest: newest.map(|b| b.id.clone()),
                newest_created_at: newest_at,
                age_minutes: newest_at.map(|t| (now - t).num_minutes()),
                rpo,
                copies_pending,
                next_expiry: here
                    .iter()
                    .filter(|b| !b.hold)
                    .filter_map(|b| b.expires_at)
                    .min(),
                holds: here.iter().filter(|b| b.hold).count(),
                last_drill: last_drill(here),
                region,
                role,
            });
        }
    }
    let mut orphans: Vec<Orphan> = backups
        .iter()
        .filter_map(|b| {
            let source = b.source.as_ref()?;
            (!existing_sources.contains(source)).then(|| Orphan {
                id: b.id.clone(),
                region: b.region.clone(),
                source: source.clone(),
                created_at: b.created_at,
            })
        })
        .collect();
    orphans.sort_by(|a, b| (&a.source, &a.region, &a.id).cmp(&(&b.source, &b.region, &b.id)));
    Status { rows, orphans }
}

/// The newest drill mark among the usable ones of `backups`.
fn last_drill(backups: &[&Backup]) -> Option<DrillMark> {
    backups
        .iter()
        .filter(|b| b.is_usable())
        .filter_map(|b| b.drill)
        .max_by_key(|d| d.at)
}

/// The backup to restore: the one named, or the newest usable one of `source` in `region`
/// (made before `before`, when given).
pub fn choose_backup<'a>(
    backups: &'a [Backup],
    source: &str,
    region: &Region,
    named: Option<&str>,
    before: Option<DateTime<Utc>>,
) -> Result<&'a Backup, String> {
    if let Some(id) = named {
        let b = backups
            .iter()
            .find(|b| b.id == id && &b.region == region)
            .ok_or_else(|| format!("{id} is not a backup of this deployment in {region}"))?;
        if b.source.as_deref() != Some(source) {
            return Err(format!(
                "{id} is a backup of {}, not of {source}",
                b.source.as_deref().unwrap_or("an unknown source")
            ));
        }
        if !b.is_usable() {
            return Err(format!("{id} is {}, not ready to restore from", b.state));
        }
        return Ok(b);
    }
    backups
        .iter()
        .filter(|b| &b.region == region && b.source.as_deref() == Some(source) && b.is_usable())
        .filter(|b| match (before, b.created_at) {
            (Some(limit), Some(t)) => t < limit,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .max_by_key(|b| b.created_at)
        .ok_or_else(|| match before {
            Some(t) => format!(
                "no usable backup of {source} in {region} made before {}",
                crate::tags::format_time(t)
            ),
            None => format!("no usable backup of {source} in {region}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::{Described, DrillResult};
    use crate::tags::{Kind, parse_time};

    fn r(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn backup(
        id: &str,
        region: &str,
        source: &str,
        created: &str,
        copy_of: Option<&str>,
    ) -> Backup {
        let mut tags = vec![
            ("backup:source".to_string(), source.to_string()),
            ("backup:created-at".to_string(), created.to_string()),
        ];
        if let Some(t) = parse_time(created) {
            tags.push((
                "backup:expires-at".to_string(),
                crate::tags::format_time(t + TimeDelta::days(7)),
            ));
        }
        if let Some(of) = copy_of {
            tags.push(("backup:copy-of".to_string(), of.to_string()));
        }
        Backup::new(
            &crate::tags::TagKeys::new("backup"),
            Kind::Image,
            &r(region),
            Described {
                id: id.into(),
                state: "available".into(),
                tags,
                ..Described::default()
            },
        )
    }

    fn resource(id: &str) -> Resource {
        Resource {
            id: id.into(),
            kind: "instance",
            name: None,
            interval: Duration::hours(24),
            copy_to: vec![r("us-west-2")],
        }
    }

    #[test]
    fn rpo_per_region_with_pending_copies_and_orphans() {
        let now = parse_time("2026-11-25T12:00:00Z").unwrap();
        let backups = vec![
            backup("ami-old", "us-east-1", "i-1", "2026-11-24T03:00:00Z", None),
            backup("ami-new", "us-east-1", "i-1", "2026-11-25T03:00:00Z", None),
            backup(
                "ami-copy",
                "us-west-2",
                "i-1",
                "2026-11-24T03:00:00Z",
                Some("ami-old"),
            ),
            backup(
                "ami-gone",
                "us-east-1",
                "i-gone",
                "2026-11-20T03:00:00Z",
                None,
            ),
        ];
        let existing: HashSet<String> = ["i-1".to_string(), "i-2".to_string()].into();
        let s = status(
            &r("us-east-1"),
            &[],
            &[resource("i-1"), resource("i-2")],
            &backups,
            &existing,
            now,
        );
        let row = |id: &str, region: &str| {
            s.rows
                .iter()
                .find(|x| x.resource == id && x.region == r(region))
                .unwrap()
        };
        assert_eq!(row("i-1", "us-east-1").rpo, Rpo::Met);
        assert_eq!(row("i-1", "us-east-1").newest.as_deref(), Some("ami-new"));
        assert_eq!(row("i-1", "us-east-1").age_minutes, Some(9 * 60));
        assert_eq!(
            row("i-1", "us-west-2").rpo,
            Rpo::Late,
            "the DR copy is 33h old"
        );
        assert_eq!(row("i-1", "us-west-2").copies_pending, 1);
        assert_eq!(row("i-2", "us-east-1").rpo, Rpo::None);
        assert_eq!(s.failing(), 3);
        assert_eq!(s.orphans.len(), 1);
        assert_eq!(s.orphans[0].source, "i-gone");
        assert_eq!(
            row("i-1", "us-east-1").next_expiry,
            parse_time("2026-12-01T03:00:00Z")
        );
    }

    #[test]
    fn each_row_shows_the_newest_drill_of_its_usable_backups() {
        // GIVEN copies in the DR region: an older one passed a week ago, the newest failed
        // yesterday, and a failed copy carries a newer mark still
        let now = parse_time("2026-11-25T12:00:00Z").unwrap();
        let mark = |at: &str, result, seconds| DrillMark {
            at: parse_time(at).unwrap(),
            result,
            restore_seconds: seconds,
        };
        let mut old = backup(
            "ami-old",
            "us-west-2",
            "i-1",
            "2026-11-17T03:00:00Z",
            Some("ami-a"),
        );
        old.drill = Some(mark("2026-11-18T03:00:00Z", DrillResult::Passed, Some(143)));
        let mut new = backup(
            "ami-new",
            "us-west-2",
            "i-1",
            "2026-11-24T03:00:00Z",
            Some("ami-b"),
        );
        new.drill = Some(mark("2026-11-24T04:00:00Z", DrillResult::Failed, None));
        let mut broken = backup(
            "ami-bad",
            "us-west-2",
            "i-1",
            "2026-11-25T03:00:00Z",
            Some("ami-c"),
        );
        broken.state = crate::backup::State::Failed;
        broken.drill = Some(mark("2026-11-25T04:00:00Z", DrillResult::Passed, Some(1)));
        let home = backup("ami-b", "us-east-1", "i-1", "2026-11-24T03:00:00Z", None);

        // WHEN the rows are computed
        let s = status(
            &r("us-east-1"),
            &[],
            &[resource("i-1")],
            &[old, new, broken, home],
            &HashSet::new(),
            now,
        );

        // THEN the DR row has the newest mark of a usable copy, home none
        assert_eq!(s.rows[0].last_drill, None);
        assert_eq!(
            s.rows[1].last_drill,
            Some(mark("2026-11-24T04:00:00Z", DrillResult::Failed, None))
        );
        let json = serde_json::to_value(&s.rows[1]).unwrap();
        assert_eq!(json["last_drill"]["result"], "failed");
        assert_eq!(
            serde_json::to_value(&s.rows[0]).unwrap()["last_drill"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn a_backup_within_interval_and_grace_is_met() {
        let now = parse_time("2026-11-26T03:20:00Z").unwrap();
        let backups = vec![backup(
            "ami-1",
            "us-east-1",
            "i-1",
            "2026-11-25T03:00:00Z",
            None,
        )];
        let s = status(
            &r("us-east-1"),
            &[r("eu-west-1")],
            &[Resource {
                copy_to: vec![],
                ..resource("i-1")
            }],
            &backups,
            &HashSet::new(),
            now,
        );
        assert_eq!(s.rows[0].rpo, Rpo::Met, "24h20m old, grace is 144 minutes");
        assert_eq!(
            s.rows[1].region,
            r("eu-west-1"),
            "a region asked for gets its row"
        );
        assert_eq!(s.rows[1].rpo, Rpo::None);
    }

    /// What the comparison of rows looks at: resource, region, newest, RPO, copies pending,
    /// next expiry, holds.
    type Compared = (
        String,
        Region,
        Option<String>,
        Rpo,
        usize,
        Option<DateTime<Utc>>,
        usize,
    );

    /// The rows as they were computed before the index: a filter over every backup, per
    /// resource and region.
    fn rows_by_filtering(
        home: &Region,
        resources: &[Resource],
        backups: &[Backup],
        now: DateTime<Utc>,
    ) -> Vec<Compared> {
        let mut rows = Vec::new();
        for resource in resources {
            let mut regions = vec![home.clone()];
            for r in &resource.copy_to {
                if r != home && !regions.contains(r) {
                    regions.push(r.clone());
                }
            }
            let originals: Vec<&Backup> = backups
                .iter()
                .filter(|b| {
                    &b.region == home
                        && b.copy_of.is_none()
                        && b.source.as_deref() == Some(&resource.id)
                        && b.is_usable()
                })
                .collect();
            for region in regions {
                let here: Vec<&Backup> = backups
                    .iter()
                    .filter(|b| b.region == region && b.source.as_deref() == Some(&resource.id))
                    .collect();
                let newest = here
                    .iter()
                    .filter(|b| b.is_usable() && b.created_at.is_some())
                    .max_by_key(|b| b.created_at);
                let newest_at = newest.and_then(|b| b.created_at);
                let rpo = match newest_at {
                    None => Rpo::None,
                    Some(t)
                        if now - t <= resource.interval.to_delta() + grace(resource.interval) =>
                    {
                        Rpo::Met
                    }
                    Some(_) => Rpo::Late,
                };
                let pending = if &region == home {
                    0
                } else {
                    originals
                        .iter()
                        .filter(|o| o.created_at > newest_at)
                        .count()
                };
                let expiry = here
                    .iter()
                    .filter(|b| !b.hold)
                    .filter_map(|b| b.expires_at)
                    .min();
                let holds = here.iter().filter(|b| b.hold).count();
                rows.push((
                    resource.id.clone(),
                    region,
                    newest.map(|b| b.id.clone()),
                    rpo,
                    pending,
                    expiry,
                    holds,
                ));
            }
        }
        rows
    }

    #[test]
    fn the_index_gives_what_a_filter_over_every_backup_gave() {
        // GIVEN 30 resources, each with a different mix of originals and copies, some with the
        // same creation time (ties), some held, some copies failed
        let now = parse_time("2026-11-25T12:00:00Z").unwrap();
        let mut backups = Vec::new();
        let mut resources = Vec::new();
        for n in 0..30_i64 {
            let source = format!("i-{n}");
            resources.push(resource(&source));
            for k in 0..(n % 5) {
                let made = crate::tags::format_time(now - TimeDelta::hours(6 * (k + n % 3)));
                let id = format!("ami-{n}-{k}");
                backups.push(backup(&id, "us-east-1", &source, &made, None));
                if n % 4 == 0 {
                    let twin = format!("{id}-twin");
                    backups.push(backup(&twin, "us-east-1", &source, &made, None));
                }
                if (n + k) % 2 == 0 {
                    let mut c = backup(&format!("{id}-dr"), "us-west-2", &source, &made, Some(&id));
                    if k == 1 {
                        c.state = crate::backup::State::Failed;
                    }
                    c.hold = n % 7 == 0;
                    backups.push(c);
                }
            }
        }
        // WHEN the rows are computed THEN they are the filter's, row for row
        let s = status(
            &r("us-east-1"),
            &[],
            &resources,
            &backups,
            &HashSet::new(),
            now,
        );
        let got: Vec<Compared> = s
            .rows
            .iter()
            .map(|x| {
                (
                    x.resource.clone(),
                    x.region.clone(),
                    x.newest.clone(),
                    x.rpo,
                    x.copies_pending,
                    x.next_expiry,
                    x.holds,
                )
            })
            .collect();
        assert_eq!(
            got,
            rows_by_filtering(&r("us-east-1"), &resources, &backups, now)
        );
        assert!(got.iter().any(|x| x.3 == Rpo::Late) && got.iter().any(|x| x.3 == Rpo::None));
        assert!(got.iter().any(|x| x.4 > 0) && got.iter().any(|x| x.6 > 0));
    }

    #[test]
    fn choosing_a_backup() {
        let backups = vec![
            backup("ami-1", "us-east-1", "i-1", "2026-11-23T03:00:00Z", None),
            backup("ami-2", "us-east-1", "i-1", "2026-11-24T03:00:00Z", None),
            backup("ami-3", "us-east-1", "i-2", "2026-11-25T03:00:00Z", None),
        ];
        let home = r("us-east-1");
        assert_eq!(
            choose_backup(&backups, "i-1", &home, None, None)
                .unwrap()
                .id,
            "ami-2"
        );
        assert_eq!(
            choose_backup(
                &backups,
                "i-1",
                &home,
                None,
                parse_time("2026-11-24T00:00:00Z")
            )
            .unwrap()
            .id,
            "ami-1"
        );
        assert_eq!(
            choose_backup(&backups, "i-1", &home, Some("ami-1"), None)
                .unwrap()
                .id,
            "ami-1"
        );
        assert!(
            choose_backup(&backups, "i-1", &home, Some("ami-3"), None)
                .unwrap_err()
                .contains("backup of i-2")
        );
        assert!(
            choose_backup(&backups, "i-1", &r("us-west-2"), None, None)
                .unwrap_err()
                .contains("no usable backup of i-1 in us-west-2")
        );
        assert!(choose_backup(&backups, "i-9", &home, None, None).is_err());
    }
}
