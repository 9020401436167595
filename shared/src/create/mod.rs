//! create-image and create-snapshot: the run in named steps, on top of the core's plan
//! ([`backup_core::create`]: the requests, the rules, the calls to make).
//!
//! A run ([`run`]): what the request asks ([`plan::task`]), the sources read, which of them this
//! run judges ([`plan::scope`]), their recent backups read, the plan ([`plan::plan`]), the
//! create calls ([`execute`]), and what is left ([`plan::leave`]). Around it, [`Create`] is the
//! function as the invocation pipeline runs it: a sweep or a Tag Change handed whole to the work
//! queue when there is one, the rest of a run handed on.

use crate::backup::BackupQuery;
use crate::config::Config;
use crate::due::RecentBackup;
use crate::ec2::Ec2;
use crate::error::Error;
use crate::invocation::{Function, Report, Setting};
use crate::report::Common;
use crate::report::{CreateReport, Created, Failed};
use crate::source::Source;
use crate::sqs::WorkQueue;
use crate::tags::TagKeys;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tracing::{info, warn};

pub use backup_core::create::*;

/// Create calls in flight at once: inside EC2's mutating-call bucket, with the SDK's retries
/// absorbing the odd throttle.
pub const CREATE_CONCURRENCY: usize = 8;

/// One run of create-image or create-snapshot, from the parsed request to the report.
/// `request_id` identifies the invocation (Lambda's request id; the CLI makes one per run).
/// Fails as a whole only when the sources or their backups cannot be read.
pub async fn run(
    kind: ResourceKind,
    config: &Config,
    ec2: &Ec2,
    request: CreateRequest,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<CreateReport, Error> {
    let keys = TagKeys::new(&config.tag_prefix);
    let task = match plan::task(&request, request_id, ec2.region(), config.dry_run) {
        Ok(task) => task,
        Err(settled) => return Ok(*settled),
    };
    // 1. the sources, 2. which of them this run judges, 3. their backups
    let sources = read_sources(ec2, kind, &keys, task.ids).await?;
    let scope = plan::scope(&keys, sources, &task);
    let recent = read_recent(ec2, kind, config, &keys, scope.backups_of.as_deref()).await?;
    // 4. the plan. The AMI name carries the event's own time (the same on every redelivery of
    // the event), and on demand the request's id, so a duplicate that races past the describe
    // above still collides on the name, and another request does not.
    let mut plan = plan::plan(&Inputs {
        kind,
        config,
        keys: &keys,
        region: ec2.region(),
        trigger: task.trigger,
        requested: scope.requested.as_deref(),
        sources: &scope.sources,
        recent: &recent,
        now,
        name_stamp: request.event_time().unwrap_or(now),
    });
    let held_back = plan::hold_back(&mut plan, &task);
    // 5. the calls, 6. what is left
    let mut report = execute(ec2, plan, config.dry_run).await;
    plan::leave(&mut report, kind, ec2.region(), held_back, scope);
    Ok(report)
}

/// The named resources, or every opted-in one of the region.
async fn read_sources(
    ec2: &Ec2,
    kind: ResourceKind,
    keys: &TagKeys,
    ids: Option<&[String]>,
) -> Result<Vec<Source>, Error> {
    match kind {
        ResourceKind::Instance => ec2.instances(keys, ids).await,
        ResourceKind::Volume => ec2.volumes(keys, ids).await,
    }
}

/// The live originals of `sources` (200 a describe; none at all for an empty list), or of the
/// whole region (one paginated describe).
async fn read_recent(
    ec2: &Ec2,
    kind: ResourceKind,
    config: &Config,
    keys: &TagKeys,
    sources: Option<&[String]>,
) -> Result<Vec<RecentBackup>, Error> {
    let query = BackupQuery::managed(kind.backup_kind(), &config.deployment_name);
    let query = match sources {
        Some(ids) => query.of_sources(ids),
        None => query,
    };
    Ok(crate::due::recent(&ec2.backups(keys, &query).await?))
}

/// Runs the create calls of a plan, each outcome logged as it comes (a timeout loses no line);
/// in a dry run, reports them instead.
pub async fn execute(ec2: &Ec2, plan: Plan, dry_run: bool) -> CreateReport {
    let Plan {
        jobs,
        mut report,
        request_id,
    } = plan;
    if dry_run {
        for job in jobs {
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
    let request_id = request_id.as_deref();
    let outcomes: Vec<(Job, Made)> = stream::iter(jobs)
        .map(|job| async move {
            let result = match &job {
                Job::Image(r) => ec2.create_image(r).await,
                Job::Snapshot(r) => ec2.create_snapshot(r).await,
            };
            let made = Made::of(&job, result, request_id);
            log_made(ec2, &job, &made, request_id);
            (job, made)
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    for (job, made) in outcomes {
        let source = job.source().to_string();
        match made {
            Made::Created(id) => report.created.push(Created {
                source,
                id: Some(id),
                name: job.name().to_string(),
            }),
            Made::NotStarted => {
                report.remaining += 1;
                report.unstarted.push(source);
            }
            Made::AlreadyMade(reason) => report.skip(&source, reason),
            Made::Failed(e) => report.failed.push(Failed::from_error(&source, None, &e)),
        }
    }
    // Results in a stable order, whatever order the calls finished in.
    report.created.sort_by(|a, b| a.source.cmp(&b.source));
    report.failed.sort_by(|a, b| a.source.cmp(&b.source));
    report
}

fn log_made(ec2: &Ec2, job: &Job, made: &Made, request_id: Option<&str>) {
    let (source, name, region) = (job.source(), job.name(), ec2.region());
    match made {
        Made::Created(id) => {
            info!(source, backup_id = %id, name, region = %region, "backup created")
        }
        Made::NotStarted => {
            info!(source, region = %region, "backup not started: the deadline is near; the next schedule makes it")
        }
        Made::AlreadyMade(_) => match request_id {
            Some(request_id) => {
                info!(
                    source,
                    name, request_id, "backup already made by this request"
                )
            }
            None => info!(source, name, "backup already made this minute"),
        },
        Made::Failed(e) => {
            warn!(source, error = %e, code = e.code().unwrap_or(""), "backup failed")
        }
    }
}

/// A create function as the invocation pipeline runs it (see [`crate::invocation`]).
pub struct Create<'a> {
    pub kind: ResourceKind,
    pub setting: Setting<'a>,
    pub ec2: Ec2,
    /// Lambda's request id (the CLI makes one per run): an on-demand request's retry finds
    /// the backups it made by it.
    pub request_id: String,
}

impl Function for Create<'_> {
    type Request = CreateRequest;
    type Report = CreateReport;

    fn span(&self, request: &CreateRequest) -> tracing::Span {
        tracing::info_span!("backup", event_id = request.event_id().unwrap_or(""))
    }
    /// The backups made (or the request handed whole to the work queue), the rest handed on.
    async fn run(&self, request: CreateRequest) -> Result<CreateReport, Error> {
        let Setting { config, now, .. } = self.setting;
        let work = CreateWork::of(&request, &self.request_id, now);
        let queue = self.setting.queue.filter(|_| !config.dry_run);
        let mut report = match (queue, work) {
            (Some(queue), Some(work))
                if request.runs_from_the_queue(self.ec2.region().as_str()) =>
            {
                let ids = match &request {
                    CreateRequest::TagChange { ids, .. } => Some(ids.clone()),
                    _ => None,
                };
                let mut report = CreateReport::default();
                self.hand_on(queue, &[CreateWork { ids, ..work }], &mut report)
                    .await;
                report
            }
            (queue, work) => {
                let tag_change = request.is_tag_change();
                let mut report =
                    run(self.kind, config, &self.ec2, request, &self.request_id, now).await?;
                if let (Some(queue), Some(work)) = (queue, work)
                    && !report.unstarted.is_empty()
                {
                    let rest: Vec<CreateWork> = report
                        .unstarted
                        .chunks(crate::continuation::IDS_PER_MESSAGE)
                        .map(|ids| CreateWork {
                            ids: Some(ids.to_vec()),
                            ..work.clone()
                        })
                        .collect();
                    self.hand_on(queue, &rest, &mut report).await;
                }
                // Queued, an instance still pending is tried again in a minute with the record
                // (directly, Lambda's retry of the event does that).
                if tag_change && self.setting.queue.is_some() && report.waits_for_a_resource() {
                    report.common.unfinished = Some("a tagged resource is not ready yet".into());
                }
                report
            }
        };
        report.common.dry_run = config.dry_run;
        Ok(report)
    }
    fn parse(&self, payload: &serde_json::Value) -> Result<CreateRequest, Error> {
        parse_create_request(payload, self.kind)
    }
    fn parse_body(&self, body: &str) -> Result<CreateRequest, Error> {
        crate::continuation::parse::<CreateWork>(self.setting.config, self.kind.function(), body)
            .and_then(|work| work.check(self.kind))
            .map(CreateRequest::Continued)
    }
    fn name(&self) -> &'static str {
        self.kind.function()
    }
    fn setting(&self) -> Setting<'_> {
        self.setting
    }
    fn throttles(&self) -> u64 {
        self.ec2.throttles()
    }
}

impl Create<'_> {
    /// Sends `works` to the work queue; a queue that refuses them leaves the work unfinished, so
    /// that it is done again (Lambda's retry, or the work queue's), which is harmless.
    async fn hand_on(&self, queue: &WorkQueue, works: &[CreateWork], report: &mut CreateReport) {
        let function = self.kind.function();
        let config = self.setting.config;
        match crate::continuation::hand_on(queue, config, function, "the rest", works, 0).await {
            Ok(sent) => report.common.continuations += sent,
            Err(reason) => report.common.unfinished = Some(reason),
        }
    }
}

impl Report for CreateReport {
    fn log(&self) {
        info!(
            created = self.created.len(),
            skipped = self.skipped.len(),
            failed = self.failed.len(),
            warnings = self.common.warnings.len(),
            remaining = self.remaining,
            continuations = self.common.continuations,
            dry_run = self.common.dry_run,
            "done"
        );
    }
    fn metric_values(&self) -> crate::metrics::Values {
        CreateReport::metric_values(self)
    }
    fn failed(&self) -> usize {
        self.failed.len()
    }
    fn common(&mut self) -> Option<&mut Common> {
        Some(&mut self.common)
    }
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
        setting: Setting { config, queue, now },
        ec2: ec2.clone(),
        request_id: request_id.to_string(),
    };
    crate::invocation::handle(&create, payload).await
}
