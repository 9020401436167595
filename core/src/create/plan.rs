//! Which resources a create run backs up now, and why each other one is not: pure decisions over
//! what the describes returned, with the clock passed in. No AWS here.
//!
//! The rules, in the order they are applied to each resource ([`judge`]):
//! - a resource asked for by id that the describe did not find fails ([`not_found`]);
//! - a resource that does not opt in is skipped ([`opted_out`]);
//! - an instance still pending (a volume still creating) that a Tag Change names fails, so that
//!   the retry a minute later backs it up once it runs ([`not_ready`]);
//! - a resource in any state but running or stopped (in use or available) is skipped
//!   ([`not_in_a_backed_up_state`]);
//! - on demand, a resource this very request already backed up is skipped: a retry of the
//!   request makes no second backup ([`made_by_this_request`]);
//! - otherwise (not on demand), a resource whose newest backup is younger than its interval is
//!   skipped ([`not_due`]);
//! - anything else is backed up ([`job`]).
//!
//! Around the plan: what a request asks of the run ([`task`]), which sources it judges
//! ([`scope`]: a record of a queued sweep takes on a message's worth, see [`first_of_sweep`]),
//! and what is left for the next record ([`hold_back`], [`leave`]).

use super::job::{ImageRequest, Job, SnapshotRequest, Trigger};
use super::request::{CreateRequest, Origin, ResourceKind};
use crate::codes;
use crate::config::Config;
use crate::continuation::IDS_PER_MESSAGE;
use crate::due::{Due, RecentBackup, is_due, newest_by_source};
use crate::naming::{ami_name, image_description, snapshot_description};
use crate::region::Region;
use crate::report::{Common, CreateReport, Failed};
use crate::source::{Source, SourceState};
use crate::tags::{
    BackupOrigin, Policy, TagKeys, Warning, backup_tags, format_time, resolve_policy,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// What a create run decides on: what it was asked, and what the describes returned.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub kind: ResourceKind,
    pub config: &'a Config,
    pub keys: &'a TagKeys,
    pub region: &'a Region,
    pub trigger: Trigger<'a>,
    /// The ids asked for (a Tag Change, on demand): each one the describe did not find fails.
    pub requested: Option<&'a [String]>,
    pub sources: &'a [Source],
    /// The live originals of these sources, newest or not.
    pub recent: &'a [RecentBackup],
    pub now: DateTime<Utc>,
    /// The time AMI names carry: the event's own, the same on every redelivery of it.
    pub name_stamp: DateTime<Utc>,
}

/// What a run will do: the jobs, and a report already holding the skips, the warnings and the
/// requested resources that were not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub report: CreateReport,
    /// On demand, the request's id: its AMI names carry it.
    pub request_id: Option<String>,
}

/// What the rules say of one resource.
enum Verdict {
    BackUp(Policy),
    Skip(String),
    Fail(Failed),
}

pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let mut report = CreateReport {
        common: Common::dry_run(inputs.config.dry_run),
        ..CreateReport::default()
    };
    report.failed.extend(not_found(inputs));
    let newest = newest_by_source(inputs.recent);
    let mut jobs = Vec::new();
    for source in inputs.sources {
        match judge(inputs, source, &newest, &mut report.common.warnings) {
            Verdict::BackUp(policy) => {
                jobs.push(job(inputs, source, &policy, &mut report.common.warnings))
            }
            Verdict::Skip(reason) => report.skip(&source.id, reason),
            Verdict::Fail(failed) => report.failed.push(failed),
        }
    }
    Plan {
        jobs,
        report,
        request_id: inputs.trigger.request_id().map(str::to_string),
    }
}

/// The rules, in order, for one resource found.
fn judge(
    inputs: &Inputs<'_>,
    source: &Source,
    newest: &HashMap<&str, &RecentBackup>,
    warnings: &mut Vec<Warning>,
) -> Verdict {
    if let Some(reason) = opted_out(inputs.keys, source) {
        return Verdict::Skip(reason);
    }
    if let Some(failed) = not_ready(inputs, source) {
        return Verdict::Fail(failed);
    }
    if let Some(reason) = not_in_a_backed_up_state(inputs.kind, source) {
        return Verdict::Skip(reason);
    }
    let policy = resolve_policy(
        inputs.keys,
        inputs.config,
        &source.id,
        &source.tags,
        warnings,
    );
    if let Some(reason) = made_by_this_request(inputs, source) {
        return Verdict::Skip(reason);
    }
    let newest = newest.get(source.id.as_str()).copied();
    if let Some(reason) = not_due(inputs, newest, &policy) {
        return Verdict::Skip(reason);
    }
    Verdict::BackUp(policy)
}

