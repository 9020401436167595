// The future of a whole invocation nests the SDK's deeply; release builds (LTO) compute its
// layout past the default depth of 128.
#![recursion_limit = "256"]

//! The replicate function: wiring only. Every payload goes through the invocation pipeline
//! ([`shared::invocation`]) as [`shared::replicate::Replicate`].

use lambda_runtime::{run, service_fn};
use shared::invocation::{Setting, handle_event};
use shared::replicate::Replicate;
use shared::{Config, clients::Clients, lambda};

// One thread: every call here waits on the network; copies run concurrently as futures on it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = lambda::sdk_config().await;
    // DR_ACCOUNT and SOURCE_ACCOUNTS against the function's own account.
    lambda::check_accounts(&sdk, &config).await?;
    let home = lambda::home_region(&sdk)?;
    let queue = lambda::work_queue(&sdk, &config, "replicate");
    let mut clients = Clients::from_sdk(sdk.clone(), home, config.rate_limits.clone());
    if config.dr_account.is_some() {
        // A home deployment tells its DR account of each backup it shares.
        clients = clients.with_events(shared::events::Events::new(&sdk));
    }
    let queue = queue.as_ref();
    run(service_fn(|event| {
        handle_event(event, |context, now| Replicate {
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
