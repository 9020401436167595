//! The EC2 calls `replicate` makes, in our types: describe backups and copies (every page),
//! CopyImage, CopySnapshot, and the `P:copies` tag on the original.

use super::plan::{Backup, CopyJob, Encryption, ExistingCopy};
use crate::ec2::{Ec2, filter, smithy_time, tag_specification, tags_of};
use crate::error::Error;
use crate::tags::{Kind, TagKeys, key, parse_time};
use aws_sdk_ec2::types::{Filter, Image, ResourceType, Snapshot};

impl Ec2 {
    fn image_backup(&self, image: &Image) -> Option<Backup> {
        Some(Backup {
            id: image.image_id()?.to_string(),
            kind: Kind::Image,
            region: self.region.clone(),
            state: image
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            name: image.name().map(str::to_string),
            description: image.description().map(str::to_string),
            created: image.creation_date().and_then(parse_time),
            encrypted: image
                .block_device_mappings()
                .iter()
                .any(|m| m.ebs().and_then(|e| e.encrypted()) == Some(true)),
            tags: tags_of(image.tags()),
        })
    }

    fn snapshot_backup(&self, snapshot: &Snapshot) -> Option<Backup> {
        Some(Backup {
            id: snapshot.snapshot_id()?.to_string(),
            kind: Kind::Snapshot,
            region: self.region.clone(),
            state: snapshot
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            name: None,
            description: snapshot.description().map(str::to_string),
            created: snapshot.start_time().and_then(smithy_time),
            encrypted: snapshot.encrypted() == Some(true),
            tags: tags_of(snapshot.tags()),
        })
    }

