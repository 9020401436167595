//! Helpers for the tests that run against the local moto server (`tests/moto_server.py`): the
//! one `scripts/test` starts and exports as `MOTO_URL`, else one each test process starts for
//! itself (see [`server`]), so `cargo test` alone works too.
//!
//! Every test takes the server for itself through [`Moto::start`]: tests run one at a time
//! (a lock), each against a freshly reset server.

pub mod accounts;
pub mod binary;
pub mod server;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{
    BehaviorVersion, Credentials, Region as SdkRegion, SharedCredentialsProvider,
};
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::Region;
use shared::ec2::Ec2;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};

pub const HOME: &str = "us-east-1";
pub const DR: &str = "us-west-2";
pub const DR2: &str = "eu-west-1";

static SERVER: Mutex<()> = Mutex::const_new(());

pub fn region(name: &str) -> Region {
    Region::parse(name).expect("test region")
}

/// The moto server, reset, held by one test at a time.
pub struct Moto {
    url: String,
    _turn: MutexGuard<'static, ()>,
}

impl Moto {
    pub async fn start() -> Self {
        let turn = SERVER.lock().await;
        // The functions' metrics lines go through the harness's capture, not past it.
        shared::metrics::set_writer(|line| print!("{line}"));
        let url = server::moto_url().to_string();
        let moto = Self { url, _turn: turn };
        let (status, body) = moto.http("POST", "/moto-api/reset", "");
        assert_eq!(status, 200, "moto reset failed: {body}");
        // EC2's own throttling buckets, full, whatever the previous test set.
        moto.set_buckets(serde_json::json!({"scale": 1}));
        moto
    }

    /// The server's throttling buckets (see `tests/moto_server.py`): `{"scale": F}` for EC2's
    /// figures times F, `{"buckets": {"CreateImage": {"burst": 5, "rate": 2}}}` for exactly
    /// these; full again either way.
    pub fn set_buckets(&self, spec: Value) {
        let (status, body) = self.http("POST", "/_test/buckets", &spec.to_string());
        assert_eq!(status, 200, "setting the buckets failed: {body}");
    }

    /// The throttled answers the server sent in `region`, by action.
    pub fn throttled(&self, region: &str) -> BTreeMap<String, u64> {
        let (_, body) = self.http("GET", "/_test/buckets", "");
        let v: Value = serde_json::from_str(&body).expect("buckets JSON");
        serde_json::from_value(v["throttled"][region].clone()).unwrap_or_default()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A plain HTTP/1.1 request to the server's test endpoints.
    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        self.try_http(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path} to moto at {}: {e}", self.url))
    }

    fn try_http(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let host = self.url.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = TcpStream::connect(host)?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// A raw SDK client for seeding and checking.
    pub fn client(&self, region: &str) -> Client {
        self.client_as("testing", region)
    }

    /// A raw SDK client whose calls the server neither counts nor faults (the access key
    /// `uncounted`, see `tests/moto_server.py`): for checks that look at the server's state
    /// between a function's calls and the test's assertions about them.
    pub fn uncounted_client(&self, region: &str) -> Client {
        self.client_as("uncounted", region)
    }

    fn client_as(&self, access_key: &str, region: &str) -> Client {
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(SdkRegion::new(region.to_string()))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new(access_key, "testing", None, None, "tests"))
            .build();
        Client::from_conf(conf)
    }

    /// The adapter the functions use, on this server.
    pub fn ec2(&self, region_name: &str) -> Ec2 {
        Ec2::new(self.client(region_name), region(region_name))
    }

    /// EC2 calls since the last reset, by region and action.
    pub fn calls(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let (_, body) = self.http("GET", "/_test/calls", "");
        serde_json::from_str(&body).expect("calls JSON")
    }

    pub fn calls_in(&self, region: &str) -> BTreeMap<String, u64> {
        self.calls().remove(region).unwrap_or_default()
    }

    pub fn reset_calls(&self) {
        self.http("POST", "/_test/calls/reset", "");
    }

    /// Makes the next matching EC2 calls fail (see `tests/moto_server.py`).
    pub fn fault(&self, spec: Value) {
        let (status, body) = self.http("POST", "/_test/faults", &spec.to_string());
        assert_eq!(status, 200, "fault injection failed: {body}");
    }

    /// Stamps what EC2 creates from now on (an AMI's CreationDate, a snapshot's StartTime)
    /// with `at` instead of the machine's clock, until this test is done. The functions
    /// take a backup's creation time from its tag unless EC2's stamp is earlier, so a test that
    /// makes backups on a timeline of its own sets the stamps on it too.
    pub fn set_clock(&self, at: DateTime<Utc>) {
        let spec = serde_json::json!({ "now": shared::tags::format_time(at) });
        let (status, body) = self.http("POST", "/_test/clock", &spec.to_string());
        assert_eq!(status, 200, "setting the clock failed: {body}");
    }

