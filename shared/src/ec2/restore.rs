//! The calls of restores and drills: a new instance from an AMI, a new volume from a snapshot,
//! waiting for them, and the clean-up of throwaway drill resources.

use super::{Ec2, aws_error, filter, tag_specification, tags_of};
use crate::error::Error;
use crate::restore::{InstanceShape, Launch, NewVolume, Subnet, Zone};
use crate::tags::{Kind, TagKeys, Tags, key};
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::error::{DisplayErrorContext, SdkError};
use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, InstanceNetworkInterfaceSpecification, InstanceType,
    ResourceType, ShutdownBehavior, VolumeType,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::waiters::{FinalPoll, error::WaiterError};
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

    /// Launches one instance, tagged (and its volumes) in the same call. A throwaway one (a
    /// drill's) gets no public IP and terminates when shut down from inside.
    pub async fn launch(&self, launch: &Launch) -> Result<String, Error> {
        let groups =
            (!launch.security_group_ids.is_empty()).then(|| launch.security_group_ids.clone());
        let out = self
            .call("RunInstances", async || {
                let call = self
                    .client
                    .run_instances()
                    .image_id(&launch.image_id)
                    .instance_type(InstanceType::from(launch.instance_type.as_str()))
                    .min_count(1)
                    .max_count(1)
                    .set_key_name(launch.key_name.clone())
                    .set_client_token(launch.client_token.clone())
                    .tag_specifications(tag_specification(ResourceType::Instance, &launch.tags))
                    .tag_specifications(tag_specification(ResourceType::Volume, &launch.tags));
                let mappings: Vec<BlockDeviceMapping> = launch
                    .delete_on_termination
                    .iter()
                    .map(|device| {
                        let ebs = EbsBlockDevice::builder()
                            .delete_on_termination(true)
                            .build();
                        BlockDeviceMapping::builder()
                            .device_name(device)
                            .ebs(ebs)
                            .build()
                    })
                    .collect();
                let call =
                    call.set_block_device_mappings((!mappings.is_empty()).then_some(mappings));
                let call = if launch.throwaway {
                    let interface = InstanceNetworkInterfaceSpecification::builder()
                        .device_index(0)
                        .set_subnet_id(launch.subnet_id.clone())
                        .associate_public_ip_address(false)
                        .set_groups(groups.clone())
                        .build();
                    call.network_interfaces(interface)
                        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
                } else {
                    call.set_subnet_id(launch.subnet_id.clone())
                        .set_security_group_ids(groups.clone())
                };
                call.send().await.map_err(self.err("RunInstances"))
            })
            .await?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_string)
            .ok_or_else(|| Error::missing_id("RunInstances", self.region.as_str(), "instance"))
    }

    pub async fn create_volume_from(&self, volume: &NewVolume) -> Result<String, Error> {
        let out = self
            .call("CreateVolume", async || {
                self.client
                    .create_volume()
                    .snapshot_id(&volume.snapshot_id)
                    .availability_zone(&volume.availability_zone)
                    .set_volume_type(volume.volume_type.as_deref().map(VolumeType::from))
                    .set_client_token(volume.client_token.clone())
                    .tag_specifications(tag_specification(ResourceType::Volume, &volume.tags))
                    .send()
                    .await
                    .map_err(self.err("CreateVolume"))
            })
            .await?;
        self.made("CreateVolume", "volume", out.volume_id())
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

    pub async fn terminate(&self, instance_id: &str) -> Result<(), Error> {
        self.call("TerminateInstances", async || {
            let call = self.client.terminate_instances().instance_ids(instance_id);
            call.send()
                .await
                .map(drop)
                .map_err(self.err("TerminateInstances"))
        })
        .await
    }

    pub async fn delete_volume(&self, volume_id: &str) -> Result<(), Error> {
        self.call("DeleteVolume", async || {
            let call = self.client.delete_volume().volume_id(volume_id);
            call.send()
                .await
                .map(drop)
                .map_err(self.err("DeleteVolume"))
        })
        .await
    }
}

// Where to restore, and waiting for what was made: availability zones and subnets, so a restore
// goes where the account really has a zone and a subnet, and the SDK's waiters (one by-id or
// by-tag describe per poll, with the SDK's backoff) instead of a hand-written poll loop.

fn subnet_of(s: &aws_sdk_ec2::types::Subnet) -> Option<Subnet> {
    Some(Subnet {
        id: s.subnet_id()?.to_string(),
        availability_zone: s.availability_zone()?.to_string(),
        vpc_id: s.vpc_id().map(str::to_string),
        default_for_az: s.default_for_az().unwrap_or(false),
        state: s
            .state()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
    })
}

