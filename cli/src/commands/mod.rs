//! One module per subcommand, on top of `shared`: the same configuration, tag contract, adapter
//! and create pipeline as the functions. `context` holds what they all run with, `placement`
//! where restore and drill put what they make.

mod backup;
mod context;
mod drill;
mod placement;
mod restore;
mod status;

use crate::cli::{Cli, Command, Restore};
use crate::error::Result;
use context::Ctx;
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(cli: Cli) -> Result<ExitCode> {
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
            regions,
            subnet,
            timeout,
            dry_run,
        } => {
            let options = drill::Options {
                regions,
                subnet,
                timeout: Duration::from_secs(timeout),
                dry_run,
            };
            drill::run(&ctx, options).await
        }
    }
}
