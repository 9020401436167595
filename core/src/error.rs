//! The one error type of the toolkit (the invocation pipeline turns it into Lambda's error). AWS errors keep their code (`InvalidSnapshot.InUse`,
//! `RequestLimitExceeded`, ...) so callers can branch on it.

use crate::config::ConfigError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{operation} in {region} failed: {code}: {message}")]
    Aws {
        operation: &'static str,
        region: String,
        code: String,
        message: String,
    },
    #[error("invalid payload: {0}")]
    Payload(String),
    /// A call not started because it could not finish before the invocation's deadline.
    #[error("{operation} in {region} was not started: the invocation's deadline is too near")]
    Deadline {
        operation: &'static str,
        region: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The work is not finished and must be tried again (its rest could not be handed on to
    /// the work queue; a queued Tag Change found an instance not ready yet); the message
    /// carries the result so far. Doing it again is harmless.
    #[error("not finished: {reason}; result so far: {result}")]
    Unfinished { reason: String, result: String },
    /// Some resources failed; the message carries the whole result so nothing is lost.
    #[error("{failed} of the resources failed; result: {result}")]
    SomeFailed { failed: usize, result: String },
}

impl Error {
    /// A successful answer that named no id of what it made (never expected from AWS; kept as
    /// an error so it is reported, not unwrapped).
    pub fn missing_id(operation: &'static str, region: &str, what: &str) -> Self {
        Error::Aws {
            operation,
            region: region.to_string(),
            code: "MissingId".into(),
            message: format!("the answer named no {what}"),
        }
    }

    /// The AWS error code, when this is an AWS error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aws { code, .. } => crate::codes::RETRYABLE.contains(&code.as_str()),
            Error::SomeFailed { .. } | Error::Deadline { .. } | Error::Unfinished { .. } => true,
            Error::Payload(_) | Error::Config(_) => false,
        }
    }
}

impl Error {
    /// The `errorType` Lambda reports: `Retryable.` or `NonRetryable.`, then the kind
    /// (`Aws.<code>` for an AWS error), so that a retry policy or an alarm can tell them apart.
    pub fn error_type(&self) -> String {
        let kind = match self {
            Error::Aws { code, .. } => format!("Aws.{code}"),
            Error::Payload(_) => "InvalidPayload".into(),
            Error::Config(_) => "InvalidConfiguration".into(),
            Error::SomeFailed { .. } => "PartialFailure".into(),
            Error::Deadline { .. } => "Deadline".into(),
            Error::Unfinished { .. } => "Unfinished".into(),
        };
        let class = if self.is_retryable() {
            "Retryable"
        } else {
            "NonRetryable"
        };
        format!("{class}.{kind}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_say_whether_to_retry() {
        assert_eq!(
            Error::Payload("x".into()).error_type(),
            "NonRetryable.InvalidPayload"
        );
        let e = Error::Aws {
            operation: "CopyImage",
            region: "us-west-2".into(),
            code: "RequestLimitExceeded".into(),
            message: "slow down".into(),
        };
        assert_eq!(e.error_type(), "Retryable.Aws.RequestLimitExceeded");
        assert_eq!(
            e.to_string(),
            "CopyImage in us-west-2 failed: RequestLimitExceeded: slow down"
        );
    }
}
