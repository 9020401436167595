//! The calls of an isolated DR account: sharing a backup with it (home), and in the vault
//! listing what is shared with it, locking its copies' snapshots and protecting its AMIs.

use super::backups::{described_image, described_snapshot};
use super::{Ec2, MAX_FILTER_VALUES, filter, smithy_time};
use crate::backup::Backup;
use crate::error::Error;
use crate::tags::{Kind, TagKeys};
use aws_sdk_ec2::types::{
    CreateVolumePermission, CreateVolumePermissionModifications, LaunchPermission,
    LaunchPermissionModifications, LockMode,
};
use backup_core::config::LockMode as Mode;
use backup_core::lock::LockInfo;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

impl Ec2 {
    /// ModifyImageAttribute: `account` may launch the AMI (its snapshots are shared apart).
    pub async fn share_image(&self, image_id: &str, account: &str) -> Result<(), Error> {
        let add = LaunchPermission::builder().user_id(account).build();
        self.call("ModifyImageAttribute", async || {
            self.client
                .modify_image_attribute()
                .image_id(image_id)
                .launch_permission(
                    LaunchPermissionModifications::builder()
                        .add(add.clone())
                        .build(),
                )
                .send()
                .await
                .map(drop)
                .map_err(self.err("ModifyImageAttribute"))
        })
        .await
    }

    /// ModifySnapshotAttribute: `account` may create volumes from (and copy) the snapshot.
    pub async fn share_snapshot(&self, snapshot_id: &str, account: &str) -> Result<(), Error> {
        let add = CreateVolumePermission::builder().user_id(account).build();
        self.call("ModifySnapshotAttribute", async || {
            self.client
                .modify_snapshot_attribute()
                .snapshot_id(snapshot_id)
                .create_volume_permission(
                    CreateVolumePermissionModifications::builder()
                        .add(add.clone())
                        .build(),
                )
                .send()
                .await
                .map(drop)
                .map_err(self.err("ModifySnapshotAttribute"))
        })
        .await
    }

    /// The AMIs or snapshots shared with this account (none of their tags are visible here):
    /// by `owners` (`None`: by anyone, and this account's own too: the caller reads the owner);
    /// with `ids`, only those. Every page read.
    pub async fn shared_with_me(
        &self,
        keys: &TagKeys,
        kind: Kind,
        owners: Option<&[String]>,
        ids: Option<&[String]>,
    ) -> Result<Vec<Backup>, Error> {
        let owners = owners.map(<[String]>::to_vec);
        let chunks: Vec<Option<&[String]>> = match ids {
            Some([]) => return Ok(Vec::new()),
            Some(ids) => ids.chunks(MAX_FILTER_VALUES).map(Some).collect(),
            None => vec![None],
        };
        let mut out = Vec::new();
        for chunk in chunks {
            match kind {
                Kind::Image => {
                    let filters = chunk.map(|c| vec![filter("image-id", c.iter().cloned())]);
                    let pages = self
                        .client
                        .describe_images()
                        .executable_users("self")
                        .set_owners(owners.clone())
                        .set_filters(filters)
                        .into_paginator()
                        .page_size(self.page_size)
                        .send();
                    self.each_page("DescribeImages", pages, |page| {
                        out.extend(
                            page.images()
                                .iter()
                                .filter_map(described_image)
                                .map(|d| Backup::new(keys, kind, &self.region, d)),
                        );
                    })
                    .await?;
                }
                Kind::Snapshot => {
                    let filters = chunk.map(|c| vec![filter("snapshot-id", c.iter().cloned())]);
                    let pages = self
                        .client
                        .describe_snapshots()
                        .restorable_by_user_ids("self")
                        .set_owner_ids(owners.clone())
                        .set_filters(filters)
                        .into_paginator()
                        .page_size(self.page_size)
                        .send();
                    self.each_page("DescribeSnapshots", pages, |page| {
                        out.extend(
                            page.snapshots()
                                .iter()
                                .filter_map(described_snapshot)
                                .map(|d| Backup::new(keys, kind, &self.region, d)),
                        );
                    })
                    .await?;
                }
            }
        }
        Ok(out)
    }

    /// Every snapshot lock of this account here (DescribeLockedSnapshots, every page: the SDK
    /// has no paginator for it).
    pub async fn locked_snapshots(&self) -> Result<HashMap<String, LockInfo>, Error> {
        let mut locks = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .call("DescribeLockedSnapshots", async || {
                    self.client
                        .describe_locked_snapshots()
                        .max_results(self.page_size)
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(self.err("DescribeLockedSnapshots"))
                })
                .await?;
            for s in out.snapshots() {
                if let Some(id) = s.snapshot_id() {
                    locks.insert(
                        id.to_string(),
                        LockInfo {
                            state: s
                                .lock_state()
                                .map(|l| l.as_str().to_string())
                                .unwrap_or_default(),
                            until: s.lock_expires_on().and_then(smithy_time),
                        },
                    );
                }
            }
            token = out
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(locks);
            }
        }
    }

    /// LockSnapshot until `until`; the compliance cool-off only when given (a first lock).
    pub async fn lock_snapshot(
        &self,
        snapshot_id: &str,
        mode: Mode,
        until: DateTime<Utc>,
        cool_off_hours: Option<u32>,
    ) -> Result<(), Error> {
        let mode = match mode {
            Mode::Compliance => LockMode::Compliance,
            _ => LockMode::Governance,
        };
        let until = aws_smithy_types::DateTime::from_secs(until.timestamp());
        self.call("LockSnapshot", async || {
            self.client
                .lock_snapshot()
                .snapshot_id(snapshot_id)
                .lock_mode(mode.clone())
                .expiration_date(until)
                .set_cool_off_period(cool_off_hours.and_then(|h| i32::try_from(h).ok()))
                .send()
                .await
                .map(drop)
                .map_err(self.err("LockSnapshot"))
        })
        .await
    }

    /// EnableImageDeregistrationProtection, without the 24-hour cooldown: the snapshot locks
    /// are what keeps a copy; this stops a mistaken DeregisterImage.
    pub async fn protect_image(&self, image_id: &str) -> Result<(), Error> {
        self.call("EnableImageDeregistrationProtection", async || {
            self.client
                .enable_image_deregistration_protection()
                .image_id(image_id)
                .with_cooldown(false)
                .send()
                .await
                .map(drop)
                .map_err(self.err("EnableImageDeregistrationProtection"))
        })
        .await
    }

    /// DisableImageDeregistrationProtection, before expire deregisters the AMI.
    pub async fn unprotect_image(&self, image_id: &str) -> Result<(), Error> {
        self.call("DisableImageDeregistrationProtection", async || {
            self.client
                .disable_image_deregistration_protection()
                .image_id(image_id)
                .send()
                .await
                .map(drop)
                .map_err(self.err("DisableImageDeregistrationProtection"))
        })
        .await
    }
}