    async fn describe_images(&self, filters: Vec<Filter>) -> Result<Vec<Image>, Error> {
        let mut pages = self
            .client
            .describe_images()
            .owners("self")
            .set_filters(Some(filters))
            .into_paginator()
            .page_size(self.page_size)
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(self.err("DescribeImages"))?;
            out.extend(page.images().iter().cloned());
        }
        Ok(out)
    }

    async fn describe_snapshots(&self, filters: Vec<Filter>) -> Result<Vec<Snapshot>, Error> {
        let mut pages = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .set_filters(Some(filters))
            .into_paginator()
            .page_size(self.page_size)
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(self.err("DescribeSnapshots"))?;
            out.extend(page.snapshots().iter().cloned());
        }
        Ok(out)
    }

    async fn describe_backups(
        &self,
        kind: Kind,
        filters: Vec<Filter>,
    ) -> Result<Vec<Backup>, Error> {
        Ok(match kind {
            Kind::Image => self
                .describe_images(filters)
                .await?
                .iter()
                .filter_map(|i| self.image_backup(i))
                .collect(),
            Kind::Snapshot => self
                .describe_snapshots(filters)
                .await?
                .iter()
                .filter_map(|s| self.snapshot_backup(s))
                .collect(),
        })
    }

    /// The named AMIs or snapshots owned by this account, in any state, whoever made them (so a
    /// skip can say why). A filter, not ImageIds/SnapshotIds: an id that no longer exists is
    /// simply absent instead of failing the whole call.
    pub async fn backups_by_id(&self, kind: Kind, ids: &[String]) -> Result<Vec<Backup>, Error> {
        let name = match kind {
            Kind::Image => "image-id",
            Kind::Snapshot => "snapshot-id",
        };
        let mut out = Vec::new();
        for chunk in ids.chunks(crate::ec2::MAX_FILTER_VALUES) {
            out.extend(
                self.describe_backups(kind, vec![filter(name, chunk.iter().cloned())])
                    .await?,
            );
        }
        Ok(out)
    }

    /// Every available original backup of this deployment in this region: one paginated
    /// describe. Copies made here from other regions are left out.
    pub async fn original_backups(
        &self,
        keys: &TagKeys,
        deployment: &str,
        kind: Kind,
    ) -> Result<Vec<Backup>, Error> {
        let state = match kind {
            Kind::Image => filter("state", ["available"]),
            Kind::Snapshot => filter("status", ["completed"]),
        };
        let filters = vec![
            filter(&format!("tag:{}", keys.key(key::MANAGED_BY)), [deployment]),
            filter(&format!("tag:{}", keys.key(key::KIND)), [kind.as_str()]),
            state,
        ];
        Ok(self
            .describe_backups(kind, filters)
            .await?
            .into_iter()
            .filter(|b| keys.get(&b.tags, key::COPY_OF).is_none())
            .collect())
    }

    /// Copies of this deployment in this region: of the named sources, or (for the sweep) all
    /// of them, in one paginated describe. Any state; the plan decides what counts.
    pub async fn copies(
        &self,
        keys: &TagKeys,
        deployment: &str,
        kind: Kind,
        of: Option<&[String]>,
    ) -> Result<Vec<ExistingCopy>, Error> {
        let copy_of = keys.key(key::COPY_OF);
        let base = vec![
            filter(&format!("tag:{}", keys.key(key::MANAGED_BY)), [deployment]),
            // An AMI copy's snapshots carry kind=image: they are not snapshot copies.
            filter(&format!("tag:{}", keys.key(key::KIND)), [kind.as_str()]),
        ];
        let mut found = Vec::new();
        match of {
            None => {
                let mut filters = base;
                filters.push(filter("tag-key", [copy_of.as_str()]));
                found.extend(self.describe_backups(kind, filters).await?);
            }
            Some(ids) => {
                for chunk in ids.chunks(crate::ec2::MAX_FILTER_VALUES) {
                    let mut filters = base.clone();
                    filters.push(filter(&format!("tag:{copy_of}"), chunk.iter().cloned()));
                    found.extend(self.describe_backups(kind, filters).await?);
                }
            }
        }
        Ok(found
            .into_iter()
            .filter_map(|b| {
                Some(ExistingCopy {
                    copy_of: keys.get(&b.tags, key::COPY_OF)?.to_string(),
                    id: b.id,
                    kind,
                    region: b.region,
                    state: b.state,
                })
            })
            .collect())
    }

    /// CopyImage into this (the destination) region, tagging the image and its snapshots in the
    /// same call.
    pub async fn copy_image(&self, job: &CopyJob) -> Result<String, Error> {
        let request = self
            .client
            .copy_image()
            .source_image_id(&job.source_id)
            .source_region(job.source_region.as_str())
            .name(&job.name)
            .description(&job.description)
            .client_token(&job.client_token)
            .tag_specifications(tag_specification(ResourceType::Image, &job.tags))
            .tag_specifications(tag_specification(ResourceType::Snapshot, &job.tags));
        let request = match &job.encryption {
            Encryption::AsSource => request,
            Encryption::DestinationDefault => request.encrypted(true),
            Encryption::Key(k) => request.encrypted(true).kms_key_id(k),
        };
        let out = request.send().await.map_err(self.err("CopyImage"))?;
        out.image_id()
            .map(str::to_string)
            .ok_or_else(|| Error::missing_id("CopyImage", self.region.as_str(), "image"))
    }

    /// CopySnapshot into this (the destination) region, tagged in the same call.
    pub async fn copy_snapshot(&self, job: &CopyJob) -> Result<String, Error> {
        let request = self
            .client
            .copy_snapshot()
            .source_snapshot_id(&job.source_id)
            .source_region(job.source_region.as_str())
            .description(&job.description)
            .tag_specifications(tag_specification(ResourceType::Snapshot, &job.tags));
        let request = match &job.encryption {
            Encryption::AsSource => request,
            Encryption::DestinationDefault => request.encrypted(true),
            Encryption::Key(k) => request.encrypted(true).kms_key_id(k),
        };
        let out = request.send().await.map_err(self.err("CopySnapshot"))?;
        out.snapshot_id()
            .map(str::to_string)
            .ok_or_else(|| Error::missing_id("CopySnapshot", self.region.as_str(), "snapshot"))
    }

    /// One tag on one of our backups (never on a user's instance or volume).
    pub async fn set_tag(&self, resource: &str, key: &str, value: &str) -> Result<(), Error> {
        self.tag_resources(
            &[resource.to_string()],
            &vec![(key.to_string(), value.to_string())],
        )
        .await
    }
}
