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
}

impl Clients {
    /// Adapters made by `make`, one per region, built on first use and kept.
    pub fn new(home: Region, make: impl Fn(&Region) -> Ec2 + Send + Sync + 'static) -> Self {
        Self {
            home,
            make: Arc::new(make),
            made: Arc::default(),
        }
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
        made.entry(region.clone())
            .or_insert_with(|| (self.make)(region))
            .clone()
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
