//! The EC2 adapter: the only code that knows the SDK's builders. It speaks in our types, reads
//! every page, and keeps each AWS error's code.

use crate::due::RecentBackup;
use crate::error::Error;
use crate::inventory::Backup;
use crate::region::Region;
use crate::tags::{TagKeys, Tags};
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use chrono::{DateTime, Utc};

/// Describe calls ask for the largest page EC2 allows, so a sweep is a handful of calls.
pub const DEFAULT_PAGE_SIZE: i32 = 1000;

/// An instance or a volume that may be backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    /// `running`, `stopped`, ... for instances; `in-use`, `available`, ... for volumes.
    pub state: String,
    pub tags: Tags,
    /// The instance a volume is attached to.
    pub attached_to: Option<String>,
}

impl Source {
    pub fn name(&self) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == "Name")
            .map(|(_, v)| v.as_str())
    }
}

/// A new AMI: what CreateImage is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    pub instance_id: String,
    pub name: String,
    pub description: String,
    pub reboot: bool,
    pub tags: Tags,
}

/// A new snapshot: what CreateSnapshot is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    pub volume_id: String,
    pub description: String,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct Ec2 {
    // Crate-visible so each function's module can add its own calls in an `impl Ec2` of its own.
    pub(crate) client: Client,
    pub(crate) region: Region,
    pub(crate) page_size: i32,
}

pub(crate) fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

