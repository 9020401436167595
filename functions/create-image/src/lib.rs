//! The create-image function's handler: every payload it accepts goes through
//! [`shared::create::handle_event`] with [`ResourceKind::Instance`].

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use shared::create::ResourceKind;
use shared::sqs::WorkQueue;
use shared::{Config, ec2::Ec2};

pub async fn handler(
    config: &Config,
    ec2: &Ec2,
    queue: Option<&WorkQueue>,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    shared::create::handle_event(ResourceKind::Instance, config, ec2, queue, event)
        .await
        .map_err(shared::lambda::diagnostic)
}
