//! The KMS pre-flight of an isolated DR account (`ec2-backup check-dr`): whether each share key
//! (`SHARE_KMS_KEYS`) is one the DR account can use, and each vault copy key (`COPY_KMS_KEYS`)
//! one the vault can copy with. Pure checks over what DescribeKey and GetKeyPolicy answered.
//!
//! A share key must exist, be customer managed (EC2 refuses to share what an AWS managed key
//! encrypts, and such a key's policy cannot be changed), be a symmetric encryption key (the only
//! kind EBS uses), be enabled, and have a key policy that lets the DR account use it as the EBS
//! guide to sharing encrypted snapshots gives it: [`USE_ACTIONS`], and [`GRANT_ACTION`] under
//! the condition `Bool` [`GRANT_CONDITION`] `true`. The policy is read as IAM reads it:
//! actions matched with their wildcards (`kms:*`, `kms:ReEncrypt*`), case-insensitively; the
//! principal the DR account's root (`arn:aws:iam::<dr>:root`), its bare id, or a list with
//! either; a statement whose conditions this check cannot evaluate still counts, with a warning.

use crate::region::Region;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The only key policy there is (GetKeyPolicy's `PolicyName`).
pub const POLICY_NAME: &str = "default";

/// What the DR account's EBS calls on the key to copy a shared snapshot: the guide's
/// `kms:Decrypt`, `kms:DescribeKey`, `kms:ReEncrypt*` and `kms:GenerateDataKey*`, each wildcard
/// by the actions it stands for here.
pub const USE_ACTIONS: &[&str] = &[
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKeyWithoutPlaintext",
];
/// EBS creates a grant for the copy it makes; the guide allows it only for AWS resources.
pub const GRANT_ACTION: &str = "kms:CreateGrant";
pub const GRANT_CONDITION: &str = "kms:GrantIsForAWSResource";

/// Where the statements a share key needs are given, filled in.
const WHAT_TO_ADD: &str = "the statements of the home stack's output ShareKeyPolicyStatements (docs/dr-account.md, step 2)";

/// Who manages a key (DescribeKey's `KeyManager`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyManager {
    Customer,
    /// `aws/ebs` and the other keys a service makes: never shareable, policy fixed.
    Aws,
}

/// DescribeKey's `KeyState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    /// `PendingImport`, `Unavailable`, `Creating`, ...: not usable either.
    Other(String),
}

impl KeyState {
    pub fn parse(text: &str) -> Self {
        match text {
            "Enabled" => KeyState::Enabled,
            "Disabled" => KeyState::Disabled,
            "PendingDeletion" => KeyState::PendingDeletion,
            other => KeyState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::Other(s) => s,
        }
    }
}

/// A key as KMS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescription {
    pub arn: String,
    /// The account the key is in.
    pub account: String,
    pub manager: KeyManager,
    pub state: KeyState,
    /// `KeySpec` and `KeyUsage`: EBS encrypts only with `SYMMETRIC_DEFAULT`, `ENCRYPT_DECRYPT`.
    pub spec: String,
    pub usage: String,
    /// The key policy as GetKeyPolicy gave it (`Err`: why it could not be read); `None`: not
    /// asked (a vault copy key, an AWS managed key).
    pub policy: Option<Result<String, String>>,
}

impl KeyDescription {
    fn is_symmetric(&self) -> bool {
        self.spec == "SYMMETRIC_DEFAULT" && self.usage == "ENCRYPT_DECRYPT"
    }
}

/// What looking a key up gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// KMS knows no such key (NotFoundException).
    Missing,
    /// DescribeKey failed otherwise: the error, with its AWS code.
    Failed(String),
    Found(KeyDescription),
}

/// Which side a key serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRole {
    /// A home deployment's `SHARE_KMS_KEYS` key, which the DR account must be able to use.
    Share,
    /// A vault's `COPY_KMS_KEYS` key, which must be the vault's own.
    VaultCopy,
}

impl KeyRole {
    fn noun(self) -> &'static str {
        match self {
            KeyRole::Share => "share key",
            KeyRole::VaultCopy => "vault copy key",
        }
    }
}