/// What a waiter waits for, as its errors name it.
struct Waiting<'a> {
    /// The describe each poll makes.
    describe: &'static str,
    /// The waiter, as the operation of a timeout.
    wait: &'static str,
    what: &'a str,
    want: &'static str,
    max_wait: StdDuration,
}

impl<'a> Waiting<'a> {
    fn image(what: &'a str, max_wait: StdDuration) -> Self {
        let (describe, wait) = ("DescribeImages", "WaitUntilImageAvailable");
        Self {
            describe,
            wait,
            what,
            want: "available",
            max_wait,
        }
    }

    fn snapshot(what: &'a str, max_wait: StdDuration) -> Self {
        let (describe, wait) = ("DescribeSnapshots", "WaitUntilSnapshotCompleted");
        Self {
            describe,
            wait,
            what,
            want: "completed",
            max_wait,
        }
    }
}

fn image_states(o: &DescribeImagesOutput) -> String {
    joined(
        o.images()
            .iter()
            .filter_map(|i| i.state().map(|s| s.as_str())),
    )
}

fn snapshot_states(o: &DescribeSnapshotsOutput) -> String {
    joined(
        o.snapshots()
            .iter()
            .filter_map(|s| s.state().map(|s| s.as_str())),
    )
}

impl Ec2 {
    /// A waiter's answer in our terms: a failed poll keeps its AWS code; past `max_wait` is
    /// `Timeout`; a state the resource never leaves (a failed AMI, a terminated instance) is
    /// `UnexpectedState`, naming that state (`states` reads it from the last answer).
    fn waited<O, E>(
        &self,
        result: Result<FinalPoll<O, SdkError<E, HttpResponse>>, WaiterError<O, E>>,
        w: &Waiting<'_>,
        states: impl Fn(&O) -> String,
    ) -> Result<O, Error>
    where
        O: std::fmt::Debug + Send + Sync + 'static,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let aws = |code: &str, message: String| Error::Aws {
            operation: w.wait,
            region: self.region.to_string(),
            code: code.to_string(),
            message,
        };
        match result {
            Ok(poll) => poll
                .into_result()
                .map_err(|e| aws_error(w.describe, self.region.as_str(), e)),
            Err(WaiterError::ExceededMaxWait(_)) => Err(aws(
                "Timeout",
                format!(
                    "{} did not become {} within {}s",
                    w.what,
                    w.want,
                    w.max_wait.as_secs()
                ),
            )),
            Err(WaiterError::FailureState(failure)) => {
                let state = failure.final_poll().as_result().ok().map(states);
                let state = state.unwrap_or_else(|| "into a failed state".to_string());
                let message = format!(
                    "{} went {state} while waiting for it to become {}",
                    w.what, w.want
                );
                Err(aws(crate::codes::UNEXPECTED_STATE, message))
            }
            Err(WaiterError::OperationFailed(failed)) => Err(aws_error(
                w.describe,
                self.region.as_str(),
                failed.into_error(),
            )),
            Err(other) => Err(aws(
                crate::codes::CONSTRUCTION_FAILURE,
                DisplayErrorContext(&other).to_string(),
            )),
        }
    }
}

fn joined<'a>(states: impl Iterator<Item = &'a str>) -> String {
    let mut states: Vec<&str> = states.collect();
    states.dedup();
    states.join(", ")
}

impl Ec2 {
    /// The region's availability zones (not Local or Wavelength Zones) that are `available`,
    /// by name.
    pub async fn available_zones(&self) -> Result<Vec<Zone>, Error> {
        let out = self
            .client
            .describe_availability_zones()
            .filters(filter("zone-type", ["availability-zone"]))
            .filters(filter("state", ["available"]))
            .send()
            .await
            .map_err(self.err("DescribeAvailabilityZones"))?;
        let mut zones: Vec<Zone> = out
            .availability_zones()
            .iter()
            .filter_map(|z| {
                Some(Zone {
                    name: z.zone_name()?.to_string(),
                    zone_id: z.zone_id().map(str::to_string),
                    state: z
                        .state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                })
            })
            .collect();
        zones.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(zones)
    }

    /// The subnet, or `None` when the region has no such subnet (a filter, not the ids
    /// parameter, so a wrong id is an answer, not an error).
    pub async fn subnet(&self, subnet_id: &str) -> Result<Option<Subnet>, Error> {
        let out = self
            .client
            .describe_subnets()
            .filters(filter("subnet-id", [subnet_id]))
            .send()
            .await
            .map_err(self.err("DescribeSubnets"))?;
        Ok(out.subnets().iter().find_map(subnet_of))
    }

