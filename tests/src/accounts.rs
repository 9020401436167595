//! Two or more AWS accounts on one moto server: a request signed with a 12-digit access key id
//! is in that account (see `tests/moto_server.py`). The key `testing` is [`HOME_ACCOUNT`].

use super::{Moto, region};
use aws_sdk_ec2::config::{
    BehaviorVersion, Credentials, Region as SdkRegion, SharedCredentialsProvider,
};
use serde_json::Value;

/// The account of the tests' usual key (`testing`): the home deployment's.
pub const HOME_ACCOUNT: &str = "123456789012";
/// The isolated DR account: the vault.
pub const VAULT_ACCOUNT: &str = "444455556666";
/// An account neither lists.
pub const STRANGER_ACCOUNT: &str = "777788889999";

impl Moto {
    fn key_of(account: &str) -> &str {
        if account == HOME_ACCOUNT {
            "testing"
        } else {
            account
        }
    }

    /// A raw EC2 client in `account`.
    pub fn ec2_in(&self, account: &str, region: &str) -> aws_sdk_ec2::Client {
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(SdkRegion::new(region.to_string()))
            .endpoint_url(self.url())
            .credentials_provider(Credentials::new(
                Self::key_of(account),
                "testing",
                None,
                None,
                "tests",
            ))
            .build();
        aws_sdk_ec2::Client::from_conf(conf)
    }

    /// The functions' adapters, in `account`, with `home` as home.
    pub fn clients_in(&self, account: &str, home: &str) -> shared::clients::Clients {
        let url = self.url().to_string();
        let key = Self::key_of(account).to_string();
        shared::clients::Clients::new(region(home), move |r| {
            let conf = aws_sdk_ec2::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(SdkRegion::new(r.to_string()))
                .endpoint_url(&url)
                .credentials_provider(Credentials::new(
                    key.clone(),
                    "testing",
                    None,
                    None,
                    "tests",
                ))
                .build();
            shared::ec2::Ec2::new(aws_sdk_ec2::Client::from_conf(conf), r.clone())
        })
    }

    /// The functions' SDK configuration in `account`.
    pub async fn sdk_in(&self, account: &str, home: &str) -> aws_config::SdkConfig {
        self.functions_sdk_config(home)
            .await
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                Self::key_of(account),
                "testing",
                None,
                None,
                "tests",
            )))
            .build()
    }

    /// A home deployment's adapters: EC2, and EventBridge to tell its DR account.
    pub async fn home_clients(&self) -> shared::clients::Clients {
        let sdk = self.sdk_in(HOME_ACCOUNT, super::HOME).await;
        self.clients_in(HOME_ACCOUNT, super::HOME)
            .with_events(shared::events::Events::new(&sdk))
    }

    /// What the two templates set up, in moto: the home account's rule forwarding `Backup
    /// Shared` events to the vault's default bus, the vault's bus policy admitting the home
    /// account, and the vault's rule putting them on a queue (replicate's work queue). Returns
    /// the vault queue's URL.
    pub async fn wire_events(&self) -> String {
        let home = aws_sdk_eventbridge::Client::new(&self.sdk_in(HOME_ACCOUNT, super::HOME).await);
        let vault_sdk = self.sdk_in(VAULT_ACCOUNT, super::HOME).await;
        let vault = aws_sdk_eventbridge::Client::new(&vault_sdk);
        let sqs = aws_sdk_sqs::Client::new(&vault_sdk);
        let url = sqs
            .create_queue()
            .queue_name("vault-replicate")
            .send()
            .await
            .expect("create_queue")
            .queue_url()
            .unwrap()
            .to_string();
        let arn = format!(
            "arn:aws:sqs:{}:{VAULT_ACCOUNT}:vault-replicate",
            super::HOME
        );
        let pattern = serde_json::json!({"source": ["ec2-backup"], "detail-type": ["Backup Shared"], "account": [HOME_ACCOUNT]});
        vault
            .put_rule()
            .name("shared")
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("put_rule");
        vault
            .put_targets()
            .rule("shared")
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("q")
                    .arn(arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("put_targets");
        vault
            .put_permission()
            .action("events:PutEvents")
            .principal(HOME_ACCOUNT)
            .statement_id("home")
            .send()
            .await
            .expect("put_permission");
        let forward =
            serde_json::json!({"source": ["ec2-backup"], "detail-type": ["Backup Shared"]});
        home.put_rule()
            .name("to-vault")
            .event_pattern(forward.to_string())
            .send()
            .await
            .expect("put_rule");
        home.put_targets()
            .rule("to-vault")
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("v")
                    .arn(format!(
                        "arn:aws:events:{}:{VAULT_ACCOUNT}:event-bus/default",
                        super::HOME
                    ))
                    .role_arn(format!("arn:aws:iam::{HOME_ACCOUNT}:role/forward"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("put_targets");
        url
    }

    /// The events waiting on the vault's queue (received and deleted).
    pub async fn vault_events(&self, url: &str) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk_in(VAULT_ACCOUNT, super::HOME).await);
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive_message");
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                out.push(serde_json::from_str(m.body().unwrap_or("{}")).expect("an event"));
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap_or(""))
                    .send()
                    .await
                    .expect("delete_message");
            }
        }
    }

    /// An encrypted volume in `account` and `region`, so that moto has made that account's
    /// default EBS key there (AWS has one from the start).
    pub async fn default_key_in(&self, account: &str, region: &str) {
        self.ec2_in(account, region)
            .create_volume()
            .availability_zone(format!("{region}a"))
            .size(1)
            .encrypted(true)
            .send()
            .await
            .expect("create_volume");
    }
}

impl Moto {
    /// A new evidence bucket in `account`, and the drill's S3 adapter on it with that
    /// account's credentials.
    pub async fn evidence_bucket_in(&self, account: &str, name: &str) -> shared::s3::Evidence {
        let sdk = self.sdk_in(account, super::HOME).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        s3.create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("create_bucket");
        shared::s3::Evidence::new(&sdk, name)
    }
}

impl Moto {
    /// The home deployment (`home`) shares what it has and tells the vault; the vault
    /// (`vault`) copies and locks what the events name (each handled at `at`). The EventBridge
    /// wiring and the vault's default keys must be there ([`Moto::wire_events`],
    /// [`Moto::default_key_in`]); `queue` is the vault's queue.
    pub async fn share_and_copy(
        &self,
        home: &shared::Config,
        vault: &shared::Config,
        queue: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let sweep = super::event("scheduled-event.json", &[]);
        let clients = self.home_clients().await;
        // Failures are the tests' to look at: here the result is not needed.
        let _ = shared::replicate::handle(home, &clients, None, &sweep, at).await;
        let vault_clients = self.clients_in(VAULT_ACCOUNT, super::HOME);
        for e in self.vault_events(queue).await {
            shared::replicate::handle(vault, &vault_clients, None, &e, at)
                .await
                .expect("the vault's replicate");
        }
    }
}
