//! The vault side: which shared backups a vault accepts, the copies it makes of them in its own
//! account, and the locks and protection it puts on those copies. The vault decides its own
//! retention: what the source account says is information for the tags, never an instruction.

use crate::backup::{Backup, State};
use crate::config::{Config, LockMode};
use crate::event::is_ec2_id;
use crate::naming::{ami_name_part, cut};
use crate::region::Region;
use crate::replicate::notice::SharedNotice;
use crate::replicate::plan::{CopyIndex, CopyJob, DESCRIPTION_MAX, Encryption, client_token};
use crate::report::{Copied, Skipped};
use crate::tags::{Kind, TagKeys, Tags, format_time, key, parse_time};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{HashMap, HashSet};

pub use crate::lock::{LockInfo, is_locked, snapshots_of};

/// The skip reasons a vault's replicate reports, each the first word of the reason.
pub const NOT_FROM_A_SOURCE_ACCOUNT: &str = "not-from-a-source-account";
pub const ALREADY_COPIED: &str = "already-copied";
pub const NOT_READY: &str = "not-ready";
pub const NOT_A_BACKUP: &str = "not-a-backup";
pub const EXPIRED: &str = "expired";
pub const IN_FLIGHT_LIMIT: &str = "in-flight-limit";
pub const OTHER_REGION: &str = "other-region";

/// How much earlier than EC2's record of the shared backup the source account's claimed
/// creation time may be (the shareable copy is made minutes after its original): beyond it,
/// EC2's record is used, so a source that lies about its times cannot shorten a copy's life.
pub const CLAIM_SLACK: TimeDelta = TimeDelta::days(1);

/// Where a vault keeps its copies: `COPY_TO_REGIONS`, or its own region when that is empty.
pub fn destinations(config: &Config, home: &Region) -> Vec<Region> {
    if config.copy_to_regions.is_empty() {
        vec![home.clone()]
    } else {
        config.copy_to_regions.clone()
    }
}

/// What identifies a shared backup in the vault (its tags are not visible here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub source: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Whether the vault copies `shared` (as `notice` says, if an event named it): owned by an
/// account of `SOURCE_ACCOUNTS`, the account the event came from; usable; a backup in its own
/// right (an AMI, or a snapshot of a volume, not one of an AMI's snapshots). `Err` is the
/// reason, its first word one of the skip reasons above.
pub fn accept(
    config: &Config,
    shared: &Backup,
    notice: Option<&SharedNotice>,
    image_snapshots: &HashSet<&str>,
    now: DateTime<Utc>,
) -> Result<Identity, String> {
    let owner = shared.owner.as_deref().unwrap_or("");
    if !config.source_accounts.iter().any(|a| a == owner) {
        return Err(format!(
            "{NOT_FROM_A_SOURCE_ACCOUNT}: {} is owned by {}, which SOURCE_ACCOUNTS ({}) does not list",
            shared.id,
            if owner.is_empty() {
                "an unknown account"
            } else {
                owner
            },
            config.source_accounts.join(",")
        ));
    }
    if let Some(n) = notice
        && n.account != owner
    {
        return Err(format!(
            "{NOT_FROM_A_SOURCE_ACCOUNT}: the event came from account {} but {} is owned by {owner}",
            n.account, shared.id
        ));
    }
    if shared.state != State::ready(shared.kind) {
        return Err(format!(
            "{NOT_READY}: the shared {} is {}",
            shared.kind.as_str(),
            shared.state
        ));
    }
    let claimed = notice.and_then(|n| n.claimed.as_ref());
    let description = shared.description.as_deref().unwrap_or("");
    let source = claimed
        .map(|c| c.source.trim().to_string())
        .filter(|s| is_source_id(shared.kind, s))
        .or_else(|| source_in(shared.kind, description))
        .or_else(|| source_in(shared.kind, shared.name.as_deref().unwrap_or("")));
    // EC2's own descriptions of an AMI's snapshots ("Created by CreateImage(i-...) for ami-...
    // from vol-...", "Copied for DestinationAmi ...") name a volume too: never a backup here.
    let of_an_image = description.starts_with("Created by CreateImage")
        || description.starts_with("Copied for DestinationAmi");
    if shared.kind == Kind::Snapshot
        && (of_an_image || image_snapshots.contains(shared.id.as_str()))
    {
        return Err(format!(
            "{NOT_A_BACKUP}: {} is a snapshot of a shared AMI: it is copied with its AMI",
            shared.id
        ));
    }
    let Some(source) = source else {
        return Err(format!(
            "{NOT_A_BACKUP}: {} names no {} it backs up (not a backup of ec2-backup, or one of an AMI's snapshots)",
            shared.id,
            match shared.kind {
                Kind::Image => "instance",
                Kind::Snapshot => "volume",
            }
        ));
    };
    let recorded = shared.recorded_at.unwrap_or(now);
    let claimed_at = claimed
        .and_then(|c| c.created_at)
        .or_else(|| created_in(description));
    let name = claimed
        .map(|c| c.name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| shared.name.clone())
        .unwrap_or_default();
    Ok(Identity {
        account: owner.to_string(),
        source,
        name,
        created_at: created_at(recorded, claimed_at),
    })
}

