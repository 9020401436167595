//! When a resource is due for a new backup.

use crate::backup::Backup;
use crate::duration::Duration;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;

/// A backup that counts for the interval: pending or available, never failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentBackup {
    pub id: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
    /// The on-demand request that made it (`P:request-id`).
    pub request_id: Option<String>,
}

/// The originals among `backups` that count for the interval: live (pending or ready), never
/// failed; copies from other regions are not backups of a source here.
pub fn recent(backups: &[Backup]) -> Vec<RecentBackup> {
    backups
        .iter()
        .filter(|b| b.is_live() && b.is_original())
        .filter_map(|b| {
            Some(RecentBackup {
                source: b.source.clone()?,
                created_at: b.created_at?,
                id: b.id.clone(),
                request_id: b.request_id.clone(),
            })
        })
        .collect()
}

/// The newest backup of each source.
pub fn newest_by_source(backups: &[RecentBackup]) -> HashMap<&str, &RecentBackup> {
    let mut newest: HashMap<&str, &RecentBackup> = HashMap::new();
    for b in backups {
        newest
            .entry(b.source.as_str())
            .and_modify(|n| {
                if b.created_at > n.created_at {
                    *n = b;
                }
            })
            .or_insert(b);
    }
    newest
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// No backup yet, or the newest is older than the interval.
    Due,
    /// The newest backup is recent enough.
    NotDue {
        newest_id: String,
        next_due: DateTime<Utc>,
    },
}

/// A schedule fires a few seconds late or early from one day to the next, and a backup's
/// creation time is a few seconds after its trigger; without slack a daily schedule with a 24h
/// interval would skip every other day. The slack is a tenth of the interval, at most 5 minutes.
pub fn slack(interval: Duration) -> TimeDelta {
    TimeDelta::minutes((interval.as_minutes() / 10).min(5))
}

/// Due when there is no backup, or the newest is at least `interval` (less the slack) old.
pub fn is_due(newest: Option<&RecentBackup>, interval: Duration, now: DateTime<Utc>) -> Due {
    match newest {
        None => Due::Due,
        Some(b) => {
            let next_due = b.created_at + interval.to_delta() - slack(interval);
            if now >= next_due {
                Due::Due
            } else {
                Due::NotDue {
                    newest_id: b.id.clone(),
                    next_due,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::parse_time;

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    fn backup(id: &str, source: &str, created: &str) -> RecentBackup {
        RecentBackup {
            id: id.into(),
            source: source.into(),
            created_at: at(created),
            request_id: None,
        }
    }

    #[test]
    fn no_backup_is_due() {
        assert_eq!(
            is_due(None, Duration::hours(24), at("2026-11-25T03:00:00Z")),
            Due::Due
        );
    }

    #[test]
    fn a_backup_younger_than_the_interval_is_not_due() {
        let b = backup("ami-1", "i-1", "2026-11-25T03:00:10Z");
        match is_due(Some(&b), Duration::hours(24), at("2026-11-25T20:00:00Z")) {
            Due::NotDue {
                newest_id,
                next_due,
            } => {
                assert_eq!(newest_id, "ami-1");
                assert_eq!(next_due, at("2026-11-26T02:55:10Z"));
            }
            Due::Due => panic!("should not be due"),
        }
        // A duplicate event seconds later.
        assert_ne!(
            is_due(Some(&b), Duration::hours(24), at("2026-11-25T03:00:12Z")),
            Due::Due
        );
    }

    #[test]
    fn a_daily_schedule_that_fires_a_little_early_is_still_due() {
        let b = backup("ami-1", "i-1", "2026-11-25T03:00:10Z");
        assert_eq!(
            is_due(Some(&b), Duration::hours(24), at("2026-11-26T03:00:02Z")),
            Due::Due
        );
        // But not an hour early.
        assert_ne!(
            is_due(Some(&b), Duration::hours(24), at("2026-11-26T02:00:00Z")),
            Due::Due
        );
    }

    #[test]
    fn slack_is_a_tenth_of_short_intervals() {
        assert_eq!(slack(Duration::minutes(30)), TimeDelta::minutes(3));
        assert_eq!(slack(Duration::hours(24)), TimeDelta::minutes(5));
        assert_eq!(slack(Duration::minutes(5)), TimeDelta::zero());
    }

    #[test]
    fn newest_is_chosen_per_source() {
        let all = vec![
            backup("ami-1", "i-1", "2026-11-20T00:00:00Z"),
            backup("ami-2", "i-1", "2026-11-24T00:00:00Z"),
            backup("ami-3", "i-2", "2026-11-22T00:00:00Z"),
            backup("ami-4", "i-1", "2026-11-21T00:00:00Z"),
        ];
        let n = newest_by_source(&all);
        assert_eq!(n["i-1"].id, "ami-2");
        assert_eq!(n["i-2"].id, "ami-3");
        assert_eq!(n.len(), 2);
    }
}
