//! The deployment's configuration: environment variables, parsed once at cold start.

use crate::duration::Duration;
use crate::pacing::RateLimits;
use crate::region::{Region, parse_region_list};
use serde::Serialize;
use std::collections::BTreeMap;

/// Every variable the functions read (besides the SDK's own `AWS_REGION` and `AWS_ENDPOINT_URL`).
/// The template test checks that the SAM template sets each of them.
pub const VARIABLES: &[&str] = &[
    "TAG_PREFIX",
    "DEPLOYMENT_NAME",
    "DEFAULT_INTERVAL",
    "DEFAULT_RETENTION",
    "COPY_TO_REGIONS",
    "COPY_RETENTION",
    "COPY_KMS_KEYS",
    "KEEP_LAST",
    "DRY_RUN",
    "CLEANUP_REGIONS",
    "METRICS_NAMESPACE",
    "COPY_GRACE",
    "PENDING_LIMIT",
    "DRILL_INTERVAL",
    "DR_ACCOUNT",
    "SHARE_KMS_KEYS",
    "SOURCE_ACCOUNTS",
    "LOCK_MODE",
    "LOCK_COOLOFF_HOURS",
    "EC2_RATE_LIMITS",
    "EC2_RATE_SHARED_BY",
    "WORK_QUEUE_URL",
];

/// The most invocations `EC2_RATE_SHARED_BY` may name (an event source mapping's
/// MaximumConcurrency can be up to 1,000; past a few dozen, each invocation's pace is a trickle).
pub const MAX_RATE_SHARED_BY: u32 = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `P` of the tag contract: `backup` gives `backup`, `backup:interval`, ...
    pub tag_prefix: String,
    /// Written as `P:managed-by` on every backup; only backups carrying it are ever deleted.
    pub deployment_name: String,
    pub default_interval: Duration,
    pub default_retention: Duration,
    pub copy_to_regions: Vec<Region>,
    /// `None`: copies are kept as long as their source's retention.
    pub copy_retention: Option<Duration>,
    pub copy_kms_keys: BTreeMap<Region, String>,
    pub keep_last: u32,
    pub dry_run: bool,
    pub cleanup_regions: Vec<Region>,
    /// The CloudWatch namespace of every metric the functions publish (`METRICS_NAMESPACE`).
    pub metrics_namespace: String,
    /// How long a backup may wait for its DR copies before `monitor` counts them missing.
    pub copy_grace: Duration,
    /// How long a backup or copy may stay pending before `monitor` counts it stuck.
    pub pending_limit: Duration,
    /// How often each resource is proven restorable in each of its drill regions
    /// (`DRILL_INTERVAL`): the drill function picks those whose last passed drill is older,
    /// and monitor counts them `NotDrilled` past it (and a grace).
    pub drill_interval: Duration,
    /// The pace of each EC2 action, per region, of one invocation: `EC2_RATE_LIMITS` over the
    /// defaults, divided by `rate_shared_by`.
    pub rate_limits: RateLimits,
    /// How many of this function's invocations run at once, sharing the pace
    /// (`EC2_RATE_SHARED_BY`, the template sets it to the work queue mapping's
    /// MaximumConcurrency where invocations overlap in the normal course: replicate). Each
    /// paces at `EC2_RATE_LIMITS` divided by it, so together they stay within the share.
    pub rate_shared_by: u32,
    /// The function's own SQS work queue (`WORK_QUEUE_URL`): where what an invocation cannot
    /// finish is handed on. `None`: it does what fits and reports the rest for the next schedule.
    pub work_queue_url: Option<String>,
    /// The isolated DR account each original backup is shared with (`DR_ACCOUNT`); `None`: no
    /// sharing (a home deployment without a vault, or a vault).
    pub dr_account: Option<String>,
    /// Per region, the customer-managed key the DR account may use (`SHARE_KMS_KEYS`,
    /// `region=key-arn,...`): a backup encrypted with any other key is re-encrypted with it in
    /// a shareable copy first.
    pub share_kms_keys: BTreeMap<Region, String>,
    /// The accounts whose shared backups this deployment keeps as a vault (`SOURCE_ACCOUNTS`);
    /// empty: not a vault.
    pub source_accounts: Vec<String>,
    /// How a vault locks the snapshots of its copies (`LOCK_MODE`, `LOCK_COOLOFF_HOURS`).
    pub lock: Lock,
}