/// The verdict on one key in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyCheck {
    pub region: Region,
    /// The key as configured (an ARN, a key id or an alias).
    pub key: String,
    pub role: KeyRole,
    /// The account the key must serve: the DR account (share), this account (vault copy).
    pub account: String,
    pub ok: bool,
    /// Each problem in full: the key, the region, what is wrong and what to do.
    pub problems: Vec<String>,
    /// What works but is worth a look (a policy broader than the guide's, conditions not
    /// evaluated).
    pub warnings: Vec<String>,
    /// One line: `ok` or the problems.
    pub message: String,
    /// What each message starts with: `share key <key> in <region>`.
    #[serde(skip)]
    pub subject: String,
}

impl KeyCheck {
    fn new(
        role: KeyRole,
        region: &Region,
        key: &str,
        account: &str,
        problems: Vec<String>,
        warnings: Vec<String>,
    ) -> Self {
        let subject = format!("{} {key} in {region}", role.noun());
        let message = if problems.is_empty() {
            match role {
                KeyRole::Share => format!("{subject}: ok, the DR account {account} may use it"),
                KeyRole::VaultCopy => format!("{subject}: ok, enabled in this account {account}"),
            }
        } else {
            format!("{subject}: {}", problems.join("; "))
        };
        Self {
            region: region.clone(),
            key: key.to_string(),
            role,
            account: account.to_string(),
            ok: problems.is_empty(),
            problems: problems.iter().map(|p| format!("{subject}: {p}")).collect(),
            warnings: warnings.iter().map(|w| format!("{subject}: {w}")).collect(),
            message,
            subject,
        }
    }
}

/// Whether the DR account `dr` can use the share key `key` of `region`.
pub fn check_share_key(region: &Region, key: &str, lookup: &Lookup, dr: &str) -> KeyCheck {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let described = match lookup {
        Lookup::Missing => {
            problems.push(format!(
                "does not exist in {region} (or these credentials may not describe it): create a customer managed symmetric key there with {WHAT_TO_ADD}, and name its ARN in SHARE_KMS_KEYS"
            ));
            None
        }
        Lookup::Failed(error) => {
            problems.push(format!("could not be described: {error}"));
            None
        }
        Lookup::Found(d) => Some(d),
    };
    if let Some(d) = described {
        if d.manager == KeyManager::Aws {
            problems.push(format!(
                "is AWS managed (like aws/ebs): EC2 refuses to share what it encrypts and its key policy cannot be changed; create a customer managed key in {region} with {WHAT_TO_ADD}, and name its ARN in SHARE_KMS_KEYS"
            ));
        } else {
            problems.extend(usability(d, region));
            match &d.policy {
                Some(Ok(text)) => {
                    let (p, w) = judge_policy(text, &d.arn, dr);
                    problems.extend(p);
                    warnings.extend(w);
                }
                Some(Err(error)) => {
                    problems.push(format!("its key policy could not be read: {error}"))
                }
                None => problems.push("its key policy was not read".into()),
            }
        }
    }
    KeyCheck::new(KeyRole::Share, region, key, dr, problems, warnings)
}

/// Whether the vault (the account `own`) can copy with its copy key `key` of `region`: it
/// exists, is usable, and is the vault's own (a key of another account, the home account's say,
/// is one its administrators can disable).
pub fn check_copy_key(region: &Region, key: &str, lookup: &Lookup, own: &str) -> KeyCheck {
    let mut problems = Vec::new();
    match lookup {
        Lookup::Missing => problems.push(format!(
            "does not exist in this account's {region} (or these credentials may not describe it): create it, or correct COPY_KMS_KEYS; run check-dr --vault with the DR account's credentials"
        )),
        Lookup::Failed(error) => problems.push(format!("could not be described: {error}")),
        Lookup::Found(d) => {
            if d.account != own {
                problems.push(format!(
                    "is in account {}, not in this one ({own}): the vault's copies must be on a key of its own account, which no other account can disable or delete; name one in COPY_KMS_KEYS",
                    d.account
                ));
            }
            problems.extend(usability(d, region));
        }
    }
    KeyCheck::new(KeyRole::VaultCopy, region, key, own, problems, Vec::new())
}

