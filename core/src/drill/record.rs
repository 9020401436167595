//! What a drill restores and what it proves: a restore in progress ([`Restore`], what a
//! continuation carries), how one is judged ([`judge`]), and the record an auditor reads
//! ([`DrillRecord`]: the result, the log line and the evidence object alike).

use crate::backup::DrillResult;
use crate::duration::Duration;
use crate::region::Region;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// What a drill makes: an instance from an AMI, or a volume from a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreKind {
    Instance,
    Volume,
}

impl RestoreKind {
    /// The kind of a resource as the status view names it (`instance` or `volume`).
    pub fn of(resource_kind: &str) -> Self {
        match resource_kind {
            "volume" => RestoreKind::Volume,
            _ => RestoreKind::Instance,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RestoreKind::Instance => "instance",
            RestoreKind::Volume => "volume",
        }
    }

    /// The kind of backup it is restored from.
    pub fn backup_kind(self) -> crate::tags::Kind {
        match self {
            RestoreKind::Instance => crate::tags::Kind::Image,
            RestoreKind::Volume => crate::tags::Kind::Snapshot,
        }
    }
}

/// A restore started and not yet judged: what a continuation carries to the invocation that
/// checks it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    pub resource: String,
    pub name: Option<String>,
    pub kind: RestoreKind,
    pub region: Region,
    pub backup: String,
    pub backup_created_at: DateTime<Utc>,
    /// When the restore call was made.
    pub started_at: DateTime<Utc>,
    /// The throwaway instance or volume.
    pub restored: String,
}

/// A throwaway resource of this deployment's drills, as a describe of its tags finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throwaway {
    pub id: String,
    pub kind: RestoreKind,
    /// `P:drill-started-at` (its run's start), when readable.
    pub started_at: Option<DateTime<Utc>>,
    /// `P:drill-of`: the backup it was restored from.
    pub drill_of: Option<String>,
}

/// The longest a run goes on making restores after it began: Lambda's longest invocation.
pub const LONGEST_RUN_MINUTES: i64 = 15;

impl Throwaway {
    /// Left behind: its run began so long ago that no run still going can be judging it (a
    /// restore made at the end of its run's longest invocation, and timed out by then; never
    /// sooner than the default timeout, so that a command-line drill with a short one leaves a
    /// scheduled run's restores alone). One whose start cannot be read is left alone.
    pub fn is_leftover(&self, now: DateTime<Utc>, timeout: Duration) -> bool {
        let timeout = timeout.to_delta().max(TimeDelta::minutes(30));
        let age = timeout + TimeDelta::minutes(LONGEST_RUN_MINUTES + 1);
        self.started_at.is_some_and(|t| now - t > age)
    }
}

/// What EC2 says of a throwaway resource now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// An instance: its state, and its two status checks (`ok`, `initializing`, `impaired`,
    /// ...; `None` before EC2 reports them).
    Instance {
        state: String,
        instance_status: Option<String>,
        system_status: Option<String>,
        /// Why it left `running` (EC2's StateReason: code and message), when it did.
        reason: Option<(String, String)>,
    },
    /// A volume: its state.
    Volume { state: String },
    /// EC2 no longer knows it.
    Gone,
}

/// How a restore stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed {
        code: String,
        message: String,
    },
    TimedOut,
    /// Not ready yet, and still within the timeout: checked again later.
    Pending,
    /// Terminated by a call (`Client.UserInitiatedShutdown`): by this drill's own clean-up in
    /// an earlier delivery of the same work, or by a person. Nothing is left to judge.
    EndedElsewhere,
}

/// The StateReason of an instance terminated by a TerminateInstances call.
pub const USER_INITIATED_SHUTDOWN: &str = "Client.UserInitiatedShutdown";

/// The codes of a restore that failed on EC2's side after it was made (not an AWS error code:
/// EC2 answered, and what it said is the finding).
pub mod finding {
    pub const INSTANCE_NOT_RUNNING: &str = "InstanceNotRunning";
    pub const STATUS_CHECK_FAILED: &str = "StatusCheckFailed";
    pub const VOLUME_ERROR: &str = "VolumeError";
}