/// EBS snapshot lock mode of a vault's copies (`LOCK_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Users with `ec2:UnlockSnapshot` may unlock or shorten the lock.
    Governance,
    /// No one, the root user included, can unlock or shorten it once the cool-off ends.
    Compliance,
    /// No locks and no deregistration protection (a vault for tests or a trial).
    None,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
            LockMode::None => "none",
        }
    }
}

/// The lock a vault puts on every snapshot of its copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub mode: LockMode,
    /// Compliance mode's cool-off (`LOCK_COOLOFF_HOURS`, 1-72): the hours in which the lock can
    /// still be removed by someone allowed to, when a copy was locked by mistake.
    pub cool_off_hours: u32,
}

impl Default for Lock {
    fn default() -> Self {
        Self {
            mode: LockMode::Governance,
            cool_off_hours: 24,
        }
    }
}

/// The longest compliance cool-off EBS allows, in hours.
pub const MAX_COOL_OFF_HOURS: u32 = 72;

/// Whether `text` is an AWS account id: 12 digits.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {variable}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tag_prefix: "backup".into(),
            deployment_name: "ec2-backup".into(),
            default_interval: Duration::hours(24),
            default_retention: Duration::days(7),
            copy_to_regions: Vec::new(),
            copy_retention: None,
            copy_kms_keys: BTreeMap::new(),
            keep_last: 1,
            dry_run: false,
            cleanup_regions: Vec::new(),
            metrics_namespace: "EC2Backup".into(),
            copy_grace: Duration::hours(2),
            pending_limit: Duration::hours(6),
            drill_interval: Duration::days(7),
            rate_limits: RateLimits::default(),
            rate_shared_by: 1,
            work_queue_url: None,
            dr_account: None,
            share_kms_keys: BTreeMap::new(),
            source_accounts: Vec::new(),
            lock: Lock::default(),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads each variable through `lookup`; unset and empty both mean the default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let fail = |variable: &'static str, value: &str, reason: String| ConfigError {
            variable,
            value: value.to_string(),
            reason,
        };

        if let Some(v) = get("TAG_PREFIX") {
            config.tag_prefix = validate_prefix(&v).map_err(|r| fail("TAG_PREFIX", &v, r))?;
        }
        if let Some(v) = get("DEPLOYMENT_NAME") {
            config.deployment_name =
                validate_deployment(&v).map_err(|r| fail("DEPLOYMENT_NAME", &v, r))?;
        }
        let duration = |name: &'static str| -> Result<Option<Duration>, ConfigError> {
            get(name)
                .map(|v| Duration::parse(&v).map_err(|e| fail(name, &v, e.to_string())))
                .transpose()
        };
        if let Some(d) = duration("DEFAULT_INTERVAL")? {
            config.default_interval = d;
        }
        if let Some(d) = duration("DEFAULT_RETENTION")? {
            config.default_retention = d;
        }
        if let Some(d) = duration("COPY_GRACE")? {
            config.copy_grace = d;
        }
        if let Some(d) = duration("PENDING_LIMIT")? {
            config.pending_limit = d;
        }
        if let Some(d) = duration("DRILL_INTERVAL")? {
            config.drill_interval = d;
        }
        if let Some(v) = get("EC2_RATE_LIMITS") {
            config.rate_limits =
                RateLimits::parse(&v).map_err(|r| fail("EC2_RATE_LIMITS", &v, r))?;
        }
        if let Some(v) = get("EC2_RATE_SHARED_BY") {
            config.rate_shared_by = v
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=MAX_RATE_SHARED_BY).contains(n))
                .ok_or_else(|| {
                    fail(
                        "EC2_RATE_SHARED_BY",
                        &v,
                        format!("expected a whole number from 1 to {MAX_RATE_SHARED_BY}"),
                    )
                })?;
            config.rate_limits = config.rate_limits.shared_by(config.rate_shared_by);
        }
        if let Some(v) = get("WORK_QUEUE_URL") {
            config.work_queue_url =
                Some(crate::queue::validate_url(&v).map_err(|r| fail("WORK_QUEUE_URL", &v, r))?);
        }
        if let Some(v) = get("METRICS_NAMESPACE") {
            config.metrics_namespace =
                validate_namespace(&v).map_err(|r| fail("METRICS_NAMESPACE", &v, r))?;
        }
        config.copy_retention = duration("COPY_RETENTION")?;
        let regions = |name: &'static str| -> Result<Vec<Region>, ConfigError> {
            match get(name) {
                None => Ok(Vec::new()),
                Some(v) => parse_region_list(&v).map_err(|e| fail(name, &v, e)),
            }
        };
        config.copy_to_regions = regions("COPY_TO_REGIONS")?;
        config.cleanup_regions = regions("CLEANUP_REGIONS")?;
        if let Some(v) = get("COPY_KMS_KEYS") {
            config.copy_kms_keys = parse_kms_keys(&v).map_err(|r| fail("COPY_KMS_KEYS", &v, r))?;
        }
        if let Some(v) = get("KEEP_LAST") {
            config.keep_last = v
                .trim()
                .parse()
                .map_err(|_| fail("KEEP_LAST", &v, "expected a whole number, 0 or more".into()))?;
        }
        if let Some(v) = get("DRY_RUN") {
            config.dry_run = parse_bool(&v)
                .ok_or_else(|| fail("DRY_RUN", &v, "expected true or false".into()))?;
        }
        if let Some(v) = get("DR_ACCOUNT") {
            let id = v.trim();
            if !is_account_id(id) {
                return Err(fail(
                    "DR_ACCOUNT",
                    &v,
                    "expected an AWS account id of 12 digits".into(),
                ));
            }
            config.dr_account = Some(id.to_string());
        }
        if let Some(v) = get("SHARE_KMS_KEYS") {
            config.share_kms_keys =
                parse_share_keys(&v).map_err(|r| fail("SHARE_KMS_KEYS", &v, r))?;
        }
        if let Some(v) = get("SOURCE_ACCOUNTS") {
            config.source_accounts =
                parse_accounts(&v).map_err(|r| fail("SOURCE_ACCOUNTS", &v, r))?;
        }
        if let Some(v) = get("LOCK_MODE") {
            config.lock.mode = match v.trim().to_ascii_lowercase().as_str() {
                "governance" => LockMode::Governance,
                "compliance" => LockMode::Compliance,
                "none" => LockMode::None,
                _ => {
                    return Err(fail(
                        "LOCK_MODE",
                        &v,
                        "expected governance, compliance or none".into(),
                    ));
                }
            };
        }
        if let Some(v) = get("LOCK_COOLOFF_HOURS") {
            config.lock.cool_off_hours = v
                .trim()
                .parse()
                .ok()
                .filter(|h| (1..=MAX_COOL_OFF_HOURS).contains(h))
                .ok_or_else(|| {
                    fail(
                        "LOCK_COOLOFF_HOURS",
                        &v,
                        format!("expected a whole number of hours from 1 to {MAX_COOL_OFF_HOURS}"),
                    )
                })?;
        }
        if let Some(dr) = &config.dr_account
            && config.source_accounts.contains(dr)
        {
            return Err(fail(
                "SOURCE_ACCOUNTS",
                &config.source_accounts.join(","),
                format!(
                    "lists DR_ACCOUNT {dr}: an account cannot be both this deployment's vault and one of its sources"
                ),
            ));
        }
        Ok(config)
    }

    /// A vault: it copies and locks what `SOURCE_ACCOUNTS` share with it.
    pub fn is_vault(&self) -> bool {
        !self.source_accounts.is_empty()
    }

    /// The checks that need the function's own account (known once the credentials are):
    /// `DR_ACCOUNT` is another account, and `SOURCE_ACCOUNTS` does not list this one.
    pub fn check_own_account(&self, own: &str) -> Result<(), ConfigError> {
        if self.dr_account.as_deref() == Some(own) {
            return Err(ConfigError {
                variable: "DR_ACCOUNT",
                value: own.to_string(),
                reason: "is this function's own account: the DR account must be another one, which this account's credentials cannot reach".into(),
            });
        }
        if self.source_accounts.iter().any(|a| a == own) {
            return Err(ConfigError {
                variable: "SOURCE_ACCOUNTS",
                value: self.source_accounts.join(","),
                reason: format!(
                    "lists {own}, this function's own account: a vault keeps other accounts' backups"
                ),
            });
        }
        Ok(())
    }
}