/// The ids asked for that the describe did not find, each a failure with EC2's own code.
pub fn not_found(inputs: &Inputs<'_>) -> Vec<Failed> {
    let kind = inputs.kind;
    inputs
        .requested
        .unwrap_or_default()
        .iter()
        .filter(|id| !inputs.sources.iter().any(|s| &s.id == *id))
        .map(|id| Failed {
            id: None,
            source: id.clone(),
            region: None,
            error: format!(
                "{} {id} was not found in {}",
                kind.resource_type(),
                inputs.region
            ),
            code: Some(
                match kind {
                    ResourceKind::Instance => codes::INSTANCE_NOT_FOUND,
                    ResourceKind::Volume => codes::VOLUME_NOT_FOUND,
                }
                .into(),
            ),
        })
        .collect()
}

/// No opt-in tag, or one that does not say true.
pub fn opted_out(keys: &TagKeys, source: &Source) -> Option<String> {
    keys.opt_in_state(&source.tags).err()
}

/// An instance launched with the tag fires its Tag Change while still pending: it fails, so
/// that Lambda's retry (or the work queue's), a minute later, backs it up once it runs, instead
/// of the next schedule.
pub fn not_ready(inputs: &Inputs<'_>, source: &Source) -> Option<Failed> {
    if inputs.trigger != Trigger::TagChange || !source.state.is_coming() {
        return None;
    }
    Some(Failed {
        id: None,
        source: source.id.clone(),
        region: None,
        error: format!(
            "{} {} is still {}: the retry backs it up once it is ready",
            inputs.kind.resource_type(),
            source.id,
            source.state.as_str()
        ),
        code: Some(codes::INCORRECT_STATE.into()),
    })
}

/// The states a backup is taken in.
pub fn backed_up_states(kind: ResourceKind) -> &'static [SourceState] {
    match kind {
        ResourceKind::Instance => &[SourceState::Running, SourceState::Stopped],
        ResourceKind::Volume => &[SourceState::InUse, SourceState::Available],
    }
}

/// Any state but those a backup is taken in.
pub fn not_in_a_backed_up_state(kind: ResourceKind, source: &Source) -> Option<String> {
    let states = backed_up_states(kind);
    if states.contains(&source.state) {
        return None;
    }
    let state = match source.state.as_str() {
        "" => "in an unknown state",
        state => state,
    };
    let names: Vec<&str> = states.iter().map(SourceState::as_str).collect();
    Some(format!(
        "{} is {state}: only {} ones are backed up",
        kind.resource_type(),
        names.join(" or ")
    ))
}

/// On demand the interval does not apply; but Lambda retries a failed invocation whole, and the
/// resources that had succeeded must not get a second backup: a retry carries the same request
/// id, and finds the backup it made.
pub fn made_by_this_request(inputs: &Inputs<'_>, source: &Source) -> Option<String> {
    let Trigger::OnDemand { request_id } = inputs.trigger else {
        return None;
    };
    let made = inputs
        .recent
        .iter()
        .find(|b| b.source == source.id && b.request_id.as_deref() == Some(request_id))?;
    Some(format!(
        "backup {} was already made by this request ({request_id}) at {}",
        made.id,
        format_time(made.created_at)
    ))
}

/// A schedule or a Tag Change backs up only what its interval says is due.
pub fn not_due(
    inputs: &Inputs<'_>,
    newest: Option<&RecentBackup>,
    policy: &Policy,
) -> Option<String> {
    if matches!(inputs.trigger, Trigger::OnDemand { .. }) {
        return None;
    }
    match is_due(newest, policy.interval, inputs.now) {
        Due::Due => None,
        Due::NotDue {
            newest_id,
            next_due,
        } => Some(format!(
            "backup {newest_id} is younger than the {} interval; next due at {}",
            policy.interval,
            format_time(next_due)
        )),
    }
}

