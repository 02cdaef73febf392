//! Lenient readers for schemas we do not own (CONVENTIONS habit 5).
//!
//! Every wrapper here accepts any JSON/YAML value: when the value has the
//! expected shape it is kept, otherwise (wrong type, `null`) it is read as
//! *absent*. A field of the wrong type is therefore never an error and never
//! a panic; only malformed JSON/YAML syntax is. Values that do not fit are
//! skipped with `IgnoredAny`, so nothing is buffered and strings are borrowed
//! from the input where the input allows it.
//!
//! These are used for the objects under review, never for meshguard's own
//! configuration (which is validated strictly, see `config`).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Consumes the rest of a sequence we do not want.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Consumes the rest of a map we do not want.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the `visit_*` methods of a visitor for every value shape the
/// wrapper does not want, each returning the wrapper's "absent" value.
macro_rules! absent_for {
    ($absent:expr; $($method:ident($ty:ty)),*) => {
        $(fn $method<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> { Ok($absent) })*
    };
}
macro_rules! absent_for_unit {
    ($absent:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($absent)
        }
    };
}
macro_rules! absent_for_containers {
    ($absent:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq)?;
            Ok($absent)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map)?;
            Ok($absent)
        }
    };
}

/// The name of `Unread`'s newtype, which the quick reader
/// (`admission::json`) understands.
pub const UNREAD: &str = "$meshguard::lenient::Unread";

/// A value the view does not keep, checked as reading it as a `Text` would
/// check it, so that leaving it unread never turns a refused body into an
/// accepted one. serde_json reads it as any value without keeping it
/// (strings are checked, numbers must be in range, containers are skipped
/// as `Text` skips them); the quick reader skips it, checking a number as
/// it would read one.
pub struct Unread;

impl<'de> Deserialize<'de> for Unread {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Unread;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Unread, D::Error> {
                d.deserialize_any(V)
            }
            absent_for!(Unread; visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str), visit_bytes(&[u8]));
            absent_for_unit!(Unread);
            absent_for_containers!(Unread);
        }
        d.deserialize_newtype_struct(UNREAD, V)
    }
}

/// A string, or absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text<'a>(pub Option<Cow<'a, str>>);

impl<'a> Text<'a> {
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            absent_for!(Text(None); visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_bytes(&[u8]));
            absent_for_unit!(Text(None));
            absent_for_containers!(Text(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A boolean, or absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flag(pub Option<bool>);

impl Flag {
    pub fn is_true(self) -> bool {
        self.0 == Some(true)
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Flag(Some(v)))
            }
            absent_for!(Flag(None); visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str), visit_bytes(&[u8]));
            absent_for_unit!(Flag(None));
            absent_for_containers!(Flag(None));
        }
        d.deserialize_any(V)
    }
}

/// An integer, or absent (floats count only when they are whole numbers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Int(pub Option<i64>);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Int(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Int(i64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                let whole = v.fract() == 0.0 && v.abs() < 9.0e15;
                #[allow(clippy::cast_possible_truncation)]
                Ok(Int(whole.then_some(v as i64)))
            }
            absent_for!(Int(None); visit_bool(bool), visit_str(&str), visit_bytes(&[u8]));
            absent_for_unit!(Int(None));
            absent_for_containers!(Int(None));
        }
        d.deserialize_any(V)
    }
}

