//! create-image and create-snapshot: which resources to back up now (a pure plan), then the
//! create calls, bounded in concurrency, each failure kept apart from the others.

use crate::backup::BackupQuery;
use crate::config::Config;
use crate::due::{Due, RecentBackup, is_due, newest_by_source};
use crate::ec2::Ec2;
use crate::error::Error;
use crate::invocation::{Function, Report};
use crate::naming::{ami_name, image_description, snapshot_description};
use crate::region::Region;
use crate::report::{CreateReport, Created, Failed};
use crate::source::Source;
use crate::sqs::WorkQueue;
use crate::tags::{BackupOrigin, Kind, TagKeys, backup_tags, format_time, resolve_policy};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tracing::{info, warn};

pub use backup_core::create::*;

/// Create calls in flight at once: inside EC2's mutating-call bucket, with the SDK's retries
/// absorbing the odd throttle.
pub const CREATE_CONCURRENCY: usize = 8;

/// What a run will do: the jobs, and a report already holding the skips, the warnings and the
/// requested resources that were not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub report: CreateReport,
    /// On demand, the request's id: its AMI names carry it.
    pub request_id: Option<String>,
}

/// The live states a backup is taken in.
fn backed_up_states(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::Instance => &["running", "stopped"],
        ResourceKind::Volume => &["in-use", "available"],
    }
}

#[allow(clippy::too_many_arguments)]
pub fn plan(
    kind: ResourceKind,
    config: &Config,
    keys: &TagKeys,
    region: &Region,
    trigger: Trigger<'_>,
    requested: Option<&[String]>,
    sources: &[Source],
    recent: &[RecentBackup],
    now: DateTime<Utc>,
    name_stamp: DateTime<Utc>,
) -> Plan {
    let mut report = CreateReport {
        dry_run: config.dry_run,
        ..CreateReport::default()
    };
    for id in requested.unwrap_or_default() {
        if !sources.iter().any(|s| &s.id == id) {
            report.failed.push(Failed {
                source: id.clone(),
                region: None,
                error: format!("{} {id} was not found in {region}", kind.resource_type()),
                code: Some(match kind {
                    ResourceKind::Instance => "InvalidInstanceID.NotFound".into(),
                    ResourceKind::Volume => "InvalidVolume.NotFound".into(),
                }),
            });
        }
    }
    let newest = newest_by_source(recent);
    let mut jobs = Vec::new();
    for source in sources {
        if let Err(reason) = keys.opt_in_state(&source.tags) {
            report.skip(&source.id, reason);
            continue;
        }
        let states = backed_up_states(kind);
        // An instance launched with the tag fires its Tag Change while still pending: fail it so
        // that Lambda's retry, a minute later, backs it up once it runs, instead of waiting for
        // the next schedule.
        if trigger == Trigger::TagChange && matches!(source.state.as_str(), "pending" | "creating")
        {
            report.failed.push(Failed {
                source: source.id.clone(),
                region: None,
                error: format!(
                    "{} {} is still {}: the retry backs it up once it is ready",
                    kind.resource_type(),
                    source.id,
                    source.state
                ),
                code: Some("IncorrectState".into()),
            });
            continue;
        }
        if !states.contains(&source.state.as_str()) {
            report.skip(
                &source.id,
                format!(
                    "{} is {}: only {} ones are backed up",
                    kind.resource_type(),
                    if source.state.is_empty() {
                        "in an unknown state"
                    } else {
                        &source.state
                    },
                    states.join(" or ")
                ),
            );
            continue;
        }
        let policy = resolve_policy(keys, config, &source.id, &source.tags, &mut report.warnings);
        // On demand, the interval does not apply; but Lambda retries a failed invocation whole,
        // and the resources that had succeeded must not get a second backup: a retry carries
        // the same request id, and finds the backup it made.
        let newest_backup = newest.get(source.id.as_str()).copied();
        let request_id = match trigger {
            Trigger::OnDemand { request_id } => Some(request_id),
            _ => None,
        };
        if let Some(request_id) = request_id
            && let Some(b) = recent
                .iter()
                .find(|b| b.source == source.id && b.request_id.as_deref() == Some(request_id))
        {
            report.skip(
                &source.id,
                format!(
                    "backup {} was already made by this request ({request_id}) at {}",
                    b.id,
                    format_time(b.created_at)
                ),
            );
            continue;
        }
        if request_id.is_none()
            && let Due::NotDue {
                newest_id,
                next_due,
            } = is_due(newest_backup, policy.interval, now)
        {
            report.skip(
                &source.id,
                format!(
                    "backup {newest_id} is younger than the {} interval; next due at {}",
                    policy.interval,
                    format_time(next_due)
                ),
            );
            continue;
        }
        let backup_kind = match kind {
            ResourceKind::Instance => Kind::Image,
            ResourceKind::Volume => Kind::Snapshot,
        };
        let origin = BackupOrigin {
            kind: backup_kind,
            source_id: &source.id,
            source_region: region,
            created_at: now,
            source_tags: &source.tags,
            request_id,
        };
        let tags = backup_tags(
            keys,
            &config.deployment_name,
            &origin,
            &policy,
            &mut report.warnings,
        );
        jobs.push(match kind {
            ResourceKind::Instance => Job::Image(ImageRequest {
                instance_id: source.id.clone(),
                name: ami_name(source.name(), &source.id, name_stamp, request_id),
                description: image_description(&source.id, &config.deployment_name),
                reboot: policy.reboot,
                tags,
            }),
            ResourceKind::Volume => Job::Snapshot(SnapshotRequest {
                volume_id: source.id.clone(),
                description: snapshot_description(
                    &source.id,
                    source.attached_to.as_deref(),
                    &config.deployment_name,
                ),
                tags,
            }),
        });
    }
    Plan {
        jobs,
        report,
        request_id: match trigger {
            Trigger::OnDemand { request_id } => Some(request_id.to_string()),
            _ => None,
        },
    }
}

