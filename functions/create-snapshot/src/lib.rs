//! The create-snapshot function's handler: every payload it accepts goes through
//! [`shared::create::handle_event`] with [`ResourceKind::Volume`].

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::event::ResourceKind;
use shared::{Config, Error, ec2::Ec2};

pub async fn handler(
    config: &Config,
    ec2: &Ec2,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    shared::create::handle_event(ResourceKind::Volume, config, ec2, event).await
}