/// A map read into `T` (a struct whose fields are themselves lenient), or
/// absent when the value is not a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obj<T>(pub Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<T> Obj<T> {
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)?;
                Ok(Obj(None))
            }
            absent_for!(Obj(None); visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str), visit_bytes(&[u8]));
            absent_for_unit!(Obj(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A sequence of `T` (itself lenient), or empty when the value is not a
/// sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element::<T>()? {
                    items.push(item);
                }
                Ok(List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)?;
                Ok(List::default())
            }
            absent_for!(List::default(); visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str), visit_bytes(&[u8]));
            absent_for_unit!(List::default());
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A string-to-string map such as `metadata.labels`. Entries whose key or
/// value is not a string are dropped; a value that is not a map is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels<'a>(pub Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Labels<'a> {
    /// The value under `key`. Maps on objects are small, so a scan beats
    /// hashing.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Builds a map from owned or borrowed pairs (tests, the namespace view).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<Cow<'a, str>>,
        V: Into<Cow<'a, str>>,
    {
        Labels(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    pub fn into_owned(self) -> Labels<'static> {
        Labels(
            self.0
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
        )
    }

    /// Reads the entries of a map into `entries`, keeping those whose key
    /// `keep` accepts: the other values are `Unread`. Entries whose key or
    /// value is not a string are dropped.
    pub fn read_entries<'de: 'a, A: MapAccess<'de>>(
        mut map: A,
        mut entries: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Self, A::Error> {
        while let Some(Text(key)) = map.next_key::<Text<'a>>()? {
            match key {
                Some(k) if keep(&k) => {
                    if let Text(Some(v)) = map.next_value()? {
                        entries.push((k, v));
                    }
                }
                _ => {
                    map.next_value::<Unread>()?;
                }
            }
        }
        Ok(Labels(entries))
    }

    /// Sets `key` to `value`, replacing an existing entry.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Labels<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                // Eight holds the labels of most objects in one allocation.
                let capacity = map.size_hint().unwrap_or(8).min(64);
                Labels::read_entries(map, Vec::with_capacity(capacity), |_| true)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)?;
                Ok(Labels::default())
            }
            absent_for!(Labels::default(); visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str), visit_bytes(&[u8]));
            absent_for_unit!(Labels::default());
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Default, Debug)]
    #[serde(default)]
    struct Probe<'a> {
        #[serde(borrow)]
        name: Text<'a>,
        flag: Flag,
        num: Int,
        #[serde(borrow)]
        labels: Obj<Labels<'a>>,
        items: List<Int>,
    }

    #[test]
    fn reads_values_of_the_expected_shape() {
        let p: Probe = serde_json::from_str(
            r#"{"name":"a","flag":true,"num":7,"labels":{"k":"v"},"items":[1,2]}"#,
        )
        .expect("valid");
        assert_eq!(p.name.as_str(), Some("a"));
        assert!(p.flag.is_true());
        assert_eq!(p.num.0, Some(7));
        assert_eq!(p.labels.get().and_then(|l| l.get("k")), Some("v"));
        assert_eq!(p.items.0, vec![Int(Some(1)), Int(Some(2))]);
    }

    #[test]
    fn wrong_types_and_nulls_are_absent() {
        let p: Probe = serde_json::from_str(
            r#"{"name":{"x":[1]},"flag":"yes","num":"7","labels":[1,2],"items":{"a":1}}"#,
        )
        .expect("lenient");
        assert_eq!(p.name.as_str(), None);
        assert_eq!(p.flag.0, None);
        assert_eq!(p.num.0, None);
        assert!(!p.labels.is_present());
        assert!(p.items.0.is_empty());
        let p: Probe =
            serde_json::from_str(r#"{"name":null,"labels":{"a":1,"b":"x","c":null}}"#).expect("ok");
        assert_eq!(p.name.0, None);
        assert_eq!(p.labels.get().map(|l| l.0.len()), Some(1));
    }

    #[test]
    fn escaped_strings_are_owned_and_plain_ones_borrowed() {
        let p: Probe = serde_json::from_str(r#"{"name":"a\"b"}"#).expect("ok");
        assert!(matches!(p.name.0, Some(Cow::Owned(ref s)) if s == "a\"b"));
        let p: Probe = serde_json::from_str(r#"{"name":"ab"}"#).expect("ok");
        assert!(matches!(p.name.0, Some(Cow::Borrowed("ab"))));
    }

    #[test]
    fn syntax_errors_are_still_errors() {
        assert!(serde_json::from_str::<Probe>(r#"{"name":"a""#).is_err());
    }

    #[test]
    fn reads_from_a_json_value_too() {
        let v = serde_json::json!({"name": "n", "labels": {"a": "b"}});
        let p = Probe::deserialize(&v).expect("ok");
        assert_eq!(p.name.as_str(), Some("n"));
        assert_eq!(p.labels.get().and_then(|l| l.get("a")), Some("b"));
    }
}
