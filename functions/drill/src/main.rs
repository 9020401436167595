//! The drill function: wiring only. Every payload goes through the invocation pipeline
//! ([`shared::invocation`]) as [`shared::drill::Drill`].

use lambda_runtime::{run, service_fn};
use shared::drill::settings::DrillSettings;
use shared::drill::{Drill, FUNCTION, Run};
use shared::invocation::{Setting, handle_event};
use shared::s3::Evidence;
use shared::{Config, clients::Clients, lambda};

// One thread: every call here waits on the network.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let settings = DrillSettings::from_env()?;
    let sdk = lambda::sdk_config().await;
    // DR_ACCOUNT and SOURCE_ACCOUNTS against the function's own account.
    lambda::check_accounts(&sdk, &config).await?;
    let home = lambda::home_region(&sdk)?;
    let queue = lambda::work_queue(&sdk, &config, FUNCTION);
    let evidence = settings
        .evidence_bucket
        .as_deref()
        .map(|bucket| Evidence::new(&sdk, bucket));
    let clients = Clients::from_sdk(sdk, home, config.rate_limits.clone());
    let queue = queue.as_ref();
    run(service_fn(|event| {
        handle_event(event, |context, now| Drill {
            setting: Setting {
                config: &config,
                queue,
                now,
            },
            settings: &settings,
            // No call starts that could only leave past the invocation's deadline.
            clients: clients.for_invocation(context),
            evidence: evidence.clone(),
            run: Run::new(now, &context.request_id),
            poll: std::time::Duration::from_secs(10),
            recheck_seconds: shared::drill::RECHECK_SECONDS,
            started: std::time::Instant::now(),
        })
    }))
    .await
}