/// The verdict on `restore` from what EC2 says of it at `now`. An instance passes when it is
/// `running` and both status checks are `ok`; a volume when it is `available`. An instance
/// that stopped or terminated on its own (EC2's reason, such as a KMS key it may not use, is
/// the error), a failed (`impaired`) check or a volume in `error` fail; one terminated by a
/// call ended elsewhere. Anything else, and a throwaway EC2 does not list (yet: its describes
/// are eventually consistent), is pending until `timeout` has passed since the restore call.
pub fn judge(restore: &Restore, seen: &Seen, now: DateTime<Utc>, timeout: Duration) -> Verdict {
    let failed = |code: &str, message: String| Verdict::Failed {
        code: code.to_string(),
        message,
    };
    let id = &restore.restored;
    let verdict = match seen {
        Seen::Gone => Verdict::Pending,
        Seen::Volume { state } => match state.as_str() {
            "available" => Verdict::Passed,
            "error" => failed(
                finding::VOLUME_ERROR,
                format!("volume {id} went into the error state"),
            ),
            "creating" => Verdict::Pending,
            other => failed(
                finding::VOLUME_ERROR,
                format!("volume {id} is {other}, not available"),
            ),
        },
        Seen::Instance {
            state,
            instance_status,
            system_status,
            reason,
        } => match state.as_str() {
            "pending" => Verdict::Pending,
            "running" => {
                let checks = [
                    ("instance", instance_status.as_deref()),
                    ("system", system_status.as_deref()),
                ];
                if let Some((which, _)) = checks.iter().find(|(_, s)| *s == Some("impaired")) {
                    failed(
                        finding::STATUS_CHECK_FAILED,
                        format!("the {which} status check of {id} failed (impaired)"),
                    )
                } else if checks.iter().all(|(_, s)| *s == Some("ok")) {
                    Verdict::Passed
                } else {
                    Verdict::Pending
                }
            }
            other => match reason {
                Some((code, _)) if code == USER_INITIATED_SHUTDOWN => Verdict::EndedElsewhere,
                Some((code, message)) if !code.is_empty() => failed(
                    code,
                    format!("instance {id} is {other}, not running: {message}"),
                ),
                _ => failed(
                    finding::INSTANCE_NOT_RUNNING,
                    format!("instance {id} is {other}, not running"),
                ),
            },
        },
    };
    match verdict {
        Verdict::Pending if now - restore.started_at >= timeout.to_delta() => Verdict::TimedOut,
        v => v,
    }
}

/// One drill, as the result, the log line and the evidence object carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillRecord {
    pub run: String,
    pub resource: String,
    pub name: Option<String>,
    pub kind: RestoreKind,
    pub region: Region,
    pub backup: String,
    pub backup_created_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    /// `started_at` minus `backup_created_at`: the data the restore would have lost.
    pub rpo_seconds: i64,
    /// From the restore call to the check that saw it ready; `None` unless passed.
    pub rto_seconds: Option<i64>,
    pub result: DrillResult,
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// The throwaway instance or volume; `None` when none was made.
    pub restored: Option<String>,
    /// When it was terminated or deleted; `None` when none was made, or the call failed.
    pub cleaned_up_at: Option<DateTime<Utc>>,
}

impl DrillRecord {
    /// The record of `restore` ended at `now` with `result` (the error of a `Failed`).
    pub fn of(
        run: &str,
        restore: &Restore,
        result: DrillResult,
        error: Option<(String, String)>,
        now: DateTime<Utc>,
    ) -> Self {
        let rto = (result == DrillResult::Passed).then(|| (now - restore.started_at).num_seconds());
        let (error_code, error) = error.unzip();
        Self {
            run: run.to_string(),
            resource: restore.resource.clone(),
            name: restore.name.clone(),
            kind: restore.kind,
            region: restore.region.clone(),
            backup: restore.backup.clone(),
            backup_created_at: restore.backup_created_at,
            started_at: restore.started_at,
            rpo_seconds: (restore.started_at - restore.backup_created_at).num_seconds(),
            rto_seconds: rto,
            result,
            error_code,
            error,
            restored: (!restore.restored.is_empty()).then(|| restore.restored.clone()),
            cleaned_up_at: None,
        }
    }

