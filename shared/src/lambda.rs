//! Wiring shared by every function's `main`: the SDK configuration, the home region, the work
//! queue, and the error Lambda reports.

use crate::error::Error;
use crate::region::Region;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// The SDK's standard retries, with a little more patience for EC2's throttling buckets
/// (`RequestLimitExceeded` is retried with backoff).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .load()
        .await
}

/// The region the function runs in (`AWS_REGION`): the one it backs up.
pub fn home_region(sdk: &SdkConfig) -> Result<Region, Error> {
    let name = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    Region::parse(&name).map_err(|reason| {
        Error::Config(crate::config::ConfigError {
            variable: "AWS_REGION",
            value: name,
            reason,
        })
    })
}

/// The checks of the configuration that need the function's own account (see
/// [`crate::Config::check_own_account`]); no call when neither `DR_ACCOUNT` nor
/// `SOURCE_ACCOUNTS` is set.
pub async fn check_accounts(sdk: &SdkConfig, config: &crate::Config) -> Result<(), Error> {
    if config.dr_account.is_none() && !config.is_vault() {
        return Ok(());
    }
    let own = crate::sts::own_account(sdk).await?;
    config.check_own_account(&own)?;
    Ok(())
}

/// The function's work queue, when `WORK_QUEUE_URL` names one.
pub fn work_queue(
    sdk: &SdkConfig,
    config: &crate::Config,
    function: &str,
) -> Option<crate::sqs::WorkQueue> {
    config
        .work_queue_url
        .as_deref()
        .map(|url| crate::sqs::WorkQueue::new(sdk, url, function))
}

/// The error Lambda reports for `err`: its `errorType` says whether to retry and what failed
/// (`Retryable.Aws.RequestLimitExceeded`, `NonRetryable.InvalidPayload`), its message the
/// whole error, which carries the result so far.
pub fn diagnostic(err: Error) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: err.error_type(),
        error_message: err.to_string(),
    }
}
