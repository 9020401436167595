//! What the on-call view ([`backup_core::status`]) and `monitor` are computed from, read from EC2 in one place: the
//! opted-in instances and volumes of the home region with their policies, every backup of this
//! deployment in the home region and each DR region, and which backed-up sources still exist.
//! The CLI's `ec2-backup status` and the monitor function both read through [`gather`].
//!
//! Calls: one paginated sweep of instances and one of volumes at home; two paginated describes
//! per region (images, snapshots), the regions read in parallel; and lookups by id only for the
//! backed-up sources the sweep did not already show.

use crate::backup::{Backup, BackupQuery};
use crate::clients::Clients;
use crate::config::Config;
use crate::ec2::Ec2;
use crate::region::Region;
use crate::source::Source;
use crate::tags::{Kind, TagKeys, resolve_policy};
pub use backup_core::status::*;
use futures::future::try_join_all;
use std::collections::{BTreeSet, HashSet};

/// The sweep of the home region: every running or stopped instance and every in-use or
/// available volume that carries the opt-in key, with `instance` or `volume`.
async fn sweep(keys: &TagKeys, ec2: &Ec2) -> Result<Vec<(&'static str, Source)>, GatherError> {
    let home = ec2.region();
    let instances = ec2
        .instances(keys, None)
        .await
        .map_err(GatherError::while_(format!(
            "listing the instances in {home}"
        )))?;
    let volumes = ec2
        .volumes(keys, None)
        .await
        .map_err(GatherError::while_(format!(
            "listing the volumes in {home}"
        )))?;
    Ok(instances
        .into_iter()
        .map(|s| ("instance", s))
        .chain(volumes.into_iter().map(|s| ("volume", s)))
        .collect())
}

/// The swept sources that opt in, with what their tags resolve to.
fn opted_in(
    config: &Config,
    keys: &TagKeys,
    swept: Vec<(&'static str, Source)>,
) -> Vec<(Source, Resource)> {
    swept
        .into_iter()
        .filter(|(_, source)| keys.opt_in_state(&source.tags).is_ok())
        .map(|(kind, source)| {
            let policy = resolve_policy(keys, config, &source.id, &source.tags, &mut Vec::new());
            let resource = Resource {
                id: source.id.clone(),
                kind,
                name: source.name().map(str::to_string),
                interval: policy.interval,
                copy_to: policy.copy_to,
            };
            (source, resource)
        })
        .collect()
}

/// The opted-in instances and volumes of the home region (`ec2`'s), with their policies.
pub async fn resources(
    config: &Config,
    keys: &TagKeys,
    ec2: &Ec2,
) -> Result<Vec<(Source, Resource)>, GatherError> {
    Ok(opted_in(config, keys, sweep(keys, ec2).await?))
}

/// One region's listing: the backups, and with [`Listing::Everything`] the rest.
async fn list(
    keys: &TagKeys,
    deployment: &str,
    ec2: Ec2,
    listing: Listing,
) -> Result<(Vec<Backup>, Vec<Backup>), GatherError> {
    let failed = GatherError::listing_backups(deployment, ec2.region());
    match listing {
        Listing::Backups => ec2
            .managed_backups(keys, deployment)
            .await
            .map(|b| (b, Vec::new()))
            .map_err(failed),
        Listing::Everything => {
            let images = BackupQuery::everything(Kind::Image, deployment);
            let snapshots = BackupQuery::everything(Kind::Snapshot, deployment);
            let (images, snapshots) =
                tokio::try_join!(ec2.backups(keys, &images), ec2.backups(keys, &snapshots))
                    .map_err(failed)?;
            Ok(images
                .into_iter()
                .chain(snapshots)
                .partition(Backup::is_managed_backup))
        }
    }
}

/// Which of the sources named by `backups` still exist: those the sweep showed (`known`, all
/// running, stopped, in use or available), and of the rest those a lookup by id finds
/// (an instance that is terminated or shutting down does not count).
async fn existing_sources(
    keys: &TagKeys,
    ec2: &Ec2,
    backups: &[Backup],
    known: HashSet<String>,
) -> Result<HashSet<String>, GatherError> {
    let ids: BTreeSet<&str> = backups
        .iter()
        .filter_map(|b| b.source.as_deref())
        .filter(|id| !known.contains(*id))
        .collect();
    let of = |prefix: &str| -> Vec<String> {
        ids.iter()
            .filter(|i| i.starts_with(prefix))
            .map(|s| s.to_string())
            .collect()
    };
    let (instances, volumes) = (of("i-"), of("vol-"));
    let home = ec2.region();
    let mut existing = known;
    // The adapter cuts the ids into filters of at most 200 values.
    if !instances.is_empty() {
        let found = ec2
            .instances(keys, Some(&instances))
            .await
            .map_err(GatherError::while_(format!(
                "looking up the backed-up instances in {home}"
            )))?;
        existing.extend(
            found
                .into_iter()
                .filter(|s| !s.state.is_gone())
                .map(|s| s.id),
        );
    }
    if !volumes.is_empty() {
        let found = ec2
            .volumes(keys, Some(&volumes))
            .await
            .map_err(GatherError::while_(format!(
                "looking up the backed-up volumes in {home}"
            )))?;
        existing.extend(found.into_iter().map(|s| s.id));
    }
    Ok(existing)
}

/// Everything `status` and `monitor` need, read once: the resources of the home region, the
/// listing of the home region, `COPY_TO_REGIONS`, every resource's `P:copy-to` regions and
/// `extra`, and which backed-up sources still exist.
pub async fn gather(
    config: &Config,
    keys: &TagKeys,
    clients: &Clients,
    extra: &[Region],
    listing: Listing,
) -> Result<Inputs, GatherError> {
    let home = clients.home_region();
    let ec2 = clients.home();
    let swept = sweep(keys, &ec2).await?;
    let known: HashSet<String> = swept.iter().map(|(_, s)| s.id.clone()).collect();
    let resources: Vec<Resource> = opted_in(config, keys, swept)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let mut others: BTreeSet<&Region> = BTreeSet::new();
    others.extend(&config.copy_to_regions);
    others.extend(resources.iter().flat_map(|r| &r.copy_to));
    others.extend(extra);
    others.remove(home);
    let regions: Vec<Region> = std::iter::once(home).chain(others).cloned().collect();
    let deployment = config.deployment_name.as_str();
    let listings = try_join_all(
        regions
            .iter()
            .map(|region| list(keys, deployment, clients.region(region), listing)),
    )
    .await?;
    let (mut backups, mut rest) = (Vec::new(), Vec::new());
    for (b, r) in listings {
        backups.extend(b);
        rest.extend(r);
    }
    let existing_sources = existing_sources(keys, &ec2, &backups, known).await?;
    Ok(Inputs {
        regions,
        resources,
        backups,
        others: rest,
        existing_sources,
    })
}