/// The copy's creation time: the source's claim when it is at most [`CLAIM_SLACK`] before EC2's
/// record of the shared backup (and not after it), else that record.
pub fn created_at(recorded: DateTime<Utc>, claimed: Option<DateTime<Utc>>) -> DateTime<Utc> {
    match claimed {
        Some(c) if c <= recorded && recorded - c <= CLAIM_SLACK => c,
        _ => recorded,
    }
}

fn is_source_id(kind: Kind, id: &str) -> bool {
    match kind {
        Kind::Image => is_ec2_id("i-", id),
        Kind::Snapshot => is_ec2_id("vol-", id),
    }
}

/// The first instance (AMI) or volume (snapshot) id in `text`.
pub fn source_in(kind: Kind, text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| is_source_id(kind, w))
        .map(str::to_string)
}

/// The time after `created ` in `text` (our descriptions say `created <RFC 3339>`).
pub fn created_in(text: &str) -> Option<DateTime<Utc>> {
    let (_, rest) = text.split_once("created ")?;
    parse_time(rest.split([' ', ')', ',']).next()?)
}

/// A shared backup the vault accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub shared: Backup,
    pub identity: Identity,
}

/// What the vault's run does: the copy calls, and what needs none.
#[derive(Debug, Clone, Default)]
pub struct VaultPlan {
    pub jobs: Vec<CopyJob>,
    pub existing: Vec<Copied>,
    pub skipped: Vec<Skipped>,
}

/// The copies missing in each destination: for each accepted backup, nothing where a live copy
/// of it is (a replay changes nothing), else a copy, unless the region's copies in flight are at
/// EC2's limit (left to the next sweep).
pub fn missing_copies(
    keys: &TagKeys,
    config: &Config,
    home: &Region,
    accepted: &[Accepted],
    existing: &[Backup],
    now: DateTime<Utc>,
) -> VaultPlan {
    let mut plan = VaultPlan::default();
    let mut index = CopyIndex::of(existing);
    let retention = config.copy_retention.unwrap_or(config.default_retention);
    let regions = destinations(config, home);
    for Accepted { shared, identity } in accepted {
        let expires_at = identity.created_at + retention.to_delta();
        for region in &regions {
            let skip = |reason: String| Skipped {
                source: shared.id.clone(),
                region: Some(region.clone()),
                reason,
            };
            if let Some(copy) = index.live(&shared.id, region) {
                plan.existing.push(Copied {
                    source: shared.id.clone(),
                    region: region.clone(),
                    id: Some(copy.id.clone()),
                });
                plan.skipped.push(skip(format!(
                    "{ALREADY_COPIED}: to {region} as {} ({})",
                    copy.id, copy.state
                )));
                continue;
            }
            if expires_at <= now {
                plan.skipped.push(skip(format!(
                    "{EXPIRED}: a copy would expire at {} (COPY_RETENTION {retention} after {}), which has passed",
                    format_time(expires_at),
                    format_time(identity.created_at)
                )));
                continue;
            }
            if let Err(limit) = index.take_slot(region, shared.kind) {
                plan.skipped.push(skip(format!(
                    "{IN_FLIGHT_LIMIT}: {limit} {} copies are in flight to {region}: left for the next sweep",
                    shared.kind.as_str()
                )));
                continue;
            }
            let attempt = index.dead(&shared.id, region);
            let salt = if attempt == 0 {
                String::new()
            } else {
                attempt.to_string()
            };
            plan.jobs.push(CopyJob {
                kind: shared.kind,
                source_id: shared.id.clone(),
                source_region: shared.region.clone(),
                destination: region.clone(),
                name: match shared.kind {
                    Kind::Image => copy_name(shared, identity, attempt),
                    Kind::Snapshot => String::new(),
                },
                description: description(config, shared, identity),
                client_token: client_token(&shared.id, region, &salt),
                tags: copy_tags(keys, config, shared, identity, expires_at),
                encryption: match config.copy_kms_keys.get(region) {
                    Some(k) => Encryption::Key(k.clone()),
                    // Always encrypted with a key of the vault's own.
                    None => Encryption::DestinationDefault,
                },
                listed_copy: None,
            });
        }
    }
    plan
}

