//! drill: proves the backups restorable, on a schedule, and keeps the evidence.
//!
//! Layout:
//! - the core's `drill` module: the settings, the payloads, which resources are drilled where
//!   (`plan`), how a restore is judged and what its record says (`record`);
//! - here: a run's steps, in order: sweep what earlier runs left behind, plan, restore, judge,
//!   and for each restore judged, clean up, write its evidence, mark the backup.
//!
//! A restore is never waited for by sleeping in the function: what is not ready when the run has
//! made its restores is handed to the work queue as a delayed continuation ([`DrillWork`]) and
//! judged by a later invocation. Without a work queue (the command-line tool, or a function
//! without `WORK_QUEUE_URL`) the run looks again every [`Drill::poll`] until its restores are
//! judged or its deadline is near.
//!
//! The order of a restore's last steps makes a crash at any point safe: the throwaway is
//! terminated or deleted first (a crash before leaves it to the next run's sweep), then the
//! evidence is written (a crash before loses the record, never invents one: the resource is
//! drilled again), then the backup is marked (a crash before leaves it due again).

pub use backup_core::drill::request::{
    DrillRequest, DrillWork, FUNCTION, RESTORES_PER_MESSAGE, parse_drill_request,
};
pub use backup_core::drill::{plan, record, settings};
pub use backup_core::report::drill::{DrillReport, NotDrilled, Planned};

use crate::backup::{Backup, DrillMark};
use crate::clients::Clients;
use crate::codes::{INSTANCE_NOT_FOUND, NO_PLACE, VOLUME_NOT_FOUND};
use crate::ec2::Ec2;
use crate::error::Error;
use crate::invocation::{Function, Report, Setting};
use crate::metrics::Values;
use crate::region::Region;
use crate::report::{Common, Failed, LIST_LIMIT};
use crate::restore::{Launch, NewVolume, Subnet};
use crate::s3::{Evidence, Written};
use crate::sqs::WorkQueue;
use crate::tags::{TagKeys, Tags, format_time, key};
use backup_core::backup::DrillResult;
use chrono::{DateTime, Timelike, Utc};
use futures::stream::{self, StreamExt};
use plan::{Drill as Planned_, Only};
use record::{DrillRecord, Restore, RestoreKind, Verdict, judge};
use serde_json::Value;
use settings::DrillSettings;
use std::collections::{BTreeMap, HashMap};
use tracing::{info, warn};

/// Calls of one kind in flight at once in a region (restores, clean-ups, marks): EC2's
/// mutating buckets refill at a few per second, and the pacer holds each call to its turn.
pub const CONCURRENCY: usize = 4;

/// How long a continuation waits before it looks at the restores again: the RTO is measured
/// to the check that saw a restore ready, so to within about this much.
pub const RECHECK_SECONDS: u32 = 30;

/// drill as the invocation pipeline runs it (see [`crate::invocation`]), and as the
/// command-line tool runs it (no queue, no deadline).
pub struct Drill<'a> {
    pub setting: Setting<'a>,
    pub settings: &'a DrillSettings,
    pub clients: Clients,
    /// Where the records go; `None`: kept only in the result and the log (the command-line tool
    /// without a bucket).
    pub evidence: Option<Evidence>,
    /// The run a new request of this invocation starts (a continuation goes on with its own).
    pub run: Run,
    /// Without a work queue: how long to wait between two looks at the restores.
    pub poll: std::time::Duration,
    /// How long a continuation waits before it looks at the restores again (the function:
    /// [`RECHECK_SECONDS`]).
    pub recheck_seconds: u32,
    /// When the invocation began, on the machine's steady clock: the run's clock is
    /// `setting.now` plus the time since (see [`Drill::clock`]).
    pub started: std::time::Instant,
}

/// A run: its id, and when it began (its evidence's day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: String,
    pub started_at: DateTime<Utc>,
}

impl Run {
    /// A new run of the invocation `request_id`, begun at `started`.
    pub fn new(started: DateTime<Utc>, request_id: &str) -> Self {
        Self {
            id: run_id(started, request_id),
            started_at: started,
        }
    }
}

/// A run id: the run's start, then a part of the invocation's request id: unique per run, so
/// each restore call's ClientToken is too (the SDK's own retries of a call send the same
/// token, and get the instance or volume the first attempt made).
pub fn run_id(started: DateTime<Utc>, request_id: &str) -> String {
    let tail: String = request_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    format!("{}-{tail}", started.format("%Y%m%dT%H%M%SZ"))
}

