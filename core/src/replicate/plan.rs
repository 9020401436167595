//! Pure decisions of `replicate`, over plain types: whether a backup is an original of ours and
//! where it goes, which copies are missing, and what each copy is called, tagged and encrypted
//! with. No SDK types here; `now` is passed in.

pub use crate::backup::Backup;
use crate::codes;
use crate::config::Config;
use crate::duration::Duration;
use crate::error::Error;
#[cfg(test)]
use crate::naming::{AMI_NAME_MAX, ami_name_char};
use crate::naming::{ami_name_part, cut};
use crate::region::Region;
use crate::tags::{
    Kind, TagKeys, Tags, Warning, format_time, key, parse_copy_to, parse_time, within_tag_limit,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// CopyImage allows 100 copies in flight per destination region, CopySnapshot 20: copies of
/// ours already pending there count against it, and what does not fit waits for the next sweep.
pub const IMAGE_COPIES_IN_FLIGHT: usize = 100;
pub const SNAPSHOT_COPIES_IN_FLIGHT: usize = 20;

/// EC2's limits on a ClientToken, an AMI description and a snapshot description.
pub const CLIENT_TOKEN_MAX: usize = 64;
pub const DESCRIPTION_MAX: usize = 255;

/// How the copy is encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "key")]
pub enum Encryption {
    /// As the source: unencrypted stays unencrypted.
    AsSource,
    /// `Encrypted=true` and no key: the destination's default EBS key.
    DestinationDefault,
    /// `Encrypted=true`, `KmsKeyId` = this key (from `COPY_KMS_KEYS`).
    Key(String),
}

impl Encryption {
    /// CopyImage's and CopySnapshot's `Encrypted` and `KmsKeyId`.
    pub fn parameters(&self) -> (Option<bool>, Option<String>) {
        match self {
            Encryption::AsSource => (None, None),
            Encryption::DestinationDefault => (Some(true), None),
            Encryption::Key(k) => (Some(true), Some(k.clone())),
        }
    }
}

/// One CopyImage or CopySnapshot, called on a client for `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyJob {
    pub kind: Kind,
    pub source_id: String,
    pub source_region: Region,
    pub destination: Region,
    /// The AMI name (images only; snapshots have none).
    pub name: String,
    pub description: String,
    /// CopyImage's ClientToken: a replay of the same copy gets the same image.
    pub client_token: String,
    pub tags: Tags,
    pub encryption: Encryption,
    /// The copy the original's `P:copies` names in this region but the describe did not show:
    /// looked up by id before copying, since EC2's describes lag behind a fresh copy.
    pub listed_copy: Option<String>,
}

pub use crate::report::{Copied, Deferred, Skipped};

/// A limit, throttling, or a copy not started because the invocation's deadline was near: the
/// copy is left for a continuation (or the next reconcile sweep), not failed.
pub fn is_deferrable(err: &Error) -> bool {
    matches!(err, Error::Deadline { .. })
        || err
            .code()
            .is_some_and(|c| codes::COPY_DEFERRED.contains(&c))
}

/// A copy left for later by `err` (see [`is_deferrable`]): delayed when waiting is the point (a
/// limit or throttling), handed on at once when the invocation's deadline cut it off.
pub fn deferred(source: &str, region: &Region, kind: Kind, err: &Error) -> Deferred {
    Deferred {
        source: source.to_string(),
        region: region.clone(),
        kind,
        reason: err.to_string(),
        code: err.code().map(str::to_string),
        wait: !matches!(err, Error::Deadline { .. }),
    }
}

/// What became of one copy job, classified once: the report and the log line both read it.
#[derive(Debug, Clone)]
pub enum CopyOutcome {
    /// The new copy's id.
    Started(String),
    /// The copy the original lists is there after all (a describe had missed it).
    StillThere(String),
    /// Another invocation copied it first; why that is no failure.
    Concurrent(String),
    Deferred(Deferred),
    Failed(Error),
}

impl CopyOutcome {
    /// The outcome of `job`'s copy call. AMI names are unique per region and a copy's name is
    /// derived from its source: a name taken means a concurrent invocation (with a token of its
    /// own) copied it first.
    pub fn of(job: &CopyJob, result: Result<String, Error>) -> Self {
        match result {
            Ok(id) => CopyOutcome::Started(id),
            Err(e) if e.code() == Some(codes::AMI_NAME_DUPLICATE) => {
                CopyOutcome::Concurrent(format!(
                    "an AMI named {:?} already exists in {}: copied by a concurrent invocation",
                    job.name, job.destination
                ))
            }
            Err(e) if is_deferrable(&e) => {
                CopyOutcome::Deferred(deferred(&job.source_id, &job.destination, job.kind, &e))
            }
            Err(e) => CopyOutcome::Failed(e),
        }
    }
}

