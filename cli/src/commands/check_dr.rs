//! `ec2-backup check-dr`: the KMS pre-flight of the isolated DR account, before the first share.
//!
//! With the home account's credentials (the default): each share key of `SHARE_KMS_KEYS`, in
//! its region, exists, is customer managed, symmetric and enabled, and its key policy lets the
//! DR account (`--dr-account`, `DR_ACCOUNT`) use it as the EBS guide gives it. With `--vault`
//! and the DR account's credentials: each copy key of `COPY_KMS_KEYS` exists in this account,
//! is symmetric and enabled. The checks are the core's (`shared::dr::preflight`).
//!
//! One line (or JSON object) per key and region, `ok` or its problems. Exit code 0 when every
//! key is ok, 1 when one is not, 2 when the check could not run (no DR account, no keys, the
//! wrong account's credentials).

use super::context::Ctx;
use crate::error::{CliError, Result};
use crate::output::json;
use serde::Serialize;
use shared::Region;
use shared::dr::preflight::{KeyCheck, KeyManager, Lookup, check_copy_key, check_share_key};
use shared::kms::Kms;
use std::collections::BTreeMap;
use std::process::ExitCode;

pub struct Options {
    /// `--dr-account`, else `DR_ACCOUNT` (clap reads it).
    pub dr_account: Option<String>,
    /// Check the vault's copy keys in this account instead of the home account's share keys.
    pub vault: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
enum Checked {
    /// The home account's share keys, for the DR account.
    Share,
    /// The vault's own copy keys.
    Vault,
}

#[derive(Debug, Serialize)]
struct Report {
    checked: Checked,
    /// The DR account the share keys must admit, or the vault's own account.
    account: String,
    /// Every key is ok.
    ok: bool,
    keys: Vec<KeyCheck>,
}

pub async fn run(ctx: &Ctx, options: Options) -> Result<ExitCode> {
    let report = if options.vault {
        vault(ctx, options.dr_account).await?
    } else {
        share(ctx, options.dr_account).await?
    };
    if ctx.json() {
        json(&report)?;
    } else {
        print_lines(&report);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The home side: each share key, for the DR account.
async fn share(ctx: &Ctx, dr_account: Option<String>) -> Result<Report> {
    let dr = dr_account.ok_or_else(|| {
        CliError::bad_input(
            "the DR account",
            "none given: pass --dr-account or set DR_ACCOUNT (the vault stack's output VaultAccountId)",
        )
    })?;
    let keys = nonempty(
        &ctx.config.share_kms_keys,
        "SHARE_KMS_KEYS",
        "is empty, so there is no share key to check: set SHARE_KMS_KEYS=region=key-arn,... (the home stack's parameter ShareKmsKeys) to the customer managed keys the DR account may use",
    )?;
    let own = own_account(ctx).await?;
    if own == dr {
        return Err(CliError::bad_input(
            "--dr-account / DR_ACCOUNT",
            format!(
                "{dr} is the account of these credentials: run check-dr with the home account's credentials, and name the DR account (the vault's)"
            ),
        ));
    }
    let mut checks = Vec::new();
    for (region, key) in keys {
        let lookup = look_up(ctx, region, key, true).await;
        checks.push(check_share_key(region, key, &lookup, &dr));
    }
    Ok(Report {
        checked: Checked::Share,
        ok: checks.iter().all(|c| c.ok),
        account: dr,
        keys: checks,
    })
}

/// The vault side: each copy key, in this account (the DR account's credentials).
async fn vault(ctx: &Ctx, dr_account: Option<String>) -> Result<Report> {
    let keys = nonempty(
        &ctx.config.copy_kms_keys,
        "COPY_KMS_KEYS",
        "is empty, so there is no vault copy key to check (the copies are on this account's default EBS key in each region, which needs none): set COPY_KMS_KEYS=region=key,... (the vault stack's parameter CopyKmsKeys) to check the vault's own keys",
    )?;
    let own = own_account(ctx).await?;
    if let Some(dr) = dr_account.filter(|dr| *dr != own) {
        return Err(CliError::bad_input(
            "--vault",
            format!(
                "these credentials are in account {own}, not in the DR account {dr}: run check-dr --vault with the DR account's credentials"
            ),
        ));
    }
    let mut checks = Vec::new();
    for (region, key) in keys {
        let lookup = look_up(ctx, region, key, false).await;
        checks.push(check_copy_key(region, key, &lookup, &own));
    }
    Ok(Report {
        checked: Checked::Vault,
        ok: checks.iter().all(|c| c.ok),
        account: own,
        keys: checks,
    })
}

fn nonempty<'a>(
    keys: &'a BTreeMap<Region, String>,
    variable: &str,
    reason: &str,
) -> Result<&'a BTreeMap<Region, String>> {
    if keys.is_empty() {
        Err(CliError::bad_input(variable, reason))
    } else {
        Ok(keys)
    }
}

async fn own_account(ctx: &Ctx) -> Result<String> {
    shared::sts::own_account(&ctx.sdk)
        .await
        .map_err(CliError::aws("reading the account of these credentials"))
}

/// DescribeKey, then (`with_policy`, a customer managed key) GetKeyPolicy. A failure is this
/// key's problem, not the command's: the other keys are still checked.
async fn look_up(ctx: &Ctx, region: &Region, key: &str, with_policy: bool) -> Lookup {
    let kms = Kms::for_region(&ctx.sdk, region);
    match kms.describe_key(key).await {
        Ok(None) => Lookup::Missing,
        Err(e) => Lookup::Failed(e.to_string()),
        Ok(Some(mut found)) => {
            if with_policy && found.manager == KeyManager::Customer {
                found.policy = Some(kms.key_policy(&found.arn).await.map_err(|e| e.to_string()));
            }
            Lookup::Found(found)
        }
    }
}

fn print_lines(report: &Report) {
    for check in &report.keys {
        println!("{}", check.message);
        // Under their key's line, the warnings need not name it again.
        let subject = format!("{}: ", check.subject);
        for warning in &check.warnings {
            println!(
                "  warning: {}",
                warning.strip_prefix(&subject).unwrap_or(warning)
            );
        }
    }
    let ok = report.keys.iter().filter(|c| c.ok).count();
    println!("{ok} of {} keys ok", report.keys.len());
}