/// The create call for a resource to back up, with the tags the backup carries.
pub fn job(
    inputs: &Inputs<'_>,
    source: &Source,
    policy: &Policy,
    warnings: &mut Vec<Warning>,
) -> Job {
    let request_id = inputs.trigger.request_id();
    let origin = BackupOrigin {
        kind: inputs.kind.backup_kind(),
        source_id: &source.id,
        source_region: inputs.region,
        created_at: inputs.now,
        source_tags: &source.tags,
        request_id,
    };
    let deployment = &inputs.config.deployment_name;
    let tags = backup_tags(inputs.keys, deployment, &origin, policy, warnings);
    match inputs.kind {
        ResourceKind::Instance => Job::Image(ImageRequest {
            instance_id: source.id.clone(),
            name: ami_name(source.name(), &source.id, inputs.name_stamp, request_id),
            description: image_description(&source.id, deployment),
            reboot: policy.reboot,
            tags,
        }),
        ResourceKind::Volume => Job::Snapshot(SnapshotRequest {
            volume_id: source.id.clone(),
            description: snapshot_description(
                &source.id,
                source.attached_to.as_deref(),
                deployment,
            ),
            tags,
        }),
    }
}

/// What a request asks of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task<'a> {
    pub trigger: Trigger<'a>,
    /// The resources named; `None`: every opted-in resource of the region.
    pub ids: Option<&'a [String]>,
    /// Work handed on by an earlier invocation (a record of the work queue).
    pub continued: bool,
}

/// What `request` asks of a run in `region`, or, for a request that needs no describe (not
/// for this function, or another region's Tag Change), its whole report. `request_id` is the
/// invocation's; a continuation of an on-demand request carries its own.
pub fn task<'a>(
    request: &'a CreateRequest,
    request_id: &'a str,
    region: &Region,
    dry_run: bool,
) -> Result<Task<'a>, Box<CreateReport>> {
    let settled = |skips: Vec<(&str, String)>| {
        let mut report = CreateReport {
            common: Common::dry_run(dry_run),
            ..CreateReport::default()
        };
        for (source, reason) in skips {
            report.skip(source, reason);
        }
        Box::new(report)
    };
    let (trigger, ids) = match request {
        CreateRequest::Ignored { event_id, reason } => {
            let event = event_id.as_deref().unwrap_or("event");
            return Err(settled(vec![(event, reason.clone())]));
        }
        CreateRequest::TagChange {
            region: Some(from),
            ids,
            ..
        } if from != region.as_str() => {
            let why = format!("the event is from {from}; this function backs up {region}");
            return Err(settled(
                ids.iter().map(|id| (id.as_str(), why.clone())).collect(),
            ));
        }
        CreateRequest::Schedule { .. } => (Trigger::Schedule, None),
        CreateRequest::TagChange { ids, .. } => (Trigger::TagChange, Some(ids.as_slice())),
        CreateRequest::OnDemand { ids } => (Trigger::OnDemand { request_id }, Some(ids.as_slice())),
        CreateRequest::Continued(work) => (
            match work.origin {
                Origin::Schedule => Trigger::Schedule,
                Origin::TagChange => Trigger::TagChange,
                // A continuation of an on-demand request is still that request.
                Origin::OnDemand => Trigger::OnDemand {
                    request_id: work.request_id.as_deref().unwrap_or(request_id),
                },
            },
            work.ids.as_deref(),
        ),
    };
    Ok(Task {
        trigger,
        ids,
        continued: matches!(request, CreateRequest::Continued(_)),
    })
}

/// What a run judges, from the sources the describe returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The sources the plan judges.
    pub sources: Vec<Source>,
    /// Whose backups the interval (on demand: the request's own backups) needs: `None`, the
    /// whole region's (a sweep without a queue: one paginated describe).
    pub backups_of: Option<Vec<String>>,
    /// The ids asked for, each one not found a failure.
    pub requested: Option<Vec<String>>,
    /// A continuation's ids no longer found: gone since the work was handed on, nothing to do.
    pub vanished: Vec<String>,
    /// A queued sweep's opted-in sources past this record's share, handed on unchecked.
    pub unchecked: Vec<String>,
}

