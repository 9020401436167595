//! The create-image function: wiring only. Every payload goes through the invocation pipeline
//! ([`shared::invocation`]) as [`shared::create::Create`] for instances.

use lambda_runtime::{run, service_fn};
use shared::create::{Create, ResourceKind};
use shared::invocation::{Setting, handle_event};
use shared::{Config, ec2::Ec2, lambda};

// One thread: Lambda gives a small function one vCPU, and every call here waits on the network.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = lambda::sdk_config().await;
    // DR_ACCOUNT and SOURCE_ACCOUNTS against the function's own account.
    lambda::check_accounts(&sdk, &config).await?;
    let queue = lambda::work_queue(&sdk, &config, "create-image");
    let ec2 = Ec2::for_region(&sdk, &lambda::home_region(&sdk)?).paced(&config.rate_limits);
    let queue = queue.as_ref();
    run(service_fn(|event| {
        handle_event(event, |context, now| Create {
            kind: ResourceKind::Instance,
            setting: Setting {
                config: &config,
                queue,
                now,
            },
            // No call starts that could only leave past the invocation's deadline.
            ec2: ec2.for_invocation(context),
            request_id: context.request_id.clone(),
        })
    }))
    .await
}
