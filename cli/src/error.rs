//! The CLI's one error type. An AWS failure keeps `shared::Error`, and with it the AWS error code
//! (`InvalidSubnetID.NotFound`, `UnauthorizedOperation`, ...); every message names what was at
//! fault. Any of these ends the command with exit code 2.

use shared::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An AWS call failed while `doing` something: the message carries the operation, the
    /// region and the AWS error code.
    #[error("{doing}: {source}")]
    Aws {
        doing: String,
        #[source]
        source: shared::Error,
    },
    /// A configuration variable the flags do not mirror (DRY_RUN, ...) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No home region: neither AWS_REGION, --home-region nor the profile names one.
    #[error("{0} (set AWS_REGION or --home-region)")]
    NoHomeRegion(#[source] shared::Error),
    /// What was asked for cannot be done as asked.
    #[error("{what}: {reason}")]
    BadInput { what: String, reason: String },
    /// What was asked for does not exist: no usable backup, no such subnet or zone.
    #[error("{0}")]
    NotFound(String),
    #[error("could not write the JSON output: {0}")]
    Output(#[from] serde_json::Error),
}

impl CliError {
    /// An AWS failure while doing `doing`.
    pub fn aws(doing: impl Into<String>) -> impl FnOnce(shared::Error) -> Self {
        let doing = doing.into();
        move |source| CliError::Aws { doing, source }
    }

    pub fn bad_input(what: impl Into<String>, reason: impl Into<String>) -> Self {
        CliError::BadInput {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// The AWS error code, when AWS gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CliError::Aws { source, .. } | CliError::NoHomeRegion(source) => source.code(),
            _ => None,
        }
    }
}

impl From<shared::status::GatherError> for CliError {
    /// A read of `status`'s gathering failed: what was being read, and the AWS error.
    fn from(e: shared::status::GatherError) -> Self {
        CliError::Aws {
            doing: e.doing,
            source: e.source,
        }
    }
}

pub type Result<T> = std::result::Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aws_failure_names_the_task_and_keeps_the_code() {
        let err = CliError::aws("launching from ami-1 in us-west-2")(shared::Error::Aws {
            operation: "RunInstances",
            region: "us-west-2".into(),
            code: "InsufficientInstanceCapacity".into(),
            message: "none left".into(),
        });
        assert_eq!(err.code(), Some("InsufficientInstanceCapacity"));
        assert_eq!(
            err.to_string(),
            "launching from ami-1 in us-west-2: RunInstances in us-west-2 failed: InsufficientInstanceCapacity: none left"
        );
        assert_eq!(CliError::NotFound("x".into()).code(), None);
    }
}
