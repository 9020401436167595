//! The instances and volumes to back up: a sweep of the opted-in ones, or the named ones.

use super::{Ec2, MAX_FILTER_VALUES, filter, tags_of};
use crate::error::Error;
use crate::source::{Source, SourceState};
use crate::tags::TagKeys;
use aws_sdk_ec2::types::Filter;

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

impl Ec2 {
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
            let pages = self
                .client
                .describe_instances()
                .set_filters(Some(filters))
                .into_paginator()
                .page_size(self.page_size)
                .send();
            self.each_page("DescribeInstances", pages, |page| {
                for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                    let Some(id) = instance.instance_id() else {
                        continue;
                    };
                    out.push(Source {
                        id: id.to_string(),
                        state: SourceState::parse(
                            instance
                                .state()
                                .and_then(|s| s.name())
                                .map_or("", |n| n.as_str()),
                        ),
                        tags: tags_of(instance.tags()),
                        attached_to: None,
                        instance_type: instance.instance_type().map(|t| t.as_str().to_string()),
                    });
                }
            })
            .await?;
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
            let pages = self
                .client
                .describe_volumes()
                .set_filters(Some(filters))
                .into_paginator()
                .page_size(self.page_size)
                .send();
            self.each_page("DescribeVolumes", pages, |page| {
                for volume in page.volumes() {
                    let Some(id) = volume.volume_id() else {
                        continue;
                    };
                    out.push(Source {
                        id: id.to_string(),
                        state: SourceState::parse(volume.state().map_or("", |s| s.as_str())),
                        tags: tags_of(volume.tags()),
                        attached_to: volume
                            .attachments()
                            .iter()
                            .find_map(|a| a.instance_id())
                            .map(str::to_string),
                        instance_type: None,
                    });
                }
            })
            .await?;
        }
        Ok(out)
    }
}
