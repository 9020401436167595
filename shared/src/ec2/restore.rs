//! The calls of restores and drills: a new instance from an AMI, a new volume from a snapshot,
//! waiting for them, and the clean-up of throwaway drill resources.

use super::{Ec2, filter, tag_specification};
use crate::error::Error;
use crate::restore::{InstanceShape, Launch, NewVolume};
use aws_sdk_ec2::types::{InstanceType, ResourceType, VolumeType};
use std::time::Duration as StdDuration;

impl Ec2 {
    /// The instance, described by id, or `None` when it is gone.
    async fn describe_instance(
        &self,
        instance_id: &str,
    ) -> Result<Option<aws_sdk_ec2::types::Instance>, Error> {
        let out = self
            .client
            .describe_instances()
            .filters(filter("instance-id", [instance_id]))
            .send()
            .await
            .map_err(self.err("DescribeInstances"))?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .cloned())
    }

    /// The shape of an existing instance, or `None` when it is gone.
    pub async fn instance_shape(&self, instance_id: &str) -> Result<Option<InstanceShape>, Error> {
        Ok(self
            .describe_instance(instance_id)
            .await?
            .map(|i| InstanceShape {
                instance_type: i.instance_type().map(|t| t.as_str().to_string()),
                subnet_id: i.subnet_id().map(str::to_string),
                security_group_ids: i
                    .security_groups()
                    .iter()
                    .filter_map(|g| g.group_id())
                    .map(str::to_string)
                    .collect(),
                key_name: i.key_name().map(str::to_string),
                availability_zone: i
                    .placement()
                    .and_then(|p| p.availability_zone())
                    .map(str::to_string),
            }))
    }

    /// Launches one instance, tagged in the same call.
    pub async fn launch(&self, launch: &Launch) -> Result<String, Error> {
        let out = self
            .client
            .run_instances()
            .image_id(&launch.image_id)
            .instance_type(InstanceType::from(launch.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .set_subnet_id(launch.subnet_id.clone())
            .set_security_group_ids(
                (!launch.security_group_ids.is_empty()).then(|| launch.security_group_ids.clone()),
            )
            .set_key_name(launch.key_name.clone())
            .tag_specifications(tag_specification(ResourceType::Instance, &launch.tags))
            .tag_specifications(tag_specification(ResourceType::Volume, &launch.tags))
            .send()
            .await
            .map_err(self.err("RunInstances"))?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_string)
            .ok_or_else(|| Error::missing_id("RunInstances", self.region.as_str(), "instance"))
    }

    pub async fn create_volume_from(&self, volume: &NewVolume) -> Result<String, Error> {
        let out = self
            .client
            .create_volume()
            .snapshot_id(&volume.snapshot_id)
            .availability_zone(&volume.availability_zone)
            .set_volume_type(volume.volume_type.as_deref().map(VolumeType::from))
            .tag_specifications(tag_specification(ResourceType::Volume, &volume.tags))
            .send()
            .await
            .map_err(self.err("CreateVolume"))?;
        out.volume_id()
            .map(str::to_string)
            .ok_or_else(|| Error::missing_id("CreateVolume", self.region.as_str(), "volume"))
    }

    pub async fn attach_volume(
        &self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
    ) -> Result<(), Error> {
        self.client
            .attach_volume()
            .volume_id(volume_id)
            .instance_id(instance_id)
            .device(device)
            .send()
            .await
            .map_err(self.err("AttachVolume"))?;
        Ok(())
    }

    pub async fn instance_state(&self, instance_id: &str) -> Result<Option<String>, Error> {
        Ok(self.describe_instance(instance_id).await?.and_then(|i| {
            i.state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
        }))
    }

    pub async fn volume_state(&self, volume_id: &str) -> Result<Option<String>, Error> {
        let out = self
            .client
            .describe_volumes()
            .filters(filter("volume-id", [volume_id]))
            .send()
            .await
            .map_err(self.err("DescribeVolumes"))?;
        Ok(out
            .volumes()
            .first()
            .and_then(|v| v.state())
            .map(|s| s.as_str().to_string()))
    }

    /// Polls until the instance (or volume) reaches `want`, fails on a terminal state, and
    /// gives up after `timeout`.
    pub async fn wait_for(&self, id: &str, want: &str, timeout: StdDuration) -> Result<(), Error> {
        let start = std::time::Instant::now();
        let mut delay = StdDuration::from_millis(200);
        loop {
            let state = if id.starts_with("vol-") {
                self.volume_state(id).await?
            } else {
                self.instance_state(id).await?
            };
            match state.as_deref() {
                Some(s) if s == want => return Ok(()),
                Some(s @ ("terminated" | "shutting-down" | "error" | "deleted"))
                | Some(s @ "deleting") => {
                    return Err(Error::Aws {
                        operation: "Wait",
                        region: self.region.to_string(),
                        code: "UnexpectedState".into(),
                        message: format!("{id} went {s} while waiting for {want}"),
                    });
                }
                None => {
                    return Err(Error::Aws {
                        operation: "Wait",
                        region: self.region.to_string(),
                        code: "NotFound".into(),
                        message: format!("{id} disappeared while waiting for {want}"),
                    });
                }
                Some(_) if start.elapsed() > timeout => {
                    return Err(Error::Aws {
                        operation: "Wait",
                        region: self.region.to_string(),
                        code: "Timeout".into(),
                        message: format!(
                            "{id} did not become {want} within {}s",
                            timeout.as_secs()
                        ),
                    });
                }
                Some(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(StdDuration::from_secs(10));
                }
            }
        }
    }

    pub async fn terminate(&self, instance_id: &str) -> Result<(), Error> {
        self.client
            .terminate_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(self.err("TerminateInstances"))?;
        Ok(())
    }

    pub async fn delete_volume(&self, volume_id: &str) -> Result<(), Error> {
        self.client
            .delete_volume()
            .volume_id(volume_id)
            .send()
            .await
            .map_err(self.err("DeleteVolume"))?;
        Ok(())
    }

    /// Instances (not yet terminated) and volumes carrying every one of `tags`: drill
    /// leftovers. Every page is read.
    pub async fn tagged_leftovers(
        &self,
        tags: &[(String, String)],
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        let tag_filters = || -> Vec<_> {
            tags.iter()
                .map(|(k, v)| filter(&format!("tag:{k}"), [v.as_str()]))
                .collect()
        };
        let mut instances = Vec::new();
        let mut pages = self
            .client
            .describe_instances()
            .set_filters(Some(tag_filters()))
            .filters(filter(
                "instance-state-name",
                ["pending", "running", "stopping", "stopped"],
            ))
            .into_paginator()
            .page_size(self.page_size)
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(self.err("DescribeInstances"))?;
            instances.extend(
                page.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(|i| i.instance_id().map(str::to_string)),
            );
        }
        let mut volumes = Vec::new();
        let mut pages = self
            .client
            .describe_volumes()
            .set_filters(Some(tag_filters()))
            .into_paginator()
            .page_size(self.page_size.min(500))
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(self.err("DescribeVolumes"))?;
            volumes.extend(
                page.volumes()
                    .iter()
                    .filter(|v| v.state().map(|s| s.as_str()) != Some("deleting"))
                    .filter_map(|v| v.volume_id().map(str::to_string)),
            );
        }
        Ok((instances, volumes))
    }
}
