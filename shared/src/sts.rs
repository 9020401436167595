//! The STS adapter: which account the function's credentials are in (GetCallerIdentity, which
//! needs no permission). Asked once at cold start, and only by a deployment that shares with a
//! DR account or keeps a vault: the checks of `DR_ACCOUNT` and `SOURCE_ACCOUNTS` need it.

use crate::aws::aws_error;
use crate::error::Error;

pub async fn own_account(sdk: &aws_config::SdkConfig) -> Result<String, Error> {
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let answer = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| aws_error("GetCallerIdentity", &region, e))?;
    answer
        .account()
        .map(str::to_string)
        .ok_or_else(|| Error::missing_id("GetCallerIdentity", &region, "account"))
}