/// Runs the create calls of a plan; in a dry run, reports them instead.
pub async fn execute(ec2: &Ec2, plan: Plan, dry_run: bool) -> CreateReport {
    let Plan {
        jobs,
        mut report,
        request_id,
    } = plan;
    if dry_run {
        for job in &jobs {
            info!(
                source = job.source(),
                name = job.name(),
                "dry run: would create backup"
            );
            report.created.push(Created {
                source: job.source().to_string(),
                id: None,
                name: job.name().to_string(),
            });
        }
        return report;
    }
    // Each outcome is logged as it comes, so that a timeout loses no line.
    let region = ec2.region();
    let request_id = request_id.as_deref();
    let outcomes: Vec<(Job, Result<String, Error>)> = stream::iter(jobs)
        .map(|job| async move {
            let result = match &job {
                Job::Image(r) => ec2.create_image(r).await,
                Job::Snapshot(r) => ec2.create_snapshot(r).await,
            };
            match &result {
                Ok(id) => {
                    info!(source = job.source(), backup_id = %id, name = job.name(), region = %region, "backup created")
                }
                Err(Error::Deadline { .. }) => {
                    info!(source = job.source(), region = %region, "backup not started: the deadline is near; the next schedule makes it")
                }
                Err(e) if e.code() == Some("InvalidAMIName.Duplicate") => match request_id {
                    Some(request_id) => {
                        info!(source = job.source(), name = job.name(), request_id, "backup already made by this request")
                    }
                    None => {
                        info!(source = job.source(), name = job.name(), "backup already made this minute")
                    }
                },
                Err(e) => {
                    warn!(source = job.source(), error = %e, code = e.code().unwrap_or(""), "backup failed")
                }
            }
            (job, result)
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    for (job, result) in outcomes {
        match result {
            Ok(id) => {
                report.created.push(Created {
                    source: job.source().to_string(),
                    id: Some(id),
                    name: job.name().to_string(),
                });
            }
            Err(Error::Deadline { .. }) => {
                report.remaining += 1;
                report.unstarted.push(job.source().to_string());
            }
            // The name holds the minute, and on demand the request: another invocation for the
            // same event, or for the same request (a retry), got there first.
            Err(e) if e.code() == Some("InvalidAMIName.Duplicate") => {
                let by = match request_id {
                    Some(request_id) => format!("this request ({request_id}) already made it"),
                    None => "a backup of it was made this minute".to_string(),
                };
                report.skip(
                    job.source(),
                    format!("an AMI named {:?} already exists: {by}", job.name()),
                );
            }
            Err(e) => {
                report
                    .failed
                    .push(Failed::from_error(job.source(), None, &e));
            }
        }
    }
    // Results in a stable order, whatever order the calls finished in.
    report.created.sort_by(|a, b| a.source.cmp(&b.source));
    report.failed.sort_by(|a, b| a.source.cmp(&b.source));
    report
}

/// What a record of a queued sweep checks, split from what it hands on.
struct FirstOfSweep {
    /// The first `n` opted-in sources in id order, and the others listed (the plan says why
    /// each is skipped).
    checked: Vec<Source>,
    /// The ids of the opted-in ones among them: whose backups the interval needs.
    opted_in: Vec<String>,
    /// The ids of the opted-in rest, handed on.
    rest: Vec<String>,
}

fn first_of_sweep(keys: &TagKeys, sources: Vec<Source>, n: usize) -> FirstOfSweep {
    let (mut opted_in, mut checked): (Vec<Source>, Vec<Source>) = sources
        .into_iter()
        .partition(|s| keys.opt_in_state(&s.tags).is_ok());
    opted_in.sort_by(|a, b| a.id.cmp(&b.id));
    let rest = opted_in.split_off(n.min(opted_in.len()));
    let ids = opted_in.iter().map(|s| s.id.clone()).collect();
    checked.extend(opted_in);
    FirstOfSweep {
        checked,
        opted_in: ids,
        rest: rest.into_iter().map(|s| s.id).collect(),
    }
}

/// One invocation of create-image or create-snapshot, from the parsed request to the report.
/// `request_id` identifies the invocation (Lambda's request id; the CLI makes one per run).
/// Fails as a whole only when the sweep itself cannot be read.
pub async fn run(
    kind: ResourceKind,
    config: &Config,
    ec2: &Ec2,
    request: CreateRequest,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<CreateReport, Error> {
    let keys = TagKeys::new(&config.tag_prefix);
    let event_time = request.event_time();
    // A continuation of an on-demand request is still that request.
    let carried_id = match &request {
        CreateRequest::Continued(work) => work.request_id.clone(),
        _ => None,
    };
    let request_id = carried_id.as_deref().unwrap_or(request_id);
    let continued = matches!(request, CreateRequest::Continued(_));
    let (trigger, ids) = match request {
        CreateRequest::Ignored { event_id, reason } => {
            let mut report = CreateReport {
                dry_run: config.dry_run,
                ..CreateReport::default()
            };
            report.skip(event_id.as_deref().unwrap_or("event"), reason);
            return Ok(report);
        }
        CreateRequest::TagChange {
            region: Some(r),
            ids,
            ..
        } if r != ec2.region().as_str() => {
            let mut report = CreateReport {
                dry_run: config.dry_run,
                ..CreateReport::default()
            };
            for id in ids {
                report.skip(
                    &id,
                    format!(
                        "the event is from {r}; this function backs up {}",
                        ec2.region()
                    ),
                );
            }
            return Ok(report);
        }
        CreateRequest::Schedule { .. } => (Trigger::Schedule, None),
        CreateRequest::TagChange { ids, .. } => (Trigger::TagChange, Some(ids)),
        CreateRequest::OnDemand { ids } => (Trigger::OnDemand { request_id }, Some(ids)),
        CreateRequest::Continued(work) => (
            match work.origin {
                Origin::Schedule => Trigger::Schedule,
                Origin::TagChange => Trigger::TagChange,
                Origin::OnDemand => Trigger::OnDemand { request_id },
            },
            work.ids,
        ),
    };
    let sources = match kind {
        ResourceKind::Instance => ec2.instances(&keys, ids.as_deref()).await?,
        ResourceKind::Volume => ec2.volumes(&keys, ids.as_deref()).await?,
    };
    // A sweep from the queue checks a message's worth of sources and hands the rest on, so
    // that a record holds 500 sources' backups, whatever the region holds.
    // The interval (on demand: the request's own backups) needs the newest backups: for a sweep
    // without a queue one paginated describe for the whole region; for named or queued sources
    // (a Tag Change, a request, a record of a sweep) only theirs, 200 sources a call (none at
    // all when no source opts in).
    let query = BackupQuery::managed(kind.backup_kind(), &config.deployment_name);
    let (sources, unchecked, query) = match &ids {
        Some(ids) => (sources, Vec::new(), query.of_sources(ids)),
        None if continued => {
            let first = first_of_sweep(&keys, sources, crate::continuation::IDS_PER_MESSAGE);
            (first.checked, first.rest, query.of_sources(&first.opted_in))
        }
        None => (sources, Vec::new(), query),
    };
    let recent = crate::due::recent(&ec2.backups(&keys, &query).await?);
    // A resource that went away since the work was handed on is nothing to do, not a failure.
    let mut vanished = Vec::new();
    let requested = match ids {
        Some(ids) if continued => {
            vanished = ids
                .into_iter()
                .filter(|id| !sources.iter().any(|s| &s.id == id))
                .collect();
            None
        }
        ids => ids,
    };
    // The AMI name carries the event's own time (the same on every redelivery of the event), and
    // on demand the request's id, so a duplicate that races past the describe above still
    // collides on the name, and another request does not.
    let name_stamp = event_time.unwrap_or(now);
    let plan = plan(
        kind,
        config,
        &keys,
        ec2.region(),
        trigger,
        requested.as_deref(),
        &sources,
        &recent,
        now,
        name_stamp,
    );
    // From the queue, one record makes at most a message's worth of backups and hands the rest
    // on: a record stays a few minutes long, so a Tag Change queued behind it waits no longer.
    let mut plan = plan;
    let held_back = if continued {
        plan.jobs
            .split_off(plan.jobs.len().min(crate::continuation::IDS_PER_MESSAGE))
    } else {
        Vec::new()
    };
    let mut report = execute(ec2, plan, config.dry_run).await;
    for job in held_back {
        report.remaining += 1;
        report.unstarted.push(job.source().to_string());
    }
    report.remaining += unchecked.len();
    report.unstarted.extend(unchecked);
    for id in vanished {
        report.skip(
            &id,
            format!(
                "{} {id} is no longer in {}",
                kind.resource_type(),
                ec2.region()
            ),
        );
    }
    Ok(report)
}

/// A create function as the invocation pipeline runs it (see [`crate::invocation`]).
pub struct Create<'a> {
    pub kind: ResourceKind,
    pub config: &'a Config,
    pub ec2: &'a Ec2,
    pub queue: Option<&'a WorkQueue>,
    /// Lambda's request id (the CLI makes one per run): an on-demand request's retry finds
    /// the backups it made by it.
    pub request_id: &'a str,
    pub now: DateTime<Utc>,
}

impl Function for Create<'_> {
    type Request = CreateRequest;
    type Report = CreateReport;

    fn name(&self) -> &'static str {
        self.kind.function()
    }
    fn config(&self) -> &Config {
        self.config
    }
    fn throttles(&self) -> u64 {
        self.ec2.throttles()
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
    fn parse(&self, payload: &serde_json::Value) -> Result<CreateRequest, Error> {
        parse_create_request(payload, self.kind)
    }
    fn parse_body(&self, body: &str) -> Result<CreateRequest, Error> {
        crate::continuation::parse::<CreateWork>(self.config, self.kind.function(), body)
            .and_then(|work| work.check(self.kind))
            .map(CreateRequest::Continued)
    }
    fn span(&self, request: &CreateRequest) -> tracing::Span {
        tracing::info_span!("backup", event_id = request.event_id().unwrap_or(""))
    }
    /// The backups made (or, a schedule with a work queue, the sweep handed to the queue), the
    /// rest handed on.
    async fn run(&self, request: CreateRequest) -> Result<CreateReport, Error> {
        let Create {
            kind,
            config,
            ec2,
            queue,
            request_id,
            now,
        } = *self;
        let work = CreateWork::of(&request, request_id, now);
        let queued = match &request {
            CreateRequest::Schedule { .. } => true,
            CreateRequest::TagChange { region, .. } => {
                region.as_deref().is_none_or(|r| r == ec2.region().as_str())
            }
            _ => false,
        };
        let tag_change = matches!(
            &request,
            CreateRequest::TagChange { .. }
                | CreateRequest::Continued(CreateWork {
                    origin: Origin::TagChange,
                    ..
                })
        );
        let mut report = match (queue, work) {
            // Sweeps and Tag Changes run from the queue, one at a time (its one message group): a
            // sweep that outlasts the interval never races the next, nor a Tag Change the sweep;
            // and a record is at most a message's worth of backups, so a Tag Change waits a few
            // minutes at most.
            (Some(queue), Some(work)) if queued && !config.dry_run => {
                let ids = match &request {
                    CreateRequest::TagChange { ids, .. } => Some(ids.clone()),
                    _ => None,
                };
                let mut report = CreateReport::default();
                hand_on(
                    kind,
                    config,
                    queue,
                    &[CreateWork { ids, ..work }],
                    &mut report,
                )
                .await;
                report
            }
            (queue, work) => {
                let mut report = run(kind, config, ec2, request, request_id, now).await?;
                if let (Some(queue), Some(work)) = (queue, work)
                    && !report.unstarted.is_empty()
                    && !config.dry_run
                {
                    let rest: Vec<CreateWork> = report
                        .unstarted
                        .chunks(crate::continuation::IDS_PER_MESSAGE)
                        .map(|ids| CreateWork {
                            ids: Some(ids.to_vec()),
                            ..work.clone()
                        })
                        .collect();
                    hand_on(kind, config, queue, &rest, &mut report).await;
                }
                // Queued, an instance still pending is tried again in a minute with the record
                // (directly, Lambda's retry of the event does that).
                if tag_change
                    && queue.is_some()
                    && report
                        .failed
                        .iter()
                        .any(|f| f.code.as_deref() == Some("IncorrectState"))
                {
                    report.unfinished = Some("a tagged resource is not ready yet".into());
                }
                report
            }
        };
        report.dry_run = config.dry_run;
        Ok(report)
    }
}

impl Report for CreateReport {
    fn metric_values(&self) -> crate::metrics::Values {
        CreateReport::metric_values(self)
    }
    fn failed(&self) -> usize {
        self.failed.len()
    }
    fn continuations(&self) -> usize {
        self.continuations
    }
    fn take_unfinished(&mut self) -> Option<String> {
        self.unfinished.take()
    }
    fn warnings(&self) -> &[crate::tags::Warning] {
        &self.warnings
    }
    fn log(&self) {
        info!(
            created = self.created.len(),
            skipped = self.skipped.len(),
            failed = self.failed.len(),
            warnings = self.warnings.len(),
            remaining = self.remaining,
            continuations = self.continuations,
            dry_run = self.dry_run,
            "done"
        );
    }
}

/// A create function's Lambda handler: the payload, Lambda's request id and the clock.
pub async fn handle_event(
    kind: ResourceKind,
    config: &Config,
    ec2: &Ec2,
    queue: Option<&WorkQueue>,
    event: lambda_runtime::LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, Error> {
    let ec2 = ec2.for_invocation(&event.context);
    handle(
        kind,
        config,
        &ec2,
        queue,
        &event.payload,
        &event.context.request_id,
        Utc::now(),
    )
    .await
}

/// The whole handler of a create function (see [`crate::invocation::handle`]).
pub async fn handle(
    kind: ResourceKind,
    config: &Config,
    ec2: &Ec2,
    queue: Option<&WorkQueue>,
    payload: &serde_json::Value,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, Error> {
    let create = Create {
        kind,
        config,
        ec2,
        queue,
        request_id,
        now,
    };
    crate::invocation::handle(&create, queue, payload).await
}

/// Sends `works` to the work queue; a queue that refuses them leaves the work unfinished, so that
/// it is done again (Lambda's retry, or the work queue's), which is harmless.
async fn hand_on(
    kind: ResourceKind,
    config: &Config,
    queue: &WorkQueue,
    works: &[CreateWork],
    report: &mut CreateReport,
) {
    match crate::continuation::hand_on(queue, config, kind.function(), "the rest", works, 0).await {
        Ok(sent) => report.continuations += sent,
        Err(reason) => report.unfinished = Some(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::parse_time;

    fn source(id: &str, state: &str, tags: &[(&str, &str)]) -> Source {
        Source {
            id: id.into(),
            state: state.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            attached_to: None,
        }
    }

    fn plan_for(trigger: Trigger, sources: &[Source], stamp: &str) -> Plan {
        let config = Config::default();
        let now = parse_time("2026-11-25T03:01:30Z").unwrap();
        plan(
            ResourceKind::Instance,
            &config,
            &TagKeys::new("backup"),
            &Region::parse("us-east-1").unwrap(),
            trigger,
            None,
            sources,
            &[],
            now,
            parse_time(stamp).unwrap(),
        )
    }

    #[test]
    fn a_record_of_a_queued_sweep_checks_the_first_sources_by_id_and_hands_on_the_rest() {
        let keys = TagKeys::new("Backup");
        let mut sources: Vec<Source> = ["i-3", "i-1", "i-4", "i-2"]
            .iter()
            .map(|id| source(id, "running", &[("Backup", "true")]))
            .collect();
        sources.push(source("i-0", "running", &[("Backup", "false")]));
        let first = first_of_sweep(&keys, sources.clone(), 2);
        let ids: Vec<&str> = first.checked.iter().map(|s| s.id.as_str()).collect();
        // The opted-out one is checked (and skipped by the plan), never handed on.
        assert_eq!(ids, ["i-0", "i-1", "i-2"]);
        assert_eq!(first.opted_in, ["i-1", "i-2"]);
        assert_eq!(first.rest, ["i-3", "i-4"]);
        let first = first_of_sweep(&keys, sources, 500);
        assert_eq!(first.checked.len(), 5);
        assert!(first.rest.is_empty());
    }

    #[test]
    fn a_continuation_that_would_lose_its_idempotency_is_refused() {
        let work = |origin, time: Option<&str>, ids: Option<&[&str]>| CreateWork {
            origin,
            time: time.map(|t| parse_time(t).unwrap()),
            request_id: (origin == Origin::OnDemand).then(|| "r-1".to_string()),
            ids: ids.map(|ids| ids.iter().map(|s| s.to_string()).collect()),
            event_id: None,
        };
        let t = Some("2026-11-25T03:00:00Z");
        let one: &[&str] = &["i-0123456789abcdef0"];
        assert!(
            work(Origin::Schedule, t, None)
                .check(ResourceKind::Instance)
                .is_ok()
        );
        assert!(
            work(Origin::OnDemand, t, Some(one))
                .check(ResourceKind::Instance)
                .is_ok()
        );
        let refused = [
            (work(Origin::Schedule, None, None), "time"),
            (work(Origin::OnDemand, t, None), "must name its resources"),
            (work(Origin::TagChange, t, None), "must name its resources"),
            (
                work(Origin::Schedule, t, Some(&["vol-0123456789abcdef0"])),
                "not a valid instance id",
            ),
            (work(Origin::Schedule, t, Some(&[])), "naming no resource"),
        ];
        for (w, why) in refused {
            let err = w.check(ResourceKind::Instance).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_pending_instance_from_a_tag_change_fails_for_a_retry_but_a_sweep_skips_it() {
        let s = [source("i-1", "pending", &[("Backup", "true")])];
        let p = plan_for(Trigger::TagChange, &s, "2026-11-25T03:00:00Z");
        assert!(p.jobs.is_empty());
        assert_eq!(p.report.failed[0].code.as_deref(), Some("IncorrectState"));
        let p = plan_for(Trigger::Schedule, &s, "2026-11-25T03:00:00Z");
        assert!(p.report.failed.is_empty());
        assert!(
            p.report.skipped[0].reason.contains("pending"),
            "{:?}",
            p.report.skipped
        );
    }

    #[test]
    fn reboot_tag_and_the_event_time_reach_the_create_image_request() {
        let s = [
            source(
                "i-1",
                "running",
                &[("Backup", "true"), ("backup:reboot", "true")],
            ),
            source("i-2", "stopped", &[("Backup", "true")]),
        ];
        let p = plan_for(Trigger::TagChange, &s, "2026-11-25T02:58:12Z");
        let requests: Vec<&ImageRequest> = p
            .jobs
            .iter()
            .map(|j| match j {
                Job::Image(r) => r,
                Job::Snapshot(_) => panic!("an instance makes an image"),
            })
            .collect();
        assert!(requests[0].reboot);
        assert!(!requests[1].reboot, "NoReboot unless asked");
        // The name carries the event's time, not the clock's.
        assert_eq!(requests[0].name, "i-1-20261125T0258Z");
    }

    #[test]
    fn an_on_demand_ami_is_named_after_its_request_and_a_tag_change_s_is_not() {
        let s = [source("i-1", "running", &[("Backup", "true")])];
        let name = |p: &Plan| match &p.jobs[0] {
            Job::Image(r) => r.name.clone(),
            Job::Snapshot(_) => panic!("an instance makes an image"),
        };
        let asked = plan_for(
            Trigger::OnDemand { request_id: "r-1" },
            &s,
            "2026-11-25T03:01:30Z",
        );
        assert_eq!(name(&asked), "i-1-20261125T0301Z-r-1");
        assert_eq!(asked.request_id.as_deref(), Some("r-1"));
        let tagged = plan_for(Trigger::TagChange, &s, "2026-11-25T03:01:30Z");
        assert_eq!(name(&tagged), "i-1-20261125T0301Z");
        assert_eq!(tagged.request_id, None);
    }
}