/// What a run judges: named sources (a Tag Change, a request, a continuation) and their
/// backups; a record of a queued sweep, a message's worth of the sources and theirs; a sweep
/// without a queue, everything.
pub fn scope(keys: &TagKeys, sources: Vec<Source>, task: &Task<'_>) -> Scope {
    match task.ids {
        Some(ids) => Scope {
            vanished: if task.continued {
                vanished(ids, &sources)
            } else {
                Vec::new()
            },
            requested: (!task.continued).then(|| ids.to_vec()),
            backups_of: Some(ids.to_vec()),
            sources,
            unchecked: Vec::new(),
        },
        None if task.continued => {
            let first = first_of_sweep(keys, sources, IDS_PER_MESSAGE);
            Scope {
                sources: first.checked,
                backups_of: Some(first.opted_in),
                requested: None,
                vanished: Vec::new(),
                unchecked: first.rest,
            }
        }
        None => Scope {
            sources,
            backups_of: None,
            requested: None,
            vanished: Vec::new(),
            unchecked: Vec::new(),
        },
    }
}

/// What the run leaves: the jobs held back and the sources not checked are remaining (handed
/// on, or the next schedule's); the sources that vanished are skipped with their reason.
pub fn leave(
    report: &mut CreateReport,
    kind: ResourceKind,
    region: &Region,
    held_back: Vec<Job>,
    scope: Scope,
) {
    let unstarted: Vec<String> = held_back
        .iter()
        .map(|job| job.source().to_string())
        .chain(scope.unchecked)
        .collect();
    report.remaining += unstarted.len();
    report.unstarted.extend(unstarted);
    for id in scope.vanished {
        let reason = format!("{} {id} is no longer in {region}", kind.resource_type());
        report.skip(&id, reason);
    }
}

/// What a record of a queued sweep checks, split from what it hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstOfSweep {
    /// The first `n` opted-in sources in id order, and the others listed (the plan says why
    /// each is skipped).
    pub checked: Vec<Source>,
    /// The ids of the opted-in ones among them: whose backups the interval needs.
    pub opted_in: Vec<String>,
    /// The ids of the opted-in rest, handed on.
    pub rest: Vec<String>,
}

