//! Where a restore goes: a zone and a subnet the region really has and offers now
//! (DescribeAvailabilityZones, DescribeSubnets), never a guessed `{region}a`, which may be
//! impaired, or not be a zone of this account at all.

use crate::error::{CliError, Result};
use shared::Region;
use shared::ec2::Ec2;
use shared::restore::{Subnet, Zone};

async fn available_zones(ec2: &Ec2, region: &Region) -> Result<Vec<Zone>> {
    ec2.available_zones().await.map_err(CliError::aws(format!(
        "listing the availability zones of {region}"
    )))
}

fn names(zones: &[Zone]) -> String {
    zones
        .iter()
        .map(|z| z.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `zone` when it is an available zone of the region, else a bad-input error that lists them.
async fn check_zone(ec2: &Ec2, region: &Region, zone: &str) -> Result<()> {
    let zones = available_zones(ec2, region).await?;
    if zones.iter().any(|z| z.name == zone) {
        Ok(())
    } else {
        Err(CliError::bad_input(
            format!("--availability-zone {zone}"),
            format!(
                "not an available zone of {region} (available: {})",
                names(&zones)
            ),
        ))
    }
}

/// The zone of a new volume: the one asked for, once checked, or the first available zone.
pub async fn volume_zone(ec2: &Ec2, region: &Region, asked: Option<&str>) -> Result<String> {
    match asked {
        Some(zone) => {
            check_zone(ec2, region, zone).await?;
            Ok(zone.to_string())
        }
        None => available_zones(ec2, region)
            .await?
            .into_iter()
            .next()
            .map(|z| z.name)
            .ok_or_else(|| CliError::NotFound(format!("{region} has no available zone"))),
    }
}

/// A subnet given by id: it must exist in the region.
pub async fn given_subnet(ec2: &Ec2, region: &Region, subnet_id: &str) -> Result<Subnet> {
    ec2.subnet(subnet_id)
        .await
        .map_err(CliError::aws(format!("looking up --subnet {subnet_id}")))?
        .ok_or_else(|| {
            CliError::NotFound(format!("--subnet {subnet_id}: no such subnet in {region}"))
        })
}

/// The subnet of a new instance when none is given: in `zone` when asked (checked to be
/// available), else in any available zone. Preferred, in order: a subnet in `prefer_vpc` (the
/// original's, so its security groups still apply), the zone's default subnet, any available one.
pub async fn choose_subnet(
    ec2: &Ec2,
    region: &Region,
    zone: Option<&str>,
    prefer_vpc: Option<&str>,
) -> Result<Subnet> {
    let zones: Vec<String> = match zone {
        Some(z) => {
            check_zone(ec2, region, z).await?;
            vec![z.to_string()]
        }
        None => available_zones(ec2, region)
            .await?
            .into_iter()
            .map(|z| z.name)
            .collect(),
    };
    let subnets = ec2
        .available_subnets(zone)
        .await
        .map_err(CliError::aws(format!("listing the subnets of {region}")))?;
    let candidates = || {
        subnets
            .iter()
            .filter(|s| zones.contains(&s.availability_zone))
    };
    candidates()
        .find(|s| prefer_vpc.is_some() && s.vpc_id.as_deref() == prefer_vpc)
        .or_else(|| candidates().find(|s| s.default_for_az))
        .or_else(|| candidates().next())
        .cloned()
        .ok_or_else(|| {
            CliError::NotFound(format!(
                "{region} has no available subnet in {}: give --subnet",
                zone.map(str::to_string)
                    .unwrap_or_else(|| "an available zone".into())
            ))
        })
}