impl Drill<'_> {
    /// Now, on the run's clock: the invocation's `now` and the time it has taken since.
    fn clock(&self) -> DateTime<Utc> {
        let elapsed = chrono::TimeDelta::from_std(self.started.elapsed()).unwrap_or_default();
        // Whole seconds, as the tags and the records say them.
        let now = self.setting.now + elapsed;
        now.with_nanosecond(0).unwrap_or(now)
    }

    fn keys(&self) -> TagKeys {
        TagKeys::new(&self.setting.config.tag_prefix)
    }

    fn deployment(&self) -> &str {
        &self.setting.config.deployment_name
    }

    fn dry_run(&self) -> bool {
        self.setting.config.dry_run
    }

    /// The run a new request starts: a scheduled event's own (its id and time, the same in
    /// every delivery and retry of it, so that a retry's ClientTokens and throwaway tags are the
    /// first attempt's and EC2 answers with the restores it made); else this invocation's.
    fn run_for(&self, request: &DrillRequest) -> Run {
        match (&request.event_id, request.event_time) {
            (Some(id), Some(time)) => Run {
                id: run_id(time, id),
                started_at: time,
            },
            _ => self.run.clone(),
        }
    }

    /// A new run: sweep, plan, restore, judge what is ready, hand on the rest.
    async fn start(&self, request: &DrillRequest) -> Result<DrillReport, Error> {
        let config = self.setting.config;
        let now = self.setting.now;
        let run = &self.run_for(request);
        let keys = self.keys();
        let home = self.clients.home_region().clone();
        let mut report = DrillReport {
            common: Common::dry_run(self.dry_run()),
            ..DrillReport::default()
        };
        // A vault has no instance or volume of its own: its resources are those its copies
        // are of, listed here in each of its regions (and that listing reused below).
        let mut listed: HashMap<Region, Vec<Backup>> = HashMap::new();
        let resources = if config.is_vault() {
            for region in crate::dr::vault::destinations(config, &home) {
                let found = self
                    .clients
                    .region(&region)
                    .managed_backups(&keys, self.deployment())
                    .await?;
                listed.insert(region, found);
            }
            let copies: Vec<Backup> = listed.values().flatten().cloned().collect();
            (
                crate::dr::vault::resources(config, &home, &copies),
                HashMap::new(),
            )
        } else {
            let found = crate::status::resources(config, &keys, &self.clients.home())
                .await
                .map_err(Error::from)?;
            let instance_types: HashMap<String, String> = found
                .iter()
                .filter_map(|(s, _)| Some((s.id.clone(), s.instance_type.clone()?)))
                .collect();
            (found.into_iter().map(|(_, r)| r).collect(), instance_types)
        };
        let (resources, instance_types): (Vec<crate::status::Resource>, HashMap<String, String>) =
            resources;
        let mut only = Only {
            resources: request.resource_ids.as_deref(),
            regions: request.regions.as_deref(),
            in_progress: None,
        };
        let mut regions: Vec<Region> = Vec::new();
        for r in &resources {
            if only.resources.is_some_and(|ids| !ids.contains(&r.id)) {
                continue;
            }
            for region in plan::drill_regions(&home, &r.copy_to) {
                if only.regions.is_none_or(|rs| rs.contains(&region)) && !regions.contains(&region)
                {
                    regions.push(region);
                }
            }
        }
        regions.sort();
        info!(run = %run.id, regions = ?regions.iter().map(Region::as_str).collect::<Vec<_>>(), resources = resources.len(), dry_run = self.dry_run(), "drilling");

        // What earlier runs left is swept in every region a drill of this deployment may have
        // run in (a resource's DR region may have changed since), unless the run is narrowed.
        let mut swept = regions.clone();
        if only.resources.is_none() && only.regions.is_none() {
            let more = std::iter::once(&home)
                .chain(&config.copy_to_regions)
                .chain(&config.cleanup_regions);
            for region in more {
                if !swept.contains(region) {
                    swept.push(region.clone());
                }
            }
        }
        // The backups a run still going is restoring (this run's first attempt's, when this
        // is a retry): left to it.
        let mut in_progress = std::collections::HashSet::new();
        if !self.dry_run() {
            for region in &swept {
                let young = self.sweep(&self.clients.region(region), &mut report).await;
                in_progress.extend(young);
            }
        }
        only.in_progress = Some(&in_progress);
        let mut backups: Vec<Backup> = Vec::new();
        for region in &regions {
            if let Some(found) = listed.remove(region) {
                backups.extend(found);
                continue;
            }
            let ec2 = self.clients.region(region);
            match ec2.managed_backups(&keys, self.deployment()).await {
                Ok(listed) => backups.extend(listed),
                Err(e) => {
                    warn!(region = %region, error = %e, code = e.code().unwrap_or(""), "region could not be read: nothing drilled there");
                    report
                        .failed
                        .push(Failed::from_error(region.as_str(), Some(region), &e));
                }
            }
        }
        let plan = plan::plan(
            &home,
            &resources,
            &backups,
            only,
            config.drill_interval,
            self.settings.batch,
            now,
        );
        drop(backups);
        for n in &plan.not_drillable {
            warn!(resource = %n.resource, region = %n.region, reason = %n.reason, "not drillable");
            report.not_drilled.push(NotDrilled {
                resource: n.resource.clone(),
                region: n.region.clone(),
                reason: n.reason.clone(),
            });
        }
        info!(run = %run.id, drills = plan.drills.len(), not_due = plan.not_due, beyond_batch = plan.beyond_batch, in_progress = plan.in_progress, not_drillable = plan.not_drillable.len(), "planned");
        if self.dry_run() {
            for d in &plan.drills {
                info!(resource = %d.resource, region = %d.region, backup = %d.backup, "dry run: would restore");
                report.would_restore.push(Planned {
                    resource: d.resource.clone(),
                    kind: d.kind,
                    region: d.region.clone(),
                    backup: d.backup.clone(),
                    backup_created_at: d.backup_created_at,
                });
            }
            return Ok(report);
        }
        let restores = self
            .restore_all(run, &plan.drills, &instance_types, &mut report)
            .await;
        // Judged at once on the run's clock (a restore's start is on it too).
        self.judge_until_done(run, restores, self.clock(), &mut report)
            .await;
        Ok(report)
    }

    /// Terminates or deletes this deployment's drill resources in the region that are left
    /// behind (see [`record::Throwaway::is_leftover`]: a crash, a lost message); younger ones may
    /// belong to a run still going. The backups those are restored from, to leave to that run.
    async fn sweep(&self, ec2: &Ec2, report: &mut DrillReport) -> Vec<String> {
        let region = ec2.region();
        let found = match ec2.drill_resources(&self.keys(), self.deployment()).await {
            Ok(found) => found,
            Err(e) => {
                warn!(region = %region, error = %e, "could not list drill resources left behind");
                report
                    .failed
                    .push(Failed::from_error("drill leftovers", Some(region), &e));
                return Vec::new();
            }
        };
        let now = self.setting.now;
        let (old, young): (Vec<_>, Vec<_>) = found
            .into_iter()
            .partition(|t| t.is_leftover(now, self.settings.timeout));
        for t in &old {
            match clean_up(ec2, t.kind, &t.id).await {
                Ok(_) => {
                    info!(id = %t.id, region = %region, started_at = ?t.started_at, "drill resource left behind: cleaned up");
                    report.counts.cleaned_up += 1;
                }
                Err(e) => {
                    warn!(id = %t.id, region = %region, error = %e, "drill resource left behind: could not clean it up");
                    report
                        .failed
                        .push(Failed::from_error(&t.id, Some(region), &e));
                }
            }
        }
        young.into_iter().filter_map(|t| t.drill_of).collect()
    }

    /// Makes the planned restores, region by region, a few at a time; the ones made, to judge.
    async fn restore_all(
        &self,
        run: &Run,
        drills: &[Planned_],
        instance_types: &HashMap<String, String>,
        report: &mut DrillReport,
    ) -> Vec<Restore> {
        let mut by_region: BTreeMap<&Region, Vec<&Planned_>> = BTreeMap::new();
        for d in drills {
            by_region.entry(&d.region).or_default().push(d);
        }
        let mut made = Vec::new();
        for (region, drills) in by_region {
            let ec2 = self.clients.region(region);
            let place = self.place(&ec2, &drills).await;
            let outcomes: Vec<(&Planned_, Result<Restore, Refused>)> = stream::iter(drills)
                .map(|d| {
                    let (ec2, place) = (&ec2, &place);
                    async move { (d, self.restore(run, ec2, place, d, instance_types).await) }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            for (d, outcome) in outcomes {
                match outcome {
                    Ok(r) => {
                        info!(resource = %d.resource, region = %region, backup = %d.backup, restored = %r.restored, "restore started");
                        made.push(r);
                    }
                    Err(Refused::Call(Error::Deadline { .. }, _)) => {
                        info!(resource = %d.resource, region = %region, "restore not started: the deadline is near; the next run drills it");
                        report.not_drilled.push(NotDrilled {
                            resource: d.resource.clone(),
                            region: region.clone(),
                            reason: "not started: the invocation's deadline was near; the next run drills it".into(),
                        });
                    }
                    // Where to restore could not be had: the drill's own setting or a describe,
                    // not the backup. A failure of the run, and no mark on the backup.
                    Err(Refused::Placement(e)) => {
                        warn!(resource = %d.resource, region = %region, error = %e, code = e.code().unwrap_or(""), "no place to restore into");
                        report
                            .failed
                            .push(Failed::from_error(&d.resource, Some(region), &e));
                    }
                    Err(Refused::Call(e, at)) => {
                        let pending = restore_of(d, at, String::new());
                        let code = e.code().unwrap_or("Error").to_string();
                        let record = DrillRecord::of(
                            &run.id,
                            &pending,
                            DrillResult::Failed,
                            Some((code, e.to_string())),
                            at,
                        );
                        self.finish(run, &ec2, record, at, report).await;
                    }
                }
            }
        }
        made
    }

    /// Where a region's restores go: the subnet and security groups of its instances, the
    /// zone of its volumes; each an error for the restores that need it when it cannot be had.
    async fn place(&self, ec2: &Ec2, drills: &[&Planned_]) -> Place {
        let region = ec2.region();
        let needs_instance = drills.iter().any(|d| d.kind == RestoreKind::Instance);
        let subnet = match self.settings.subnets.get(region) {
            Some(id) => match ec2.subnet(id).await {
                Ok(Some(s)) => Ok(s),
                Ok(None) => Err(no_place(
                    region,
                    format!("DRILL_SUBNETS names {id}, which {region} does not have"),
                )),
                Err(e) => Err(e),
            },
            None => default_subnet(ec2).await,
        };
        let groups = match (&subnet, self.settings.security_groups.get(region)) {
            (_, Some(groups)) => Ok(groups.clone()),
            (Ok(s), None) if needs_instance => {
                let vpc = s.vpc_id.clone().unwrap_or_default();
                let name = format!("{}-drill", self.deployment());
                let tags = vec![
                    (
                        self.keys().key(key::MANAGED_BY),
                        self.deployment().to_string(),
                    ),
                    ("Name".to_string(), name.clone()),
                ];
                ec2.drill_security_group(&vpc, &name, &tags)
                    .await
                    .map(|id| vec![id])
            }
            (Err(e), None) => Err(e.clone()),
            (Ok(_), None) => Ok(Vec::new()),
        };
        let zone = match &subnet {
            Ok(s) => Ok(s.availability_zone.clone()),
            Err(_) => match ec2.available_zones().await {
                Ok(zones) => zones
                    .into_iter()
                    .find(|z| z.state == "available")
                    .map(|z| z.name)
                    .ok_or_else(|| no_place(region, format!("{region} has no available zone"))),
                Err(e) => Err(e),
            },
        };
        Place {
            subnet,
            groups,
            zone,
        }
    }

    /// One restore call: an instance from the AMI or a volume from the snapshot, tagged as
    /// this run's throwaway.
    async fn restore(
        &self,
        run: &Run,
        ec2: &Ec2,
        place: &Place,
        d: &Planned_,
        instance_types: &HashMap<String, String>,
    ) -> Result<Restore, Refused> {
        let started = self.clock();
        let call = |e: Error| Refused::Call(e, started);
        // The same tags in a retry of the invocation (the run's start, not this call's): EC2
        // refuses a ClientToken reused with other parameters.
        let tags = self.throwaway_tags(run, d, run.started_at);
        let token = client_token(&run.id, &d.resource);
        // Room after the restores for judging them and handing them on.
        let ec2 = ec2.keeping(std::time::Duration::from_secs(3));
        let id = match d.kind {
            RestoreKind::Instance => {
                let subnet = place.subnet.as_ref().map_err(Refused::placement)?;
                let groups = place.groups.as_ref().map_err(Refused::placement)?;
                let instance_type = self
                    .settings
                    .instance_type
                    .clone()
                    .or_else(|| instance_types.get(&d.resource).cloned())
                    .unwrap_or_else(|| FALLBACK_INSTANCE_TYPE.to_string());
                ec2.launch(&Launch {
                    image_id: d.backup.clone(),
                    instance_type,
                    subnet_id: Some(subnet.id.clone()),
                    security_group_ids: groups.clone(),
                    key_name: None,
                    tags,
                    throwaway: true,
                    client_token: Some(token),
                    delete_on_termination: d.devices.clone(),
                })
                .await
                .map_err(call)?
            }
            RestoreKind::Volume => {
                let zone = place.zone.as_ref().map_err(Refused::placement)?;
                ec2.create_volume_from(&NewVolume {
                    snapshot_id: d.backup.clone(),
                    availability_zone: zone.clone(),
                    volume_type: None,
                    tags,
                    client_token: Some(token),
                })
                .await
                .map_err(call)?
            }
        };
        Ok(restore_of(d, started, id))
    }

    fn throwaway_tags(&self, run: &Run, d: &Planned_, started: DateTime<Utc>) -> Tags {
        let keys = self.keys();
        vec![
            ("Name".to_string(), format!("drill-{}", d.resource)),
            (keys.key(key::MANAGED_BY), self.deployment().to_string()),
            (keys.key(key::DRILL_OF), d.backup.clone()),
            (keys.key(key::DRILL_RUN), run.id.clone()),
            (keys.key(key::DRILL_STARTED_AT), format_time(started)),
        ]
    }

    /// Judges `restores` until none is pending: with a work queue, once, the rest handed on;
    /// without, again every [`Drill::poll`] while the deadline allows (then the rest time out).
    async fn judge_until_done(
        &self,
        run: &Run,
        mut restores: Vec<Restore>,
        mut now: DateTime<Utc>,
        report: &mut DrillReport,
    ) {
        loop {
            restores = self.judge_all(run, restores, now, report).await;
            if restores.is_empty() {
                return;
            }
            if let Some(queue) = self.setting.queue {
                self.hand_on(run, queue, restores, report).await;
                return;
            }
            let next = tokio::time::Instant::now().into_std() + self.poll;
            if self
                .clients
                .deadline()
                .is_some_and(|d| !d.keeping(std::time::Duration::from_secs(5)).allows(next))
            {
                // No queue to hand them on to, and no time to wait: they did not get ready
                // within this invocation.
                let parts: Vec<DrillReport> = stream::iter(restores)
                    .map(|r| async move {
                        warn!(resource = %r.resource, region = %r.region, restored = %r.restored, "not ready before the invocation's deadline, and no work queue to check it later");
                        let record = DrillRecord::of(&run.id, &r, DrillResult::TimedOut, None, now);
                        let ec2 = self.clients.region(&r.region);
                        let mut part = DrillReport::default();
                        self.finish(run, &ec2, record, now, &mut part).await;
                        part
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
                for part in parts {
                    merge(report, part);
                }
                return;
            }
            tokio::time::sleep(self.poll).await;
            now = self.clock();
        }
    }

    /// Looks at every restore once (one describe per region and kind), and finishes those
    /// judged; the pending ones, to look at again.
    async fn judge_all(
        &self,
        run: &Run,
        restores: Vec<Restore>,
        now: DateTime<Utc>,
        report: &mut DrillReport,
    ) -> Vec<Restore> {
        let mut groups: BTreeMap<(Region, RestoreKind), Vec<Restore>> = BTreeMap::new();
        for r in restores {
            groups
                .entry((r.region.clone(), r.kind))
                .or_default()
                .push(r);
        }
        let mut pending = Vec::new();
        for ((region, kind), restores) in groups {
            let ec2 = self.clients.region(&region);
            let ids: Vec<String> = restores.iter().map(|r| r.restored.clone()).collect();
            let seen = match ec2.seen(kind, &ids).await {
                Ok(seen) => seen,
                Err(e) => {
                    warn!(region = %region, error = %e, "could not look at the restores: looked at again later");
                    HashMap::new()
                }
            };
            let mut judged = Vec::new();
            for r in restores {
                let verdict = match seen.get(&r.restored) {
                    Some(s) => judge(&r, s, now, self.settings.timeout),
                    None if now - r.started_at >= self.settings.timeout.to_delta() => {
                        Verdict::TimedOut
                    }
                    None => Verdict::Pending,
                };
                let (result, error) = match verdict {
                    Verdict::Pending => {
                        pending.push(r);
                        continue;
                    }
                    Verdict::EndedElsewhere => {
                        info!(resource = %r.resource, region = %r.region, restored = %r.restored, "terminated by a call before this look (an earlier delivery of this work, or a person): nothing to judge");
                        continue;
                    }
                    Verdict::Passed => (DrillResult::Passed, None),
                    Verdict::TimedOut => (DrillResult::TimedOut, None),
                    Verdict::Failed { code, message } => {
                        (DrillResult::Failed, Some((code, message)))
                    }
                };
                judged.push(DrillRecord::of(&run.id, &r, result, error, now));
            }
            let finished: Vec<DrillReport> = stream::iter(judged)
                .map(|record| {
                    let ec2 = &ec2;
                    async move {
                        let mut part = DrillReport::default();
                        self.finish(run, ec2, record, now, &mut part).await;
                        part
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            for part in finished {
                merge(report, part);
            }
        }
        pending
    }

    /// A restore judged: its throwaway cleaned up, its evidence written, its backup marked, and
    /// the record logged and kept in the result.
    async fn finish(
        &self,
        run: &Run,
        ec2: &Ec2,
        mut record: DrillRecord,
        now: DateTime<Utc>,
        report: &mut DrillReport,
    ) {
        let region = ec2.region();
        if let Some(id) = record.restored.clone() {
            match clean_up(ec2, record.kind, &id).await {
                Ok(Cleaned::Now) => record.cleaned_up_at = Some(self.clock().max(now)),
                Ok(Cleaned::AlreadyGone) => {
                    info!(restored = %id, region = %region, "drill resource already gone");
                }
                Err(e) => {
                    warn!(restored = %id, region = %region, error = %e, "drill resource not cleaned up: the next run's sweep deletes it");
                    report
                        .failed
                        .push(Failed::from_error(&id, Some(region), &e));
                }
            }
        }
        if let Some(evidence) = &self.evidence {
            let key = record.evidence_key(run.started_at);
            let body = serde_json::to_string(&record).unwrap_or_default();
            match evidence.put_once(&key, body).await {
                Ok(Written::New) => {}
                Ok(Written::AlreadyThere) => {
                    info!(resource = %record.resource, region = %region, key = %key, "already recorded by an earlier delivery of this continuation: not counted again");
                    return;
                }
                Err(e) => {
                    // The backup is not marked either: the resource stays due, and is proven
                    // again, with its evidence, by a later run.
                    warn!(resource = %record.resource, region = %region, key = %key, error = %e, "evidence not written: the backup is not marked");
                    report
                        .failed
                        .push(Failed::from_error(&record.resource, Some(region), &e));
                    log_record(&record);
                    report.record(record);
                    return;
                }
            }
        }
        let mark = DrillMark {
            at: record.started_at,
            result: record.result,
            restore_seconds: record.rto_seconds.map(|s| s.max(0) as u64),
        };
        if let Err(e) = ec2
            .tag_resources(
                std::slice::from_ref(&record.backup),
                &mark.tags(&self.keys()),
            )
            .await
        {
            let gone = e.code().is_some_and(|c| {
                crate::codes::IMAGE_GONE.contains(&c) || crate::codes::SNAPSHOT_GONE.contains(&c)
            });
            if gone {
                info!(backup = %record.backup, region = %region, "the drilled backup is gone (expired): not marked");
            } else {
                warn!(backup = %record.backup, region = %region, error = %e, "the drilled backup could not be marked");
                report
                    .failed
                    .push(Failed::from_error(&record.backup, Some(region), &e));
            }
        }
        log_record(&record);
        report.record(record);
    }

    async fn hand_on(
        &self,
        run: &Run,
        queue: &WorkQueue,
        restores: Vec<Restore>,
        report: &mut DrillReport,
    ) {
        report.counts.pending += restores.len();
        let works: Vec<DrillWork> = restores
            .chunks(RESTORES_PER_MESSAGE)
            .map(|chunk| DrillWork {
                run: run.id.clone(),
                run_started_at: run.started_at,
                restores: chunk.to_vec(),
            })
            .collect();
        let what = "the restores to check";
        let config = self.setting.config;
        let delay = self.recheck_seconds;
        match crate::continuation::hand_on(queue, config, FUNCTION, what, &works, delay).await {
            Ok(sent) => report.common.continuations += sent,
            Err(reason) => report.common.unfinished = Some(reason),
        }
    }
}

/// The instance type of a drill of an instance EC2 no longer describes (a backup outlives its
/// instance): a small one, the drill is throwaway.
pub const FALLBACK_INSTANCE_TYPE: &str = "t3.micro";

/// Where one region's restores go.
struct Place {
    subnet: Result<Subnet, Error>,
    groups: Result<Vec<String>, Error>,
    zone: Result<String, Error>,
}

fn no_place(region: &Region, message: String) -> Error {
    Error::Aws {
        operation: "Placement",
        region: region.to_string(),
        code: NO_PLACE.to_string(),
        message,
    }
}

/// The default subnet of the first available zone that has one.
async fn default_subnet(ec2: &Ec2) -> Result<Subnet, Error> {
    let region = ec2.region();
    let zones = ec2.available_zones().await?;
    let subnets = ec2.available_subnets(None).await?;
    let available = |s: &&Subnet| {
        zones
            .iter()
            .any(|z| z.name == s.availability_zone && z.state == "available")
    };
    subnets
        .iter()
        .filter(|s| s.default_for_az)
        .find(available)
        .cloned()
        .ok_or_else(|| {
            no_place(
                region,
                format!(
                    "{region} has no default subnet in an available zone: name one in DRILL_SUBNETS"
                ),
            )
        })
}

/// What a clean-up call found.
enum Cleaned {
    Now,
    /// EC2 does not know it (any more).
    AlreadyGone,
}

/// Terminates an instance or deletes a volume.
async fn clean_up(ec2: &Ec2, kind: RestoreKind, id: &str) -> Result<Cleaned, Error> {
    let (done, gone) = match kind {
        RestoreKind::Instance => (ec2.terminate(id).await, INSTANCE_NOT_FOUND),
        RestoreKind::Volume => (ec2.delete_volume(id).await, VOLUME_NOT_FOUND),
    };
    match done {
        Ok(()) => Ok(Cleaned::Now),
        Err(e) if e.code() == Some(gone) => Ok(Cleaned::AlreadyGone),
        Err(e) => Err(e),
    }
}

/// Why a restore was not made: where to restore could not be had, or the call (at its time)
/// was refused.
enum Refused {
    Placement(Error),
    Call(Error, DateTime<Utc>),
}

impl Refused {
    fn placement(e: &Error) -> Self {
        Refused::Placement(e.clone())
    }
}

/// The restore of a planned drill, started at `started`, made as `restored` (empty: none).
fn restore_of(d: &Planned_, started: DateTime<Utc>, restored: String) -> Restore {
    Restore {
        resource: d.resource.clone(),
        name: d.name.clone(),
        kind: d.kind,
        region: d.region.clone(),
        backup: d.backup.clone(),
        backup_created_at: d.backup_created_at,
        started_at: started,
        restored,
    }
}

/// The ClientToken of a run's restore of a resource (at most 64 characters, as EC2 takes):
/// a retry of the invocation makes no second restore.
fn client_token(run: &str, resource: &str) -> String {
    let token = format!("{run}-{resource}");
    token.chars().take(64).collect()
}

fn merge(report: &mut DrillReport, part: DrillReport) {
    report.counts.passed += part.counts.passed;
    report.counts.failed += part.counts.failed;
    report.counts.timed_out += part.counts.timed_out;
    report.counts.cleaned_up += part.counts.cleaned_up;
    report.records.extend(part.records);
    report.failed.extend(part.failed);
}

/// One line per record, with every field of it.
fn log_record(r: &DrillRecord) {
    let line = serde_json::to_string(r).unwrap_or_default();
    match r.result {
        DrillResult::Passed => {
            info!(run = %r.run, resource = %r.resource, region = %r.region, kind = r.kind.as_str(), backup = %r.backup, result = r.result.as_str(), rpo_seconds = r.rpo_seconds, rto_seconds = r.rto_seconds, restored = r.restored.as_deref().unwrap_or(""), record = %line, "drill passed")
        }
        _ => {
            warn!(run = %r.run, resource = %r.resource, region = %r.region, kind = r.kind.as_str(), backup = %r.backup, result = r.result.as_str(), rpo_seconds = r.rpo_seconds, error_code = r.error_code.as_deref().unwrap_or(""), error = r.error.as_deref().unwrap_or(""), restored = r.restored.as_deref().unwrap_or(""), record = %line, "drill did not pass")
        }
    }
}

impl Function for Drill<'_> {
    type Request = DrillRequest;
    type Report = DrillReport;

    fn span(&self, request: &DrillRequest) -> tracing::Span {
        let run = request.work.as_ref().map_or(&self.run.id, |w| &w.run);
        tracing::info_span!(
            "drill",
            event_id = request.event_id.as_deref().unwrap_or(""),
            run = %run
        )
    }
    async fn run(&self, request: DrillRequest) -> Result<DrillReport, Error> {
        let mut report = match &request.work {
            None => self.start(&request).await?,
            Some(work) => {
                let run = Run {
                    id: work.run.clone(),
                    started_at: work.run_started_at,
                };
                let mut report = DrillReport::default();
                self.judge_until_done(&run, work.restores.clone(), self.setting.now, &mut report)
                    .await;
                report
            }
        };
        report.failed.sort();
        Ok(report)
    }
    fn parse(&self, payload: &Value) -> Result<DrillRequest, Error> {
        parse_drill_request(payload)
    }
    fn parse_body(&self, body: &str) -> Result<DrillRequest, Error> {
        let config = self.setting.config;
        let work = crate::continuation::parse::<DrillWork>(config, FUNCTION, body)?.check()?;
        Ok(DrillRequest {
            work: Some(work),
            ..DrillRequest::default()
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

impl Report for DrillReport {
    fn metric_values(&self) -> Values {
        DrillReport::metric_values(self)
    }
    fn metric_values_by_region(&self) -> BTreeMap<Region, Values> {
        DrillReport::metric_values_by_region(self)
    }
    /// What failed in the run itself (a restore that fails is a record: a finding, not a
    /// failure of the invocation).
    fn failed(&self) -> usize {
        self.failed.len()
    }
    fn common(&mut self) -> Option<&mut Common> {
        Some(&mut self.common)
    }
    fn log(&self) {
        info!(
            passed = self.counts.passed,
            failed = self.counts.failed,
            timed_out = self.counts.timed_out,
            pending = self.counts.pending,
            cleaned_up = self.counts.cleaned_up,
            run_failures = self.failed.len(),
            continuations = self.common.continuations,
            dry_run = self.common.dry_run,
            "done"
        );
    }
    /// Its lists cut to [`LIST_LIMIT`] (every record is in the log and the bucket).
    fn into_answer(mut self) -> Result<Value, Error> {
        let failed = self.failed.len();
        let unfinished = self.common.unfinished.take();
        self.cap(LIST_LIMIT);
        match unfinished {
            Some(reason) => Err(Error::Unfinished {
                reason,
                result: serde_json::to_string(&self).unwrap_or_default(),
            }),
            None => crate::report::into_outcome(self, failed),
        }
    }
}

/// The whole handler (see [`crate::invocation::handle`]).
pub async fn handle(drill: &Drill<'_>, payload: &Value) -> Result<Value, Error> {
    crate::invocation::handle(drill, payload).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_and_a_client_token_fit_their_limits() {
        let at = crate::tags::parse_time("2026-12-06T03:00:00Z").unwrap();
        let run = run_id(at, "8a5f1f3e-0000-4000-8000-000000000001");
        assert_eq!(run, "20261206T030000Z-8a5f1f3e");
        let token = client_token(&run, "vol-0123456789abcdef0");
        assert!(
            token.len() <= 64 && token.ends_with("vol-0123456789abcdef0"),
            "{token}"
        );
        assert_eq!(client_token(&"x".repeat(80), "i-1").len(), 64);
    }
}
