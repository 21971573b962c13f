//! The hasher of the runtime's maps (workflow ids, task ids, reference names). std's SipHash was
//! about a sixth of a sweep's time on these short keys; this one runs the core's key hash
//! (`pure::index::hash_key`) and mixes in a per-map random seed, drawn from std's `RandomState`,
//! so ids chosen by an outsider cannot be aimed at one map's buckets.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::pure::index::hash_key;

/// Builds [`KeyHasher`]s with this map's seed.
#[derive(Debug, Clone)]
pub(crate) struct SeededState {
    seed: u64,
}

impl Default for SeededState {
    fn default() -> Self {
        SeededState {
            seed: RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl BuildHasher for SeededState {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { hash: self.seed }
    }
}

/// Folds every written chunk into the running hash.
#[derive(Debug, Clone)]
pub(crate) struct KeyHasher {
    hash: u64,
}

impl KeyHasher {
    /// A hasher with a fixed seed: the same contents hash alike in every map, thread and run
    /// (for hashes kept with a value, such as the store's `HashMemo`, not for map keys).
    pub(crate) fn fixed() -> Self {
        KeyHasher {
            hash: 0x243f_6a88_85a3_08d3,
        }
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.hash =
            (self.hash.rotate_left(29) ^ hash_key(bytes)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    /// A single byte is `str`'s terminator (`0xff`, written after every string key): one
    /// multiply folds it in, where the byte-slice hash would run a second time per key.
    fn write_u8(&mut self, byte: u8) {
        self.hash = (self.hash ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    /// A whole integer key (the outbox's sequence numbers): one multiply as well. The finish
    /// folds the high bits, which depend on every bit of the key, into the low ones.
    fn write_u64(&mut self, value: u64) {
        self.hash = (self.hash.rotate_left(29) ^ value).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.hash ^ (self.hash >> 32)
    }
}

/// A `HashMap` keyed with the seeded hasher.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, SeededState>;