pub fn tag_specification(resource: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// The originals among `backups` that count for the interval: pending or ready, never failed.
fn recent(backups: Vec<Backup>) -> Vec<RecentBackup> {
    backups
        .into_iter()
        .filter(|b| {
            matches!(b.state.as_str(), "pending" | "available" | "completed") && b.copy_of.is_none()
        })
        .filter_map(|b| {
            Some(RecentBackup {
                source: b.source?,
                created_at: b.created_at?,
                id: b.id,
            })
        })
        .collect()
}

/// EC2 takes at most 200 values in one filter.
pub const MAX_FILTER_VALUES: usize = 200;

/// The filter sets of one describe per chunk of named ids (a filter, not the ids parameter: an
/// id that no longer exists is then absent instead of failing the whole call), or the one
/// filter set of a sweep: the opt-in key in its common spellings, in the live states.
fn source_filters(
    ids: Option<&[String]>,
    id_filter: &str,
    keys: &TagKeys,
    state_filter: &str,
    states: &[&str],
) -> Vec<Vec<Filter>> {
    match ids {
        Some(ids) => ids
            .chunks(MAX_FILTER_VALUES)
            .map(|chunk| vec![filter(id_filter, chunk.iter().cloned())])
            .collect(),
        None => vec![vec![
            filter("tag-key", keys.opt_in_spellings()),
            filter(state_filter, states.iter().copied()),
        ]],
    }
}

pub(crate) fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub(crate) fn smithy_time(t: &aws_sdk_ec2::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

impl Ec2 {
    pub fn new(client: Client, region: Region) -> Self {
        Self {
            client,
            region,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// A client for `region`, from the shared SDK configuration (credentials, retries, endpoint).
    pub fn for_region(sdk: &aws_config::SdkConfig, region: &Region) -> Self {
        let conf = aws_sdk_ec2::config::Builder::from(sdk)
            .region(aws_sdk_ec2::config::Region::new(region.to_string()))
            .build();
        Self::new(Client::from_conf(conf), region.clone())
    }

    /// Smaller pages, for tests that prove every page is read.
    pub fn with_page_size(mut self, page_size: i32) -> Self {
        self.page_size = page_size;
        self
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub(crate) fn err<E, R>(
        &self,
        operation: &'static str,
    ) -> impl FnOnce(aws_sdk_ec2::error::SdkError<E, R>) -> Error + '_
    where
        E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        move |e| Error::aws(operation, self.region.as_str(), e)
    }

    /// Instances to consider: the named ones (any state, so a skip can say why), or every
    /// running or stopped instance carrying the opt-in key.
    pub async fn instances(
        &self,
        keys: &TagKeys,
        ids: Option<&[String]>,
    ) -> Result<Vec<Source>, Error> {
        let mut out = Vec::new();
        for filters in source_filters(
            ids,
            "instance-id",
            keys,
            "instance-state-name",
            &["running", "stopped"],
        ) {
            let mut pages = self
                .client
                .describe_instances()
                .set_filters(Some(filters))
                .into_paginator()
                .page_size(self.page_size)
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(self.err("DescribeInstances"))?;
                for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                    let Some(id) = instance.instance_id() else {
                        continue;
                    };
                    out.push(Source {
                        id: id.to_string(),
                        state: instance
                            .state()
                            .and_then(|s| s.name())
                            .map(|n| n.as_str().to_string())
                            .unwrap_or_default(),
                        tags: tags_of(instance.tags()),
                        attached_to: None,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Volumes to consider: the named ones, or every in-use or available volume carrying the
    /// opt-in key.
    pub async fn volumes(
        &self,
        keys: &TagKeys,
        ids: Option<&[String]>,
    ) -> Result<Vec<Source>, Error> {
        let mut out = Vec::new();
        for filters in source_filters(ids, "volume-id", keys, "status", &["in-use", "available"]) {
            let mut pages = self
                .client
                .describe_volumes()
                .set_filters(Some(filters))
                .into_paginator()
                .page_size(self.page_size)
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(self.err("DescribeVolumes"))?;
                for volume in page.volumes() {
                    let Some(id) = volume.volume_id() else {
                        continue;
                    };
                    out.push(Source {
                        id: id.to_string(),
                        state: volume
                            .state()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default(),
                        tags: tags_of(volume.tags()),
                        attached_to: volume
                            .attachments()
                            .iter()
                            .find_map(|a| a.instance_id())
                            .map(str::to_string),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Original AMIs of this deployment that count for the interval (pending or available;
    /// copies from other regions are not backups of a source here).
    pub async fn recent_images(
        &self,
        keys: &TagKeys,
        deployment: &str,
    ) -> Result<Vec<RecentBackup>, Error> {
        Ok(recent(self.managed_images(keys, deployment).await?))
    }

    /// Original standalone snapshots of this deployment that count for the interval.
    pub async fn recent_snapshots(
        &self,
        keys: &TagKeys,
        deployment: &str,
    ) -> Result<Vec<RecentBackup>, Error> {
        Ok(recent(self.managed_snapshots(keys, deployment).await?))
    }

    /// One CreateTags for all of `resources` (EC2 takes up to 1,000 ids per call). Only ever
    /// called on our own backups, never on a user's instance or volume.
    pub async fn tag_resources(&self, resources: &[String], tags: &Tags) -> Result<(), Error> {
        self.client
            .create_tags()
            .set_resources(Some(resources.to_vec()))
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(self.err("CreateTags"))?;
        Ok(())
    }

    /// CreateImage, tagging the image and its snapshots in the same call so that no backup
    /// ever exists untagged.
    pub async fn create_image(&self, req: &ImageRequest) -> Result<String, Error> {
        let out = self
            .client
            .create_image()
            .instance_id(&req.instance_id)
            .name(&req.name)
            .description(&req.description)
            .no_reboot(!req.reboot)
            .tag_specifications(tag_specification(ResourceType::Image, &req.tags))
            .tag_specifications(tag_specification(ResourceType::Snapshot, &req.tags))
            .send()
            .await
            .map_err(self.err("CreateImage"))?;
        out.image_id()
            .map(str::to_string)
            .ok_or_else(|| Error::missing_id("CreateImage", self.region.as_str(), "image"))
    }

    pub async fn create_snapshot(&self, req: &SnapshotRequest) -> Result<String, Error> {
        let out = self
            .client
            .create_snapshot()
            .volume_id(&req.volume_id)
            .description(&req.description)
            .tag_specifications(tag_specification(ResourceType::Snapshot, &req.tags))
            .send()
            .await
            .map_err(self.err("CreateSnapshot"))?;
        out.snapshot_id()
            .map(str::to_string)
            .ok_or_else(|| Error::missing_id("CreateSnapshot", self.region.as_str(), "snapshot"))
    }
}