fn copy_name(shared: &Backup, identity: &Identity, attempt: usize) -> String {
    let mut suffix = format!(" {} from {}", shared.id, identity.account);
    if attempt > 0 {
        suffix.push_str(&format!(" retry {attempt}"));
    }
    let base = ami_name_part(&identity.name, suffix.len());
    format!("{base}{suffix}").trim().to_string()
}

fn description(config: &Config, shared: &Backup, identity: &Identity) -> String {
    let text = format!(
        "{} vault copy of {} from account {} (source {} created {})",
        config.deployment_name,
        shared.id,
        identity.account,
        identity.source,
        format_time(identity.created_at)
    );
    cut(&text, DESCRIPTION_MAX).to_string()
}

/// A vault copy's tags: the contract's (this deployment's), `P:copy-of` the shared backup,
/// `P:source-account` its owner, an empty `P:copy-to` (a copy is never copied again), and the
/// source's `Name`.
pub fn copy_tags(
    keys: &TagKeys,
    config: &Config,
    shared: &Backup,
    identity: &Identity,
    expires_at: DateTime<Utc>,
) -> Tags {
    let mut tags = Vec::new();
    if !identity.name.is_empty() {
        tags.push(("Name".to_string(), cut(&identity.name, 256).to_string()));
    }
    tags.extend([
        (keys.key(key::MANAGED_BY), config.deployment_name.clone()),
        (keys.key(key::KIND), shared.kind.as_str().to_string()),
        (keys.key(key::SOURCE), identity.source.clone()),
        (keys.key(key::SOURCE_REGION), shared.region.to_string()),
        (keys.key(key::CREATED_AT), format_time(identity.created_at)),
        (keys.key(key::EXPIRES_AT), format_time(expires_at)),
        (keys.key(key::COPY_OF), shared.id.clone()),
        (keys.key(key::SOURCE_ACCOUNT), identity.account.clone()),
        (keys.key(key::COPY_TO), String::new()),
    ]);
    tags
}