/// `SOURCE_ACCOUNTS`: comma-separated account ids, each once.
fn parse_accounts(v: &str) -> Result<Vec<String>, String> {
    let mut accounts: Vec<String> = Vec::new();
    for id in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !is_account_id(id) {
            return Err(format!("{id:?} is not an AWS account id of 12 digits"));
        }
        if accounts.iter().any(|a| a == id) {
            return Err(format!("{id} is named twice"));
        }
        accounts.push(id.to_string());
    }
    Ok(accounts)
}

/// `SHARE_KMS_KEYS`: `region=key-arn` pairs. Only a key ARN of that region will do: the DR
/// account names the key by its ARN, and an alias or a key id means nothing there.
fn parse_share_keys(v: &str) -> Result<BTreeMap<Region, String>, String> {
    let keys = parse_kms_keys(v)?;
    for (region, key) in &keys {
        let parts: Vec<&str> = key.split(':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "kms"
            && parts[3] == region.as_str()
            && is_account_id(parts[4])
            && parts[5].starts_with("key/")
            && parts[5].len() > 4;
        if !ok {
            return Err(format!(
                "{region}={key}: expected the ARN of a key in {region} (arn:aws:kms:{region}:<account>:key/<id>); the DR account cannot use an alias or a key id"
            ));
        }
    }
    Ok(keys)
}

/// `true`/`false` and their usual spellings, any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn validate_prefix(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.len() > 64 {
        return Err("at most 64 characters".into());
    }
    if v.to_ascii_lowercase().starts_with("aws:") {
        return Err("tag keys beginning aws: are reserved by AWS".into());
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/+=@".contains(c))
    {
        return Err(
            "use letters, digits and _ . - / + = @ only (':' separates the prefix from the rest)"
                .into(),
        );
    }
    Ok(v.to_string())
}

