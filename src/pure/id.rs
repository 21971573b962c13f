//! Identifiers. The core never invents random ids; the ids it derives for new attempts are
//! deterministic functions of the workflow, the reference name and the retry count.

use core::fmt;

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Shared, immutable text: cloning an id (into a step, a change, an effect) does not
        /// allocate.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps an id as the caller spells it.
            pub fn new(id: impl Into<String>) -> Self {
                $name(Arc::from(id.into()))
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(Arc::from(id))
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(Arc::from(id))
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
        &self.0
    }
}

impl AsRef<str> for ReferenceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Hashes and orders as its text, so maps keyed by reference names are looked up by `&str`.
impl core::borrow::Borrow<str> for ReferenceName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ReferenceName {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for ReferenceName {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for ReferenceName {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<ReferenceName> for str {
    fn eq(&self, other: &ReferenceName) -> bool {
        *self == *other.0
    }
}

impl PartialEq<ReferenceName> for &str {
    fn eq(&self, other: &ReferenceName) -> bool {
        **self == *other.0
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
