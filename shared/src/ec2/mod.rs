//! The EC2 adapter: the only code that knows the SDK. It speaks in our types ([`Backup`],
//! [`Source`], the create, copy and restore requests), reads every page through the SDK's
//! paginators, and keeps each AWS error's code.
//!
//! - `sources`: the instances and volumes to back up;
//! - `backups`: the one listing of backups ([`BackupQuery`]) and every call that makes, copies,
//!   tags or deletes one;
//! - `restore`: launching, volumes, placement and waiting;
//! - `drill`: how a drill's throwaway resources stand, and its security group;
//! - `dr`: sharing with the DR account, and in the vault what is shared with it, snapshot
//!   locks and deregistration protection.

mod backups;
mod dr;
mod drill;
mod restore;
mod sources;

pub use backups::SnapshotOutcome;

use crate::aws::aws_error;
use crate::error::Error;
use crate::pacing::{Deadline, Pacer, RateLimits};
use crate::region::Region;
use crate::tags::Tags;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Describe calls ask for the largest page EC2 allows, so a sweep is a handful of calls.
pub const DEFAULT_PAGE_SIZE: i32 = 1000;

/// EC2 takes at most 200 values in one filter.
pub const MAX_FILTER_VALUES: usize = 200;

/// One region's EC2, in our types.
#[derive(Debug, Clone)]
pub struct Ec2 {
    client: Client,
    region: Region,
    page_size: i32,
    throttles: ThrottleCounter,
    pacer: Pacer,
    deadline: Option<Deadline>,
}

/// Counts the throttled answers EC2 sent (`RequestLimitExceeded`, HTTP 503), each retry's
/// included: the SDK retries them, so a result never shows them, but the `Throttles` metric
/// does.
#[derive(Debug, Clone, Default)]
struct ThrottleCounter(Arc<AtomicU64>);

