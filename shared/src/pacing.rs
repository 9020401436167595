//! The pacer: the buckets of one region ([`Bucket`], pure, in the core), and the wait each
//! reservation says, on tokio's clock.

pub use backup_core::pacing::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The buckets of one region, shared by the clones of its adapter.
#[derive(Debug, Clone)]
pub struct Pacer {
    limits: Arc<RateLimits>,
    buckets: Arc<Mutex<HashMap<&'static str, Bucket>>>,
}

impl Pacer {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits: Arc::new(limits),
            buckets: Arc::default(),
        }
    }

    /// How long the last of `n` calls of `action` would wait for its turn if all were asked for
    /// now (nothing is reserved); zero for an action that is not paced.
    pub fn wait_for(&self, action: &'static str, n: usize) -> Duration {
        let Some(rate) = self.limits.get(action) else {
            return Duration::ZERO;
        };
        let now = tokio::time::Instant::now().into_std();
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match buckets.get(action) {
            Some(bucket) => bucket.wait_for(n, now),
            None => Bucket::new(rate, now).wait_for(n, now),
        }
    }

    /// Waits until a call of `action` may leave; `false`, at once and without taking a token,
    /// when it could only leave past `deadline`.
    pub async fn pace(&self, action: &'static str, deadline: Option<&Deadline>) -> bool {
        // tokio's clock, so that tests with paused time see the waits they cause.
        let now = tokio::time::Instant::now().into_std();
        let wait = match self.limits.get(action) {
            None => Duration::ZERO,
            Some(rate) => {
                // A poisoned lock only means another task panicked while holding it; the
                // buckets are still usable.
                let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
                let bucket = buckets
                    .entry(action)
                    .or_insert_with(|| Bucket::new(rate, now));
                let wait = bucket.reserve(now);
                if deadline.is_some_and(|d| !d.allows(now + wait)) {
                    bucket.unreserve();
                    return false;
                }
                wait
            }
        };
        if deadline.is_some_and(|d| !d.allows(now + wait)) {
            return false;
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        true
    }
}

/// The invocation's deadline, from the Lambda context; `None` when the context names none (a
/// deadline already past or absent would refuse every call).
pub fn deadline(context: &lambda_runtime::Context) -> Option<Deadline> {
    let left = context
        .deadline()
        .duration_since(std::time::SystemTime::now())
        .ok()
        .filter(|left| !left.is_zero())?;
    let now = tokio::time::Instant::now().into_std();
    Some(Deadline::new(now + left, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    #[tokio::test]
    async fn the_pacer_sleeps_each_call_to_its_turn() {
        let pacer = Pacer::new(RateLimits::parse("CreateImage=40/1").unwrap());
        let t0 = std::time::Instant::now();
        for _ in 0..5 {
            assert!(pacer.pace("CreateImage", None).await);
        }
        // One at once, then one every 25 ms.
        let took = t0.elapsed().as_secs_f64();
        assert!((0.1..0.3).contains(&took), "{took}");
        // An action without a bucket is not paced.
        let t1 = std::time::Instant::now();
        assert!(pacer.pace("RunInstances", None).await);
        assert!(t1.elapsed() < Duration::from_millis(20));
    }

    #[tokio::test]
    async fn a_call_that_could_only_leave_past_the_deadline_is_not_started_and_keeps_its_token() {
        let pacer = Pacer::new(RateLimits::parse("CreateImage=1/1").unwrap());
        let t0 = Instant::now();
        // 10 s to go, so a 2 s margin: the first call leaves now.
        let deadline = Deadline::new(t0 + Duration::from_secs(10), t0);
        assert!(pacer.pace("CreateImage", Some(&deadline)).await);
        // The next would wait a second for its token: past a deadline 2.5 s away.
        let near = Deadline::new(t0 + Duration::from_millis(2500), t0);
        let t1 = Instant::now();
        assert!(!pacer.pace("CreateImage", Some(&near)).await);
        assert!(t1.elapsed() < Duration::from_millis(100), "refused at once");
        // Its token was not taken: the next call waits one second, not two.
        let t2 = Instant::now();
        assert!(pacer.pace("CreateImage", None).await);
        let waited = t2.elapsed().as_secs_f64();
        assert!((0.8..1.5).contains(&waited), "{waited}");
    }
}