/// The resources a vault's drill proves restorable: one per source resource its copies name
/// (`P:source`; the vault has no instance or volume of its own), drilled in each of its regions
/// but its own (as a home deployment drills its DR regions), at `DEFAULT_INTERVAL`.
pub fn resources(
    config: &Config,
    home: &Region,
    copies: &[Backup],
) -> Vec<crate::status::Resource> {
    let mut out: Vec<crate::status::Resource> = Vec::new();
    for c in copies {
        if c.source_account.is_none()
            || !c.is_standalone()
            || c.managed_by.as_deref() != Some(config.deployment_name.as_str())
        {
            continue;
        }
        let Some(source) = c.source.as_deref() else {
            continue;
        };
        if out.iter().any(|r| r.id == source) {
            continue;
        }
        out.push(crate::status::Resource {
            id: source.to_string(),
            kind: match c.kind {
                Kind::Image => "instance",
                Kind::Snapshot => "volume",
            },
            name: c
                .tags
                .iter()
                .find(|(k, _)| k == "Name")
                .map(|(_, v)| v.clone()),
            interval: config.default_interval,
            copy_to: destinations(config, home),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Whether every snapshot of `copy` is locked at `now`.
pub fn fully_locked(copy: &Backup, locks: &HashMap<String, LockInfo>, now: DateTime<Utc>) -> bool {
    let snapshots = snapshots_of(copy);
    !snapshots.is_empty()
        && snapshots
            .iter()
            .all(|s| locks.get(*s).is_some_and(|l| l.holds(now)))
}

/// monitor's figures of a vault, per source account (every account of `SOURCE_ACCOUNTS`, zero
/// when it has nothing), and a line for each copy unlocked and each share not copied.
/// `backups`: every backup of this deployment in the vault's regions; `shared`: what the
/// source accounts share with it here; `locks`: the snapshot locks of every region read.
pub fn figures(
    keys: &TagKeys,
    config: &Config,
    home: &Region,
    backups: &[Backup],
    shared: &[Backup],
    locks: &HashMap<String, LockInfo>,
    now: DateTime<Utc>,
) -> (
    std::collections::BTreeMap<String, crate::report::VaultFigures>,
    Vec<crate::report::Stuck>,
) {
    use crate::report::{Stuck, VaultFigures};
    let grace = config.copy_grace.to_delta();
    let mut out: std::collections::BTreeMap<String, VaultFigures> = config
        .source_accounts
        .iter()
        .map(|a| (a.clone(), VaultFigures::default()))
        .collect();
    let mut findings = Vec::new();
    let copies: Vec<&Backup> = backups
        .iter()
        .filter(|b| b.managed_by.as_deref() == Some(config.deployment_name.as_str()))
        .filter(|b| b.is_standalone() && b.copy_of.is_some())
        .filter(|b| {
            b.source_account
                .as_deref()
                .is_some_and(|a| out.contains_key(a))
        })
        .collect();
    let locking = config.lock.mode != LockMode::None;
    let owned: Vec<Backup> = copies.iter().map(|c| (*c).clone()).collect();
    let last = newest_per_source(config, &owned);
    // Per account and source: the newest locked copy, else the oldest usable one.
    let mut by_source: HashMap<(&str, &str), Newest> = HashMap::new();
    for c in &copies {
        let account = c.source_account.as_deref().unwrap_or_default();
        let source = c.source.as_deref().unwrap_or(c.id.as_str());
        let entry = by_source.entry((account, source)).or_default();
        if !c.is_usable() {
            continue;
        }
        let locked = !locking || fully_locked(c, locks, now);
        if let Some(t) = c.created_at {
            if locked {
                entry.locked = entry.locked.max(Some(t));
            } else {
                entry.unlocked = Some(entry.unlocked.map_or(t, |o| o.min(t)));
            }
        }
        let expires = keys.get(&c.tags, key::EXPIRES_AT).and_then(parse_time);
        let old = c
            .recorded_at
            .or(c.created_at)
            .is_some_and(|t| now - t > grace);
        let kept = expires.is_none_or(|e| e > now) || last.contains(c.id.as_str());
        if locking && !locked && old && kept {
            out.entry(account.to_string()).or_default().unlocked += 1;
            findings.push(Stuck {
                backup: c.id.clone(),
                source: c.source.clone(),
                region: c.region.clone(),
                reason: format!("a vault copy from {account} not locked {} after it was made: the next replicate sweep locks it", config.copy_grace),
            });
        }
    }
    for ((account, _), newest) in &by_source {
        let f = out.entry(account.to_string()).or_default();
        f.resources += 1;
        if let Some(t) = newest.locked.or(newest.unlocked) {
            f.worst_dr_rpo_seconds = f.worst_dr_rpo_seconds.max((now - t).num_seconds());
        }
    }
    // Shared, past the grace, and not copied into every region.
    let image_snapshots: HashSet<&str> = shared
        .iter()
        .filter(|b| b.kind == Kind::Image)
        .flat_map(|b| b.snapshot_ids.iter().map(String::as_str))
        .collect();
    let live: HashSet<(&str, &Region)> = copies
        .iter()
        .filter(|c| c.is_live())
        .filter_map(|c| Some((c.copy_of.as_deref()?, &c.region)))
        .collect();
    let retention = config
        .copy_retention
        .unwrap_or(config.default_retention)
        .to_delta();
    for s in shared {
        let Ok(identity) = accept(config, s, None, &image_snapshots, now) else {
            continue;
        };
        let old = s.recorded_at.is_some_and(|t| now - t > grace);
        if !old || identity.created_at + retention <= now {
            continue;
        }
        let missing: Vec<String> = destinations(config, home)
            .into_iter()
            .filter(|r| !live.contains(&(s.id.as_str(), r)))
            .map(|r| r.to_string())
            .collect();
        if !missing.is_empty() {
            out.entry(identity.account.clone())
                .or_default()
                .shared_not_copied += 1;
            findings.push(Stuck {
                backup: s.id.clone(),
                source: Some(identity.source.clone()),
                region: s.region.clone(),
                reason: format!(
                    "shared by {} and not copied to {} after {}",
                    identity.account,
                    missing.join(","),
                    config.copy_grace
                ),
            });
        }
    }
    (out, findings)
}

/// How long a keep-last copy's lock is renewed for, past its expiry, each time it runs low.
pub const KEEP_LOCK_RENEWAL: TimeDelta = TimeDelta::days(3);

/// The ids of the newest `KEEP_LAST` usable vault copies of each source account, source, kind
/// and region among `copies` (expire's keep-last, for the vault's copies).
pub fn newest_per_source<'a>(config: &Config, copies: &'a [Backup]) -> HashSet<&'a str> {
    let mut groups: HashMap<(&str, &str, Kind, &Region), Vec<&Backup>> = HashMap::new();
    for c in copies.iter().filter(|c| c.is_usable() && c.is_standalone()) {
        let (Some(account), Some(source)) = (c.source_account.as_deref(), c.source.as_deref())
        else {
            continue;
        };
        groups
            .entry((account, source, c.kind, &c.region))
            .or_default()
            .push(c);
    }
    let keep = usize::try_from(config.keep_last).unwrap_or(usize::MAX);
    groups
        .into_values()
        .flat_map(|mut g| {
            g.sort_by(|a, b| {
                b.created_at
                    .cmp(&a.created_at)
                    .then_with(|| b.recorded_at.cmp(&a.recorded_at))
            });
            g.into_iter().take(keep).map(|c| c.id.as_str())
        })
        .collect()
}

/// Of one source resource's vault copies: when the newest locked one was made, and the oldest
/// usable one not locked.
#[derive(Debug, Default)]
struct Newest {
    locked: Option<DateTime<Utc>>,
    unlocked: Option<DateTime<Utc>>,
}

/// One call that makes a vault copy immutable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protect {
    /// LockSnapshot until `until` (the copy's expiry).
    Lock {
        copy: String,
        snapshot: String,
        mode: LockMode,
        until: DateTime<Utc>,
        /// Compliance mode's cool-off, on a first lock only (never on one already locked).
        cool_off_hours: Option<u32>,
    },
    /// EnableImageDeregistrationProtection.
    Protection { image: String },
}

/// The locks and protection the usable vault copies in `copies` still need: every snapshot
/// locked until the copy's `P:expires-at` (a lock that ends sooner is extended), and every AMI
/// protected. None with `LOCK_MODE=none`, and none for a copy already expired.
pub fn protection(
    keys: &TagKeys,
    config: &Config,
    copies: &[Backup],
    locks: &HashMap<String, LockInfo>,
    now: DateTime<Utc>,
) -> Vec<Protect> {
    let mode = config.lock.mode;
    if mode == LockMode::None {
        return Vec::new();
    }
    let last = newest_per_source(config, copies);
    let mut out = Vec::new();
    for copy in copies {
        // A snapshot copy is locked as soon as it exists (EBS locks pending snapshots); an
        // AMI's snapshots once it is available (they are listed then).
        let ready = copy.is_usable() || (copy.kind == Kind::Snapshot && copy.state.is_pending());
        if copy.source_account.is_none()
            || copy.managed_by.as_deref() != Some(config.deployment_name.as_str())
            || !ready
            || !copy.is_standalone()
        {
            continue;
        }
        let Some(expires) = keys.get(&copy.tags, key::EXPIRES_AT).and_then(parse_time) else {
            continue;
        };
        // The newest KEEP_LAST copies of a source are kept however old, so their locks go on
        // past their expiry: renewed a day before they end, for KEEP_LOCK_RENEWAL.
        let until = if expires > now + TimeDelta::days(1) {
            expires
        } else if last.contains(copy.id.as_str()) {
            now + KEEP_LOCK_RENEWAL
        } else if expires > now {
            expires
        } else {
            continue;
        };
        let renewing = until != expires;
        for snapshot in snapshots_of(copy) {
            let current = locks.get(snapshot).filter(|l| l.holds(now));
            let enough = |u: DateTime<Utc>| {
                if renewing {
                    u > now + TimeDelta::days(1)
                } else {
                    u >= until
                }
            };
            if current.is_some_and(|l| l.until.is_some_and(enough)) {
                continue;
            }
            let compliance = current.is_some_and(LockInfo::is_compliance);
            let mode = if compliance {
                LockMode::Compliance
            } else {
                mode
            };
            out.push(Protect::Lock {
                copy: copy.id.clone(),
                snapshot: snapshot.to_string(),
                mode,
                until,
                cool_off_hours: (mode == LockMode::Compliance && current.is_none())
                    .then_some(config.lock.cool_off_hours),
            });
        }
        if copy.kind == Kind::Image && !copy.protected {
            out.push(Protect::Protection {
                image: copy.id.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::Described;
    use crate::config::Lock;
    use crate::replicate::notice::Claimed;

    fn r(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    fn config() -> Config {
        Config {
            deployment_name: "vault".into(),
            source_accounts: vec!["111122223333".into()],
            copy_to_regions: vec![r("us-west-2"), r("eu-west-1")],
            copy_retention: Some(crate::duration::Duration::days(30)),
            ..Config::default()
        }
    }

    fn shared(id: &str, owner: &str, description: &str) -> Backup {
        Backup::new(
            &TagKeys::new("backup"),
            if id.starts_with("ami-") {
                Kind::Image
            } else {
                Kind::Snapshot
            },
            &r("us-east-1"),
            Described {
                id: id.into(),
                state: if id.starts_with("ami-") {
                    "available"
                } else {
                    "completed"
                }
                .into(),
                name: id
                    .starts_with("ami-")
                    .then(|| "web-01-i-0123456789abcdef0-20261125T0300Z".into()),
                description: Some(description.into()),
                recorded_at: Some(at("2026-11-25T03:00:05Z")),
                owner: Some(owner.into()),
                snapshot_ids: vec!["snap-00000000000000001".into()],
                ..Default::default()
            },
        )
    }

    fn notice(account: &str, claimed: Option<Claimed>) -> SharedNotice {
        SharedNotice {
            event_id: None,
            account: account.into(),
            kind: Kind::Image,
            backup: "ami-1".into(),
            region: Some("us-east-1".into()),
            claimed,
        }
    }

    fn now() -> DateTime<Utc> {
        at("2026-11-25T04:00:00Z")
    }

    #[test]
    fn a_share_from_an_account_not_listed_or_not_the_owner_is_not_accepted() {
        let none = HashSet::new();
        let b = shared(
            "ami-00000000000000001",
            "999988887777",
            "ec2-backup backup of i-0123456789abcdef0",
        );
        let e = accept(&config(), &b, None, &none, now()).unwrap_err();
        assert!(
            e.starts_with(NOT_FROM_A_SOURCE_ACCOUNT) && e.contains("999988887777"),
            "{e}"
        );
        // The event's account must own the backup.
        let b = shared(
            "ami-00000000000000001",
            "111122223333",
            "ec2-backup backup of i-0123456789abcdef0",
        );
        let e = accept(
            &config(),
            &b,
            Some(&notice("999988887777", None)),
            &none,
            now(),
        )
        .unwrap_err();
        assert!(e.starts_with(NOT_FROM_A_SOURCE_ACCOUNT), "{e}");
        assert!(
            accept(
                &config(),
                &b,
                Some(&notice("111122223333", None)),
                &none,
                now()
            )
            .is_ok()
        );
    }

    #[test]
    fn the_identity_comes_from_the_event_else_the_description_and_ec2s_record_bounds_the_time() {
        let none = HashSet::new();
        let b = shared(
            "ami-00000000000000001",
            "111122223333",
            "ec2-backup shareable copy of ami-00000000000000009 (source i-0123456789abcdef0 created 2026-11-25T02:50:00Z)",
        );
        let id = accept(&config(), &b, None, &none, now()).unwrap();
        assert_eq!(id.source, "i-0123456789abcdef0");
        assert_eq!(id.created_at, at("2026-11-25T02:50:00Z"));
        // A claim a week before EC2's record, or after it: EC2's record.
        let claim = |t: &str| Claimed {
            source: "i-0fedcba9876543210".into(),
            name: "api".into(),
            created_at: Some(at(t)),
            deployment: "home".into(),
        };
        let n = notice("111122223333", Some(claim("2026-11-18T03:00:00Z")));
        let id = accept(&config(), &b, Some(&n), &none, now()).unwrap();
        assert_eq!(
            (id.source.as_str(), id.name.as_str()),
            ("i-0fedcba9876543210", "api")
        );
        assert_eq!(id.created_at, at("2026-11-25T03:00:05Z"));
        let n = notice("111122223333", Some(claim("2026-11-25T02:59:00Z")));
        assert_eq!(
            accept(&config(), &b, Some(&n), &none, now())
                .unwrap()
                .created_at,
            at("2026-11-25T02:59:00Z")
        );
    }

    #[test]
    fn an_amis_snapshot_is_not_a_backup_of_its_own() {
        let b = shared(
            "snap-00000000000000001",
            "111122223333",
            "Created by CreateImage(i-0123456789abcdef0) for ami-00000000000000001",
        );
        let e = accept(&config(), &b, None, &HashSet::new(), now()).unwrap_err();
        assert!(e.starts_with(NOT_A_BACKUP), "{e}");
        let v = shared(
            "snap-00000000000000002",
            "111122223333",
            "ec2-backup backup of vol-0123456789abcdef0 (i-0123456789abcdef0)",
        );
        assert_eq!(
            accept(&config(), &v, None, &HashSet::new(), now())
                .unwrap()
                .source,
            "vol-0123456789abcdef0"
        );
        let listed: HashSet<&str> = ["snap-00000000000000002"].into();
        assert!(accept(&config(), &v, None, &listed, now()).is_err());
    }

    #[test]
    fn each_destination_gets_one_copy_with_the_vaults_own_retention() {
        let keys = TagKeys::new("backup");
        let c = config();
        let b = shared(
            "ami-00000000000000001",
            "111122223333",
            "ec2-backup backup of i-0123456789abcdef0",
        );
        let identity = accept(&c, &b, None, &HashSet::new(), now()).unwrap();
        let accepted = vec![Accepted {
            shared: b.clone(),
            identity,
        }];
        let plan = missing_copies(&keys, &c, &r("us-east-1"), &accepted, &[], now());
        assert_eq!(plan.jobs.len(), 2);
        let job = &plan.jobs[0];
        let tag = |k: &str| {
            job.tags
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            tag("backup:copy-of").as_deref(),
            Some("ami-00000000000000001")
        );
        assert_eq!(
            tag("backup:source-account").as_deref(),
            Some("111122223333")
        );
        assert_eq!(tag("backup:managed-by").as_deref(), Some("vault"));
        let created = parse_time(&tag("backup:created-at").unwrap()).unwrap();
        let expires = parse_time(&tag("backup:expires-at").unwrap()).unwrap();
        assert_eq!(expires - created, TimeDelta::days(30));
        assert_eq!(job.encryption, Encryption::DestinationDefault);
        assert_eq!(job.source_region, r("us-east-1"));
        // A replay: the copies are there, nothing is copied again.
        let copy = |region: &str| {
            let mut t = job.tags.clone();
            t.push(("x".into(), "y".into()));
            Backup::new(
                &keys,
                Kind::Image,
                &r(region),
                Described {
                    id: format!("ami-copy-{region}"),
                    state: "pending".into(),
                    tags: t,
                    ..Default::default()
                },
            )
        };
        let existing = [copy("us-west-2"), copy("eu-west-1")];
        let again = missing_copies(&keys, &c, &r("us-east-1"), &accepted, &existing, now());
        assert!(again.jobs.is_empty());
        assert!(
            again
                .skipped
                .iter()
                .all(|s| s.reason.starts_with(ALREADY_COPIED))
        );
    }

    #[test]
    fn copies_are_locked_until_their_expiry_and_amis_protected() {
        let keys = TagKeys::new("backup");
        let c = Config {
            lock: Lock {
                mode: LockMode::Compliance,
                cool_off_hours: 6,
            },
            ..config()
        };
        let copy = Backup::new(
            &keys,
            Kind::Image,
            &r("us-west-2"),
            Described {
                id: "ami-c".into(),
                state: "available".into(),
                snapshot_ids: vec!["snap-a".into(), "snap-b".into()],
                tags: [
                    ("backup:managed-by", "vault"),
                    ("backup:kind", "image"),
                    ("backup:copy-of", "ami-1"),
                    ("backup:source-account", "111122223333"),
                    ("backup:expires-at", "2026-12-25T03:00:00Z"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                ..Default::default()
            },
        );
        let mut locks = HashMap::new();
        locks.insert(
            "snap-a".to_string(),
            LockInfo {
                state: "compliance".into(),
                until: Some(at("2026-12-26T00:00:00Z")),
            },
        );
        let p = protection(&keys, &c, std::slice::from_ref(&copy), &locks, now());
        assert_eq!(
            p,
            vec![
                Protect::Lock {
                    copy: "ami-c".into(),
                    snapshot: "snap-b".into(),
                    mode: LockMode::Compliance,
                    until: at("2026-12-25T03:00:00Z"),
                    cool_off_hours: Some(6)
                },
                Protect::Protection {
                    image: "ami-c".into()
                },
            ]
        );
        // Everything in place: nothing to do (a replay changes nothing).
        locks.insert(
            "snap-b".to_string(),
            LockInfo {
                state: "compliance-cooloff".into(),
                until: Some(at("2026-12-25T03:00:00Z")),
            },
        );
        let protected = Backup {
            protected: true,
            ..copy.clone()
        };
        assert!(protection(&keys, &c, &[protected], &locks, now()).is_empty());
        // LOCK_MODE=none: nothing.
        let off = Config {
            lock: Lock {
                mode: LockMode::None,
                cool_off_hours: 24,
            },
            ..config()
        };
        assert!(protection(&keys, &off, &[copy], &HashMap::new(), now()).is_empty());
    }

    #[test]
    fn the_vault_figures_per_source_account() {
        let keys = TagKeys::new("backup");
        let c = config();
        let copy = |id: &str, region: &str, created: &str, snap: &str| {
            Backup::new(
                &keys,
                Kind::Image,
                &r(region),
                Described {
                    id: id.into(),
                    state: "available".into(),
                    snapshot_ids: vec![snap.into()],
                    recorded_at: Some(at(created)),
                    tags: [
                        ("backup:managed-by", "vault"),
                        ("backup:kind", "image"),
                        ("backup:source", "i-0123456789abcdef0"),
                        ("backup:copy-of", "ami-00000000000000001"),
                        ("backup:source-account", "111122223333"),
                        ("backup:created-at", created),
                        ("backup:expires-at", "2026-12-25T03:00:00Z"),
                    ]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                    ..Default::default()
                },
            )
        };
        // Two copies in us-west-2: the older locked, the newer not (and old enough to count);
        // none in eu-west-1.
        let backups = [
            copy("ami-a", "us-west-2", "2026-11-24T03:00:00Z", "snap-a"),
            copy("ami-b", "us-west-2", "2026-11-25T00:00:00Z", "snap-b"),
        ];
        let locks: HashMap<String, LockInfo> = [(
            "snap-a".to_string(),
            LockInfo {
                state: "governance".into(),
                until: Some(at("2026-12-25T03:00:00Z")),
            },
        )]
        .into();
        let shared = [shared(
            "ami-00000000000000001",
            "111122223333",
            "ec2-backup backup of i-0123456789abcdef0",
        )];
        let (figures, findings) = figures_of(&keys, &c, &backups, &shared, &locks);
        let f = figures["111122223333"];
        assert_eq!(f.resources, 1);
        assert_eq!(
            f.worst_dr_rpo_seconds,
            27 * 3600,
            "the newest locked copy's age"
        );
        assert_eq!(f.unlocked, 1);
        assert_eq!(f.shared_not_copied, 1, "no copy in eu-west-1");
        assert_eq!(findings.len(), 2);
        // LOCK_MODE=none: nothing is unlocked; the newest usable copy is the RPO.
        let off = Config {
            lock: Lock {
                mode: LockMode::None,
                cool_off_hours: 24,
            },
            ..config()
        };
        let (figures, _) = figures_of(&keys, &off, &backups, &shared, &locks);
        assert_eq!(figures["111122223333"].unlocked, 0);
        assert_eq!(figures["111122223333"].worst_dr_rpo_seconds, 6 * 3600);
    }

    fn figures_of(
        keys: &TagKeys,
        c: &Config,
        backups: &[Backup],
        shared: &[Backup],
        locks: &HashMap<String, LockInfo>,
    ) -> (
        std::collections::BTreeMap<String, crate::report::VaultFigures>,
        Vec<crate::report::Stuck>,
    ) {
        // Three hours after the shared backup was made: past COPY_GRACE.
        figures(
            keys,
            c,
            &r("us-east-1"),
            backups,
            shared,
            locks,
            at("2026-11-25T06:00:00Z"),
        )
    }

    #[test]
    fn the_newest_copy_of_a_source_stays_locked_past_its_expiry() {
        let keys = TagKeys::new("backup");
        let c = Config {
            keep_last: 1,
            ..config()
        };
        let copy = |id: &str, created: &str, expires: &str| {
            Backup::new(
                &keys,
                Kind::Snapshot,
                &r("us-west-2"),
                Described {
                    id: id.into(),
                    state: "completed".into(),
                    tags: [
                        ("backup:managed-by", "vault"),
                        ("backup:kind", "snapshot"),
                        ("backup:source", "vol-1"),
                        ("backup:copy-of", "snap-s"),
                        ("backup:source-account", "111122223333"),
                        ("backup:created-at", created),
                        ("backup:expires-at", expires),
                    ]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                    ..Default::default()
                },
            )
        };
        // Both expired at 03:00; their locks end in two hours.
        let copies = [
            copy("snap-old", "2026-10-20T03:00:00Z", "2026-11-19T03:00:00Z"),
            copy("snap-new", "2026-10-25T03:00:00Z", "2026-11-24T03:00:00Z"),
        ];
        let lock = LockInfo {
            state: "governance".into(),
            until: Some(at("2026-11-25T06:00:00Z")),
        };
        let locks: HashMap<String, LockInfo> = [
            ("snap-old".to_string(), lock.clone()),
            ("snap-new".to_string(), lock),
        ]
        .into();
        let p = protection(&keys, &c, &copies, &locks, now());
        // The newest is renewed for three days; the older one's lock runs out.
        assert_eq!(
            p,
            vec![Protect::Lock {
                copy: "snap-new".into(),
                snapshot: "snap-new".into(),
                mode: LockMode::Governance,
                until: now() + KEEP_LOCK_RENEWAL,
                cool_off_hours: None,
            }]
        );
        // Renewed, nothing more until a day before it ends.
        let renewed: HashMap<String, LockInfo> = [(
            "snap-new".to_string(),
            LockInfo {
                state: "governance".into(),
                until: Some(now() + KEEP_LOCK_RENEWAL),
            },
        )]
        .into();
        assert!(protection(&keys, &c, &copies, &renewed, now()).is_empty());
    }

    #[test]
    fn ec2s_own_descriptions_of_an_amis_snapshots_are_no_backup() {
        for d in [
            "Created by CreateImage(i-0123456789abcdef0) for ami-0123456789abcdef0 from vol-0123456789abcdef0",
            "Copied for DestinationAmi ami-0123456789abcdef0 from SourceAmi ami-0fedcba9876543210 for SourceSnapshot snap-0123456789abcdef0. Task created on 1,700,000,000.",
        ] {
            let b = shared("snap-00000000000000003", "111122223333", d);
            let e = accept(&config(), &b, None, &HashSet::new(), now()).unwrap_err();
            assert!(e.starts_with(NOT_A_BACKUP), "{e}");
        }
    }

    #[test]
    fn a_lock_holds_until_it_ends() {
        let l = LockInfo {
            state: "governance".into(),
            until: Some(at("2026-11-25T05:00:00Z")),
        };
        assert!(l.holds(now()));
        assert!(!l.holds(at("2026-11-25T05:00:00Z")));
        assert!(
            !LockInfo {
                state: "expired".into(),
                until: None
            }
            .holds(now())
        );
    }
}