/// A key EBS can encrypt with now: symmetric and enabled.
fn usability(d: &KeyDescription, region: &Region) -> Vec<String> {
    let mut problems = Vec::new();
    if !d.is_symmetric() {
        problems.push(format!(
            "is not a symmetric encryption key (KeySpec {}, KeyUsage {}): EBS encrypts only with SYMMETRIC_DEFAULT ENCRYPT_DECRYPT keys; use another key",
            d.spec, d.usage
        ));
    }
    let arn = &d.arn;
    match &d.state {
        KeyState::Enabled => {}
        KeyState::Disabled => problems.push(format!(
            "is Disabled: nothing can encrypt or decrypt with it; enable it (aws kms enable-key --region {region} --key-id {arn})"
        )),
        KeyState::PendingDeletion => problems.push(format!(
            "is PendingDeletion: cancel the deletion and enable it (aws kms cancel-key-deletion --region {region} --key-id {arn}, then aws kms enable-key)"
        )),
        KeyState::Other(state) => problems.push(format!(
            "is {state}, not Enabled: it cannot be used until it is"
        )),
    }
    problems
}

/// The problems and warnings of the key policy `text` of key `arn`, for the DR account `dr`.
fn judge_policy(text: &str, arn: &str, dr: &str) -> (Vec<String>, Vec<String>) {
    let policy: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return (vec![format!("its key policy is not JSON ({e})")], vec![]),
    };
    let partition = arn.split(':').nth(1).unwrap_or("aws");
    let root = format!("arn:{partition}:iam::{dr}:root");
    let statements: Vec<Statement> = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().enumerate().map(Statement::read).collect(),
        Some(one @ Value::Object(_)) => vec![Statement::read((0, one))],
        _ => Vec::new(),
    };
    let mut problems = Vec::new();
    let mut notes: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut note = |text: String, action: &'static str| {
        let actions = notes.entry(text).or_default();
        if !actions.contains(&action) {
            actions.push(action);
        }
    };

    let mut missing: Vec<String> = Vec::new();
    for &action in USE_ACTIONS {
        match best_allow(&statements, action, arn, dr, false) {
            None => missing.push(action.to_string()),
            Some((_, caveats)) => caveats.into_iter().for_each(|c| note(c, action)),
        }
    }
    match best_allow(&statements, GRANT_ACTION, arn, dr, true) {
        None => missing.push(format!(
            "{GRANT_ACTION} with the condition Bool {GRANT_CONDITION} true"
        )),
        Some((_, caveats)) => caveats.into_iter().for_each(|c| note(c, GRANT_ACTION)),
    }
    if !missing.is_empty() {
        problems.push(format!(
            "its key policy does not allow the DR account {dr} ({root}) {}, which EBS needs to copy what is shared; add {WHAT_TO_ADD}",
            missing.join(", ")
        ));
    }

    for s in &statements {
        if s.effect != Effect::Deny || !s.applies_to(arn, dr) {
            continue;
        }
        let denied: Vec<&str> = USE_ACTIONS
            .iter()
            .chain([GRANT_ACTION].iter())
            .copied()
            .filter(|a| s.covers(a))
            .collect();
        if denied.is_empty() {
            continue;
        }
        if !s.is_conditional() {
            problems.push(format!(
                "its key policy statement {} denies the DR account {dr} {}; remove them from that Deny",
                s.name,
                denied.join(", ")
            ));
        } else {
            for action in denied {
                note(
                    format!(
                        "statement {} denies it to the DR account {dr} under conditions this check does not evaluate ({}): make sure they do not hold for the DR account's use through EBS",
                        s.name,
                        s.condition_names().join(", ")
                    ),
                    action,
                );
            }
        }
    }
    let warnings = notes
        .into_iter()
        .map(|(text, actions)| format!("{}: {text}", actions.join(", ")))
        .collect();
    (problems, warnings)
}

/// The statement that best allows `action` to `dr` on key `arn`, with its caveats: one that
/// names the DR account with no conditions beyond the ones expected has none. `grant`: the
/// action is CreateGrant, whose expected condition is `Bool kms:GrantIsForAWSResource true`.
fn best_allow<'a>(
    statements: &'a [Statement],
    action: &str,
    arn: &str,
    dr: &str,
    grant: bool,
) -> Option<(&'a Statement, Vec<String>)> {
    statements
        .iter()
        .filter(|s| s.effect == Effect::Allow && s.resource_matches(arn) && s.covers(action))
        .filter(|s| match s.grant_condition {
            None => true,
            // CreateGrant: only a grant for AWS resources is what EBS asks for.
            Some(c) if grant => c.value,
            // Any other call has no such key: `Bool` fails on it, `BoolIfExists` holds.
            Some(c) => c.if_exists,
        })
        .filter_map(|s| {
            let caveats = s.caveats(dr, grant)?;
            Some((s, caveats))
        })
        .min_by_key(|(_, caveats)| caveats.len())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
    Other,
}