/// An original backup and the regions it is to be copied into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligible {
    pub backup: Backup,
    pub targets: Vec<Region>,
}

/// Whether `backup` is an available original of this deployment, and where it goes: its
/// `P:copy-to` regions other than its own. `Err` is the reason it is not copied.
pub fn copy_targets(
    keys: &TagKeys,
    config: &Config,
    backup: &Backup,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Region>, String> {
    let tags = &backup.tags;
    match keys.get(tags, key::MANAGED_BY) {
        Some(d) if d == config.deployment_name => {}
        Some(d) => {
            return Err(format!(
                "not a backup of this deployment ({}={d:?})",
                keys.key(key::MANAGED_BY)
            ));
        }
        None => {
            return Err(format!(
                "not a backup of this deployment (no {} tag)",
                keys.key(key::MANAGED_BY)
            ));
        }
    }
    if let Some(of) = keys.get(tags, key::COPY_OF) {
        return Err(format!("a DR copy of {of}: copies are never copied again"));
    }
    if let Some(of) = backup.share_of.as_deref() {
        return Err(format!(
            "a shareable copy of {of} for the DR account: shared, never copied"
        ));
    }
    match (backup.kind, keys.get(tags, key::KIND)) {
        (Kind::Image, Some("image")) | (Kind::Snapshot, Some("snapshot")) => {}
        (Kind::Snapshot, Some("image")) => {
            return Err("a snapshot of an AMI backup: it is copied with its AMI".into());
        }
        (_, other) => {
            return Err(format!(
                "{}={:?} does not describe this {}",
                keys.key(key::KIND),
                other.unwrap_or(""),
                backup.kind.as_str()
            ));
        }
    }
    let ready = crate::backup::State::ready(backup.kind);
    if backup.state != ready {
        return Err(format!(
            "the {} is {}: only {ready} ones are copied",
            backup.kind.as_str(),
            if backup.state.as_str().is_empty() {
                "in an unknown state"
            } else {
                backup.state.as_str()
            }
        ));
    }
    let copy_to_key = keys.key(key::COPY_TO);
    let regions = match keys.get(tags, key::COPY_TO) {
        // The backup carries the resolved list; no tag at all means an older backup: use the
        // configuration, as create would have.
        None => config.copy_to_regions.clone(),
        Some(v) => match parse_copy_to(v) {
            Ok(regions) => regions,
            Err(e) => {
                warnings.push(Warning::new(
                    &backup.id,
                    &copy_to_key,
                    v,
                    format!("{e}; using COPY_TO_REGIONS"),
                ));
                config.copy_to_regions.clone()
            }
        },
    };
    let targets: Vec<Region> = regions
        .into_iter()
        .filter(|r| r != &backup.region)
        .collect();
    if targets.is_empty() {
        return Err(format!(
            "{copy_to_key}={:?}: no DR region other than its own",
            keys.get(tags, key::COPY_TO).unwrap_or("")
        ));
    }
    Ok(targets)
}

/// How long the copy is kept: the source's `P:copy-retention`, else `COPY_RETENTION`, else the
/// source's own retention (its `P:expires-at` less its `P:created-at`), else `DEFAULT_RETENTION`.
pub fn copy_retention(
    keys: &TagKeys,
    config: &Config,
    backup_id: &str,
    tags: &[(String, String)],
    warnings: &mut Vec<Warning>,
) -> Duration {
    if let Some(v) = keys.get(tags, key::COPY_RETENTION) {
        match Duration::parse(v) {
            Ok(d) => return d,
            Err(e) => warnings.push(Warning::new(
                backup_id,
                &keys.key(key::COPY_RETENTION),
                v,
                format!("{e}; using COPY_RETENTION or the backup's own retention"),
            )),
        }
    }
    if let Some(d) = config.copy_retention {
        return d;
    }
    let created = keys.get(tags, key::CREATED_AT).and_then(parse_time);
    let expires = keys.get(tags, key::EXPIRES_AT).and_then(parse_time);
    match (created, expires) {
        (Some(c), Some(e)) if e > c => Duration::minutes((e - c).num_minutes().max(1)),
        _ => config.default_retention,
    }
}

/// When the source was made: the one created-at rule ([`crate::backup::created_at`]), else
/// `now`; an unreadable `P:created-at` is reported.
pub fn source_created_at(
    keys: &TagKeys,
    backup: &Backup,
    now: DateTime<Utc>,
    warnings: &mut Vec<Warning>,
) -> DateTime<Utc> {
    if let Some(v) = keys.get(&backup.tags, key::CREATED_AT)
        && parse_time(v).is_none()
    {
        warnings.push(Warning::new(
            &backup.id,
            &keys.key(key::CREATED_AT),
            v,
            "not an RFC 3339 time; using EC2's creation time",
        ));
    }
    backup.created_at.unwrap_or(now)
}

/// When a copy of a backup is made "at" and when it expires: the one rule replicate copies by
/// and monitor counts missing copies by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyLife {
    /// The copy's `P:created-at`: its source's creation time ([`source_created_at`]).
    pub created_at: DateTime<Utc>,
    /// [`copy_retention`].
    pub retention: Duration,
    /// `created_at + retention`: when expire deletes the copy.
    pub expires_at: DateTime<Utc>,
}