    /// Sets an AMI's state (moto's are available at once; AWS's can fail).
    pub fn set_image_state(&self, region: &str, image_id: &str, state: &str) {
        let spec = serde_json::json!({"region": region, "image_id": image_id, "state": state});
        let (status, body) = self.http("POST", "/_test/image-state", &spec.to_string());
        assert_eq!(status, 200, "setting the image state failed: {body}");
    }

    /// An instance with these tags, and `extra_volumes` data volumes attached besides its root.
    pub async fn instance(
        &self,
        region: &str,
        tags: &[(&str, &str)],
        extra_volumes: usize,
    ) -> String {
        let ec2 = self.client(region);
        let out = ec2
            .run_instances()
            .image_id("ami-12345678")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .set_tag_specifications(spec(ResourceType::Instance, tags))
            .send()
            .await
            .expect("run_instances");
        let instance = &out.instances()[0];
        let id = instance.instance_id().expect("instance id").to_string();
        let az = instance
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or("us-east-1a")
            .to_string();
        for n in 0..extra_volumes {
            let vol = self.volume_in(region, &az, &[]).await;
            ec2.attach_volume()
                .volume_id(&vol)
                .instance_id(&id)
                .device(format!("/dev/sd{}", (b'f' + n as u8) as char))
                .send()
                .await
                .expect("attach_volume");
        }
        id
    }

    pub async fn volume(&self, region: &str, tags: &[(&str, &str)]) -> String {
        self.volume_in(region, &format!("{region}a"), tags).await
    }

    async fn volume_in(&self, region: &str, az: &str, tags: &[(&str, &str)]) -> String {
        self.client(region)
            .create_volume()
            .availability_zone(az)
            .size(8)
            .set_tag_specifications(spec(ResourceType::Volume, tags))
            .send()
            .await
            .expect("create_volume")
            .volume_id()
            .expect("volume id")
            .to_string()
    }

    pub async fn attach(&self, region: &str, volume: &str, instance: &str, device: &str) {
        self.client(region)
            .attach_volume()
            .volume_id(volume)
            .instance_id(instance)
            .device(device)
            .send()
            .await
            .expect("attach_volume");
    }

    pub async fn stop(&self, region: &str, instance: &str) {
        self.client(region)
            .stop_instances()
            .instance_ids(instance)
            .send()
            .await
            .expect("stop_instances");
    }

    pub async fn terminate(&self, region: &str, instance: &str) {
        self.client(region)
            .terminate_instances()
            .instance_ids(instance)
            .send()
            .await
            .expect("terminate_instances");
    }

    pub async fn set_tags(&self, region: &str, resource: &str, tags: &[(&str, &str)]) {
        self.client(region)
            .create_tags()
            .resources(resource)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .send()
            .await
            .expect("create_tags");
    }

    /// Every image in the region (any owner, any state), with its tags.
    pub async fn images(&self, region: &str) -> Vec<aws_sdk_ec2::types::Image> {
        self.client(region)
            .describe_images()
            .send()
            .await
            .expect("describe_images")
            .images()
            .to_vec()
    }

    pub async fn snapshots(&self, region: &str) -> Vec<aws_sdk_ec2::types::Snapshot> {
        self.client(region)
            .describe_snapshots()
            .owner_ids("self")
            .send()
            .await
            .expect("describe_snapshots")
            .snapshots()
            .to_vec()
    }

