//! Every backup of this deployment in a region, as people on call need to see it: for status,
//! restore and drills.

use crate::ec2::{Ec2, filter, smithy_time, tags_of};
use crate::error::Error;
use crate::region::Region;
use crate::tags::{Kind, TagKeys, Tags, key, parse_time};
use aws_sdk_ec2::types::Filter;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One backup (an original or a copy), with what its tags say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backup {
    pub id: String,
    pub kind: Kind,
    pub region: Region,
    /// `pending`, `available`, `failed` for images; `pending`, `completed`, `error` for snapshots.
    pub state: String,
    pub source: Option<String>,
    pub source_region: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub hold: bool,
    pub copy_of: Option<String>,
    /// For images: the snapshots behind it.
    pub snapshot_ids: Vec<String>,
    /// For snapshots: size in GiB.
    pub size_gib: Option<i32>,
    #[serde(skip)]
    pub tags: Tags,
}

/// When a backup was made: its `P:created-at` tag, unless AWS's own record is earlier (a tag
/// edited into the future must not stop backups until that date).
pub(crate) fn created_at(
    tagged: Option<DateTime<Utc>>,
    recorded: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (tagged, recorded) {
        (Some(t), Some(r)) => Some(t.min(r)),
        (t, r) => t.or(r),
    }
}

impl Backup {
    /// Ready to restore from.
    pub fn is_usable(&self) -> bool {
        matches!(self.state.as_str(), "available" | "completed")
    }

    fn from_tags(
        keys: &TagKeys,
        id: &str,
        kind: Kind,
        region: &Region,
        state: &str,
        tags: Tags,
        fallback_created: Option<DateTime<Utc>>,
    ) -> Self {
        let get = |name: &str| keys.get(&tags, name).map(str::to_string);
        Self {
            id: id.to_string(),
            kind,
            region: region.clone(),
            state: state.to_string(),
            source: get(key::SOURCE),
            source_region: get(key::SOURCE_REGION),
            created_at: created_at(
                get(key::CREATED_AT).as_deref().and_then(parse_time),
                fallback_created,
            ),
            expires_at: get(key::EXPIRES_AT).as_deref().and_then(parse_time),
            // As expire reads it: a value that is not clearly false holds.
            hold: get(key::HOLD).is_some_and(|v| crate::config::parse_bool(&v) != Some(false)),
            copy_of: get(key::COPY_OF).filter(|v| !v.is_empty()),
            snapshot_ids: Vec::new(),
            size_gib: None,
            tags,
        }
    }
}

impl Ec2 {
    /// All images and standalone snapshots of this deployment in this region.
    pub async fn backups(&self, keys: &TagKeys, deployment: &str) -> Result<Vec<Backup>, Error> {
        let mut all = self.managed_images(keys, deployment).await?;
        all.extend(self.managed_snapshots(keys, deployment).await?);
        Ok(all)
    }

    fn managed_filters(keys: &TagKeys, deployment: &str, kind: Kind) -> Vec<Filter> {
        vec![
            filter(&format!("tag:{}", keys.key(key::MANAGED_BY)), [deployment]),
            filter(&format!("tag:{}", keys.key(key::KIND)), [kind.as_str()]),
        ]
    }

    /// The AMIs of this deployment (originals and copies, any state): one paginated
    /// DescribeImages filtered on `P:managed-by`.
    pub async fn managed_images(
        &self,
        keys: &TagKeys,
        deployment: &str,
    ) -> Result<Vec<Backup>, Error> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_images()
            .owners("self")
            .set_filters(Some(Self::managed_filters(keys, deployment, Kind::Image)))
            .into_paginator()
            .page_size(self.page_size)
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(self.err("DescribeImages"))?;
            for image in page.images() {
                let Some(id) = image.image_id() else { continue };
                let mut backup = Backup::from_tags(
                    keys,
                    id,
                    Kind::Image,
                    &self.region,
                    image.state().map(|s| s.as_str()).unwrap_or_default(),
                    tags_of(image.tags()),
                    image.creation_date().and_then(parse_time),
                );
                backup.snapshot_ids = image
                    .block_device_mappings()
                    .iter()
                    .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
                    .collect();
                out.push(backup);
            }
        }
        Ok(out)
    }

    /// The standalone snapshots of this deployment (originals and copies, any state): one
    /// paginated DescribeSnapshots filtered on `P:managed-by` and `P:kind=snapshot`.
    pub async fn managed_snapshots(
        &self,
        keys: &TagKeys,
        deployment: &str,
    ) -> Result<Vec<Backup>, Error> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .set_filters(Some(Self::managed_filters(
                keys,
                deployment,
                Kind::Snapshot,
            )))
            .into_paginator()
            .page_size(self.page_size)
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(self.err("DescribeSnapshots"))?;
            for snapshot in page.snapshots() {
                let Some(id) = snapshot.snapshot_id() else {
                    continue;
                };
                let mut backup = Backup::from_tags(
                    keys,
                    id,
                    Kind::Snapshot,
                    &self.region,
                    snapshot.state().map(|s| s.as_str()).unwrap_or_default(),
                    tags_of(snapshot.tags()),
                    snapshot.start_time().and_then(smithy_time),
                );
                backup.size_gib = snapshot.volume_size();
                out.push(backup);
            }
        }
        Ok(out)
    }
}
