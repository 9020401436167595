//! The one listing of backups, and every call that makes, copies, tags or deletes one.

use super::{Ec2, MAX_FILTER_VALUES, filter, sdk_tags, smithy_time, tag_specification, tags_of};
use crate::backup::{Backup, BackupQuery, Copies, Described};
use crate::error::Error;
use crate::tags::{Kind, TagKeys, Tags, key, parse_time};
use aws_sdk_ec2::types::{Filter, Image, ResourceType, Snapshot, SnapshotReturnCodes};
use backup_core::create::{ImageRequest, SnapshotRequest};
use backup_core::replicate::plan::CopyJob;

/// What DeregisterImage with DeleteAssociatedSnapshots did with one of the image's snapshots
/// (EC2's `DeleteSnapshotReturnCode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotOutcome {
    Deleted,
    /// Not deleted: another AMI lists it too.
    Skipped,
    /// Not deleted, with EC2's code: `missing-permissions`, `internal-error`, `client-error`.
    NotDeleted(String),
}

impl SnapshotOutcome {
    fn of(code: Option<&SnapshotReturnCodes>) -> Self {
        match code {
            Some(SnapshotReturnCodes::Success) => Self::Deleted,
            Some(SnapshotReturnCodes::WarnSkipped) => Self::Skipped,
            Some(other) => Self::NotDeleted(other.as_str().to_string()),
            None => Self::NotDeleted("no-return-code".to_string()),
        }
    }
}

pub(super) fn described_image(image: &Image) -> Option<Described> {
    Some(Described {
        id: image.image_id()?.to_string(),
        state: image
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        name: image.name().map(str::to_string),
        description: image.description().map(str::to_string),
        recorded_at: image.creation_date().and_then(parse_time),
        encrypted: image
            .block_device_mappings()
            .iter()
            .any(|m| m.ebs().and_then(|e| e.encrypted()) == Some(true)),
        snapshot_ids: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
            .collect(),
        ebs_devices: image
            .block_device_mappings()
            .iter()
            .filter(|m| m.ebs().is_some())
            .filter_map(|m| m.device_name().map(str::to_string))
            .collect(),
        size_gib: None,
        owner: image.owner_id().map(str::to_string),
        kms_key_ids: distinct(
            image
                .block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs().and_then(|e| e.kms_key_id())),
        ),
        // "enabled-with-cooldown", "enabled-without-cooldown"; "disabled after <time>" still
        // protects until then.
        protected: image
            .deregistration_protection()
            .is_some_and(|p| p != "disabled"),
        tags: tags_of(image.tags()),
    })
}

pub(super) fn described_snapshot(snapshot: &Snapshot) -> Option<Described> {
    Some(Described {
        id: snapshot.snapshot_id()?.to_string(),
        state: snapshot
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        name: None,
        description: snapshot.description().map(str::to_string),
        recorded_at: snapshot.start_time().and_then(smithy_time),
        encrypted: snapshot.encrypted() == Some(true),
        snapshot_ids: Vec::new(),
        ebs_devices: Vec::new(),
        size_gib: snapshot.volume_size(),
        owner: snapshot.owner_id().map(str::to_string),
        kms_key_ids: distinct(snapshot.kms_key_id()),
        protected: false,
        tags: tags_of(snapshot.tags()),
    })
}

fn distinct<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in keys {
        if !out.iter().any(|o| o == k) {
            out.push(k.to_string());
        }
    }
    out
}