/// A record of a queued sweep checks a message's worth (`n`) of the opted-in sources and hands
/// the rest on, so that a record holds `n` sources' backups, whatever the region holds.
pub fn first_of_sweep(keys: &TagKeys, sources: Vec<Source>, n: usize) -> FirstOfSweep {
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

/// The ids a continuation named that the describe no longer finds: gone since the work was
/// handed on, nothing to do (a skip, not a failure).
pub fn vanished(ids: &[String], sources: &[Source]) -> Vec<String> {
    ids.iter()
        .filter(|id| !sources.iter().any(|s| &s.id == *id))
        .cloned()
        .collect()
}

/// From the queue, a record makes at most a message's worth of backups and hands the rest on: a
/// record stays a few minutes long, so a Tag Change queued behind it waits no longer. The jobs
/// held back.
pub fn hold_back(plan: &mut Plan, task: &Task<'_>) -> Vec<Job> {
    if !task.continued {
        return Vec::new();
    }
    plan.jobs.split_off(plan.jobs.len().min(IDS_PER_MESSAGE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::parse_time;

    fn source(id: &str, state: &str, tags: &[(&str, &str)]) -> Source {
        Source {
            id: id.into(),
            state: SourceState::parse(state),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            attached_to: None,
            instance_type: None,
        }
    }

    fn plan_for(trigger: Trigger, sources: &[Source], stamp: &str) -> Plan {
        plan_with(trigger, sources, &[], stamp)
    }

    fn plan_with(
        trigger: Trigger,
        sources: &[Source],
        recent: &[RecentBackup],
        stamp: &str,
    ) -> Plan {
        let config = Config::default();
        plan(&Inputs {
            kind: ResourceKind::Instance,
            config: &config,
            keys: &TagKeys::new("backup"),
            region: &Region::parse("us-east-1").unwrap(),
            trigger,
            requested: None,
            sources,
            recent,
            now: parse_time("2026-11-25T03:01:30Z").unwrap(),
            name_stamp: parse_time(stamp).unwrap(),
        })
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
    fn a_pending_instance_from_a_tag_change_fails_for_a_retry_but_a_sweep_skips_it() {
        let s = [source("i-1", "pending", &[("Backup", "true")])];
        let p = plan_for(Trigger::TagChange, &s, "2026-11-25T03:00:00Z");
        assert!(p.jobs.is_empty());
        assert_eq!(
            p.report.failed[0].code.as_deref(),
            Some(codes::INCORRECT_STATE)
        );
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

    #[test]
    fn each_rule_says_why_in_its_order() {
        let made = RecentBackup {
            id: "ami-1".into(),
            source: "i-due-not".into(),
            created_at: parse_time("2026-11-25T02:00:00Z").unwrap(),
            request_id: Some("r-1".into()),
        };
        let s = [
            source("i-out", "running", &[("Backup", "no")]),
            source("i-stopping", "stopping", &[("Backup", "true")]),
            source("i-unknown", "", &[("Backup", "true")]),
            source("i-due-not", "running", &[("Backup", "true")]),
        ];
        let recent = [made];
        let p = plan_with(Trigger::Schedule, &s, &recent, "2026-11-25T03:00:00Z");
        let reasons: Vec<(&str, &str)> = p
            .report
            .skipped
            .iter()
            .map(|s| (s.source.as_str(), s.reason.as_str()))
            .collect();
        assert!(reasons[0].1.contains("does not opt in"), "{reasons:?}");
        assert!(
            reasons[1]
                .1
                .contains("is stopping: only running or stopped"),
            "{reasons:?}"
        );
        assert!(reasons[2].1.contains("in an unknown state"), "{reasons:?}");
        assert!(reasons[3].1.contains("younger than the"), "{reasons:?}");
        assert!(p.jobs.is_empty());
        // On demand the interval does not apply, but the request's own backup does.
        let p = plan_with(
            Trigger::OnDemand { request_id: "r-1" },
            &s[3..],
            &recent,
            "2026-11-25T03:00:00Z",
        );
        assert!(
            p.report.skipped[0]
                .reason
                .contains("already made by this request (r-1)")
        );
        let p = plan_with(
            Trigger::OnDemand { request_id: "r-2" },
            &s[3..],
            &recent,
            "2026-11-25T03:00:00Z",
        );
        assert_eq!(p.jobs.len(), 1);
    }

    #[test]
    fn a_continuation_names_what_vanished_and_a_request_what_was_not_found() {
        let keys = TagKeys::new("backup");
        let s = vec![source("i-1", "running", &[("Backup", "true")])];
        let ids = ["i-1".to_string(), "i-2".to_string()];
        let task = |continued| Task {
            trigger: Trigger::TagChange,
            ids: Some(&ids),
            continued,
        };
        let continued = scope(&keys, s.clone(), &task(true));
        assert_eq!(continued.vanished, ["i-2"]);
        assert_eq!(continued.requested, None);
        let asked = scope(&keys, s, &task(false));
        assert!(asked.vanished.is_empty());
        assert_eq!(asked.requested.as_deref(), Some(&ids[..]));
        let mut report = CreateReport::default();
        let region = Region::parse("us-east-1").unwrap();
        leave(
            &mut report,
            ResourceKind::Instance,
            &region,
            Vec::new(),
            continued,
        );
        assert_eq!(
            report.skipped[0].reason,
            "instance i-2 is no longer in us-east-1"
        );
    }

    #[test]
    fn a_request_not_for_this_region_or_function_is_settled_without_a_describe() {
        let region = Region::parse("us-east-1").unwrap();
        let elsewhere = CreateRequest::TagChange {
            event_id: None,
            time: None,
            region: Some("eu-west-1".into()),
            ids: vec!["i-1".into()],
        };
        let report = task(&elsewhere, "r-1", &region, false).unwrap_err();
        assert_eq!(
            report.skipped[0].reason,
            "the event is from eu-west-1; this function backs up us-east-1"
        );
        let ignored = CreateRequest::Ignored {
            event_id: Some("e-1".into()),
            reason: "not ours".into(),
        };
        assert_eq!(
            task(&ignored, "r-1", &region, true).unwrap_err().skipped[0].source,
            "e-1"
        );
        let asked = CreateRequest::OnDemand {
            ids: vec!["i-1".into()],
        };
        let t = task(&asked, "r-1", &region, false).unwrap();
        assert_eq!(t.trigger, Trigger::OnDemand { request_id: "r-1" });
        assert!(!t.continued);
    }
}