/// Whom a statement's `Principal` names, of interest here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Names {
    Nobody,
    /// `*`: every principal of every account.
    Anyone,
    /// One principal of the DR account (a role, a user), not the whole account.
    PrincipalOf(String),
    /// The DR account itself: its root ARN or its bare id.
    Account,
}

/// One key policy statement, as far as this check reads it.
#[derive(Debug)]
struct Statement {
    /// Its `Sid`, else `#n` (1-based).
    name: String,
    effect: Effect,
    /// `Principal`; `None` with `NotPrincipal` (only `excluded` then).
    principal: Option<Value>,
    /// `NotPrincipal`.
    excluded: Option<Value>,
    /// `Action` patterns; `not_actions`: `NotAction` patterns.
    actions: Vec<String>,
    not_actions: Option<Vec<String>>,
    resources: Vec<String>,
    not_resources: Option<Vec<String>>,
    /// `operator:key` of each condition, in the order written.
    conditions: Vec<String>,
    /// `Bool` (or `BoolIfExists`) `kms:GrantIsForAWSResource`, when set (not in `conditions`).
    grant_condition: Option<GrantCondition>,
}

/// A statement's condition on `kms:GrantIsForAWSResource`.
#[derive(Debug, Clone, Copy)]
struct GrantCondition {
    /// It asks for `true`.
    value: bool,
    /// `BoolIfExists`: it holds, too, for a request without the key (any call but CreateGrant).
    if_exists: bool,
}

impl Statement {
    fn read((index, v): (usize, &Value)) -> Self {
        let list = |field: &str| v.get(field).map(strings);
        let mut conditions = Vec::new();
        let mut grant_condition = None;
        if let Some(Value::Object(operators)) = v.get("Condition") {
            for (operator, keys) in operators {
                let Value::Object(keys) = keys else { continue };
                for (key, value) in keys {
                    let if_exists = operator.eq_ignore_ascii_case("BoolIfExists");
                    let bool_op = if_exists || operator.eq_ignore_ascii_case("Bool");
                    if bool_op && key.eq_ignore_ascii_case(GRANT_CONDITION) {
                        let values = match value {
                            Value::Bool(b) => vec![b.to_string()],
                            other => strings(other),
                        };
                        grant_condition = Some(GrantCondition {
                            value: !values.is_empty()
                                && values.iter().all(|s| s.eq_ignore_ascii_case("true")),
                            if_exists,
                        });
                    } else {
                        conditions.push(format!("{operator} {key}"));
                    }
                }
            }
        }
        Self {
            name: v
                .get("Sid")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{}", index + 1)),
            effect: match v.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => Effect::Other,
            },
            principal: v.get("Principal").cloned(),
            excluded: v.get("NotPrincipal").cloned(),
            actions: list("Action").unwrap_or_default(),
            not_actions: list("NotAction"),
            resources: list("Resource").unwrap_or_default(),
            not_resources: list("NotResource"),
            conditions,
            grant_condition,
        }
    }

    fn is_conditional(&self) -> bool {
        !self.conditions.is_empty() || self.grant_condition.is_some()
    }

    fn condition_names(&self) -> Vec<String> {
        let mut names = self.conditions.clone();
        if self.grant_condition.is_some() {
            names.push(format!("Bool {GRANT_CONDITION}"));
        }
        names
    }

    fn covers(&self, action: &str) -> bool {
        match &self.not_actions {
            Some(not) => !not.iter().any(|p| action_matches(p, action)),
            None => self.actions.iter().any(|p| action_matches(p, action)),
        }
    }

    /// A key policy's `Resource` is `*` (this key) or the key's ARN.
    fn resource_matches(&self, arn: &str) -> bool {
        match &self.not_resources {
            Some(not) => !not.iter().any(|p| glob(p.as_bytes(), arn.as_bytes())),
            None => {
                self.resources.is_empty()
                    || self
                        .resources
                        .iter()
                        .any(|p| glob(p.as_bytes(), arn.as_bytes()))
            }
        }
    }

    fn names(&self, dr: &str) -> Names {
        match (&self.principal, &self.excluded) {
            (Some(p), _) => names(p, dr),
            // `NotPrincipal` (with Deny): every principal but those listed.
            (None, Some(not)) if names(not, dr) == Names::Account => Names::Nobody,
            (None, Some(_)) => Names::Anyone,
            (None, None) => Names::Nobody,
        }
    }

    fn applies_to(&self, arn: &str, dr: &str) -> bool {
        self.resource_matches(arn) && self.names(dr) != Names::Nobody
    }

    /// Why this Allow statement is not quite the guide's, for `dr`; `None`: it does not name
    /// the DR account at all.
    fn caveats(&self, dr: &str, grant: bool) -> Option<Vec<String>> {
        let mut caveats = Vec::new();
        match self.names(dr) {
            Names::Nobody => return None,
            Names::Account => {}
            Names::PrincipalOf(arn) => caveats.push(format!(
                "statement {} allows it only to {arn}, not to the whole DR account {dr}: that principal must be the one that copies (the vault's replicate role)",
                self.name
            )),
            Names::Anyone if !self.is_conditional() => {
                caveats.push(format!(
                    "statement {} allows it to any principal (\"*\") with no condition: every AWS account whose own policies allow it can use this key; name the DR account (arn:aws:iam::{dr}:root) instead",
                    self.name
                ))
            }
            Names::Anyone => caveats.push(format!(
                "statement {} allows it to any principal (\"*\") under conditions: check that they admit the DR account {dr}",
                self.name
            )),
        }
        if !self.conditions.is_empty() {
            caveats.push(format!(
                "statement {} allows it under conditions this check does not evaluate ({}): make sure they hold for the DR account's use through EBS",
                self.name,
                self.conditions.join(", ")
            ));
        }
        if grant && self.grant_condition.is_none() {
            caveats.push(format!(
                "statement {} allows it without the condition Bool {GRANT_CONDITION} true: the DR account may grant the key's use to anyone; add the condition, as ShareKeyPolicyStatements does",
                self.name
            ));
        }
        Some(caveats)
    }
}

