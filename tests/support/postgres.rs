//! The PostgreSQL test harness: a throwaway cluster per test (started by the test, stopped when
//! it ends). Without server binaries a test says so on stderr and passes, except under `CI=true`,
//! where a missing server is a failure, never a silent skip.

// Each test file uses part of it.
#![allow(dead_code)]

use wfstate::runtime::postgres::{Cluster, ClusterError};

/// A fresh cluster, or `None` (with a note on stderr) when this machine has no server binaries
/// and this is not CI.
pub fn cluster(test: &str) -> Option<Cluster> {
    match Cluster::start() {
        Ok(cluster) => Some(cluster),
        Err(ClusterError::NoBinaries) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "{test}: SKIPPED, no PostgreSQL server binaries on this machine \
                 (apt-get install -y postgresql); under CI=true this fails"
            );
            None
        }
        Err(error) => panic!("{test}: cannot start a PostgreSQL cluster: {error}"),
    }
}

/// A small deterministic generator (splitmix64): the tests need no `rand`.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}