/// CloudWatch's namespace rules: 1 to 255 of letters, digits, `. - _ / # :` and space, not
/// blank, and not `AWS/` (AWS's own namespaces).
fn validate_namespace(v: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if v.len() > 255 || v.trim().is_empty() || !v.chars().all(ok) {
        return Err("expected 1 to 255 letters, digits, spaces or . - _ / # :".into());
    }
    if v.starts_with("AWS/") {
        return Err("the AWS/ namespaces are AWS's own".into());
    }
    Ok(v.to_string())
}

fn validate_deployment(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.len() > 128 {
        return Err("at most 128 characters".into());
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err("use letters, digits and _ . - only".into());
    }
    Ok(v.to_string())
}

fn parse_kms_keys(v: &str) -> Result<BTreeMap<Region, String>, String> {
    let mut keys = BTreeMap::new();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (region, key) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not region=key-id-or-arn"))?;
        let region = Region::parse(region.trim())?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("{pair:?} has no usable key id or ARN"));
        }
        if keys.insert(region.clone(), key.to_string()).is_some() {
            return Err(format!("region {region} is named twice"));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.tag_prefix, "backup");
        assert_eq!(c.deployment_name, "ec2-backup");
        assert_eq!(c.default_interval, Duration::hours(24));
        assert_eq!(c.default_retention, Duration::days(7));
        assert_eq!(c.keep_last, 1);
        assert!(!c.dry_run);
        assert_eq!(c.metrics_namespace, "EC2Backup");
        assert_eq!(c.copy_grace, Duration::hours(2));
        assert_eq!(c.pending_limit, Duration::hours(6));
        assert_eq!(c.drill_interval, Duration::days(7));
    }

    #[test]
    fn reads_every_variable() {
        let c = config(&[
            ("TAG_PREFIX", "Snap"),
            ("DEPLOYMENT_NAME", "prod-backup"),
            ("DEFAULT_INTERVAL", "12h"),
            ("DEFAULT_RETENTION", "2w"),
            ("COPY_TO_REGIONS", "us-west-2, eu-west-1"),
            ("COPY_RETENTION", "30d"),
            (
                "COPY_KMS_KEYS",
                "us-west-2=alias/dr,eu-west-1=arn:aws:kms:eu-west-1:111122223333:key/abc",
            ),
            ("KEEP_LAST", "3"),
            ("DRY_RUN", "TRUE"),
            ("CLEANUP_REGIONS", "ap-southeast-2"),
            ("METRICS_NAMESPACE", "Ops/EC2 Backup"),
            ("COPY_GRACE", "90m"),
            ("PENDING_LIMIT", "1d"),
            ("DRILL_INTERVAL", "2w"),
            ("EC2_RATE_LIMITS", "CreateImage=2/10"),
            ("EC2_RATE_SHARED_BY", "2"),
            (
                "WORK_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/work.fifo",
            ),
        ])
        .unwrap();
        assert_eq!(c.tag_prefix, "Snap");
        assert_eq!(c.deployment_name, "prod-backup");
        assert_eq!(c.default_interval, Duration::hours(12));
        assert_eq!(c.default_retention, Duration::days(14));
        assert_eq!(
            c.copy_to_regions,
            vec![
                Region::parse("us-west-2").unwrap(),
                Region::parse("eu-west-1").unwrap()
            ]
        );
        assert_eq!(c.copy_retention, Some(Duration::days(30)));
        assert_eq!(c.copy_kms_keys.len(), 2);
        assert_eq!(
            c.copy_kms_keys[&Region::parse("us-west-2").unwrap()],
            "alias/dr"
        );
        assert_eq!(c.keep_last, 3);
        assert!(c.dry_run);
        assert_eq!(
            c.cleanup_regions,
            vec![Region::parse("ap-southeast-2").unwrap()]
        );
        assert_eq!(c.metrics_namespace, "Ops/EC2 Backup");
        assert_eq!(c.copy_grace, Duration::minutes(90));
        assert_eq!(c.pending_limit, Duration::days(1));
        assert_eq!(c.drill_interval, Duration::days(14));
        assert_eq!(
            c.work_queue_url.as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/work.fifo")
        );
        // Each of the two invocations that share the pace takes half of it.
        assert_eq!(c.rate_shared_by, 2);
        assert_eq!(
            c.rate_limits.get("CreateImage"),
            Some(crate::pacing::Rate {
                per_second: 1.0,
                burst: 5.0
            })
        );
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_value() {
        let cases = [
            ("DEFAULT_INTERVAL", "soon"),
            ("DEFAULT_RETENTION", "0d"),
            ("COPY_RETENTION", "1y"),
            ("COPY_TO_REGIONS", "us-west-2,Mars"),
            ("CLEANUP_REGIONS", "us_east_1"),
            ("COPY_KMS_KEYS", "us-west-2"),
            ("COPY_KMS_KEYS", "us-west-2=a,us-west-2=b"),
            ("KEEP_LAST", "-1"),
            ("DRY_RUN", "maybe"),
            ("TAG_PREFIX", "aws:backup"),
            ("TAG_PREFIX", "back up"),
            ("DEPLOYMENT_NAME", "a b"),
            ("METRICS_NAMESPACE", "AWS/EC2"),
            ("METRICS_NAMESPACE", "ec2|backup"),
            ("COPY_GRACE", "2x"),
            ("PENDING_LIMIT", "0h"),
            ("DRILL_INTERVAL", "weekly"),
            ("EC2_RATE_LIMITS", "CreateImage=fast"),
            ("EC2_RATE_SHARED_BY", "0"),
            ("EC2_RATE_SHARED_BY", "two"),
            ("EC2_RATE_SHARED_BY", "1001"),
            ("DR_ACCOUNT", "12345"),
            ("DR_ACCOUNT", "1234567890123"),
            ("SOURCE_ACCOUNTS", "111122223333,abc"),
            ("SOURCE_ACCOUNTS", "111122223333,111122223333"),
            ("SHARE_KMS_KEYS", "us-east-1=alias/share"),
            (
                "SHARE_KMS_KEYS",
                "us-east-1=arn:aws:kms:us-west-2:111122223333:key/abc",
            ),
            ("LOCK_MODE", "legal-hold"),
            ("LOCK_COOLOFF_HOURS", "0"),
            ("LOCK_COOLOFF_HOURS", "73"),
            ("WORK_QUEUE_URL", "arn:aws:sqs:us-east-1:123456789012:work"),
        ];
        for (name, value) in cases {
            let err = config(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name);
            let text = err.to_string();
            assert!(text.contains(name) && text.contains(value), "{text}");
        }
    }

    #[test]
    fn reads_the_dr_account_variables() {
        let c = config(&[
            ("DR_ACCOUNT", " 444455556666 "),
            (
                "SHARE_KMS_KEYS",
                "us-east-1=arn:aws:kms:us-east-1:111122223333:key/1234abcd",
            ),
            ("SOURCE_ACCOUNTS", "777788889999, 222233334444"),
            ("LOCK_MODE", "Compliance"),
            ("LOCK_COOLOFF_HOURS", "72"),
        ])
        .unwrap();
        assert_eq!(c.dr_account.as_deref(), Some("444455556666"));
        assert_eq!(
            c.share_kms_keys[&Region::parse("us-east-1").unwrap()],
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd"
        );
        assert_eq!(c.source_accounts, ["777788889999", "222233334444"]);
        assert!(c.is_vault());
        assert_eq!(
            c.lock,
            Lock {
                mode: LockMode::Compliance,
                cool_off_hours: 72
            }
        );
        let d = config(&[]).unwrap();
        assert!(!d.is_vault() && d.dr_account.is_none());
        assert_eq!(d.lock.mode, LockMode::Governance);
    }

    #[test]
    fn an_account_cannot_be_its_own_dr_account_nor_its_own_source() {
        let c = config(&[("DR_ACCOUNT", "444455556666")]).unwrap();
        let e = c.check_own_account("444455556666").unwrap_err();
        assert_eq!(e.variable, "DR_ACCOUNT");
        assert!(e.to_string().contains("own account"), "{e}");
        assert!(c.check_own_account("111122223333").is_ok());
        let v = config(&[("SOURCE_ACCOUNTS", "111122223333,444455556666")]).unwrap();
        let e = v.check_own_account("444455556666").unwrap_err();
        assert_eq!(e.variable, "SOURCE_ACCOUNTS");
        assert!(e.to_string().contains("444455556666"), "{e}");
        let both = config(&[
            ("DR_ACCOUNT", "444455556666"),
            ("SOURCE_ACCOUNTS", "444455556666"),
        ])
        .unwrap_err();
        assert_eq!(both.variable, "SOURCE_ACCOUNTS");
    }
}