impl CopyLife {
    /// Whether a copy made now would already be expired. Such a copy is never made: with a
    /// copy retention shorter than the backup's, expire deletes the copy first, and copying it
    /// again would only make a copy that is already due for deletion.
    pub fn has_passed(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

/// The life of a copy of `backup`: made at the source's creation time, kept for its copy
/// retention.
pub fn copy_life(
    keys: &TagKeys,
    config: &Config,
    backup: &Backup,
    now: DateTime<Utc>,
    warnings: &mut Vec<Warning>,
) -> CopyLife {
    let created_at = source_created_at(keys, backup, now, warnings);
    let retention = copy_retention(keys, config, &backup.id, &backup.tags, warnings);
    CopyLife {
        created_at,
        retention,
        expires_at: created_at + retention.to_delta(),
    }
}

/// The copy's tags: the source backup's own (except `aws:` keys and the original's `P:copies`,
/// which is its own state), with `P:copy-of`, `P:source-region`, `P:created-at`, `P:expires-at`
/// set for the copy and `P:copy-to` emptied, so nothing copies a copy. Within EC2's 50 tags,
/// the contract's tags win.
pub fn copy_tags(
    keys: &TagKeys,
    backup: &Backup,
    created_at: DateTime<Utc>,
    retention: Duration,
    warnings: &mut Vec<Warning>,
) -> Tags {
    let replaced = [
        key::COPIES,
        key::COPY_OF,
        key::SOURCE_REGION,
        key::CREATED_AT,
        key::EXPIRES_AT,
        key::COPY_TO,
    ]
    .map(|k| keys.key(k));
    let ours = vec![
        (keys.key(key::COPY_OF), backup.id.clone()),
        (keys.key(key::SOURCE_REGION), backup.region.to_string()),
        (keys.key(key::CREATED_AT), format_time(created_at)),
        (
            keys.key(key::EXPIRES_AT),
            format_time(created_at + retention.to_delta()),
        ),
        (keys.key(key::COPY_TO), String::new()),
    ];
    let namespace: Tags = backup
        .tags
        .iter()
        .filter(|(k, _)| {
            keys.in_namespace(k) && !replaced.iter().any(|r| r.eq_ignore_ascii_case(k))
        })
        .cloned()
        .collect();
    let contract: Tags = namespace.into_iter().chain(ours).collect();
    within_tag_limit(
        &backup.id,
        keys.carried(&backup.tags),
        contract,
        "these tags were not carried to the copy",
        warnings,
    )
}

/// The copy's AMI name: the source's name and what it is a copy of, within AMI name rules.
/// A retry after a failed copy gets its own name (the failed one keeps the first).
pub fn copy_name(backup: &Backup, attempt: usize) -> String {
    let mut suffix = format!(" copy of {} from {}", backup.id, backup.region);
    if attempt > 0 {
        suffix.push_str(&format!(" retry {attempt}"));
    }
    let base = ami_name_part(backup.name.as_deref().unwrap_or(""), suffix.len());
    if base.is_empty() {
        suffix.trim_start().to_string()
    } else {
        format!("{base}{suffix}")
    }
}

pub fn copy_description(deployment: &str, backup: &Backup) -> String {
    let mut text = format!(
        "{deployment} DR copy of {} from {}",
        backup.id, backup.region
    );
    if let Some(d) = backup.description.as_deref().filter(|d| !d.is_empty()) {
        text.push_str(": ");
        text.push_str(d);
    }
    cut(&text, DESCRIPTION_MAX).to_string()
}

/// CopyImage's ClientToken: the same source and destination give the same token, so a replayed
/// or racing copy returns the first image instead of making a second. When an earlier copy
/// failed or vanished, AWS would answer that dead image again for the same token: `salt` (what
/// is known about the earlier copies) then gives the retry a token of its own, still the same
/// for every replay of that retry.
pub fn client_token(source_id: &str, destination: &Region, salt: &str) -> String {
    let mut token = format!("{source_id}-{destination}");
    if !salt.is_empty() {
        token.push_str(&format!("-{:08x}", fnv1a(salt) as u32));
    }
    if token.len() <= CLIENT_TOKEN_MAX && token.is_ascii() {
        token
    } else {
        // Never with today's ids and regions; a stable hash keeps it deterministic if it happens.
        format!("{source_id:.20}-{:016x}", fnv1a(&token))
    }
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The copy's encryption in `destination`: the key `COPY_KMS_KEYS` names for it; else an
/// encrypted source goes to the destination's default EBS key, with a warning.
pub fn encryption(
    config: &Config,
    backup: &Backup,
    destination: &Region,
    warnings: &mut Vec<Warning>,
) -> Encryption {
    if let Some(k) = config.copy_kms_keys.get(destination) {
        return Encryption::Key(k.clone());
    }
    if backup.encrypted {
        warnings.push(Warning::new(
            &backup.id,
            "COPY_KMS_KEYS",
            destination.as_str(),
            format!(
                "the source is encrypted and COPY_KMS_KEYS names no key for {destination}: the copy uses that region's default EBS key"
            ),
        ));
        return Encryption::DestinationDefault;
    }
    Encryption::AsSource
}

/// What a run will do: the copy calls, and the outcome of everything decided without one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub jobs: Vec<CopyJob>,
    /// Copies already in their region (a replay, or an earlier run).
    pub existing: Vec<Copied>,
    pub skipped: Vec<Skipped>,
    pub deferred: Vec<Deferred>,
    pub warnings: Vec<Warning>,
}

/// The copies already in the destinations, as the copy rules read them (replicate's and a
/// vault's): the live copy of each original in each region, how many of its copies there
/// failed or vanished, and the copies in flight per region and kind.
#[derive(Debug, Default)]
pub struct CopyIndex<'a> {
    live: HashMap<(&'a str, &'a Region), &'a Backup>,
    dead: HashMap<(&'a str, &'a Region), usize>,
    in_flight: HashMap<(Region, Kind), usize>,
}

impl<'a> CopyIndex<'a> {
    /// `existing`: copies (`P:copy-of` set); anything else is left out.
    pub fn of(existing: &'a [Backup]) -> Self {
        let mut index = Self::default();
        for copy in existing {
            let Some(of) = copy.copy_of.as_deref() else {
                continue;
            };
            if copy.is_live() {
                index.live.entry((of, &copy.region)).or_insert(copy);
            } else {
                *index.dead.entry((of, &copy.region)).or_default() += 1;
            }
            if copy.state.is_pending() {
                *index
                    .in_flight
                    .entry((copy.region.clone(), copy.kind))
                    .or_default() += 1;
            }
        }
        index
    }