/// The filter sets of a query: one describe per combination of chunks of the value lists it
/// names (ids, sources, the originals of copies; EC2 takes 200 values in a filter), or one for
/// the whole region. Ids go in a filter, not the ids parameter: an id that no longer exists is
/// then absent instead of failing the whole call.
fn query_filters(keys: &TagKeys, q: &BackupQuery) -> Vec<Vec<Filter>> {
    let mut base = Vec::new();
    if let Some(d) = &q.managed_by {
        base.push(filter(&format!("tag:{}", keys.key(key::MANAGED_BY)), [d]));
    }
    if q.kind_tag {
        base.push(filter(
            &format!("tag:{}", keys.key(key::KIND)),
            [q.kind.as_str()],
        ));
    }
    if !q.states.is_empty() {
        let name = match q.kind {
            Kind::Image => "state",
            Kind::Snapshot => "status",
        };
        base.push(filter(
            name,
            q.states.iter().map(|s| s.as_str().to_string()),
        ));
    }
    let copy_of = format!("tag:{}", keys.key(key::COPY_OF));
    let mut lists: Vec<(String, &[String])> = Vec::new();
    match &q.copies {
        Copies::All => base.push(filter("tag-key", [keys.key(key::COPY_OF)])),
        Copies::Of(ids) => lists.push((copy_of, ids)),
        Copies::ShareOf(ids) => lists.push((format!("tag:{}", keys.key(key::SHARE_OF)), ids)),
        Copies::Any | Copies::None => {}
    }
    if let Some(ids) = &q.ids {
        let name = match q.kind {
            Kind::Image => "image-id",
            Kind::Snapshot => "snapshot-id",
        };
        lists.push((name.to_string(), ids));
    }
    if let Some(sources) = &q.sources {
        lists.push((format!("tag:{}", keys.key(key::SOURCE)), sources));
    }
    // Every combination of one chunk of each list (in practice a query names one list).
    lists.iter().fold(vec![base], |sets, (name, values)| {
        sets.iter()
            .flat_map(|set| {
                values.chunks(MAX_FILTER_VALUES).map(move |chunk| {
                    let mut filters = set.clone();
                    filters.push(filter(name, chunk.iter().cloned()));
                    filters
                })
            })
            .collect()
    })
}

impl Ec2 {
    /// The backups `query` asks for, owned by this account, every page read.
    pub async fn backups(&self, keys: &TagKeys, query: &BackupQuery) -> Result<Vec<Backup>, Error> {
        let mut out = Vec::new();
        for filters in query_filters(keys, query) {
            match query.kind {
                Kind::Image => {
                    let pages = self
                        .client
                        .describe_images()
                        .owners("self")
                        // A disabled AMI still uses its snapshots: without it they would look
                        // orphaned.
                        .set_include_disabled(query.include_disabled.then_some(true))
                        .set_filters(Some(filters))
                        .into_paginator()
                        .page_size(self.page_size)
                        .send();
                    self.each_page("DescribeImages", pages, |page| {
                        let page = page.images().iter().filter_map(described_image);
                        out.extend(page.filter_map(|d| self.backup(keys, query, d)));
                    })
                    .await?;
                }
                Kind::Snapshot => {
                    let pages = self
                        .client
                        .describe_snapshots()
                        .owner_ids("self")
                        .set_filters(Some(filters))
                        .into_paginator()
                        .page_size(self.page_size)
                        .send();
                    self.each_page("DescribeSnapshots", pages, |page| {
                        let page = page.snapshots().iter().filter_map(described_snapshot);
                        out.extend(page.filter_map(|d| self.backup(keys, query, d)));
                    })
                    .await?;
                }
            }
        }
        out.shrink_to_fit();
        Ok(out)
    }

    /// One described backup read, if the query keeps it; a lean one without what its callers
    /// never read (page by page, so that a region's listing never holds more).
    fn backup(&self, keys: &TagKeys, query: &BackupQuery, d: Described) -> Option<Backup> {
        let mut backup = Backup::new(keys, query.kind, &self.region, d);
        if !query.keeps(&backup) {
            return None;
        }
        if query.lean {
            backup.make_lean(keys);
        }
        Some(backup)
    }

    /// Every AMI and standalone snapshot of this deployment here, originals and copies, any
    /// state: what status, restore and drills look at.
    pub async fn managed_backups(
        &self,
        keys: &TagKeys,
        deployment: &str,
    ) -> Result<Vec<Backup>, Error> {
        let mut all = self
            .backups(keys, &BackupQuery::managed(Kind::Image, deployment))
            .await?;
        all.extend(
            self.backups(keys, &BackupQuery::managed(Kind::Snapshot, deployment))
                .await?,
        );
        Ok(all)
    }

