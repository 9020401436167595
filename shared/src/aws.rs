//! What every adapter shares: an SDK error as our [`Error`], with its AWS error code kept.

use crate::codes;
use crate::error::Error;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Wraps an SDK error, keeping the AWS error code (or the kind of failure when the request
/// never got an answer: `DispatchFailure`, `TimeoutError`, ...).
pub fn aws_error<E, R>(operation: &'static str, region: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let context = || DisplayErrorContext(&err).to_string();
    let (code, message) = match &err {
        SdkError::ServiceError(_) => (
            err.code().unwrap_or("Unknown").to_string(),
            err.message().map(str::to_string).unwrap_or_else(context),
        ),
        SdkError::DispatchFailure(_) => (codes::DISPATCH_FAILURE.into(), context()),
        SdkError::TimeoutError(_) => (codes::TIMEOUT_ERROR.into(), context()),
        SdkError::ResponseError(_) => (codes::RESPONSE_ERROR.into(), context()),
        _ => (codes::CONSTRUCTION_FAILURE.into(), context()),
    };
    Error::Aws {
        operation,
        region: region.to_string(),
        code,
        message,
    }
}