    pub async fn instance_tags(&self, region: &str, id: &str) -> BTreeMap<String, String> {
        let out = self
            .client(region)
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .expect("describe_instances");
        out.reservations()[0].instances()[0]
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

fn spec(resource: ResourceType, tags: &[(&str, &str)]) -> Option<Vec<TagSpecification>> {
    if tags.is_empty() {
        return None;
    }
    Some(vec![
        TagSpecification::builder()
            .resource_type(resource)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .build(),
    ])
}

/// Tags of an EC2 resource as a map.
pub fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A sample from `events/`, with every occurrence of `from` replaced by `to` (to point a sample
/// at a resource a test made).
pub fn event(name: &str, replacements: &[(&str, &str)]) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (from, to) in replacements {
        assert!(text.contains(from), "{path} has no {from:?} to replace");
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The machine clock's time, after waiting for the next minute when fewer than `seconds` are
/// left in this one: what a test does in the next `seconds` then happens in one minute, as AMI
/// names hold the minute.
pub fn in_one_minute(seconds: u32) -> DateTime<Utc> {
    use chrono::Timelike;
    let now = Utc::now();
    let left = 60 - now.second();
    if left < seconds {
        std::thread::sleep(std::time::Duration::from_millis(
            (u64::from(left) * 1000).saturating_sub(u64::from(now.timestamp_subsec_millis())) + 100,
        ));
    }
    Utc::now()
}

/// The ids in one list of a report (`created`, `skipped`, ...) by their `source`.
pub fn sources(report: &Value, list: &str) -> Vec<String> {
    let mut ids: Vec<String> = report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {report}"))
        .iter()
        .map(|e| e["source"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

impl Moto {
    /// Asserts that every EC2 call made since the last reset, in every region, is one that
    /// `function`'s IAM policy allows (`shared/permissions.json`).
    pub fn assert_calls_allowed(&self, function: &str) {
        let allowed = shared::permissions::ec2_actions(function);
        for (region, calls) in self.calls() {
            for action in calls.keys() {
                assert!(
                    allowed.contains(&format!("ec2:{action}")),
                    "{function} called ec2:{action} in {region}, which shared/permissions.json does not allow it"
                );
            }
        }
    }
}

impl Moto {
    /// The regional adapter factory the functions use, on this server, with `home` as home.
    pub fn clients(&self, home: &str) -> shared::clients::Clients {
        self.clients_paced(home, shared::pacing::RateLimits::none())
    }

    /// The adapters of [`Moto::clients`], each region's calls paced to `limits`.
    pub fn clients_paced(
        &self,
        home: &str,
        limits: shared::pacing::RateLimits,
    ) -> shared::clients::Clients {
        let url = self.url.clone();
        shared::clients::Clients::new(region(home), move |r| {
            let conf = aws_sdk_ec2::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(SdkRegion::new(r.to_string()))
                .endpoint_url(&url)
                .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
                .build();
            Ec2::new(Client::from_conf(conf), r.clone()).paced(&limits)
        })
    }
}

/// A test's clock ends with it: the next test process on a shared server (`MOTO_URL`) may not
/// reset it, and the functions' binaries read the machine's clock.
impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.try_http("POST", "/_test/clock", r#"{"now": null}"#);
    }
}

impl Moto {
    /// The SDK configuration the functions load (`shared::lambda::sdk_config`, with its retry
    /// policy), pointed at this server with `home` as the region. Set on the configuration, not
    /// through `AWS_*` variables: tests run in parallel threads and share one environment.
    pub async fn functions_sdk_config(&self, home: &str) -> aws_config::SdkConfig {
        shared::lambda::sdk_config()
            .await
            .into_builder()
            .endpoint_url(&self.url)
            .region(SdkRegion::new(home.to_string()))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "tests",
            )))
            .build()
    }
}

/// The request id Lambda gives an invocation; a retry of it carries the same one.
pub const REQUEST_ID: &str = "8a5f1f3e-0000-4000-8000-000000000001";

/// A create function's handler as Lambda calls it, every call as (a retry of) one request.
pub async fn handle(
    kind: shared::create::ResourceKind,
    config: &shared::Config,
    ec2: &Ec2,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<Value, shared::Error> {
    shared::create::handle(kind, config, ec2, None, payload, REQUEST_ID, now).await
}

/// An AMI of `instance` made on demand by create-image in `home` at `at`, as a request of its
/// own (a retry of one request would reuse its backup): its id.
pub async fn on_demand_image(
    moto: &Moto,
    config: &shared::Config,
    home: &str,
    instance: &str,
    at: DateTime<Utc>,
) -> String {
    let report = shared::create::handle(
        shared::create::ResourceKind::Instance,
        config,
        &moto.ec2(home),
        None,
        &serde_json::json!({ "instance_ids": [instance] }),
        &format!("request-at-{}", at.timestamp()),
        at,
    )
    .await
    .expect("backup made");
    report["created"][0]["id"]
        .as_str()
        .expect("an image id")
        .to_string()
}

/// The work queues of the functions, on this server: made, read as Lambda's event source
/// mapping reads them, and settled as it settles them.
impl Moto {
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new(HOME))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build();
        aws_sdk_sqs::Client::from_conf(conf)
    }

    /// A work queue for `function` (FIFO, with content-based deduplication, when `name` ends
    /// in `.fifo`, as the template makes the create functions' queues).
    pub async fn work_queue(&self, name: &str, function: &str) -> shared::sqs::WorkQueue {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let mut create = self.sqs().create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            create = create
                .attributes(A::FifoQueue, "true")
                .attributes(A::ContentBasedDeduplication, "true");
        }
        let url = create
            .send()
            .await
            .expect("create_queue")
            .queue_url()
            .expect("queue url")
            .to_string();
        shared::sqs::WorkQueue::from_client(self.sqs(), &url, function)
    }

    /// The messages visible now (at most 10, as one batch of the event source mapping), each
    /// invisible for a minute after.
    pub async fn receive(
        &self,
        queue: &shared::sqs::WorkQueue,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        use aws_sdk_sqs::types::MessageSystemAttributeName as A;
        self.sqs()
            .receive_message()
            .queue_url(queue.url())
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .message_system_attribute_names(A::All)
            .send()
            .await
            .expect("receive_message")
            .messages()
            .to_vec()
    }

    /// Deletes the messages of a batch that `answer` does not list as batch item failures, as
    /// the event source mapping does with `ReportBatchItemFailures`.
    pub async fn settle(
        &self,
        queue: &shared::sqs::WorkQueue,
        batch: &[aws_sdk_sqs::types::Message],
        answer: &Value,
    ) {
        let failed: Vec<&str> = answer["batchItemFailures"]
            .as_array()
            .expect("batchItemFailures")
            .iter()
            .map(|f| f["itemIdentifier"].as_str().expect("itemIdentifier"))
            .collect();
        for m in batch {
            if !failed.contains(&m.message_id().unwrap_or_default()) {
                self.sqs()
                    .delete_message()
                    .queue_url(queue.url())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete_message");
            }
        }
    }

    /// A queue attribute as a number (`ApproximateNumberOfMessagesDelayed`, ...).
    pub async fn queue_count(
        &self,
        queue: &shared::sqs::WorkQueue,
        name: aws_sdk_sqs::types::QueueAttributeName,
    ) -> u64 {
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(queue.url())
            .attribute_names(name.clone())
            .send()
            .await
            .expect("get_queue_attributes");
        out.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// The SQS event Lambda's event source mapping delivers for `batch` from `queue`.
pub fn sqs_event(queue: &shared::sqs::WorkQueue, batch: &[aws_sdk_sqs::types::Message]) -> Value {
    let name = queue.url().rsplit('/').next().unwrap_or_default();
    let records: Vec<Value> = batch
        .iter()
        .map(|m| {
            let mut record = sqs_record(
                m.message_id().unwrap_or_default(),
                m.body().unwrap_or_default(),
                name,
            );
            record["receiptHandle"] = m.receipt_handle().unwrap_or_default().into();
            record
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// One record of an SQS event, as Lambda shapes it.
pub fn sqs_record(message_id: &str, body: &str, queue_name: &str) -> Value {
    serde_json::json!({
        "messageId": message_id,
        "receiptHandle": format!("handle-{message_id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764644400000",
                       "SenderId": "AROAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1764644400001"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:{HOME}:123456789012:{queue_name}"),
        "awsRegion": HOME,
    })
}

/// The evidence bucket of the drill, on this server (S3 in path style, as a local endpoint
/// serves it).
impl Moto {
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(HOME))
            .endpoint_url(&self.url)
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// A new bucket `name`, as the drill's evidence.
    pub async fn evidence_bucket(&self, name: &str) -> shared::s3::Evidence {
        self.s3()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("create_bucket");
        self.evidence(name).await
    }

    /// The drill's S3 adapter on `bucket`, as the functions make it (the SDK configuration of
    /// [`Moto::functions_sdk_config`]).
    pub async fn evidence(&self, bucket: &str) -> shared::s3::Evidence {
        shared::s3::Evidence::new(&self.functions_sdk_config(HOME).await, bucket)
    }

    /// Every object in `bucket` under `prefix`: its key and its body.
    pub async fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let evidence = self.evidence(bucket).await;
        let keys = evidence.keys(prefix, None).await.expect("list_objects_v2");
        let mut out = Vec::new();
        for key in keys {
            let body = evidence.get(&key).await.expect("get_object");
            out.push((key, body));
        }
        out
    }

    /// What the server reports of a region's restores (see `tests/moto_server.py`,
    /// `/_test/restore-hold`): `status` for `kind` `instance` (`initializing`, `impaired`) or
    /// `volume` (`creating`, `error`); `None` lifts it.
    pub fn hold_restores(&self, region: &str, kind: &str, status: Option<&str>) {
        let spec = serde_json::json!({"region": region, "kind": kind, "status": status});
        let (code, body) = self.http("POST", "/_test/restore-hold", &spec.to_string());
        assert_eq!(code, 200, "holding the restores failed: {body}");
    }
}