    /// CreateImage, tagging the image and its snapshots in the same call so that no backup
    /// ever exists untagged.
    pub async fn create_image(&self, req: &ImageRequest) -> Result<String, Error> {
        let out = self
            .call("CreateImage", async || {
                self.client
                    .create_image()
                    .instance_id(&req.instance_id)
                    .name(&req.name)
                    .description(&req.description)
                    .no_reboot(!req.reboot)
                    .tag_specifications(tag_specification(ResourceType::Image, &req.tags))
                    .tag_specifications(tag_specification(ResourceType::Snapshot, &req.tags))
                    .send()
                    .await
                    .map_err(self.err("CreateImage"))
            })
            .await?;
        self.made("CreateImage", "image", out.image_id())
    }

    pub async fn create_snapshot(&self, req: &SnapshotRequest) -> Result<String, Error> {
        let out = self
            .call("CreateSnapshot", async || {
                self.client
                    .create_snapshot()
                    .volume_id(&req.volume_id)
                    .description(&req.description)
                    .tag_specifications(tag_specification(ResourceType::Snapshot, &req.tags))
                    .send()
                    .await
                    .map_err(self.err("CreateSnapshot"))
            })
            .await?;
        self.made("CreateSnapshot", "snapshot", out.snapshot_id())
    }

    /// CopyImage into this (the destination) region, tagging the image and its snapshots in the
    /// same call.
    pub async fn copy_image(&self, job: &CopyJob) -> Result<String, Error> {
        let (encrypted, key) = job.encryption.parameters();
        // The ClientToken makes a retry of a copy EC2 did start return that copy.
        let out = self
            .call("CopyImage", async || {
                self.client
                    .copy_image()
                    .source_image_id(&job.source_id)
                    .source_region(job.source_region.as_str())
                    .name(&job.name)
                    .description(&job.description)
                    .client_token(&job.client_token)
                    .set_encrypted(encrypted)
                    .set_kms_key_id(key.clone())
                    .tag_specifications(tag_specification(ResourceType::Image, &job.tags))
                    .tag_specifications(tag_specification(ResourceType::Snapshot, &job.tags))
                    .send()
                    .await
                    .map_err(self.err("CopyImage"))
            })
            .await?;
        self.made("CopyImage", "image", out.image_id())
    }

    /// CopySnapshot into this (the destination) region, tagged in the same call.
    pub async fn copy_snapshot(&self, job: &CopyJob) -> Result<String, Error> {
        let (encrypted, key) = job.encryption.parameters();
        let out = self
            .call("CopySnapshot", async || {
                self.client
                    .copy_snapshot()
                    .source_snapshot_id(&job.source_id)
                    .source_region(job.source_region.as_str())
                    .description(&job.description)
                    .set_encrypted(encrypted)
                    .set_kms_key_id(key.clone())
                    .tag_specifications(tag_specification(ResourceType::Snapshot, &job.tags))
                    .send()
                    .await
                    .map_err(self.err("CopySnapshot"))
            })
            .await?;
        self.made("CopySnapshot", "snapshot", out.snapshot_id())
    }

    /// One CreateTags for all of `resources` (EC2 takes up to 1,000 ids per call). Only ever
    /// called on our own backups, never on a user's instance or volume.
    pub async fn tag_resources(&self, resources: &[String], tags: &Tags) -> Result<(), Error> {
        self.call("CreateTags", async || {
            self.client
                .create_tags()
                .set_resources(Some(resources.to_vec()))
                .set_tags(Some(sdk_tags(tags)))
                .send()
                .await
                .map(drop)
                .map_err(self.err("CreateTags"))
        })
        .await
    }

