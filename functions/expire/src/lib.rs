//! The expire function's handler: every payload it accepts goes through
//! [`shared::expire::handle`], which sweeps the home region, the DR regions and the cleanup
//! regions.

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use shared::sqs::WorkQueue;
use shared::{Config, clients::Clients};

pub async fn handler(
    config: &Config,
    clients: &Clients,
    queue: Option<&WorkQueue>,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    // No call starts that could only leave past the invocation's deadline.
    let clients = clients.for_invocation(&event.context);
    shared::expire::handle(config, &clients, queue, &event.payload, chrono::Utc::now())
        .await
        .map_err(shared::lambda::diagnostic)
}
