//! The calls only a drill makes: how its throwaway resources stand, the ones of this deployment
//! that exist, and the security group with no ingress its instances get.

use super::{Ec2, MAX_FILTER_VALUES, filter, tag_specification, tags_of};
use crate::codes;
use crate::error::Error;
use crate::tags::{TagKeys, Tags, key, parse_time};
use aws_sdk_ec2::types::ResourceType;
use backup_core::drill::record::{RestoreKind, Seen, Throwaway};
use std::collections::HashMap;

/// DescribeInstanceStatus takes at most 100 instance ids.
const STATUS_IDS: usize = 100;

impl Ec2 {
    /// Every throwaway instance (not yet terminated) and volume of this deployment's drills:
    /// `P:managed-by` is the deployment and `P:drill-of` is set.
    pub async fn drill_resources(
        &self,
        keys: &TagKeys,
        deployment: &str,
    ) -> Result<Vec<Throwaway>, Error> {
        let ours = || {
            vec![
                filter(&format!("tag:{}", keys.key(key::MANAGED_BY)), [deployment]),
                filter("tag-key", [keys.key(key::DRILL_OF)]),
            ]
        };
        // A throwaway of `kind` as its tags describe it.
        let throwaway = |id: &str, kind: RestoreKind, tags: Tags| Throwaway {
            id: id.to_string(),
            kind,
            started_at: keys.get(&tags, key::DRILL_STARTED_AT).and_then(parse_time),
            drill_of: keys.get(&tags, key::DRILL_OF).map(str::to_string),
        };
        let mut out = Vec::new();
        let pages = self
            .client
            .describe_instances()
            .set_filters(Some(ours()))
            .filters(filter(
                "instance-state-name",
                ["pending", "running", "stopping", "stopped"],
            ))
            .into_paginator()
            .page_size(self.page_size)
            .send();
        self.each_page("DescribeInstances", pages, |page| {
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                if let Some(id) = i.instance_id() {
                    out.push(throwaway(id, RestoreKind::Instance, tags_of(i.tags())));
                }
            }
        })
        .await?;
        let pages = self
            .client
            .describe_volumes()
            .set_filters(Some(ours()))
            .filters(filter("status", ["creating", "available", "error"]))
            .into_paginator()
            .page_size(self.page_size.min(500))
            .send();
        self.each_page("DescribeVolumes", pages, |page| {
            for v in page.volumes() {
                if let Some(id) = v.volume_id() {
                    out.push(throwaway(id, RestoreKind::Volume, tags_of(v.tags())));
                }
            }
        })
        .await?;
        Ok(out)
    }

    /// How each of `ids` (all of `kind`) stands: an instance's state, then the status checks of
    /// those running (one DescribeInstanceStatus per 100); a volume's state. An id EC2 no longer
    /// lists is [`Seen::Gone`].
    pub async fn seen(
        &self,
        kind: RestoreKind,
        ids: &[String],
    ) -> Result<HashMap<String, Seen>, Error> {
        let mut seen = HashMap::new();
        match kind {
            RestoreKind::Volume => {
                for chunk in ids.chunks(MAX_FILTER_VALUES) {
                    let pages = self
                        .client
                        .describe_volumes()
                        .filters(filter("volume-id", chunk.iter().cloned()))
                        .into_paginator()
                        .page_size(self.page_size.min(500))
                        .send();
                    self.each_page("DescribeVolumes", pages, |page| {
                        for v in page.volumes() {
                            if let Some(id) = v.volume_id() {
                                let state = v.state().map_or("", |s| s.as_str()).to_string();
                                seen.insert(id.to_string(), Seen::Volume { state });
                            }
                        }
                    })
                    .await?;
                }
            }
            RestoreKind::Instance => {
                let mut states: HashMap<String, (String, Option<(String, String)>)> =
                    HashMap::new();
                for chunk in ids.chunks(MAX_FILTER_VALUES) {
                    let pages = self
                        .client
                        .describe_instances()
                        .filters(filter("instance-id", chunk.iter().cloned()))
                        .into_paginator()
                        .page_size(self.page_size)
                        .send();
                    self.each_page("DescribeInstances", pages, |page| {
                        for i in page.reservations().iter().flat_map(|r| r.instances()) {
                            if let Some(id) = i.instance_id() {
                                let state = i.state().and_then(|s| s.name());
                                let state = state.map_or("", |n| n.as_str()).to_string();
                                let reason = i.state_reason().map(|r| {
                                    let code = r.code().unwrap_or_default().to_string();
                                    (code, r.message().unwrap_or_default().to_string())
                                });
                                states.insert(id.to_string(), (state, reason));
                            }
                        }
                    })
                    .await?;
                }
                let running: Vec<String> = states
                    .iter()
                    .filter(|(_, (s, _))| s == "running")
                    .map(|(id, _)| id.clone())
                    .collect();
                let checks = self.status_checks(&running).await?;
                for (id, (state, reason)) in states {
                    let (instance_status, system_status) =
                        checks.get(&id).cloned().unwrap_or_default();
                    seen.insert(
                        id,
                        Seen::Instance {
                            state,
                            instance_status,
                            system_status,
                            reason,
                        },
                    );
                }
            }
        }
        for id in ids {
            seen.entry(id.clone()).or_insert(Seen::Gone);
        }
        Ok(seen)
    }

    /// The instance and system status checks of running instances, by id. An instance that
    /// went away between the two describes fails the whole call (the ids parameter): then no
    /// check is known this time, and the restores are looked at again later.
    async fn status_checks(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, (Option<String>, Option<String>)>, Error> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(STATUS_IDS) {
            let answer = self
                .call("DescribeInstanceStatus", async || {
                    self.client
                        .describe_instance_status()
                        .set_instance_ids(Some(chunk.to_vec()))
                        .include_all_instances(true)
                        .send()
                        .await
                        .map_err(self.err("DescribeInstanceStatus"))
                })
                .await;
            let answer = match answer {
                Err(e) if e.code() == Some(codes::INSTANCE_NOT_FOUND) => continue,
                other => other?,
            };
            for s in answer.instance_statuses() {
                let Some(id) = s.instance_id() else { continue };
                let of = |summary: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
                    summary
                        .and_then(|x| x.status())
                        .map(|x| x.as_str().to_string())
                };
                out.insert(
                    id.to_string(),
                    (of(s.instance_status()), of(s.system_status())),
                );
            }
        }
        Ok(out)
    }

    /// The security group named `name` in `vpc_id`, made (with `tags`, and no ingress rule)
    /// when it does not exist. One that someone gave ingress rules is refused: a drill instance
    /// must not be reachable.
    pub async fn drill_security_group(
        &self,
        vpc_id: &str,
        name: &str,
        tags: &Tags,
    ) -> Result<String, Error> {
        for attempt in 0..2 {
            let out = self
                .call("DescribeSecurityGroups", async || {
                    self.client
                        .describe_security_groups()
                        .filters(filter("group-name", [name]))
                        .filters(filter("vpc-id", [vpc_id]))
                        .send()
                        .await
                        .map_err(self.err("DescribeSecurityGroups"))
                })
                .await?;
            if let Some(group) = out.security_groups().first() {
                let id = group.group_id().unwrap_or_default().to_string();
                if !group.ip_permissions().is_empty() {
                    return Err(Error::Aws {
                        operation: "DescribeSecurityGroups",
                        region: self.region.to_string(),
                        code: codes::DRILL_GROUP_OPEN.to_string(),
                        message: format!(
                            "security group {id} ({name}) in {vpc_id} has ingress rules: a drill instance must not be reachable; remove them or name a group in DRILL_SECURITY_GROUPS"
                        ),
                    });
                }
                return Ok(id);
            }
            if attempt == 1 {
                break;
            }
            let made = self
                .call("CreateSecurityGroup", async || {
                    self.client
                        .create_security_group()
                        .group_name(name)
                        .description("ec2-backup drill instances: no ingress")
                        .vpc_id(vpc_id)
                        .tag_specifications(tag_specification(ResourceType::SecurityGroup, tags))
                        .send()
                        .await
                        .map_err(self.err("CreateSecurityGroup"))
                })
                .await;
            match made {
                Ok(out) => {
                    return self.made("CreateSecurityGroup", "security group", out.group_id());
                }
                // Made by a run at the same moment: read it again.
                Err(e) if e.code() == Some(codes::GROUP_DUPLICATE) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::missing_id(
            "CreateSecurityGroup",
            self.region.as_str(),
            "security group",
        ))
    }
}