    /// DeregisterImage, leaving its snapshots (they are deleted one by one, after).
    pub async fn deregister_image(&self, image_id: &str) -> Result<(), Error> {
        self.call("DeregisterImage", async || {
            let call = self.client.deregister_image().image_id(image_id).send();
            call.await.map(drop).map_err(self.err("DeregisterImage"))
        })
        .await
    }

    /// DeregisterImage with DeleteAssociatedSnapshots: the image, and in the same call each
    /// snapshot it lists that no other AMI lists, each answered for on its own (EC2 checks
    /// `ec2:DeleteSnapshot` on each of them, as if it were called). The image is deregistered
    /// whatever happens to its snapshots. It takes one token of DeregisterImage's bucket: EC2
    /// counts requests, and this is one.
    pub async fn deregister_image_with_snapshots(
        &self,
        image_id: &str,
    ) -> Result<Vec<(String, SnapshotOutcome)>, Error> {
        let out = self
            .call("DeregisterImage", async || {
                let call = self
                    .client
                    .deregister_image()
                    .image_id(image_id)
                    .delete_associated_snapshots(true)
                    .send();
                call.await.map_err(self.err("DeregisterImage"))
            })
            .await?;
        Ok(out
            .delete_snapshot_results()
            .iter()
            .filter_map(|r| {
                let id = r.snapshot_id()?.to_string();
                Some((id, SnapshotOutcome::of(r.return_code())))
            })
            .collect())
    }

    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), Error> {
        self.call("DeleteSnapshot", async || {
            let call = self
                .client
                .delete_snapshot()
                .snapshot_id(snapshot_id)
                .send();
            call.await.map(drop).map_err(self.err("DeleteSnapshot"))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_counts(sets: &[Vec<Filter>]) -> Vec<Vec<(String, usize)>> {
        sets.iter()
            .map(|set| {
                set.iter()
                    .map(|f| (f.name().unwrap_or("").to_string(), f.values().len()))
                    .collect()
            })
            .collect()
    }

    fn ids(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}-{i}")).collect()
    }

    #[test]
    fn a_query_by_source_asks_for_200_sources_a_describe() {
        let keys = TagKeys::new("backup");
        let q = BackupQuery::managed(Kind::Image, "d").of_sources(&ids("i", 450));
        let sets = query_filters(&keys, &q);
        let managed = ("tag:backup:managed-by".to_string(), 1);
        let kind = ("tag:backup:kind".to_string(), 1);
        let source = |n| ("tag:backup:source".to_string(), n);
        assert_eq!(
            names_and_counts(&sets),
            [200, 200, 50].map(|n| vec![managed.clone(), kind.clone(), source(n)])
        );
        // Every source asked for once.
        let asked: Vec<String> = sets
            .iter()
            .flat_map(|set| set.last().unwrap().values().to_vec())
            .collect();
        assert_eq!(asked, ids("i", 450));
    }

    #[test]
    fn a_query_without_lists_is_one_describe_and_an_empty_list_is_none() {
        let keys = TagKeys::new("backup");
        let whole = BackupQuery::managed(Kind::Snapshot, "d");
        assert_eq!(query_filters(&keys, &whole).len(), 1);
        let of_no_source = whole.clone().of_sources(&[]);
        assert!(query_filters(&keys, &of_no_source).is_empty());
        let of_nothing = whole.copies(Copies::Of(Vec::new()));
        assert!(query_filters(&keys, &of_nothing).is_empty());
        // No ids is no describe, not every image of the account (by_id names no owner).
        assert!(query_filters(&keys, &BackupQuery::by_id(Kind::Image, &[])).is_empty());
    }

    #[test]
    fn two_lists_are_asked_in_every_combination_of_their_chunks() {
        let keys = TagKeys::new("backup");
        let q = BackupQuery::by_id(Kind::Image, &ids("ami", 250)).of_sources(&ids("i", 3));
        let sets = query_filters(&keys, &q);
        assert_eq!(
            names_and_counts(&sets),
            [200, 50].map(|n| vec![
                ("image-id".to_string(), n),
                ("tag:backup:source".to_string(), 3)
            ])
        );
    }
}
