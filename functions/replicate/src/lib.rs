//! The replicate function's handler: every payload it accepts goes through
//! [`shared::replicate::handle`], with one EC2 client per region from [`Clients`].

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use shared::Config;
use shared::clients::Clients;
use shared::sqs::WorkQueue;

pub async fn handler(
    config: &Config,
    clients: &Clients,
    queue: Option<&WorkQueue>,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    // No call starts that could only leave past the invocation's deadline.
    let clients = clients.for_invocation(&event.context);
    shared::replicate::handle(config, &clients, queue, &event.payload, chrono::Utc::now())
        .await
        .map_err(shared::lambda::diagnostic)
}
