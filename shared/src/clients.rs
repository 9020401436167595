//! The one factory of regional EC2 adapters: the home region's and each DR or cleanup region's.

use crate::ec2::Ec2;
use crate::region::Region;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Make = dyn Fn(&Region) -> Ec2 + Send + Sync;

#[derive(Clone)]
pub struct Clients {
    home: Region,
    make: Arc<Make>,
    made: Arc<Mutex<HashMap<Region, Ec2>>>,
    deadline: Option<crate::pacing::Deadline>,
    /// The home region's EventBridge (a home deployment that shares with a DR account).
    events: Option<crate::events::Events>,
}

impl Clients {
    /// Adapters made by `make`, one per region, built on first use and kept.
    pub fn new(home: Region, make: impl Fn(&Region) -> Ec2 + Send + Sync + 'static) -> Self {
        Self {
            home,
            make: Arc::new(make),
            made: Arc::default(),
            deadline: None,
            events: None,
        }
    }

    /// These adapters with the home region's EventBridge.
    pub fn with_events(mut self, events: crate::events::Events) -> Self {
        self.events = Some(events);
        self
    }

    pub fn events(&self) -> Option<&crate::events::Events> {
        self.events.as_ref()
    }

    /// Adapters sharing one SDK configuration (credentials, retries, endpoint), each region's
    /// calls paced to `limits`.
    pub fn from_sdk(
        sdk: aws_config::SdkConfig,
        home: Region,
        limits: crate::pacing::RateLimits,
    ) -> Self {
        Self::new(home, move |region| {
            Ec2::for_region(&sdk, region).paced(&limits)
        })
    }

    /// The invocation's deadline these adapters keep to, if any.
    pub fn deadline(&self) -> Option<crate::pacing::Deadline> {
        self.deadline
    }

    pub fn home_region(&self) -> &Region {
        &self.home
    }

    pub fn home(&self) -> Ec2 {
        self.region(&self.home)
    }

    pub fn region(&self, region: &Region) -> Ec2 {
        // A poisoned cache only means another thread panicked while inserting; the map is
        // still usable.
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        let ec2 = made
            .entry(region.clone())
            .or_insert_with(|| (self.make)(region));
        match &self.deadline {
            Some(d) => ec2.until(*d),
            None => ec2.clone(),
        }
    }

    /// These adapters for the invocation of `context`: bound by its deadline (when it names
    /// one), see [`Clients::until`].
    pub fn for_invocation(&self, context: &lambda_runtime::Context) -> Self {
        match crate::pacing::deadline(context) {
            Some(deadline) => self.until(deadline),
            None => self.clone(),
        }
    }

    /// These adapters for one invocation: no call starts that could only leave past
    /// `deadline` (see [`Ec2::until`]). They share the buckets and the throttle counts.
    pub fn until(&self, deadline: crate::pacing::Deadline) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }
}

impl Clients {
    /// The throttled answers of every region's adapter made so far.
    pub fn throttles(&self) -> u64 {
        let made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.values().map(Ec2::throttles).sum()
    }
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").field("home", &self.home).finish()
    }
}
