//! The EC2 calls of expire, in our types: every page of this deployment's images and
//! snapshots, CreateTags on an image's snapshots, DeregisterImage, DeleteSnapshot.

use super::plan::{ImageInfo, SnapshotInfo};
use crate::ec2::{Ec2, filter, smithy_time, tags_of};
use crate::error::Error;
use crate::tags::{TagKeys, key, parse_time};

impl Ec2 {
    /// Every AMI we own that carries `P:managed-by` = `deployment`, in any state EC2 lists
    /// (`pending`, `available`, `failed`, `disabled`, ...), with the snapshots its mappings use.
    pub async fn managed_images_for_expiry(
        &self,
        keys: &TagKeys,
        deployment: &str,
    ) -> Result<Vec<ImageInfo>, Error> {
        let mut pages = self
            .client
            .describe_images()
            .owners("self")
            // A disabled AMI still uses its snapshots: without it they would look orphaned.
            .include_disabled(true)
            .filters(filter(
                &format!("tag:{}", keys.key(key::MANAGED_BY)),
                [deployment],
            ))
            .into_paginator()
            .page_size(self.page_size)
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(self.err("DescribeImages"))?;
            for image in page.images() {
                let Some(id) = image.image_id() else {
                    continue;
                };
                out.push(ImageInfo {
                    id: id.to_string(),
                    state: image
                        .state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    tags: tags_of(image.tags()),
                    snapshot_ids: image
                        .block_device_mappings()
                        .iter()
                        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
                        .map(str::to_string)
                        .collect(),
                    created: image.creation_date().and_then(parse_time),
                });
            }
        }
        Ok(out)
    }

    /// Every snapshot we own that carries `P:managed-by` = `deployment`.
    pub async fn managed_snapshots_for_expiry(
        &self,
        keys: &TagKeys,
        deployment: &str,
    ) -> Result<Vec<SnapshotInfo>, Error> {
        let mut pages = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .filters(filter(
                &format!("tag:{}", keys.key(key::MANAGED_BY)),
                [deployment],
            ))
            .into_paginator()
            .page_size(self.page_size)
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(self.err("DescribeSnapshots"))?;
            for snapshot in page.snapshots() {
                let Some(id) = snapshot.snapshot_id() else {
                    continue;
                };
                out.push(SnapshotInfo {
                    id: id.to_string(),
                    state: snapshot
                        .state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    tags: tags_of(snapshot.tags()),
                    started: snapshot.start_time().and_then(smithy_time),
                });
            }
        }
        Ok(out)
    }

    /// DeregisterImage, leaving its snapshots (they are deleted one by one, after).
    pub async fn deregister_image(&self, image_id: &str) -> Result<(), Error> {
        self.client
            .deregister_image()
            .image_id(image_id)
            .send()
            .await
            .map_err(self.err("DeregisterImage"))?;
        Ok(())
    }

    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), Error> {
        self.client
            .delete_snapshot()
            .snapshot_id(snapshot_id)
            .send()
            .await
            .map_err(self.err("DeleteSnapshot"))?;
        Ok(())
    }
}