impl aws_sdk_ec2::config::Intercept for ThrottleCounter {
    fn name(&self) -> &'static str {
        "ThrottleCounter"
    }

    fn read_after_deserialization(
        &self,
        context: &aws_sdk_ec2::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _: &aws_sdk_ec2::config::RuntimeComponents,
        _: &mut aws_sdk_ec2::config::ConfigBag,
    ) -> Result<(), aws_sdk_ec2::error::BoxError> {
        let response = context.response();
        let status = response.status().as_u16();
        let throttled = status == 503
            || (status >= 400
                && response
                    .body()
                    .bytes()
                    .is_some_and(|b| b.windows(THROTTLED.len()).any(|w| w == THROTTLED)));
        if throttled {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

const THROTTLED: &[u8] = crate::codes::REQUEST_LIMIT_EXCEEDED.as_bytes();

/// Without a deadline (tests, the command-line tool), how many more times a throttled call is
/// tried after the SDK's retries: about two and a half minutes of waiting in all.
pub const THROTTLED_ROUNDS: u32 = 10;

/// A number in [0, 1) that differs from call to call (no randomness crate needed for a jitter).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    let h = RandomState::new().hash_one(std::time::SystemTime::now());
    (h % 1_000_000) as f64 / 1_000_000.0
}

impl Ec2 {
    /// An adapter over a client made elsewhere (the tests' moto and mocked clients); the
    /// client gets the throttle counter.
    pub fn new(client: Client, region: Region) -> Self {
        let throttles = ThrottleCounter::default();
        let conf = client
            .config()
            .to_builder()
            .interceptor(throttles.clone())
            .build();
        Self {
            client: Client::from_conf(conf),
            region,
            page_size: DEFAULT_PAGE_SIZE,
            throttles,
            pacer: Pacer::new(RateLimits::none()),
            deadline: None,
        }
    }

    /// This adapter for one invocation: it starts no call that could only leave past
    /// `deadline` (the call answers [`Error::Deadline`] instead). Its clones share the buckets
    /// and the throttle count.
    pub fn until(&self, deadline: Deadline) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// This adapter for the invocation of `context`: bound by its deadline (when it names one),
    /// see [`Ec2::until`].
    pub fn for_invocation(&self, context: &lambda_runtime::Context) -> Self {
        match crate::pacing::deadline(context) {
            Some(deadline) => self.until(deadline),
            None => self.clone(),
        }
    }

    /// This adapter, keeping `room` before its deadline for the calls of a later step (see
    /// [`Deadline::keeping`]); without a deadline, the same.
    pub fn keeping(&self, room: Duration) -> Self {
        Self {
            deadline: self.deadline.map(|d| d.keeping(room)),
            ..self.clone()
        }
    }

    /// How long the last of `n` calls of `action` would wait for its turn if all were asked for
    /// now; nothing is reserved.
    pub fn pace_wait(&self, action: &'static str, n: usize) -> Duration {
        self.pacer.wait_for(action, n)
    }

    /// Paces this adapter's calls to `limits` (one bucket per action, for this region).
    pub fn paced(mut self, limits: &RateLimits) -> Self {
        self.pacer = Pacer::new(limits.clone());
        self
    }

    /// Waits until a call of `action` may leave (see [`crate::pacing`]), or says it may not
    /// before the deadline.
    async fn pace(&self, action: &'static str) -> Result<(), Error> {
        if self.pacer.pace(action, self.deadline.as_ref()).await {
            Ok(())
        } else {
            Err(Error::Deadline {
                operation: action,
                region: self.region.to_string(),
            })
        }
    }

    /// One paced call of `action` that waits out EC2's throttling: a `RequestLimitExceeded`
    /// that outlasted the SDK's own retries (its retry quota runs dry under sustained
    /// throttling) is tried again after a growing wait, for as long as the deadline allows
    /// (without one: [`THROTTLED_ROUNDS`] times), so that throttling is never a failure while
    /// the invocation has time. Only calls that EC2 did not carry out are tried again: a
    /// throttled call changed nothing.
    async fn call<T>(
        &self,
        action: &'static str,
        call: impl AsyncFn() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut wait = Duration::from_millis(500);
        let mut round = 0;
        loop {
            self.pace(action).await?;
            match call().await {
                Err(e) if e.code() == Some(crate::codes::REQUEST_LIMIT_EXCEEDED) => {
                    let now = tokio::time::Instant::now().into_std();
                    match &self.deadline {
                        // A throttled call changed nothing: past the deadline it is one not
                        // done, as one not started (`remaining`, deferred), not a failure.
                        Some(d) if !d.allows(now + wait) => {
                            return Err(Error::Deadline {
                                operation: action,
                                region: self.region.to_string(),
                            });
                        }
                        None if round >= THROTTLED_ROUNDS => return Err(e),
                        _ => {}
                    }
                    // Spread the retries of calls throttled together.
                    let jittered = wait.mul_f64(0.5 + jitter());
                    tracing::info!(action, region = %self.region, wait_ms = jittered.as_millis() as u64, "throttled: waiting it out");
                    tokio::time::sleep(jittered).await;
                    wait = (wait * 2).min(Duration::from_secs(20));
                    round += 1;
                }
                other => return other,
            }
        }
    }

    /// The throttled answers this adapter (and its clones) received so far.
    pub fn throttles(&self) -> u64 {
        self.throttles.0.load(Ordering::Relaxed)
    }

    /// A client for `region`, from the shared SDK configuration (credentials, retries, endpoint),
    /// unpaced until [`Ec2::paced`].
    pub fn for_region(sdk: &aws_config::SdkConfig, region: &Region) -> Self {
        let conf = aws_sdk_ec2::config::Builder::from(sdk)
            .region(aws_sdk_ec2::config::Region::new(region.to_string()))
            .build();
        Self::new(Client::from_conf(conf), region.clone())
    }

    /// Smaller pages, for tests that prove every page is read.
    pub fn with_page_size(mut self, page_size: i32) -> Self {
        self.page_size = page_size;
        self
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Maps an SDK error of `operation` in this region to ours.
    /// Every page of a paginated describe, in order, each page a call that waits for its token
    /// of `action` (and none started past the deadline).
    async fn each_page<T, E, R>(
        &self,
        action: &'static str,
        mut pages: PaginationStream<Result<T, SdkError<E, R>>>,
        mut each: impl FnMut(T),
    ) -> Result<(), Error>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        loop {
            self.pace(action).await?;
            let Some(page) = pages.next().await else {
                return Ok(());
            };
            each(page.map_err(self.err(action))?);
        }
    }

    fn err<E, R>(&self, operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> Error + '_
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        move |e| aws_error(operation, self.region.as_str(), e)
    }

    /// The id a create or copy call answered with; a successful answer without one (never
    /// expected from AWS) is an error, reported, not unwrapped.
    fn made(&self, operation: &'static str, what: &str, id: Option<&str>) -> Result<String, Error> {
        id.map(str::to_string)
            .ok_or_else(|| Error::missing_id(operation, self.region.as_str(), what))
    }
}

fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tag_specification(resource: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(sdk_tags(tags)))
        .build()
}

fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn smithy_time(t: &aws_sdk_ec2::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
