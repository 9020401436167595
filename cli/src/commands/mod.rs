//! One module per subcommand, on top of `shared`: the same configuration, tag contract, adapter
//! and runs as the functions (`backup` is create's on-demand run, `drill` the drill function's
//! run, `check-dr` the core's KMS pre-flight). `context` holds what they all run with,
//! `placement` where restore puts what it makes and the check of a subnet given by name.

mod backup;
mod check_dr;
mod context;
mod drill;
mod evidence;
mod placement;
mod restore;
mod status;

use crate::cli::{Cli, Command, Format, Restore, given};
use crate::error::{CliError, Result};
use context::Ctx;
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    if cli.format() == Format::Markdown && !matches!(cli.command, Command::Evidence { .. }) {
        return Err(CliError::bad_input(
            "--output markdown",
            "only evidence prints markdown: use table or json",
        ));
    }
    let ctx = Ctx::new(&cli.settings, cli.format()).await?;
    let region_or_home =
        |region: Option<shared::Region>| region.unwrap_or_else(|| ctx.home().clone());
    match cli.command {
        Command::Status { regions } => status::run(&ctx, &regions).await,
        Command::Backup {
            ids,
            wait,
            copies,
            timeout,
            dry_run,
        } => {
            let options = backup::Options {
                wait,
                copies,
                timeout: Duration::from_secs(timeout),
                dry_run,
            };
            backup::run(&ctx, &ids, options).await
        }
        Command::Restore(Restore::Instance {
            instance_id,
            region,
            image,
            before,
            instance_type,
            subnet,
            availability_zone,
            security_groups,
            key_name,
            dry_run,
        }) => {
            let choice = restore::Choice {
                named: image,
                before,
            };
            let overrides = restore::InstanceOverrides {
                instance_type,
                subnet,
                availability_zone,
                security_groups,
                key_name,
            };
            let region = region_or_home(region);
            restore::instance(&ctx, &instance_id, &region, choice, overrides, dry_run).await
        }
        Command::Restore(Restore::Volume {
            volume_id,
            availability_zone,
            region,
            snapshot,
            before,
            attach,
            device,
            volume_type,
            dry_run,
        }) => {
            let choice = restore::Choice {
                named: snapshot,
                before,
            };
            let options = restore::VolumeOptions {
                availability_zone,
                // clap makes --attach and --device go together.
                attach: attach.zip(device),
                volume_type,
                dry_run,
            };
            let region = region_or_home(region);
            restore::volume(&ctx, &volume_id, &region, choice, options).await
        }
        Command::Drill {
            resources,
            regions,
            subnet,
            timeout,
            bucket,
            dry_run,
        } => {
            let options = drill::Options {
                resources: resources.into_iter().map(|r| r.id).collect(),
                regions,
                subnet,
                timeout,
                bucket: given(&bucket),
                dry_run,
            };
            drill::run(&ctx, options).await
        }
        Command::Evidence {
            since,
            resources,
            bucket,
        } => {
            let options = evidence::Options {
                since,
                resources: resources.into_iter().map(|r| r.id).collect(),
                bucket: given(&bucket),
            };
            evidence::run(&ctx, options).await
        }
        Command::CheckDr { dr_account, vault } => {
            let options = check_dr::Options {
                dr_account: given(&dr_account),
                vault,
            };
            check_dr::run(&ctx, options).await
        }
    }
}
