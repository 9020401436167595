use lambda_runtime::{run, service_fn};
use shared::{Config, ec2::Ec2, lambda};

// One thread: Lambda gives a small function one vCPU, and every call here waits on the network.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = lambda::sdk_config().await;
    let queue = lambda::work_queue(&sdk, &config, "create-snapshot");
    let ec2 = Ec2::for_region(&sdk, &lambda::home_region(&sdk)?).paced(&config.rate_limits);
    run(service_fn(|event| {
        create_snapshot::handler(&config, &ec2, queue.as_ref(), event)
    }))
    .await
}
