//! The monitor function: wiring only. Every payload goes through the invocation pipeline
//! ([`shared::invocation`]) as [`shared::monitor::Monitor`].

use lambda_runtime::{run, service_fn};
use shared::invocation::handle_event;
use shared::monitor::Monitor;
use shared::{Config, clients::Clients, lambda};

// One thread: every call here waits on the network.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = lambda::sdk_config().await;
    // DR_ACCOUNT and SOURCE_ACCOUNTS against the function's own account.
    lambda::check_accounts(&sdk, &config).await?;
    let home = lambda::home_region(&sdk)?;
    let clients = Clients::from_sdk(sdk, home, config.rate_limits.clone());
    run(service_fn(|event| {
        // No describe starts that could only leave past the invocation's deadline.
        handle_event(event, |context, now| {
            Monitor::new(&config, clients.for_invocation(context), now)
        })
    }))
    .await
}