    /// The available subnets of the region, or of one zone; every page is read.
    pub async fn available_subnets(&self, zone: Option<&str>) -> Result<Vec<Subnet>, Error> {
        let mut filters = vec![filter("state", ["available"])];
        if let Some(zone) = zone {
            filters.push(filter("availability-zone", [zone]));
        }
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_subnets()
            .set_filters(Some(filters))
            .into_paginator()
            .page_size(self.page_size)
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(self.err("DescribeSubnets"))?;
            out.extend(page.subnets().iter().filter_map(subnet_of));
        }
        out.sort_by(|a, b| (&a.availability_zone, &a.id).cmp(&(&b.availability_zone, &b.id)));
        Ok(out)
    }

    /// Waits until the AMI is available; returns its tags.
    pub async fn wait_until_image_available(
        &self,
        image_id: &str,
        max_wait: StdDuration,
    ) -> Result<Tags, Error> {
        let waiter = self.client.wait_until_image_available().image_ids(image_id);
        let (answer, w) = (
            waiter.wait(max_wait).await,
            Waiting::image(image_id, max_wait),
        );
        let out = self.waited(answer, &w, image_states)?;
        Ok(out
            .images()
            .first()
            .map(|i| tags_of(i.tags()))
            .unwrap_or_default())
    }

    /// Waits until the snapshot is completed; returns its tags.
    pub async fn wait_until_snapshot_completed(
        &self,
        snapshot_id: &str,
        max_wait: StdDuration,
    ) -> Result<Tags, Error> {
        let waiter = self.client.wait_until_snapshot_completed();
        let answer = waiter.snapshot_ids(snapshot_id).wait(max_wait).await;
        let out = self.waited(
            answer,
            &Waiting::snapshot(snapshot_id, max_wait),
            snapshot_states,
        )?;
        let tags = out.snapshots().first().map(|s| tags_of(s.tags()));
        Ok(tags.unwrap_or_default())
    }

    /// Waits until this deployment's copy of `original_id` exists here and is usable (one
    /// describe filtered on `P:copy-of` per poll); returns the copy's id.
    pub async fn wait_until_copy_available(
        &self,
        keys: &TagKeys,
        deployment: &str,
        kind: Kind,
        original_id: &str,
        max_wait: StdDuration,
    ) -> Result<String, Error> {
        let filters = vec![
            filter(&format!("tag:{}", keys.key(key::COPY_OF)), [original_id]),
            filter(&format!("tag:{}", keys.key(key::MANAGED_BY)), [deployment]),
        ];
        let what = format!("the copy of {original_id}");
        let id = match kind {
            Kind::Image => {
                let waiter = self.client.wait_until_image_available().owners("self");
                let answer = waiter.set_filters(Some(filters)).wait(max_wait).await;
                let out = self.waited(answer, &Waiting::image(&what, max_wait), image_states)?;
                out.images()
                    .first()
                    .and_then(|i| i.image_id())
                    .map(str::to_string)
            }
            Kind::Snapshot => {
                let waiter = self
                    .client
                    .wait_until_snapshot_completed()
                    .owner_ids("self");
                let answer = waiter.set_filters(Some(filters)).wait(max_wait).await;
                let w = Waiting::snapshot(&what, max_wait);
                let out = self.waited(answer, &w, snapshot_states)?;
                let first = out.snapshots().first();
                first.and_then(|s| s.snapshot_id()).map(str::to_string)
            }
        };
        id.ok_or_else(|| Error::missing_id("Wait", self.region.as_str(), "copy"))
    }

    /// Waits until the volume is available; fails when it is deleted instead.
    pub async fn wait_until_volume_available(
        &self,
        volume_id: &str,
        max_wait: StdDuration,
    ) -> Result<(), Error> {
        let waiter = self
            .client
            .wait_until_volume_available()
            .volume_ids(volume_id);
        let w = Waiting {
            describe: "DescribeVolumes",
            wait: "WaitUntilVolumeAvailable",
            what: volume_id,
            want: "available",
            max_wait,
        };
        let states = |o: &aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput| {
            joined(
                o.volumes()
                    .iter()
                    .filter_map(|v| v.state().map(|s| s.as_str())),
            )
        };
        self.waited(waiter.wait(max_wait).await, &w, states)
            .map(drop)
    }
}