    /// Where its evidence object goes: under `drills/` by the run's UTC day, then the run, the
    /// region and the resource (one object per record; a run drills a resource once per region).
    pub fn evidence_key(&self, run_started_at: DateTime<Utc>) -> String {
        format!(
            "{}{}/{}/{}.json",
            day_prefix(run_started_at),
            self.run,
            self.region,
            self.resource
        )
    }
}

/// The prefix of the evidence of the runs of one UTC day: `drills/YYYY/MM/DD/`.
pub fn day_prefix(at: DateTime<Utc>) -> String {
    format!("{EVIDENCE_PREFIX}{}/", at.format("%Y/%m/%d"))
}

/// Every evidence object's key begins with it (the drill role may put objects only there).
pub const EVIDENCE_PREFIX: &str = "drills/";

/// The counts of a run's result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub timed_out: usize,
    /// Restores handed on to be checked again later.
    pub pending: usize,
    /// Throwaway resources terminated or deleted: this run's and the leftovers it swept.
    pub cleaned_up: usize,
}

impl Counts {
    pub fn add(&mut self, result: DrillResult) {
        match result {
            DrillResult::Passed => self.passed += 1,
            DrillResult::Failed => self.failed += 1,
            DrillResult::TimedOut => self.timed_out += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::parse_time;

    fn t(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    fn restore(kind: RestoreKind) -> Restore {
        Restore {
            resource: "i-0123456789abcdef0".into(),
            name: Some("web".into()),
            kind,
            region: Region::parse("us-west-2").unwrap(),
            backup: "ami-0123456789abcdef0".into(),
            backup_created_at: t("2026-12-06T01:00:00Z"),
            started_at: t("2026-12-06T03:00:00Z"),
            restored: "i-0aaaaaaaaaaaaaaaa".into(),
        }
    }

    fn instance(state: &str, checks: Option<&str>) -> Seen {
        Seen::Instance {
            state: state.into(),
            instance_status: checks.map(str::to_string),
            system_status: checks.map(str::to_string),
            reason: None,
        }
    }

    #[test]
    fn an_instance_passes_when_running_with_both_checks_ok() {
        let r = restore(RestoreKind::Instance);
        let soon = t("2026-12-06T03:04:00Z");
        let timeout = Duration::minutes(30);
        assert_eq!(
            judge(&r, &instance("running", Some("ok")), soon, timeout),
            Verdict::Passed
        );
        for pending in [
            instance("pending", None),
            instance("running", None),
            instance("running", Some("initializing")),
            // Not listed yet: EC2's describes are eventually consistent.
            Seen::Gone,
        ] {
            assert_eq!(judge(&r, &pending, soon, timeout), Verdict::Pending);
        }
        let one_ok = Seen::Instance {
            state: "running".into(),
            instance_status: Some("ok".into()),
            system_status: Some("initializing".into()),
            reason: None,
        };
        assert_eq!(judge(&r, &one_ok, soon, timeout), Verdict::Pending);
        let late = t("2026-12-06T03:30:00Z");
        assert_eq!(
            judge(
                &r,
                &instance("running", Some("initializing")),
                late,
                timeout
            ),
            Verdict::TimedOut
        );
        for (seen, code) in [
            (instance("running", Some("impaired")), "StatusCheckFailed"),
            (instance("terminated", None), "InstanceNotRunning"),
            (instance("stopped", None), "InstanceNotRunning"),
            (
                Seen::Instance {
                    state: "terminated".into(),
                    instance_status: None,
                    system_status: None,
                    reason: Some((
                        "Client.InvalidKMSKey.InvalidState".into(),
                        "The KMS key provided is in an incorrect state".into(),
                    )),
                },
                "Client.InvalidKMSKey.InvalidState",
            ),
        ] {
            match judge(&r, &seen, soon, timeout) {
                Verdict::Failed { code: c, message } => {
                    assert_eq!(c, code);
                    assert!(message.contains("i-0aaaaaaaaaaaaaaaa"), "{message}");
                }
                other => panic!("{seen:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_instance_terminated_by_a_call_ended_elsewhere_and_a_leftover_is_past_any_run() {
        let r = restore(RestoreKind::Instance);
        let ours = Seen::Instance {
            state: "terminated".into(),
            instance_status: None,
            system_status: None,
            reason: Some((
                USER_INITIATED_SHUTDOWN.into(),
                "User initiated shutdown".into(),
            )),
        };
        let soon = t("2026-12-06T03:04:00Z");
        assert_eq!(
            judge(&r, &ours, soon, Duration::minutes(30)),
            Verdict::EndedElsewhere
        );
        let throwaway = |started: &str| Throwaway {
            id: "i-0aaaaaaaaaaaaaaaa".into(),
            kind: RestoreKind::Instance,
            started_at: Some(t(started)),
            drill_of: None,
        };
        let now = t("2026-12-06T04:00:00Z");
        // 30 minutes of timeout, 15 of the run's longest invocation, a minute of margin.
        assert!(!throwaway("2026-12-06T03:14:00Z").is_leftover(now, Duration::minutes(30)));
        assert!(throwaway("2026-12-06T03:13:59Z").is_leftover(now, Duration::minutes(30)));
        // A short timeout (a command-line drill's) sweeps no sooner than the default's.
        assert!(!throwaway("2026-12-06T03:14:00Z").is_leftover(now, Duration::minutes(5)));
        assert!(!throwaway("2026-12-06T02:00:00Z").is_leftover(now, Duration::hours(2)));
        let unknown = Throwaway {
            started_at: None,
            ..throwaway("2026-12-06T01:00:00Z")
        };
        assert!(!unknown.is_leftover(now, Duration::minutes(30)));
    }

    #[test]
    fn a_volume_passes_when_available() {
        let r = restore(RestoreKind::Volume);
        let (soon, timeout) = (t("2026-12-06T03:01:00Z"), Duration::minutes(30));
        let volume = |s: &str| Seen::Volume { state: s.into() };
        assert_eq!(
            judge(&r, &volume("available"), soon, timeout),
            Verdict::Passed
        );
        assert_eq!(
            judge(&r, &volume("creating"), soon, timeout),
            Verdict::Pending
        );
        assert!(matches!(
            judge(&r, &volume("error"), soon, timeout),
            Verdict::Failed { .. }
        ));
    }

    #[test]
    fn a_record_carries_the_contracts_keys_and_its_evidence_key_sorts_by_day() {
        let r = restore(RestoreKind::Instance);
        let mut rec = DrillRecord::of(
            "run-1",
            &r,
            DrillResult::Passed,
            None,
            t("2026-12-06T03:04:10Z"),
        );
        rec.cleaned_up_at = Some(t("2026-12-06T03:04:11Z"));
        let v = serde_json::to_value(&rec).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let mut expected = [
            "run",
            "resource",
            "name",
            "kind",
            "region",
            "backup",
            "backup_created_at",
            "started_at",
            "rpo_seconds",
            "rto_seconds",
            "result",
            "error_code",
            "error",
            "restored",
            "cleaned_up_at",
        ];
        expected.sort();
        let mut keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, expected);
        assert_eq!(v["rpo_seconds"], 7200);
        assert_eq!(v["rto_seconds"], 250);
        assert_eq!(v["result"], "passed");
        assert_eq!(v["kind"], "instance");
        assert_eq!(v["error"], serde_json::Value::Null);
        assert_eq!(
            rec.evidence_key(t("2026-12-06T02:59:00Z")),
            "drills/2026/12/06/run-1/us-west-2/i-0123456789abcdef0.json"
        );
        let back: DrillRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, rec);
        let failed = DrillRecord::of(
            "run-1",
            &r,
            DrillResult::Failed,
            Some(("InsufficientInstanceCapacity".into(), "none left".into())),
            t("2026-12-06T03:04:10Z"),
        );
        assert_eq!(failed.rto_seconds, None);
        assert_eq!(
            failed.error_code.as_deref(),
            Some("InsufficientInstanceCapacity")
        );
    }
}