/// Whom `principal` (a statement's `Principal` or `NotPrincipal`) names, the best of its
/// entries.
fn names(principal: &Value, dr: &str) -> Names {
    let entries: Vec<String> = match principal {
        Value::String(s) => vec![s.clone()],
        Value::Object(map) => map.get("AWS").map(strings).unwrap_or_default(),
        _ => Vec::new(),
    };
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            if e == "*" {
                return Names::Anyone;
            }
            if e == dr {
                return Names::Account;
            }
            // arn:<partition>:iam::<account>:<what> (or sts:: for an assumed role)
            let parts: Vec<&str> = e.splitn(6, ':').collect();
            if parts.len() == 6
                && parts[0] == "arn"
                && matches!(parts[2], "iam" | "sts")
                && parts[4] == dr
            {
                if parts[2] == "iam" && parts[5] == "root" {
                    return Names::Account;
                }
                return Names::PrincipalOf(e.to_string());
            }
            Names::Nobody
        })
        .max()
        .unwrap_or(Names::Nobody)
}

/// A string, or a list of strings (anything else: none).
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// An `Action` pattern against an action, as IAM matches them: case-insensitive, `*` any run
/// of characters, `?` any one.
fn action_matches(pattern: &str, action: &str) -> bool {
    glob(
        pattern.trim().to_ascii_lowercase().as_bytes(),
        action.to_ascii_lowercase().as_bytes(),
    )
}

