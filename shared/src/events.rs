//! The EventBridge adapter: the only code that puts events. A home deployment tells its DR
//! account of each backup it shared with a `Backup Shared` event on its own default bus; the
//! template's rule forwards it to the DR account's bus.

use crate::aws::aws_error;
use crate::error::Error;
use backup_core::dr::{DETAIL_TYPE, EVENT_SOURCE, SharedDetail};

/// PutEvents takes at most 10 entries a call.
pub const ENTRIES_PER_CALL: usize = 10;

#[derive(Debug, Clone)]
pub struct Events {
    client: aws_sdk_eventbridge::Client,
    region: String,
}

impl Events {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_eventbridge::Client::new(sdk),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
        }
    }

    /// Puts one `Backup Shared` event per detail on this account's default bus, 10 a call.
    /// Returns, for each detail, `Ok` or why EventBridge did not take it (a call that failed
    /// as a whole fails each of its entries).
    pub async fn put_shared(&self, details: &[SharedDetail]) -> Vec<Result<(), Error>> {
        let mut out = Vec::with_capacity(details.len());
        for chunk in details.chunks(ENTRIES_PER_CALL) {
            let entries = chunk
                .iter()
                .map(|d| {
                    let arn_kind = if d.kind == "image" {
                        "image"
                    } else {
                        "snapshot"
                    };
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .source(EVENT_SOURCE)
                        .detail_type(DETAIL_TYPE)
                        .resources(format!("arn:aws:ec2:{}::{arn_kind}/{}", d.region, d.backup))
                        .detail(serde_json::to_string(d).unwrap_or_default())
                        .build()
                })
                .collect::<Vec<_>>();
            match self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(answer) => {
                    let results = answer.entries();
                    for (i, _) in chunk.iter().enumerate() {
                        let refused = results.get(i).and_then(|r| {
                            r.error_code().map(|c| (c, r.error_message().unwrap_or("")))
                        });
                        out.push(match refused {
                            None => Ok(()),
                            Some((code, message)) => Err(Error::Aws {
                                operation: "PutEvents",
                                region: self.region.clone(),
                                code: code.to_string(),
                                message: message.to_string(),
                            }),
                        });
                    }
                }
                Err(e) => {
                    let e = aws_error("PutEvents", &self.region, e);
                    out.extend(chunk.iter().map(|_| Err(e.clone())));
                }
            }
        }
        out
    }
}