    /// The live copy of `original` in `region`.
    pub fn live(&self, original: &str, region: &Region) -> Option<&'a Backup> {
        self.live.get(&(original, region)).copied()
    }

    /// How many copies of `original` in `region` failed or vanished: a retry's salt.
    pub fn dead(&self, original: &str, region: &Region) -> usize {
        self.dead.get(&(original, region)).copied().unwrap_or(0)
    }

    /// Takes a place among `region`'s copies in flight of `kind` (CopyImage allows 100,
    /// CopySnapshot 20); `Err(limit)` when they are full.
    pub fn take_slot(&mut self, region: &Region, kind: Kind) -> Result<(), usize> {
        let limit = match kind {
            Kind::Image => IMAGE_COPIES_IN_FLIGHT,
            Kind::Snapshot => SNAPSHOT_COPIES_IN_FLIGHT,
        };
        let flying = self.in_flight.entry((region.clone(), kind)).or_default();
        if *flying >= limit {
            return Err(limit);
        }
        *flying += 1;
        Ok(())
    }
}

/// The copies that are missing: for each eligible backup and target region, nothing to do when
/// a live copy is there; otherwise a copy job, unless the region's in-flight limit is full.
pub fn missing_copies(
    keys: &TagKeys,
    config: &Config,
    sources: &[Eligible],
    existing: &[Backup],
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let mut index = CopyIndex::of(existing);
    for Eligible { backup, targets } in sources {
        let life = copy_life(keys, config, backup, now, &mut plan.warnings);
        let listed = listed_copies(keys.get(&backup.tags, key::COPIES).unwrap_or(""));
        for region in targets {
            if let Some(copy) = index.live(&backup.id, region) {
                plan.existing.push(Copied {
                    source: backup.id.clone(),
                    region: region.clone(),
                    id: Some(copy.id.clone()),
                });
                plan.skipped.push(Skipped {
                    source: backup.id.clone(),
                    region: Some(region.clone()),
                    reason: format!("already copied to {region} as {} ({})", copy.id, copy.state),
                });
                continue;
            }
            if life.has_passed(now) {
                plan.skipped.push(Skipped {
                    source: backup.id.clone(),
                    region: Some(region.clone()),
                    reason: format!(
                        "a copy would expire at {} ({} after the backup), which has passed",
                        format_time(life.expires_at),
                        life.retention
                    ),
                });
                continue;
            }
            if let Err(limit) = index.take_slot(region, backup.kind) {
                plan.deferred.push(Deferred {
                    source: backup.id.clone(),
                    region: region.clone(),
                    kind: backup.kind,
                    reason: format!(
                        "{limit} {} copies are already in flight to {region}: left for a delayed continuation (or the next sweep)",
                        backup.kind.as_str()
                    ),
                    code: None,
                    wait: true,
                });
                continue;
            }
            let failed = index.dead(&backup.id, region);
            // A copy the original lists but that is not there any more was deleted.
            let vanished = listed.get(region.as_str()).map(String::as_str);
            let salt = match (failed, vanished) {
                (0, None) => String::new(),
                (n, v) => format!("{n}:{}", v.unwrap_or("")),
            };
            plan.jobs.push(CopyJob {
                kind: backup.kind,
                source_id: backup.id.clone(),
                source_region: backup.region.clone(),
                destination: region.clone(),
                name: match backup.kind {
                    Kind::Image => copy_name(backup, failed),
                    Kind::Snapshot => String::new(),
                },
                description: copy_description(&config.deployment_name, backup),
                client_token: client_token(&backup.id, region, &salt),
                tags: copy_tags(
                    keys,
                    backup,
                    life.created_at,
                    life.retention,
                    &mut plan.warnings,
                ),
                encryption: encryption(config, backup, region, &mut plan.warnings),
                listed_copy: vanished.map(str::to_string),
            });
        }
    }
    plan
}

