//! The expire function: wiring only. Every payload goes through the invocation pipeline
//! ([`shared::invocation`]) as [`shared::expire::Expire`].

use lambda_runtime::{run, service_fn};
use shared::expire::Expire;
use shared::invocation::{Setting, handle_event};
use shared::{Config, clients::Clients, lambda};

// One thread: every call here waits on the network, and regions are swept concurrently as
// futures on it; one thread also keeps one malloc arena (10,000 AMIs: 36 MiB peak on the
// multi-threaded runtime, 31 on this one).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = lambda::sdk_config().await;
    // DR_ACCOUNT and SOURCE_ACCOUNTS against the function's own account.
    lambda::check_accounts(&sdk, &config).await?;
    let home = lambda::home_region(&sdk)?;
    let queue = lambda::work_queue(&sdk, &config, "expire");
    let clients = Clients::from_sdk(sdk, home, config.rate_limits.clone());
    let queue = queue.as_ref();
    run(service_fn(|event| {
        handle_event(event, |context, now| Expire {
            setting: Setting {
                config: &config,
                queue,
                now,
            },
            // No call starts that could only leave past the invocation's deadline.
            clients: clients.for_invocation(context),
        })
    }))
    .await
}
