//! Client-side pacing: a token bucket per EC2 action and region, so that calls leave at the rate
//! EC2 takes them instead of being throttled and retried.
//!
//! EC2 throttles each API action on its own bucket, per account and region (the EC2 API
//! throttling guide): a bucket holds `burst` tokens, refills at `rate` tokens a second, and a
//! call takes one. The functions share those buckets with every other tool of the account, so by
//! default they take [`DEFAULT_SHARE`] of each; `EC2_RATE_LIMITS` (`Action=rate/burst,...`)
//! overrides any action. An action with no bucket here is not paced.
//!
//! The decisions are pure ([`Bucket::reserve`] takes the instant); the adapters' pacer holds the
//! buckets of one region and sleeps for what a reservation says.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// EC2's buckets for the actions the functions call: (action, burst, refill per second).
pub const EC2_BUCKETS: &[(&str, f64, f64)] = &[
    ("CreateImage", 50.0, 5.0),
    ("CopySnapshot", 50.0, 5.0),
    ("CreateSnapshot", 100.0, 5.0),
    ("CopyImage", 100.0, 1.0),
    ("DeregisterImage", 100.0, 5.0),
    ("DeleteSnapshot", 100.0, 5.0),
    ("CreateTags", 100.0, 10.0),
    ("DescribeInstances", 100.0, 20.0),
    ("DescribeVolumes", 100.0, 20.0),
    ("DescribeImages", 100.0, 20.0),
    ("DescribeSnapshots", 100.0, 20.0),
];

/// The share of each of EC2's buckets the functions take by default: four fifths of the burst
/// and of the refill, leaving the rest to the account's other tools and people.
pub const DEFAULT_SHARE: f64 = 0.8;

/// One action's limit: `rate` calls a second, after a `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// The limit of each paced action.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits(BTreeMap<String, Rate>);

impl Default for RateLimits {
    fn default() -> Self {
        Self(
            EC2_BUCKETS
                .iter()
                .map(|(action, burst, rate)| {
                    let rate = Rate {
                        per_second: rate * DEFAULT_SHARE,
                        burst: (burst * DEFAULT_SHARE).floor(),
                    };
                    (action.to_string(), rate)
                })
                .collect(),
        )
    }
}

impl RateLimits {
    /// No pacing at all (tests that count the server's own throttling).
    pub fn none() -> Self {
        Self(BTreeMap::new())
    }

    /// The defaults, with the actions `text` names overridden: `CreateImage=5/50,CopyImage=1/20`
    /// (rate per second, then burst). Only the actions of [`EC2_BUCKETS`] can be named.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut limits = Self::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (action, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not Action=rate/burst"))?;
            let action = action.trim();
            if !EC2_BUCKETS.iter().any(|(a, _, _)| *a == action) {
                let known: Vec<&str> = EC2_BUCKETS.iter().map(|(a, _, _)| *a).collect();
                return Err(format!(
                    "{action:?} is not an action the functions pace ({})",
                    known.join(", ")
                ));
            }
            let (rate, burst) = value
                .split_once('/')
                .ok_or_else(|| format!("{item:?} is not Action=rate/burst"))?;
            let rate: f64 = rate
                .trim()
                .parse()
                .ok()
                .filter(|r: &f64| r.is_finite() && *r > 0.0)
                .ok_or_else(|| format!("{item:?}: the rate must be a number above 0"))?;
            let burst: u32 = burst
                .trim()
                .parse()
                .ok()
                .filter(|b| *b >= 1)
                .ok_or_else(|| format!("{item:?}: the burst must be a whole number, 1 or more"))?;
            limits.0.insert(
                action.to_string(),
                Rate {
                    per_second: rate,
                    burst: f64::from(burst),
                },
            );
        }
        Ok(limits)
    }

    pub fn get(&self, action: &str) -> Option<Rate> {
        self.0.get(action).copied()
    }

    /// One of `n` invocations' part of each limit, when `n` pace at once with buckets of their
    /// own (`EC2_RATE_SHARED_BY`): the rate and the burst over `n`, a burst of at least 1.
    /// Together they then stay within the limits (but for a burst below `n`, which each
    /// invocation rounds up to one call).
    pub fn shared_by(self, n: u32) -> Self {
        let n = f64::from(n.max(1));
        Self(
            self.0
                .into_iter()
                .map(|(action, r)| {
                    let rate = Rate {
                        per_second: r.per_second / n,
                        burst: (r.burst / n).floor().max(1.0),
                    };
                    (action, rate)
                })
                .collect(),
        )
    }
}

