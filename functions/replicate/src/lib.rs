//! The replicate function's handler: every payload it accepts goes through
//! [`shared::replicate::handle`], with one EC2 client per region from [`Clients`].

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::clients::Clients;
use shared::{Config, Error};

pub async fn handler(
    config: &Config,
    clients: &Clients,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    // No call starts that could only leave past the invocation's deadline.
    let clients = clients.for_invocation(&event.context);
    shared::replicate::handle(config, &clients, &event.payload, chrono::Utc::now()).await
}
