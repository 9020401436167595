//! The KMS adapter: what the DR pre-flight (`ec2-backup check-dr`) reads of a key, DescribeKey
//! and GetKeyPolicy, in the core's types. Only the command-line tool uses it: the functions
//! never call KMS themselves (EC2 uses the keys on their behalf).

use crate::aws::aws_error;
use crate::codes;
use crate::error::Error;
use crate::region::Region;
use backup_core::dr::preflight::{KeyDescription, KeyManager, KeyState, POLICY_NAME};

#[derive(Debug, Clone)]
pub struct Kms {
    client: aws_sdk_kms::Client,
    region: Region,
}

impl Kms {
    /// A client of `region`, with the SDK configuration's credentials and endpoint.
    pub fn for_region(sdk: &aws_config::SdkConfig, region: &Region) -> Self {
        let conf = aws_sdk_kms::config::Builder::from(sdk)
            .region(aws_sdk_kms::config::Region::new(region.to_string()))
            .build();
        Self {
            client: aws_sdk_kms::Client::from_conf(conf),
            region: region.clone(),
        }
    }

    /// The key that `key` (a key id, key ARN, alias or alias ARN) names; `None` when KMS knows
    /// none. Its policy is not read (see [`Kms::key_policy`]).
    pub async fn describe_key(&self, key: &str) -> Result<Option<KeyDescription>, Error> {
        let answer = match self.client.describe_key().key_id(key).send().await {
            Ok(answer) => answer,
            Err(e) => {
                let e = aws_error("DescribeKey", self.region.as_str(), e);
                return match e.code() {
                    Some(codes::KMS_NOT_FOUND) => Ok(None),
                    _ => Err(e),
                };
            }
        };
        let missing = |what| Error::missing_id("DescribeKey", self.region.as_str(), what);
        let m = answer.key_metadata().ok_or_else(|| missing("key"))?;
        Ok(Some(KeyDescription {
            arn: m.arn().ok_or_else(|| missing("key ARN"))?.to_string(),
            account: m.aws_account_id().unwrap_or_default().to_string(),
            manager: match m.key_manager() {
                Some(aws_sdk_kms::types::KeyManagerType::Aws) => KeyManager::Aws,
                _ => KeyManager::Customer,
            },
            state: KeyState::parse(m.key_state().map(|s| s.as_str()).unwrap_or_default()),
            spec: m.key_spec().map(|s| s.as_str()).unwrap_or_default().into(),
            usage: m.key_usage().map(|u| u.as_str()).unwrap_or_default().into(),
            policy: None,
        }))
    }

    /// The key policy of `key_arn` (GetKeyPolicy takes no alias), as JSON text.
    pub async fn key_policy(&self, key_arn: &str) -> Result<String, Error> {
        let answer = self
            .client
            .get_key_policy()
            .key_id(key_arn)
            .policy_name(POLICY_NAME)
            .send()
            .await
            .map_err(|e| aws_error("GetKeyPolicy", self.region.as_str(), e))?;
        Ok(answer.policy().unwrap_or_default().to_string())
    }
}
