//! The monitor function's handler: every payload it accepts goes through
//! [`shared::monitor::handle`], which reads the home region and the DR regions and publishes
//! where each stands.

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use shared::{Config, clients::Clients};

pub async fn handler(
    config: &Config,
    clients: &Clients,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    // No describe starts that could only leave past the invocation's deadline.
    let clients = clients.for_invocation(&event.context);
    shared::monitor::handle(config, &clients, &event.payload, chrono::Utc::now())
        .await
        .map_err(shared::lambda::diagnostic)
}