/// `*` and `?` wildcards, case as given.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DR: &str = "444455556666";
    const HOME: &str = "111122223333";
    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn region() -> Region {
        Region::parse("us-east-1").unwrap()
    }

    /// The key administrators' statement every real key policy has.
    fn admin() -> Value {
        json!({"Sid": "EnableIamUserPermissions", "Effect": "Allow",
               "Principal": {"AWS": format!("arn:aws:iam::{HOME}:root")},
               "Action": "kms:*", "Resource": "*"})
    }

    /// The two statements of docs/dr-account.md (ShareKeyPolicyStatements).
    fn guide() -> Vec<Value> {
        vec![
            json!({"Sid": "AllowDrAccountUseOfTheKey", "Effect": "Allow",
                   "Principal": {"AWS": format!("arn:aws:iam::{DR}:root")},
                   "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                   "Resource": "*"}),
            json!({"Sid": "AllowDrAccountGrantsForAwsResources", "Effect": "Allow",
                   "Principal": {"AWS": format!("arn:aws:iam::{DR}:root")},
                   "Action": "kms:CreateGrant", "Resource": "*",
                   "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}),
        ]
    }

    fn key(statements: Vec<Value>) -> KeyDescription {
        let policy = json!({"Version": "2012-10-17", "Statement": statements});
        KeyDescription {
            arn: ARN.into(),
            account: HOME.into(),
            manager: KeyManager::Customer,
            state: KeyState::Enabled,
            spec: "SYMMETRIC_DEFAULT".into(),
            usage: "ENCRYPT_DECRYPT".into(),
            policy: Some(Ok(policy.to_string())),
        }
    }

    fn check(d: KeyDescription) -> KeyCheck {
        check_share_key(&region(), ARN, &Lookup::Found(d), DR)
    }

    fn with(mut statements: Vec<Value>, more: Vec<Value>) -> Vec<Value> {
        statements.extend(more);
        statements
    }

    #[test]
    fn the_guides_statements_are_ok_with_no_warning() {
        let c = check(key(with(vec![admin()], guide())));
        assert!(c.ok, "{c:?}");
        assert!(c.warnings.is_empty(), "{c:?}");
        assert_eq!(
            c.message,
            format!("share key {ARN} in us-east-1: ok, the DR account {DR} may use it")
        );
    }

    #[test]
    fn the_principal_may_be_the_bare_id_or_a_list_with_it_and_the_actions_any_case_or_wildcard() {
        let statements = vec![
            admin(),
            json!({"Effect": "Allow",
                   "Principal": {"AWS": ["arn:aws:iam::999999999999:root", DR]},
                   "Action": ["KMS:decrypt", "kms:Describe*", "kms:reencrypt*", "kms:GenerateDataKey*"],
                   "Resource": ARN}),
            json!({"Effect": "Allow", "Principal": {"AWS": [format!("arn:aws:iam::{DR}:root")]},
                   "Action": ["kms:CreateGrant"], "Resource": "*",
                   "Condition": {"Bool": {"kms:grantisforawsresource": true}}}),
        ];
        let c = check(key(statements));
        assert!(c.ok && c.warnings.is_empty(), "{c:?}");
        // kms:* under BoolIfExists covers them all (the other calls have no such key)...
        let all = |operator: &str| {
            check(key(vec![
                json!({"Effect": "Allow", "Principal": {"AWS": DR},
                "Action": "kms:*", "Resource": "*",
                "Condition": {operator: {"kms:GrantIsForAWSResource": ["true"]}}}),
            ]))
        };
        let c = all("BoolIfExists");
        assert!(c.ok && c.warnings.is_empty(), "{c:?}");
        // ... under Bool only CreateGrant, as IAM reads a condition key the request lacks.
        let c = all("Bool");
        assert_eq!(c.problems.len(), 1, "{c:?}");
        assert!(
            c.problems[0].contains("kms:Decrypt, kms:DescribeKey"),
            "{c:?}"
        );
    }

    #[test]
    fn a_policy_that_does_not_name_the_dr_account_names_every_missing_action_and_what_to_add() {
        let c = check(key(vec![admin()]));
        assert!(!c.ok);
        assert_eq!(c.problems.len(), 1, "{c:?}");
        let all = c.problems.join("\n");
        for text in [
            ARN,
            "us-east-1",
            DR,
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
            "kms:GenerateDataKeyWithoutPlaintext",
            "kms:CreateGrant with the condition Bool kms:GrantIsForAWSResource true",
            "ShareKeyPolicyStatements",
        ] {
            assert!(all.contains(text), "{text}: {all}");
        }
        assert!(
            c.message
                .starts_with(&format!("share key {ARN} in us-east-1: "))
        );
    }

    #[test]
    fn only_the_actions_missing_are_named() {
        let mut statements = guide();
        statements[0]["Action"] = json!(["kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom"]);
        let c = check(key(statements));
        assert_eq!(c.problems.len(), 1, "{c:?}");
        assert!(
            c.problems[0].contains("kms:ReEncryptTo, kms:GenerateDataKeyWithoutPlaintext, which")
                && !c.problems[0].contains("kms:Decrypt"),
            "{c:?}"
        );
    }

    #[test]
    fn another_account_or_a_service_principal_does_not_count() {
        let mut statements = guide();
        for s in &mut statements {
            s["Principal"] = json!({"AWS": "arn:aws:iam::999999999999:root"});
        }
        statements.push(
            json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                               "Action": "kms:*", "Resource": "*"}),
        );
        let c = check(key(statements));
        assert_eq!(c.problems.len(), 1, "{c:?}");
        assert!(c.problems[0].contains("kms:Decrypt") && c.problems[0].contains("kms:CreateGrant"));
    }

    #[test]
    fn a_grant_for_other_than_aws_resources_does_not_count_and_none_without_the_condition_warns() {
        let mut statements = guide();
        statements[1]["Condition"] = json!({"Bool": {"kms:GrantIsForAWSResource": "false"}});
        let c = check(key(statements));
        assert_eq!(c.problems.len(), 1, "{c:?}");
        assert!(c.problems[0].contains("kms:CreateGrant"), "{c:?}");

        let mut statements = guide();
        statements[1].as_object_mut().unwrap().remove("Condition");
        let c = check(key(statements));
        assert!(c.ok, "{c:?}");
        assert_eq!(c.warnings.len(), 1, "{c:?}");
        assert!(
            c.warnings[0].contains("kms:CreateGrant: statement AllowDrAccountGrantsForAwsResources allows it without the condition"),
            "{c:?}"
        );
    }

    #[test]
    fn anyone_counts_with_a_warning_and_conditions_not_evaluated_are_named() {
        let c = check(key(vec![
            json!({"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*",
                   "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}),
            json!({"Sid": "OpenUse", "Effect": "Allow", "Principal": {"AWS": "*"},
                   "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncrypt*", "kms:GenerateDataKey*"], "Resource": "*"}),
        ]));
        assert!(c.ok, "{c:?}");
        let all = c.warnings.join("\n");
        assert!(
            all.contains("statement OpenUse allows it to any principal (\"*\") with no condition"),
            "{all}"
        );
        assert!(
            all.contains("statement Open allows it to any principal (\"*\") under conditions"),
            "{all}"
        );

        let mut statements = guide();
        statements[0]["Condition"] =
            json!({"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}});
        let c = check(key(statements));
        assert!(c.ok, "{c:?}");
        assert_eq!(c.warnings.len(), 1, "{c:?}");
        assert!(
            c.warnings[0].contains("kms:Decrypt, kms:DescribeKey, kms:ReEncryptFrom, kms:ReEncryptTo, kms:GenerateDataKeyWithoutPlaintext: statement AllowDrAccountUseOfTheKey allows it under conditions this check does not evaluate (StringEquals kms:ViaService)"),
            "{c:?}"
        );
    }

    #[test]
    fn a_role_of_the_dr_account_counts_with_a_warning() {
        let role = format!("arn:aws:iam::{DR}:role/vault-replicate");
        let mut statements = guide();
        for s in &mut statements {
            s["Principal"] = json!({"AWS": role});
        }
        let c = check(key(statements));
        assert!(c.ok, "{c:?}");
        assert!(c.warnings.iter().all(|w| w.contains(&role)), "{c:?}");
    }

    #[test]
    fn a_deny_of_the_dr_account_is_a_problem_and_a_conditional_one_a_warning() {
        let deny = json!({"Sid": "NoDecrypt", "Effect": "Deny", "Principal": {"AWS": DR},
                          "Action": "kms:Decrypt", "Resource": "*"});
        let c = check(key(with(guide(), vec![deny.clone()])));
        assert_eq!(c.problems.len(), 1, "{c:?}");
        assert!(
            c.problems[0]
                .contains("statement NoDecrypt denies the DR account 444455556666 kms:Decrypt"),
            "{c:?}"
        );

        let mut conditional = deny;
        conditional["Condition"] = json!({"Bool": {"aws:SecureTransport": "false"}});
        let c = check(key(with(guide(), vec![conditional])));
        assert!(c.ok, "{c:?}");
        assert!(c.warnings[0].contains("denies it"), "{c:?}");

        // The guard of docs/dr-account.md denies only what the DR account does not need.
        let guard = json!({"Sid": "DenyKeyDestructionButBreakGlass", "Effect": "Deny", "Principal": {"AWS": "*"},
                           "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy"],
                           "Resource": "*",
                           "Condition": {"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/break-glass"}}});
        let c = check(key(with(guide(), vec![guard])));
        assert!(c.ok && c.warnings.is_empty(), "{c:?}");
    }

    #[test]
    fn not_action_and_a_single_statement_object_are_read() {
        let policy = json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": DR},
            "NotAction": ["kms:ScheduleKeyDeletion"], "Resource": "*",
            "Condition": {"BoolIfExists": {"kms:GrantIsForAWSResource": "true"}}}});
        let d = KeyDescription {
            policy: Some(Ok(policy.to_string())),
            ..key(vec![])
        };
        assert!(check(d).ok);
        // A resource that is another key's ARN does not cover this key.
        let mut statements = guide();
        statements[0]["Resource"] = json!("arn:aws:kms:us-east-1:111122223333:key/other");
        assert!(!check(key(statements)).ok);
    }

    #[test]
    fn an_aws_managed_missing_disabled_or_asymmetric_key_is_a_problem_saying_what_to_do() {
        let aws = KeyDescription {
            manager: KeyManager::Aws,
            ..key(vec![admin()])
        };
        let c = check(aws);
        assert_eq!(c.problems.len(), 1, "the policy is not judged: {c:?}");
        assert!(
            c.problems[0].contains("is AWS managed") && c.problems[0].contains("SHARE_KMS_KEYS")
        );

        let c = check_share_key(&region(), ARN, &Lookup::Missing, DR);
        assert!(c.message.contains("does not exist in us-east-1"), "{c:?}");

        let disabled = KeyDescription {
            state: KeyState::parse("Disabled"),
            ..key(guide())
        };
        let c = check(disabled);
        assert_eq!(c.problems.len(), 1, "{c:?}");
        assert!(
            c.problems[0].contains("is Disabled")
                && c.problems[0].contains("aws kms enable-key --region us-east-1")
        );

        let pending = KeyDescription {
            state: KeyState::parse("PendingDeletion"),
            spec: "RSA_2048".into(),
            ..key(guide())
        };
        let c = check(pending);
        assert_eq!(c.problems.len(), 2, "{c:?}");
        assert!(
            c.message.contains("KeySpec RSA_2048") && c.message.contains("cancel-key-deletion")
        );

        let unreadable = KeyDescription {
            policy: Some(Err(
                "GetKeyPolicy in us-east-1 failed: AccessDeniedException: no".into(),
            )),
            ..key(vec![])
        };
        assert!(check(unreadable).message.contains("AccessDeniedException"));
        let garbled = KeyDescription {
            policy: Some(Ok("{not json".into())),
            ..key(vec![])
        };
        assert!(check(garbled).message.contains("not JSON"));
    }

    #[test]
    fn a_vault_copy_key_must_be_the_vaults_own_and_enabled() {
        let own = KeyDescription {
            account: DR.into(),
            manager: KeyManager::Aws,
            policy: None,
            ..key(vec![])
        };
        let c = check_copy_key(&region(), "alias/vault", &Lookup::Found(own.clone()), DR);
        assert!(c.ok, "{c:?}");
        assert_eq!(c.role, KeyRole::VaultCopy);

        let theirs = KeyDescription {
            account: HOME.into(),
            state: KeyState::Disabled,
            ..own
        };
        let c = check_copy_key(&region(), ARN, &Lookup::Found(theirs), DR);
        assert_eq!(c.problems.len(), 2, "{c:?}");
        assert!(
            c.problems[0].contains("is in account 111122223333, not in this one (444455556666)")
        );
        let c = check_copy_key(&region(), "alias/gone", &Lookup::Missing, DR);
        assert!(
            c.message
                .starts_with("vault copy key alias/gone in us-east-1: does not exist")
        );
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(action_matches("kms:*", "kms:Decrypt"));
        assert!(action_matches("*", "kms:Decrypt"));
        assert!(action_matches("KMS:ReEncrypt*", "kms:ReEncryptTo"));
        assert!(action_matches("kms:ReEncrypt?o", "kms:ReEncryptTo"));
        assert!(action_matches(
            "kms:Generate*Plaintext",
            "kms:GenerateDataKeyWithoutPlaintext"
        ));
        assert!(!action_matches(
            "kms:GenerateDataKey",
            "kms:GenerateDataKeyWithoutPlaintext"
        ));
        assert!(!action_matches("kms:Decrypt*", "kms:DescribeKey"));
        assert!(!action_matches("ec2:*", "kms:Decrypt"));
    }
}