/// The `region=copy-id` pairs of a `P:copies` value; unreadable pieces are dropped.
pub fn listed_copies(value: &str) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    for piece in value.split(',') {
        if let Some((r, id)) = piece.split_once('=') {
            let (r, id) = (r.trim(), id.trim());
            if Region::parse(r).is_ok() && !id.is_empty() {
                pairs.insert(r.to_string(), id.to_string());
            }
        }
    }
    pairs
}

/// `P:copies` on the original: `region=copy-id` pairs, the new ones merged into what is there
/// (one pair per region, sorted).
pub fn merge_copies(current: Option<&str>, copies: &[(Region, String)]) -> String {
    let mut pairs = listed_copies(current.unwrap_or(""));
    for (region, id) in copies {
        pairs.insert(region.to_string(), id.clone());
    }
    pairs
        .iter()
        .map(|(r, id)| format!("{r}={id}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::MAX_TAGS;

    fn r(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    fn image(id: &str, extra: &[(&str, &str)]) -> Backup {
        let mut t = tags(&[
            ("Name", "web-01"),
            ("backup:managed-by", "ec2-backup"),
            ("backup:kind", "image"),
            ("backup:source", "i-1"),
            ("backup:source-region", "us-east-1"),
            ("backup:created-at", "2026-11-25T03:00:00Z"),
            ("backup:expires-at", "2026-12-02T03:00:00Z"),
            ("backup:copy-to", "us-west-2,eu-west-1"),
            ("backup:copy-retention", "30d"),
        ]);
        for (k, v) in extra {
            t.retain(|(key, _)| key != k);
            t.push((k.to_string(), v.to_string()));
        }
        let d = crate::backup::Described {
            id: id.into(),
            state: "available".into(),
            name: Some("web-01-i-1-20261125T0300Z".into()),
            description: Some("ec2-backup backup of i-1".into()),
            recorded_at: Some(at("2026-11-25T03:00:05Z")),
            tags: t,
            ..Default::default()
        };
        Backup::new(&TagKeys::new("backup"), Kind::Image, &r("us-east-1"), d)
    }

    fn eligible(b: Backup) -> Eligible {
        let targets = copy_targets(
            &TagKeys::new("backup"),
            &Config::default(),
            &b,
            &mut Vec::new(),
        )
        .unwrap();
        Eligible { backup: b, targets }
    }

    fn copy(id: &str, of: &str, region: &str, state: &str) -> Backup {
        let d = crate::backup::Described {
            id: id.into(),
            state: state.into(),
            tags: tags(&[("backup:copy-of", of)]),
            ..Default::default()
        };
        Backup::new(&TagKeys::new("backup"), Kind::Image, &r(region), d)
    }

    fn now() -> DateTime<Utc> {
        at("2026-11-25T04:00:00Z")
    }

    #[test]
    fn an_available_original_goes_to_its_copy_to_regions_but_its_own() {
        let keys = TagKeys::new("backup");
        let b = image(
            "ami-1",
            &[("backup:copy-to", "us-west-2,us-east-1,eu-west-1")],
        );
        let t = copy_targets(&keys, &Config::default(), &b, &mut Vec::new()).unwrap();
        assert_eq!(t, vec![r("us-west-2"), r("eu-west-1")]);
    }

    #[test]
    fn what_is_not_copied_says_why() {
        let keys = TagKeys::new("backup");
        let config = Config::default();
        let cases = [
            (
                image("ami-1", &[("backup:managed-by", "someone-else")]),
                "not a backup of this deployment",
            ),
            (
                image("ami-1", &[("backup:copy-of", "ami-0")]),
                "a DR copy of ami-0",
            ),
            (image("ami-1", &[("backup:copy-to", "")]), "no DR region"),
            (
                image("ami-1", &[("backup:copy-to", "none")]),
                "no DR region",
            ),
            (
                image("ami-1", &[("backup:copy-to", "us-east-1")]),
                "other than its own",
            ),
            (
                Backup {
                    state: "pending".into(),
                    ..image("ami-1", &[])
                },
                "the image is pending",
            ),
            (
                Backup {
                    kind: Kind::Snapshot,
                    state: "completed".into(),
                    ..image("snap-1", &[])
                },
                "copied with its AMI",
            ),
        ];
        for (b, want) in cases {
            let reason = copy_targets(&keys, &config, &b, &mut Vec::new()).unwrap_err();
            assert!(reason.contains(want), "{want}: {reason}");
        }
        let mut untagged = image("ami-1", &[]);
        untagged.tags.clear();
        let reason = copy_targets(&keys, &config, &untagged, &mut Vec::new()).unwrap_err();
        assert!(reason.contains("no backup:managed-by tag"), "{reason}");
    }

    #[test]
    fn an_invalid_copy_to_falls_back_to_the_configuration_with_a_warning() {
        let keys = TagKeys::new("backup");
        let config = Config {
            copy_to_regions: vec![r("eu-central-1")],
            ..Config::default()
        };
        let mut warnings = Vec::new();
        let b = image("ami-1", &[("backup:copy-to", "mars")]);
        let t = copy_targets(&keys, &config, &b, &mut warnings).unwrap();
        assert_eq!(t, vec![r("eu-central-1")]);
        assert_eq!(warnings[0].key, "backup:copy-to");
        assert_eq!(warnings[0].value, "mars");
    }

    #[test]
    fn copy_retention_falls_back_in_order() {
        let keys = TagKeys::new("backup");
        let config = Config::default();
        let mut w = Vec::new();
        let b = image("ami-1", &[]);
        assert_eq!(
            copy_retention(&keys, &config, "ami-1", &b.tags, &mut w),
            Duration::days(30)
        );
        let mut t = b.tags.clone();
        t.retain(|(k, _)| k != "backup:copy-retention");
        let with_env = Config {
            copy_retention: Some(Duration::days(90)),
            ..Config::default()
        };
        assert_eq!(
            copy_retention(&keys, &with_env, "ami-1", &t, &mut w),
            Duration::days(90)
        );
        // The source's own retention: expires-at less created-at.
        assert_eq!(
            copy_retention(&keys, &config, "ami-1", &t, &mut w),
            Duration::days(7)
        );
        t.retain(|(k, _)| k != "backup:expires-at");
        assert_eq!(
            copy_retention(&keys, &config, "ami-1", &t, &mut w),
            config.default_retention
        );
        assert!(w.is_empty());
        // An invalid value warns and falls back.
        let bad = tags(&[("backup:copy-retention", "forever")]);
        assert_eq!(
            copy_retention(&keys, &with_env, "ami-1", &bad, &mut w),
            Duration::days(90)
        );
        assert_eq!(w[0].value, "forever");
    }

    #[test]
    fn the_copy_carries_the_source_tags_and_its_own_contract_tags() {
        let keys = TagKeys::new("backup");
        let b = image(
            "ami-1",
            &[
                ("backup:copies", "us-west-2=ami-9"),
                ("aws:backup:source-resource", "x"),
            ],
        );
        let mut w = Vec::new();
        let t = copy_tags(
            &keys,
            &b,
            at("2026-11-25T03:00:00Z"),
            Duration::days(30),
            &mut w,
        );
        let map: BTreeMap<&str, &str> = t.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            map,
            BTreeMap::from([
                ("Name", "web-01"),
                ("backup:managed-by", "ec2-backup"),
                ("backup:kind", "image"),
                ("backup:source", "i-1"),
                ("backup:copy-retention", "30d"),
                ("backup:copy-of", "ami-1"),
                ("backup:source-region", "us-east-1"),
                ("backup:created-at", "2026-11-25T03:00:00Z"),
                ("backup:expires-at", "2026-12-25T03:00:00Z"),
                ("backup:copy-to", ""),
            ])
        );
        assert_eq!(t.len(), map.len(), "no key twice: {t:?}");
        assert!(w.is_empty());
    }

    #[test]
    fn the_copy_stays_within_ec2s_tag_limit_and_keeps_the_contract() {
        let keys = TagKeys::new("backup");
        let mut b = image("ami-1", &[]);
        b.tags = (0..41)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .chain(b.tags.clone())
            .collect();
        assert_eq!(b.tags.len(), MAX_TAGS);
        let mut w = Vec::new();
        let t = copy_tags(&keys, &b, now(), Duration::days(1), &mut w);
        assert_eq!(t.len(), MAX_TAGS);
        assert!(t.iter().any(|(k, v)| k == "backup:copy-of" && v == "ami-1"));
        assert!(t.iter().any(|(k, _)| k == "backup:managed-by"));
        assert_eq!(w.len(), 1);
        // The source's 50 tags less the 4 the copy replaces, plus its 5: the last user tag goes.
        assert_eq!(w[0].key, "Name");
    }

    #[test]
    fn names_descriptions_and_tokens_say_what_is_copied() {
        let b = image("ami-0123456789abcdef0", &[]);
        assert_eq!(
            copy_name(&b, 0),
            "web-01-i-1-20261125T0300Z copy of ami-0123456789abcdef0 from us-east-1"
        );
        assert!(copy_name(&b, 2).ends_with(" retry 2"));
        let long = Backup {
            name: Some(format!("{}:{}", "x".repeat(120), "y")),
            ..b.clone()
        };
        let name = copy_name(&long, 1);
        assert_eq!(name.len(), AMI_NAME_MAX);
        assert!(name.chars().all(ami_name_char), "{name}");
        let unnamed = Backup {
            name: None,
            ..b.clone()
        };
        assert_eq!(
            copy_name(&unnamed, 0),
            "copy of ami-0123456789abcdef0 from us-east-1"
        );
        assert_eq!(
            copy_description("ec2-backup", &b),
            "ec2-backup DR copy of ami-0123456789abcdef0 from us-east-1: ec2-backup backup of i-1"
        );
        let wordy = Backup {
            description: Some("é".repeat(300)),
            ..b.clone()
        };
        assert!(copy_description("d", &wordy).len() <= DESCRIPTION_MAX);

        let token = client_token("ami-0123456789abcdef0", &r("ap-southeast-2"), "");
        assert_eq!(token, "ami-0123456789abcdef0-ap-southeast-2");
        assert_eq!(
            token,
            client_token("ami-0123456789abcdef0", &r("ap-southeast-2"), "")
        );
        assert_ne!(
            token,
            client_token("ami-0123456789abcdef0", &r("ap-southeast-1"), "")
        );
        let retry = client_token("ami-0123456789abcdef0", &r("ap-southeast-2"), "1:");
        assert_ne!(token, retry);
        assert!(retry.len() <= CLIENT_TOKEN_MAX, "{retry}");
        let long = client_token(&format!("ami-{}", "f".repeat(70)), &r("us-east-1"), "");
        assert!(long.len() <= CLIENT_TOKEN_MAX && long.is_ascii(), "{long}");
    }

    #[test]
    fn the_kms_key_is_chosen_per_destination() {
        let config = Config {
            copy_kms_keys: BTreeMap::from([(r("us-west-2"), "alias/dr".to_string())]),
            ..Config::default()
        };
        let mut w = Vec::new();
        let plain = image("ami-1", &[]);
        let sealed = Backup {
            encrypted: true,
            ..plain.clone()
        };
        assert_eq!(
            encryption(&config, &plain, &r("us-west-2"), &mut w),
            Encryption::Key("alias/dr".into())
        );
        assert_eq!(
            encryption(&config, &plain, &r("eu-west-1"), &mut w),
            Encryption::AsSource
        );
        assert!(w.is_empty());
        assert_eq!(
            encryption(&config, &sealed, &r("eu-west-1"), &mut w),
            Encryption::DestinationDefault
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].resource, "ami-1");
        assert_eq!(w[0].value, "eu-west-1");
    }

    #[test]
    fn only_the_missing_copies_are_planned() {
        let keys = TagKeys::new("backup");
        let config = Config::default();
        let sources = vec![eligible(image("ami-1", &[])), eligible(image("ami-2", &[]))];
        let existing = vec![
            copy("ami-1w", "ami-1", "us-west-2", "available"),
            copy("ami-2e", "ami-2", "eu-west-1", "pending"),
            // A failed copy is not a copy: ami-2 goes to us-west-2 again, with its own token.
            copy("ami-2x", "ami-2", "us-west-2", "failed"),
        ];
        let plan = missing_copies(&keys, &config, &sources, &existing, now());
        let jobs: Vec<(&str, &str, &str)> = plan
            .jobs
            .iter()
            .map(|j| {
                (
                    j.source_id.as_str(),
                    j.destination.as_str(),
                    j.client_token.as_str(),
                )
            })
            .collect();
        assert_eq!(
            jobs,
            vec![
                ("ami-1", "eu-west-1", "ami-1-eu-west-1"),
                (
                    "ami-2",
                    "us-west-2",
                    client_token("ami-2", &r("us-west-2"), "1:").as_str()
                ),
            ]
        );
        assert_eq!(plan.jobs[1].name, copy_name(&sources[1].backup, 1));
        assert_eq!(plan.existing.len(), 2);
        assert_eq!(plan.skipped.len(), 2);
        assert!(
            plan.skipped[0]
                .reason
                .contains("already copied to us-west-2 as ami-1w")
        );
        assert!(plan.deferred.is_empty());
        let job = &plan.jobs[0];
        assert_eq!(job.kind, Kind::Image);
        assert_eq!(job.source_region, r("us-east-1"));
        assert!(
            job.tags
                .iter()
                .any(|(k, v)| k == "backup:expires-at" && v == "2026-12-25T03:00:00Z")
        );
    }

    #[test]
    fn a_copy_that_vanished_is_made_again_with_a_token_of_its_own() {
        let keys = TagKeys::new("backup");
        let listed = image("ami-1", &[("backup:copies", "us-west-2=ami-gone")]);
        let plan = missing_copies(&keys, &Config::default(), &[eligible(listed)], &[], now());
        let west = plan
            .jobs
            .iter()
            .find(|j| j.destination.as_str() == "us-west-2")
            .unwrap();
        assert_eq!(
            west.client_token,
            client_token("ami-1", &r("us-west-2"), "0:ami-gone")
        );
        assert_ne!(west.client_token, "ami-1-us-west-2");
    }

    #[test]
    fn a_copy_that_would_already_have_expired_is_not_made() {
        // Copies kept 1 day, backup kept 7: on day 2 expire has deleted the copy; the sweep
        // must not make it again.
        let keys = TagKeys::new("backup");
        let b = image("ami-1", &[("backup:copy-retention", "1d")]);
        let plan = missing_copies(
            &keys,
            &Config::default(),
            &[eligible(b)],
            &[],
            at("2026-11-26T03:00:00Z"),
        );
        assert!(plan.jobs.is_empty());
        assert_eq!(plan.skipped.len(), 2);
        assert!(
            plan.skipped[0]
                .reason
                .contains("would expire at 2026-11-26T03:00:00Z (1d after the backup)"),
            "{:?}",
            plan.skipped
        );
    }

    #[test]
    fn a_full_in_flight_limit_defers_the_rest() {
        let keys = TagKeys::new("backup");
        let config = Config::default();
        let mut b = image("snap-a", &[("backup:kind", "snapshot")]);
        b.kind = Kind::Snapshot;
        b.state = "completed".into();
        let mut sources = Vec::new();
        for i in 0..3 {
            let mut s = b.clone();
            s.id = format!("snap-{i}");
            sources.push(eligible(s));
        }
        let existing: Vec<Backup> = (0..18)
            .map(|i| Backup {
                kind: Kind::Snapshot,
                ..copy(
                    &format!("snap-w{i}"),
                    &format!("snap-o{i}"),
                    "us-west-2",
                    "pending",
                )
            })
            .collect();
        let plan = missing_copies(&keys, &config, &sources, &existing, now());
        let west: Vec<&str> = plan
            .jobs
            .iter()
            .filter(|j| j.destination.as_str() == "us-west-2")
            .map(|j| j.source_id.as_str())
            .collect();
        assert_eq!(west, vec!["snap-0", "snap-1"]);
        assert_eq!(plan.deferred.len(), 1);
        assert_eq!(plan.deferred[0].source, "snap-2");
        assert!(plan.deferred[0].reason.contains("20 snapshot copies"));
        // eu-west-1 has room for all three.
        assert_eq!(plan.jobs.len(), 5);
    }

    #[test]
    fn copies_are_merged_into_the_originals_tag() {
        assert_eq!(
            merge_copies(None, &[(r("us-west-2"), "ami-1".into())]),
            "us-west-2=ami-1"
        );
        assert_eq!(
            merge_copies(
                Some("us-west-2=ami-1, junk,eu-west-1="),
                &[
                    (r("eu-west-1"), "ami-2".into()),
                    (r("ap-south-1"), "ami-3".into())
                ]
            ),
            "ap-south-1=ami-3,eu-west-1=ami-2,us-west-2=ami-1"
        );
        assert_eq!(
            merge_copies(
                Some("us-west-2=ami-old"),
                &[(r("us-west-2"), "ami-new".into())]
            ),
            "us-west-2=ami-new"
        );
    }
}
