//! A list that keeps one item inline: most steps change one task, and a report step owes one
//! effect, so the common step should not pay a heap allocation for each of its lists.

use core::hash::{Hash, Hasher};
use core::ops::Deref;

use alloc::vec::Vec;

/// One item inline, more on the heap. Compares, hashes and prints as the slice it holds, as a
/// `Vec` does. (One, not two: every step is moved a few times on its way out of `transition`, so
/// each inline slot costs every step its size.)
#[derive(Clone, Default)]
pub(crate) enum SmallList<T> {
    #[default]
    Empty,
    One([T; 1]),
    Heap(Vec<T>),
}

impl<T> SmallList<T> {
    /// An empty list with room for `capacity` items.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        if capacity <= 1 {
            SmallList::Empty
        } else {
            SmallList::Heap(Vec::with_capacity(capacity))
        }
    }

    // Always inlined: a call would move the item through memory on every step's hot path
    // (measured: about 5 ns of a 40 ns report transition).
    #[inline(always)]
    pub(crate) fn push(&mut self, item: T) {
        match self {
            SmallList::Empty => *self = SmallList::One([item]),
            SmallList::Heap(items) => items.push(item),
            SmallList::One(_) => {
                if let SmallList::One([first]) = core::mem::take(self) {
                    let mut items = Vec::with_capacity(4);
                    items.push(first);
                    items.push(item);
                    *self = SmallList::Heap(items);
                }
            }
        }
    }

    /// Moves every item of `other` to the end of this list.
    pub(crate) fn append(&mut self, other: SmallList<T>) {
        match other {
            SmallList::Empty => {}
            SmallList::One([item]) => self.push(item),
            SmallList::Heap(items) => self.extend(items),
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            SmallList::Empty => &[],
            SmallList::One(items) => items,
            SmallList::Heap(items) => items,
        }
    }
}

impl<T> Deref for SmallList<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> Extend<T> for SmallList<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for SmallList<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<T: PartialEq> PartialEq for SmallList<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Eq> Eq for SmallList<T> {}

impl<T: Hash> Hash for SmallList<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl<T: serde::Serialize> serde::Serialize for SmallList<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}
