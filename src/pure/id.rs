//! Identifiers. The core never invents random ids; the ids it derives for new attempts are
//! deterministic functions of the workflow, the reference name and the retry count.

use core::fmt;

use alloc::format;
use alloc::string::String;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text of an id. By default one shared allocation (`Arc<str>`): a copy is a reference
/// count. With the `inline-ids` feature, ids of up to 14 bytes live in the value itself (a copy
/// copies its 16 bytes, no reference count is touched) and longer ones in a shared allocation
/// behind one more pointer: the model checker turns it on, where two threads copying the same
/// few ids would otherwise pass each id's count between their caches on every copy, while a
/// runtime with long ids (Conductor's are UUIDs) is faster without it. Either way an id
/// compares, orders and hashes as its `str`.
#[cfg(not(feature = "inline-ids"))]
mod text {
    use alloc::string::String;
    use alloc::sync::Arc;

    #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub(super) struct Text(Arc<str>);

    impl Text {
        pub(super) fn new(text: &str) -> Text {
            Text(Arc::from(text))
        }

        pub(super) fn from_string(text: String) -> Text {
            Text(Arc::from(text))
        }

        pub(super) fn as_bytes(&self) -> &[u8] {
            self.0.as_bytes()
        }

        pub(super) fn as_str(&self) -> &str {
            &self.0
        }
    }
}

#[cfg(feature = "inline-ids")]
mod text {
    use core::cmp::Ordering;
    use core::hash::{Hash, Hasher};

    use alloc::boxed::Box;
    use alloc::string::String;
    use alloc::sync::Arc;

    /// The longest id kept in the value: with its length and the variant's tag, the 16 bytes
    /// the pointer of a shared one takes.
    const INLINE: usize = 14;

    #[derive(Clone)]
    pub(super) enum Text {
        Inline { len: u8, bytes: [u8; INLINE] },
        Shared(Arc<Box<str>>),
    }

    // An id is as small as the `Arc<str>` it replaces.
    const _: () = assert!(core::mem::size_of::<Text>() == 16);

    impl Text {
        pub(super) fn new(text: &str) -> Text {
            if text.len() <= INLINE {
                let mut bytes = [0; INLINE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Text::Inline {
                    len: text.len() as u8,
                    bytes,
                }
            } else {
                Text::Shared(Arc::new(Box::from(text)))
            }
        }

        pub(super) fn from_string(text: String) -> Text {
            if text.len() <= INLINE {
                Text::new(&text)
            } else {
                Text::Shared(Arc::new(text.into_boxed_str()))
            }
        }

        pub(super) fn as_bytes(&self) -> &[u8] {
            match self {
                Text::Inline { len, bytes } => &bytes[..usize::from(*len)],
                Text::Shared(text) => text.as_bytes(),
            }
        }

        pub(super) fn as_str(&self) -> &str {
            match self {
                // Always valid: the bytes were copied whole from a `str`.
                Text::Inline { len, bytes } => {
                    core::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
                }
                Text::Shared(text) => text,
            }
        }
    }

    impl PartialEq for Text {
        fn eq(&self, other: &Text) -> bool {
            self.as_bytes() == other.as_bytes()
        }
    }

    impl Eq for Text {}

    impl PartialOrd for Text {
        fn partial_cmp(&self, other: &Text) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }

    /// Byte order, which is `str`'s order.
    impl Ord for Text {
        fn cmp(&self, other: &Text) -> Ordering {
            self.as_bytes().cmp(other.as_bytes())
        }
    }

    /// As `str` hashes (its bytes, then `0xff`): a map keyed by ids is looked up by `&str`.
    impl Hash for Text {
        fn hash<H: Hasher>(&self, state: &mut H) {
            state.write(self.as_bytes());
            state.write_u8(0xff);
        }
    }
}

use text::Text;

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Immutable text: cloning an id (into a step, a change, an effect) does not allocate.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Text);

        /// As its text, a JSON string.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map($name::from)
            }
        }

        impl $name {
            /// Wraps an id as the caller spells it.
            pub fn new(id: impl Into<String>) -> Self {
                $name(Text::from_string(id.into()))
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The id's bytes (its `str`'s), without reading them as a `str`.
            #[allow(dead_code)] // Not every id is hashed by the core's tables.
            pub(crate) fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(Text::new(id))
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(Text::from_string(id))
            }
        }

        #[cfg(feature = "arbitrary")]
        impl<'a> arbitrary::Arbitrary<'a> for $name {
            fn arbitrary(input: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                Ok($name::new(String::arbitrary(input)?))
            }
        }
    };
}