/// When an invocation must stop starting calls: its deadline less a margin that leaves room for
/// the call in flight to finish and the result to be returned. The margin is a tenth of the
/// invocation's time, at least 2 s and at most 30 s: 3 s of a 30-second timeout, 30 s of a
/// 900-second one (a call with the SDK's retries can take that long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    margin: Duration,
}

impl Deadline {
    /// The deadline of an invocation that started at `started`.
    pub fn new(at: Instant, started: Instant) -> Self {
        let total = at.saturating_duration_since(started);
        Self {
            at,
            margin: (total / 10).clamp(Duration::from_secs(2), Duration::from_secs(30)),
        }
    }

    /// Whether a call that leaves at `leaves` can still be started.
    pub fn allows(&self, leaves: Instant) -> bool {
        leaves + self.margin <= self.at
    }

    /// This deadline, keeping `room` before its margin for the calls of a later step: a call
    /// is started only when it leaves that much earlier.
    pub fn keeping(self, room: Duration) -> Self {
        Self {
            margin: self.margin + room,
            ..self
        }
    }
}

/// One action's bucket on our side. Callers reserve a token each, in order: the tokens may go
/// below zero, and each caller waits until its own token has refilled.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate.burst,
            updated: now,
        }
    }

    /// Gives back the token of a reservation whose call will not be made.
    pub fn unreserve(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.rate.burst);
    }

    /// How long the last of `n` calls would wait for its token if all were reserved at `now`;
    /// nothing is reserved.
    pub fn wait_for(&self, n: usize, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        let tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        let short = n as f64 - tokens;
        if n == 0 || short <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(short / self.rate.per_second)
        }
    }

    /// Takes a token at `now` and says how long to wait before the call may leave.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        self.updated = now.max(self.updated);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: f64, burst: f64) -> Rate {
        Rate { per_second, burst }
    }

    #[test]
    fn a_full_bucket_lets_its_burst_go_at_once_then_paces_at_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(rate(5.0, 3.0), t0);
        let waits: Vec<Duration> = (0..6).map(|_| b.reserve(t0)).collect();
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        // The 4th, 5th and 6th wait for their own token: 0.2 s apart.
        for (i, w) in waits[3..].iter().enumerate() {
            let expected = 0.2 * (i + 1) as f64;
            assert!((w.as_secs_f64() - expected).abs() < 1e-9, "{i}: {w:?}");
        }
    }

    #[test]
    fn an_idle_bucket_refills_up_to_its_burst_and_no_more() {
        let t0 = Instant::now();
        let mut b = Bucket::new(rate(1.0, 2.0), t0);
        b.reserve(t0);
        b.reserve(t0);
        // An hour idle gives back 2 tokens, not 3,600.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(b.reserve(later), Duration::ZERO);
        assert_eq!(b.reserve(later), Duration::ZERO);
        assert_eq!(b.reserve(later), Duration::from_secs(1));
    }

    #[test]
    fn n_calls_take_the_bucket_limited_time() {
        // 100 calls through a bucket of 10 at 5/s: the last leaves (100 - 10) / 5 = 18 s in.
        let t0 = Instant::now();
        let mut b = Bucket::new(rate(5.0, 10.0), t0);
        let last = (0..100).map(|_| b.reserve(t0)).last().unwrap();
        assert!((last.as_secs_f64() - 18.0).abs() < 1e-9, "{last:?}");
    }

    #[test]
    fn the_wait_of_n_calls_is_told_without_reserving_them() {
        let t0 = Instant::now();
        let mut b = Bucket::new(rate(5.0, 10.0), t0);
        assert_eq!(b.wait_for(0, t0), Duration::ZERO);
        assert_eq!(b.wait_for(10, t0), Duration::ZERO);
        let w = b.wait_for(20, t0).as_secs_f64();
        assert!((w - 2.0).abs() < 1e-9, "{w}");
        // Asking reserved nothing: the burst is still there.
        for _ in 0..5 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        // Five tokens left and two refilled 0.4 s later: seven calls go at once, the 8th waits.
        let later = t0 + Duration::from_millis(400);
        assert_eq!(b.wait_for(7, later), Duration::ZERO);
        let w = b.wait_for(8, later).as_secs_f64();
        assert!((w - 0.2).abs() < 1e-9, "{w}");
    }

    #[test]
    fn a_deadline_keeping_room_for_a_later_step_stops_calls_that_much_earlier() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        // 30 s, a 3 s margin, and 5 s kept for what comes after.
        let d = Deadline::new(t0 + secs(30), t0).keeping(secs(5));
        assert!(d.allows(t0 + secs(22)) && !d.allows(t0 + Duration::from_millis(22_001)));
        assert_eq!(
            Deadline::new(t0 + secs(30), t0).keeping(Duration::ZERO),
            Deadline::new(t0 + secs(30), t0)
        );
    }

    #[test]
    fn the_defaults_take_a_share_of_each_of_ec2s_buckets() {
        let d = RateLimits::default();
        assert_eq!(d.get("CreateImage"), Some(rate(4.0, 40.0)));
        assert_eq!(d.get("CopyImage"), Some(rate(0.8, 80.0)));
        assert_eq!(d.get("RunInstances"), None);
    }

    #[test]
    fn overrides_replace_only_the_actions_they_name() {
        let l = RateLimits::parse(" CreateImage=5/50, CopyImage=0.5/20 ").unwrap();
        assert_eq!(l.get("CreateImage"), Some(rate(5.0, 50.0)));
        assert_eq!(l.get("CopyImage"), Some(rate(0.5, 20.0)));
        assert_eq!(l.get("CreateTags"), RateLimits::default().get("CreateTags"));
        assert_eq!(RateLimits::parse("").unwrap(), RateLimits::default());
    }

    #[test]
    fn invocations_that_share_the_pace_each_take_their_part_of_it() {
        let halves = RateLimits::default().shared_by(2);
        assert_eq!(halves.get("CopyImage"), Some(rate(0.4, 40.0)));
        assert_eq!(halves.get("CreateImage"), Some(rate(2.0, 20.0)));
        // A burst never falls below one call; one invocation keeps the whole pace.
        let tiny = RateLimits::parse("CopyImage=1/3").unwrap().shared_by(4);
        assert_eq!(tiny.get("CopyImage"), Some(rate(0.25, 1.0)));
        assert_eq!(RateLimits::default().shared_by(1), RateLimits::default());
    }

    #[test]
    fn a_bad_limit_says_what_is_wrong() {
        for (text, says) in [
            ("CreateImage", "Action=rate/burst"),
            ("CreateImage=5", "Action=rate/burst"),
            ("CreateImage=0/50", "rate"),
            ("CreateImage=fast/50", "rate"),
            ("CreateImage=5/0", "burst"),
            ("CreateImage=5/2.5", "burst"),
            ("RunInstances=5/50", "not an action"),
        ] {
            let err = RateLimits::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn the_margin_is_a_tenth_of_the_invocation_between_2_and_30_seconds() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let d = Deadline::new(t0 + secs(30), t0);
        assert!(d.allows(t0 + secs(27)) && !d.allows(t0 + Duration::from_millis(27_001)));
        let d = Deadline::new(t0 + secs(900), t0);
        assert!(d.allows(t0 + secs(870)) && !d.allows(t0 + secs(871)));
        let d = Deadline::new(t0 + secs(5), t0);
        assert!(d.allows(t0 + secs(3)) && !d.allows(t0 + secs(4)));
    }
}
