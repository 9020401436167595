//! What every command runs with: the configuration (the flags and the variables they mirror,
//! parsed by clap; the rest of the variables as the functions read them), the tag keys, the
//! regional EC2 adapters and the output format; and the lookups several commands share.

use crate::cli::{Format, Settings, given};
use crate::error::{CliError, Result};
use shared::backup::Backup;
use shared::clients::Clients;
use shared::source::Source;
use shared::status::{GatherError, Resource};
use shared::tags::{Kind, TagKeys, Tags, format_time};
use shared::{Config, Region};

/// The variables the flags mirror (clap reads them; `DR_ACCOUNT` is check-dr's
/// `--dr-account`); the functions' other variables are read from the environment by
/// `Config::from_lookup`, as the functions read them.
const MIRRORED: &[&str] = &[
    "TAG_PREFIX",
    "DEPLOYMENT_NAME",
    "COPY_TO_REGIONS",
    "DEFAULT_INTERVAL",
    "DR_ACCOUNT",
];

pub struct Ctx {
    pub config: Config,
    /// The SDK's configuration (credentials, endpoint): the S3 client of the evidence is made
    /// from it, as the function's is.
    pub sdk: aws_config::SdkConfig,
    pub keys: TagKeys,
    pub clients: Clients,
    pub format: Format,
}

/// The configuration: the parsed settings over the functions' defaults.
pub fn config(settings: &Settings) -> Result<Config> {
    let rest = Config::from_lookup(|name| {
        (!MIRRORED.contains(&name))
            .then(|| std::env::var(name).ok())
            .flatten()
    })?;
    Ok(Config {
        tag_prefix: given(&settings.tag_prefix).unwrap_or(rest.tag_prefix.clone()),
        deployment_name: given(&settings.deployment_name).unwrap_or(rest.deployment_name.clone()),
        copy_to_regions: given(&settings.copy_to_regions).unwrap_or(rest.copy_to_regions.clone()),
        default_interval: given(&settings.default_interval).unwrap_or(rest.default_interval),
        ..rest
    })
}

impl Ctx {
    pub async fn new(settings: &Settings, format: Format) -> Result<Self> {
        let config = config(settings)?;
        let sdk = shared::lambda::sdk_config().await;
        let home = match given(&settings.home_region) {
            Some(region) => region,
            None => shared::lambda::home_region(&sdk).map_err(CliError::NoHomeRegion)?,
        };
        Ok(Self {
            keys: TagKeys::new(&config.tag_prefix),
            clients: Clients::from_sdk(sdk.clone(), home, config.rate_limits.clone()),
            sdk,
            config,
            format,
        })
    }

    pub fn home(&self) -> &Region {
        self.clients.home_region()
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Every backup of this deployment in `region`.
    pub async fn backups(&self, region: &Region) -> Result<Vec<Backup>> {
        self.clients
            .region(region)
            .managed_backups(&self.keys, &self.config.deployment_name)
            .await
            .map_err(|e| {
                GatherError::listing_backups(&self.config.deployment_name, region)(e).into()
            })
    }

    pub async fn backups_of_kind(&self, region: &Region, kind: Kind) -> Result<Vec<Backup>> {
        Ok(self
            .backups(region)
            .await?
            .into_iter()
            .filter(|b| b.kind == kind)
            .collect())
    }

    /// The restored resource carries its original's tags (as the backup recorded them) and
    /// says which backup it came from; it does not opt in by itself.
    pub fn restored_tags(&self, backup: &Backup) -> Tags {
        let mut tags = self.keys.carried(&backup.tags);
        tags.push((self.keys.key("restored-from"), backup.id.clone()));
        tags
    }

    /// The opted-in instances and volumes of the home region, with their policies.
    pub async fn resources(&self) -> Result<Vec<(Source, Resource)>> {
        Ok(shared::status::resources(&self.config, &self.keys, &self.clients.home()).await?)
    }
}

/// When a backup was made, for messages.
pub fn created(b: &Backup) -> String {
    b.created_at
        .map(format_time)
        .unwrap_or_else(|| "creation time unknown".into())
}