string_id!(
    /// The id of a workflow instance (Conductor's `workflowId`).
    WorkflowId
);
string_id!(
    /// The id of one task attempt (Conductor's `taskId`): a retry is a new attempt with a new id.
    TaskId
);
string_id!(
    /// A task's name in the workflow definition (Conductor's `referenceTaskName`), shared by every
    /// attempt of the task and by the task queue that carries them. Read it as a `str` (it
    /// dereferences to one and compares with one).
    ReferenceName
);

impl core::ops::Deref for ReferenceName {
    type Target = str;

    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for ReferenceName {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

/// Hashes and orders as its text, so maps keyed by reference names are looked up by `&str`.
impl core::borrow::Borrow<str> for ReferenceName {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq<str> for ReferenceName {
    fn eq(&self, other: &str) -> bool {
        self.0.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for ReferenceName {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for ReferenceName {
    fn eq(&self, other: &String) -> bool {
        self.0.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<ReferenceName> for str {
    fn eq(&self, other: &ReferenceName) -> bool {
        self.as_bytes() == other.0.as_bytes()
    }
}

impl PartialEq<ReferenceName> for &str {
    fn eq(&self, other: &ReferenceName) -> bool {
        self.as_bytes() == other.0.as_bytes()
    }
}

impl TaskId {
    /// The id the core gives attempt `retry_count` of `reference_name` when it creates the attempt
    /// itself (admin retry, and the reference decider): `"{workflow}:{reference}:{retry_count}"`.
    ///
    /// Deterministic, so two deciders that make the same decision propose the same id and the second
    /// is recognised as a duplicate instead of creating a twin attempt.
    pub fn attempt(workflow: &WorkflowId, reference_name: &str, retry_count: u32) -> TaskId {
        TaskId::new(format!("{workflow}:{reference_name}:{retry_count}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use alloc::vec::Vec;
    use core::hash::BuildHasher;
    use std::collections::hash_map::RandomState;
    use std::collections::HashMap;

    /// Lengths around the inline limit (14 bytes), and a multi-byte character across it.
    fn texts() -> Vec<String> {
        let mut texts: Vec<String> = [0, 1, 13, 14, 15, 22, 40]
            .iter()
            .map(|&len| "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"[..len].into())
            .collect();
        texts.push("wf:ü:0123456789".into());
        texts.push("wf:ü:012345678".into());
        texts.push("wf-0-17:charge:0".into());
        texts
    }

    #[test]
    fn ids_compare_order_hash_and_print_as_their_text() {
        let state = RandomState::new();
        let texts = texts();
        for a in &texts {
            let id = TaskId::from(a.as_str());
            assert_eq!(id.as_str(), a);
            assert_eq!(id.as_bytes(), a.as_bytes());
            assert_eq!(id.to_string(), *a);
            assert_eq!(format!("{id:?}"), format!("TaskId({a:?})"));
            assert_eq!(TaskId::new(a.clone()), id);
            let name = ReferenceName::from(a.clone());
            assert_eq!(state.hash_one(&name), state.hash_one(a.as_str()));
            for b in &texts {
                let other = TaskId::from(b.as_str());
                assert_eq!(id == other, a == b, "{a:?} == {b:?}");
                assert_eq!(id.cmp(&other), a.cmp(b), "{a:?} cmp {b:?}");
            }
        }
        let ordered: Vec<String> = texts
            .iter()
            .map(|text| WorkflowId::from(text.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        let mut sorted = texts.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ordered, sorted);
    }

    #[test]
    fn reference_names_are_found_by_str_and_round_trip_as_json_strings() {
        let texts = texts();
        let map: HashMap<ReferenceName, usize> = texts
            .iter()
            .enumerate()
            .map(|(index, text)| (ReferenceName::from(text.as_str()), index))
            .collect();
        for (index, text) in texts.iter().enumerate() {
            assert_eq!(map.get(text.as_str()), Some(&index));
            let name = ReferenceName::from(text.as_str());
            assert_eq!(name, text.as_str());
            assert_eq!(&*name, text.as_str());
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            let back: ReferenceName = serde_json::from_str(&json).unwrap();
            assert_eq!(back, name);
            let id: WorkflowId = serde_json::from_str(&json).unwrap();
            assert_eq!(id.as_str(), text);
        }
    }
}
