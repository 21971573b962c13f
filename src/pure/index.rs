//! The workflow's private index structures: a hash table from a key (task id, reference name) to a
//! task position, and an ordered set of positions. Both do a step's work in constant time, so the
//! cost of a step does not grow with the number of tasks (SPEC section 5), and neither clones a
//! key: the keys live in the workflow's tasks, the tables hold positions.

use alloc::vec;
use alloc::vec::Vec;

/// Hashes a key's bytes, 16 at a time through a folded 64×64→128-bit multiply (the mixing step of
/// aHash's fallback; the multiplies of successive chunks are independent, so they overlap).
/// Deterministic, as the core must be: keys chosen to collide degrade lookups to a scan of the
/// colliding keys, never to a wrong answer.
pub(crate) fn hash_key(bytes: &[u8]) -> u64 {
    const KEYS: [u64; 4] = [
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    ];
    let mix = |hash: u64, a: u64, b: u64| {
        (hash.wrapping_add(KEYS[2]) ^ folded_multiply(a ^ KEYS[0], b ^ KEYS[1])).rotate_left(23)
    };
    let len = bytes.len();
    let mut hash = folded_multiply(KEYS[3] ^ len as u64, KEYS[2]);
    if len > 16 {
        // Whole 16-byte chunks, then the last 16 bytes (overlapping the last chunk).
        let mut rest = bytes;
        while rest.len() > 16 {
            hash = mix(hash, read_u64(rest, 0), read_u64(rest, 8));
            rest = &rest[16..];
        }
        hash = mix(hash, read_u64(bytes, len - 16), read_u64(bytes, len - 8));
    } else if len > 8 {
        hash = mix(hash, read_u64(bytes, 0), read_u64(bytes, len - 8));
    } else if len >= 4 {
        hash = mix(hash, read_u32(bytes, 0), read_u32(bytes, len - 4));
    } else if len > 0 {
        let spread = u64::from(bytes[0]) | u64::from(bytes[len / 2]) << 8;
        hash = mix(hash, spread, u64::from(bytes[len - 1]));
    }
    folded_multiply(hash, KEYS[3])
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn read_u32(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Key → position, open addressing with linear probing, at most half full. Entries are never
/// removed (a workflow's tasks only grow); an entry's position may be replaced. The table stores
/// each key's hash, not the key: callers compare the key at a candidate position themselves.
#[derive(Debug, Clone, Default)]
pub(crate) struct PositionTable {
    /// Empty, or a power of two long.
    slots: Vec<Slot>,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    /// [`EMPTY`] for a free slot.
    position: usize,
}

const EMPTY: usize = usize::MAX;

const FREE: Slot = Slot {
    hash: 0,
    position: EMPTY,
};

impl PositionTable {
    /// A table that takes `entries` entries without growing.
    pub(crate) fn with_capacity(entries: usize) -> Self {
        let mut table = PositionTable::default();
        table.reserve(entries);
        table
    }

    /// The position stored for the key with this hash for which `is_key` holds.
    pub(crate) fn get(&self, hash: u64, is_key: impl Fn(usize) -> bool) -> Option<usize> {
        match self.probe(hash, is_key) {
            Probe::Found(slot) => Some(self.slots[slot].position),
            Probe::Free(_) => None,
        }
    }

    /// Stores `position` for the key (replacing its previous position, if any).
    pub(crate) fn insert(&mut self, hash: u64, is_key: impl Fn(usize) -> bool, position: usize) {
        debug_assert!(position != EMPTY);
        if let Probe::Found(slot) = self.probe(hash, &is_key) {
            self.slots[slot].position = position;
            return;
        }
        self.reserve(self.len + 1);
        let Probe::Free(slot) = self.probe(hash, |_| false) else {
            unreachable!("a probe that matches no key ends on a free slot");
        };
        self.slots[slot] = Slot { hash, position };
        self.len += 1;
    }

    /// The slot holding the key, or the free slot where the probe for it ends.
    fn probe(&self, hash: u64, is_key: impl Fn(usize) -> bool) -> Probe {
        if self.slots.is_empty() {
            return Probe::Free(0);
        }
        let mask = self.slots.len() - 1;
        // The table is at most half full, so the probe ends.
        let mut index = hash as usize & mask;
        loop {
            let slot = self.slots[index];
            if slot.position == EMPTY {
                return Probe::Free(index);
            }
            if slot.hash == hash && is_key(slot.position) {
                return Probe::Found(index);
            }
            index = (index + 1) & mask;
        }
    }

    /// Grows (and rehashes from the stored hashes) so that `entries` entries keep the table at
    /// most half full.
    fn reserve(&mut self, entries: usize) {
        let needed = entries.saturating_mul(2).max(8).next_power_of_two();
        if needed <= self.slots.len() {
            return;
        }
        let old = core::mem::replace(&mut self.slots, vec![FREE; needed]);
        let mask = needed - 1;
        for slot in old.into_iter().filter(|slot| slot.position != EMPTY) {
            let mut index = slot.hash as usize & mask;
            while self.slots[index].position != EMPTY {
                index = (index + 1) & mask;
            }
            self.slots[index] = slot;
        }
    }
}

enum Probe {
    Found(usize),
    Free(usize),
}

/// A set of positions with constant-time insert and remove and iteration in ascending order: a
/// bitmap with summary levels (bit `i` of level `l + 1` is set when word `i` of level `l` is not
/// zero), so iteration skips empty regions and costs per member, not per position. The top level
/// is a single word; a set over `n` positions has about log64(n) levels (3 up to 262,144). Until a
/// position of 64 or more is added, the members are the bits of one inline word and the set owns
/// no allocation (a workflow of fewer than 64 attempts never needs more, and is cloned often).
#[derive(Debug, Clone, Default)]
pub(crate) struct PositionSet {
    /// The members while `levels` is empty (every member is below 64); zero afterwards.
    small: u64,
    levels: Vec<Vec<u64>>,
    len: usize,
}

impl PositionSet {
    /// How many positions the set holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds `position` (no effect if present).
    pub(crate) fn insert(&mut self, position: usize) {
        if self.levels.is_empty() {
            if position < 64 {
                let bit = 1 << position;
                if self.small & bit == 0 {
                    self.small |= bit;
                    self.len += 1;
                }
                return;
            }
            // The inline word becomes level 0; `grow` summarises it in the levels above.
            self.levels.push(vec![core::mem::take(&mut self.small)]);
        }
        self.grow(position);
        let mut index = position;
        for (level, words) in self.levels.iter_mut().enumerate() {
            let word = &mut words[index / 64];
            let bit = 1 << (index % 64);
            if *word & bit != 0 {
                return;
            }
            let was_empty = *word == 0;
            *word |= bit;
            if level == 0 {
                self.len += 1;
            }
            if !was_empty {
                return;
            }
            index /= 64;
        }
    }

    /// Removes `position` (no effect if absent).
    pub(crate) fn remove(&mut self, position: usize) {
        if self.levels.is_empty() {
            if position < 64 && self.small & (1 << position) != 0 {
                self.small &= !(1 << position);
                self.len -= 1;
            }
            return;
        }
        let mut index = position;
        for (level, words) in self.levels.iter_mut().enumerate() {
            let Some(word) = words.get_mut(index / 64) else {
                return;
            };
            let bit = 1 << (index % 64);
            if *word & bit == 0 {
                return;
            }
            *word &= !bit;
            if level == 0 {
                self.len -= 1;
            }
            if *word != 0 {
                return;
            }
            index /= 64;
        }
    }

    /// The members, in ascending order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let mut next = self.first_from(0);
        core::iter::from_fn(move || {
            let position = next?;
            next = self.first_from(position + 1);
            Some(position)
        })
    }

    /// The smallest member at or after `from`: up the levels until a word has a set bit at or
    /// after the current index, then down along the lowest set bits.
    fn first_from(&self, from: usize) -> Option<usize> {
        if self.levels.is_empty() {
            if from >= 64 {
                return None;
            }
            let rest = self.small >> from;
            return (rest != 0).then(|| from + rest.trailing_zeros() as usize);
        }
        let mut level = 0;
        let mut index = from;
        loop {
            let words = self.levels.get(level)?;
            let word = *words.get(index / 64)?;
            let rest = word & (u64::MAX << (index % 64));
            if rest != 0 {
                let mut found = index / 64 * 64 + rest.trailing_zeros() as usize;
                while level > 0 {
                    level -= 1;
                    found = found * 64 + self.levels[level][found].trailing_zeros() as usize;
                }
                return Some(found);
            }
            index = index / 64 + 1;
            level += 1;
        }
    }

    /// Makes room for `position`: every level long enough, new levels on top summarising the
    /// ones below, until the top level is one word.
    fn grow(&mut self, position: usize) {
        let mut words = position / 64 + 1;
        let mut level = 0;
        loop {
            if level == self.levels.len() {
                let mut summary = vec![0; words];
                if let Some(below) = level.checked_sub(1).map(|below| &self.levels[below]) {
                    for (index, _) in below.iter().enumerate().filter(|(_, word)| **word != 0) {
                        summary[index / 64] |= 1 << (index % 64);
                    }
                }
                self.levels.push(summary);
            } else if self.levels[level].len() < words {
                self.levels[level].resize(words, 0);
            }
            let len = self.levels[level].len();
            if len == 1 {
                return;
            }
            words = (len - 1) / 64 + 1;
            level += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::{BTreeMap, BTreeSet};
    use alloc::format;
    use alloc::string::String;

    /// A deterministic pseudo-random sequence (xorshift), so failures reproduce.
    fn numbers(mut state: u64) -> impl Iterator<Item = u64> {
        core::iter::from_fn(move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            Some(state)
        })
    }

    /// The set agrees with a `BTreeSet` after every operation: membership, size and ascending
    /// iteration (the order terminate cancels in).
    #[test]
    fn position_set_matches_an_ordered_set() {
        for bound in [1, 64, 65, 300, 5_000, 300_000] {
            let mut set = PositionSet::default();
            let mut model = BTreeSet::new();
            for (step, number) in numbers(bound as u64 + 1).take(4_000).enumerate() {
                let position = (number >> 8) as usize % bound;
                if number % 3 == 0 {
                    set.remove(position);
                    model.remove(&position);
                } else {
                    set.insert(position);
                    model.insert(position);
                }
                assert_eq!(set.len(), model.len());
                if step % 97 == 0 || bound <= 65 {
                    assert!(set.iter().eq(model.iter().copied()), "bound {bound}");
                }
            }
            while let Some(&first) = model.iter().next() {
                set.remove(first);
                model.remove(&first);
            }
            assert_eq!(set.len(), 0);
            assert_eq!(set.iter().next(), None);
        }
    }

    /// The table agrees with a `BTreeMap` for present and absent keys, through growth and
    /// replacement (a later position of the same key, as a retry's latest attempt), also when
    /// every key has the same hash.
    #[test]
    fn position_table_matches_a_map() {
        for colliding in [false, true] {
            let hash = |key: &str| {
                if colliding {
                    7
                } else {
                    hash_key(key.as_bytes())
                }
            };
            let distinct = if colliding { 200 } else { 2_000 };
            // Positions index `stored`, as they index a workflow's tasks; keys repeat.
            let mut stored: Vec<String> = Vec::new();
            let mut table = PositionTable::default();
            let mut model = BTreeMap::new();
            for number in numbers(distinct + 5).take(3 * distinct as usize) {
                let key = format!("key-{}", number % distinct);
                let position = stored.len();
                stored.push(key.clone());
                table.insert(hash(&key), |at| stored[at] == key, position);
                model.insert(key, position);
            }
            for i in 0..2 * distinct {
                let key = format!("key-{i}");
                let found = table.get(hash(&key), |at| stored[at] == key);
                assert_eq!(found, model.get(&key).copied(), "{key}");
            }
        }
    }
}
