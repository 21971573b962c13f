//! JSON objects only. serde's derived struct deserializers also accept a JSON array of the fields
//! in order, so `["wf-1", "RUNNING"]` would read as an execution; Conductor never writes that,
//! and reading it would hide a malformed document. [`Object`] refuses anything but an object,
//! naming what was expected.

use core::fmt;
use core::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// A type read from JSON objects only.
pub(super) trait Described {
    /// What the error says was expected, e.g. `"a Conductor task (a JSON object)"`.
    const EXPECTING: &'static str;
}

/// `T`, read from a JSON object and nothing else.
pub(super) struct Object<T>(pub T);

impl<'de, T: Deserialize<'de> + Described> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Described> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Pair {
        a: Option<u32>,
    }

    impl Described for Pair {
        const EXPECTING: &'static str = "a pair (a JSON object)";
    }

    #[test]
    fn an_array_is_not_an_object() {
        let error = serde_json::from_str::<Object<Pair>>("[1]").err().unwrap();
        assert_eq!(
            error.to_string(),
            "invalid type: sequence, expected a pair (a JSON object) at line 1 column 0"
        );
        let Object(pair) = serde_json::from_str::<Object<Pair>>(r#"{"a": 1, "b": [2]}"#).unwrap();
        assert_eq!(pair.a, Some(1));
    }
}
