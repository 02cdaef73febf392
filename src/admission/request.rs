//! The `request` of an AdmissionReview, read in one pass.
//!
//! kube-apiserver writes `request.kind` before `request.object`, so when the
//! object arrives its kind is known and `OnePass` reads it straight into the
//! object view (`MaybeObject`): the body is scanned once, and nothing of the
//! object is kept but the view. In the other order (a hand-written review),
//! or for an object meshguard does not judge, the object is kept as raw text
//! and read once the whole request is known, as `RequestIn` always does.
//!
//! `OnePass` runs on the quick reader (`json`) and on serde_json,
//! `RequestIn` on serde_json. `RequestIn` defines every answer to a bad body:
//! `OnePass` only has to accept nothing `RequestIn` refuses (same types,
//! duplicate fields refused) and read the same values; when it refuses a
//! body, `admission::parse` reads the body again with `RequestIn`, so the
//! error message is the one it has always been (positions inside the
//! object relative to the object, an object error reported as one).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::json::Raw;
use crate::lenient::Text;
use crate::object::{Kind, Object};

/// The request, however it was read.
pub(super) struct RequestFields<'a> {
    pub uid: Option<Cow<'a, str>>,
    pub kind: Option<GroupVersionKind<'a>>,
    pub namespace: Option<Cow<'a, str>>,
    pub operation: Option<Cow<'a, str>>,
    pub sub_resource: Option<Cow<'a, str>>,
    pub object: ObjectIn<'a>,
    /// The old object's JSON text.
    pub old_object: Option<&'a str>,
    pub dry_run: Option<bool>,
}

/// `request.object`: read already, or its JSON text to read once the kind
/// is known (`None` when absent or `null`).
pub(super) enum ObjectIn<'a> {
    Read(Option<Object<'a>>),
    Raw(Option<&'a str>),
}

#[derive(Deserialize)]
pub(super) struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
}

/// The reference reader: every object captured as raw text. (Its name is
/// in its error messages.)
#[derive(Deserialize)]
pub(super) struct RequestIn<'a> {
    #[serde(borrow)]
    uid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<GroupVersionKind<'a>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    operation: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "subResource")]
    sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "oldObject")]
    old_object: Option<&'a RawValue>,
    #[serde(default, rename = "dryRun")]
    dry_run: Option<bool>,
}

impl<'a> From<RequestIn<'a>> for RequestFields<'a> {
    fn from(r: RequestIn<'a>) -> RequestFields<'a> {
        RequestFields {
            uid: r.uid,
            kind: r.kind,
            namespace: r.namespace,
            operation: r.operation,
            sub_resource: r.sub_resource,
            object: ObjectIn::Raw(r.object.map(RawValue::get)),
            old_object: r.old_object.map(RawValue::get),
            dry_run: r.dry_run,
        }
    }
}

/// The one-pass reader (a map only: anything else is left to `RequestIn`).
pub(super) struct OnePass<'a>(pub RequestFields<'a>);

impl<'de> Deserialize<'de> for OnePass<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OnePassVisitor)
    }
}

struct OnePassVisitor;

impl<'de> Visitor<'de> for OnePassVisitor {
    type Value = OnePass<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct RequestIn")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = RequestFields {
            uid: None,
            kind: None,
            namespace: None,
            operation: None,
            sub_resource: None,
            object: ObjectIn::Raw(None),
            old_object: None,
            dry_run: None,
        };
        let mut seen = Seen::default();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let Some(key) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            match key.as_ref() {
                "uid" => {
                    seen.once::<A::Error>(0, "uid")?;
                    r.uid = map.next_value::<Option<Str<'de>>>()?.map(|s| s.0);
                }
                "kind" => {
                    seen.once::<A::Error>(1, "kind")?;
                    r.kind = map.next_value()?;
                }
                "namespace" => {
                    seen.once::<A::Error>(2, "namespace")?;
                    r.namespace = map.next_value::<Option<Str<'de>>>()?.map(|s| s.0);
                }
                "operation" => {
                    seen.once::<A::Error>(3, "operation")?;
                    r.operation = map.next_value::<Option<Str<'de>>>()?.map(|s| s.0);
                }
                "subResource" => {
                    seen.once::<A::Error>(4, "subResource")?;
                    r.sub_resource = map.next_value::<Option<Str<'de>>>()?.map(|s| s.0);
                }
                "object" => {
                    seen.once::<A::Error>(5, "object")?;
                    r.object = match judged_so_far(&r) {
                        Some(kind) => ObjectIn::Read(map.next_value_seed(MaybeObject(kind))?),
                        None => ObjectIn::Raw(map.next_value::<Option<Raw>>()?.map(|r| r.0)),
                    };
                }
                "oldObject" => {
                    seen.once::<A::Error>(6, "oldObject")?;
                    r.old_object = map.next_value::<Option<Raw>>()?.map(|r| r.0);
                }
                "dryRun" => {
                    seen.once::<A::Error>(7, "dryRun")?;
                    r.dry_run = map.next_value()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(OnePass(r))
    }
}

/// The kind to read the object as, when everything read so far says it
/// will be judged: its kind is known and judged, and no subresource (which
/// is never judged) was named. A `subResource` after the object makes
/// `admission::parse` drop the object it read.
fn judged_so_far(r: &RequestFields<'_>) -> Option<Kind> {
    if r.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        return None;
    }
    let gvk = r.kind.as_ref()?;
    let kind = Kind::from_gvk(&gvk.group, &gvk.version, &gvk.kind);
    (kind != Kind::Other).then_some(kind)
}

/// The fields met so far: a field given twice is refused, as the derived
/// reader refuses it.
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn once<E: de::Error>(&mut self, bit: u8, field: &'static str) -> Result<(), E> {
        if self.0 & (1 << bit) != 0 {
            return Err(E::duplicate_field(field));
        }
        self.0 |= 1 << bit;
        Ok(())
    }
}

/// A string, borrowed from the body when it has no escapes; anything else
/// is an error (as for the reference's `Option<Cow<str>>`, which never
/// borrows).
pub(super) struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// Reads `request.object` of a known kind into the object view; `null` is
/// no object.
struct MaybeObject(Kind);

impl<'de> DeserializeSeed<'de> for MaybeObject {
    type Value = Option<Object<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for MaybeObject {
    type Value = Option<Object<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Object::read(self.0, d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use crate::admission::{ReviewError, parse};

    const DEPLOYMENT: &str = r#"{"group":"apps","version":"v1","kind":"Deployment"}"#;

    fn review(request: &str) -> String {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
        )
    }

    fn object_name(body: &str) -> Option<String> {
        let parsed = parse(body.as_bytes()).expect("parses");
        parsed.object.map(|o| o.name().to_owned())
    }

    #[test]
    fn reads_the_object_whichever_comes_first_kind_or_object() {
        let object = r#"{"metadata":{"name":"web"}}"#;
        let kind_first = review(&format!(
            r#"{{"uid":"u","kind":{DEPLOYMENT},"operation":"CREATE","object":{object}}}"#
        ));
        let object_first = review(&format!(
            r#"{{"object":{object},"uid":"u","kind":{DEPLOYMENT},"operation":"CREATE"}}"#
        ));
        assert_eq!(object_name(&kind_first).as_deref(), Some("web"));
        assert_eq!(object_name(&object_first).as_deref(), Some("web"));
    }

    #[test]
    fn a_subresource_named_after_the_object_drops_it() {
        let body = review(&format!(
            r#"{{"uid":"u","kind":{DEPLOYMENT},"operation":"UPDATE","object":{{"metadata":{{"name":"web"}}}},"subResource":"scale"}}"#
        ));
        assert_eq!(object_name(&body), None);
        // Even one the object reader would refuse: it is never judged.
        let body = review(&format!(
            r#"{{"uid":"u","kind":{DEPLOYMENT},"operation":"UPDATE","object":{{"metadata":{{}},"metadata":{{}}}},"subResource":"status"}}"#
        ));
        assert_eq!(object_name(&body), None);
    }

    #[test]
    fn a_bad_object_gets_the_reference_readers_message() {
        let body = review(&format!(
            r#"{{"uid":"u","kind":{DEPLOYMENT},"operation":"CREATE","object":{{"metadata":{{}},"metadata":{{}}}}}}"#
        ));
        let err = parse(body.as_bytes()).expect_err("duplicate metadata");
        assert!(matches!(err, ReviewError::Object(_)), "{err}");
        // Positions are inside the object, as they always were.
        assert_eq!(
            err.to_string(),
            "request.object is not a valid object: duplicate field `metadata` at line 1 column 25"
        );
    }

    #[test]
    fn bad_requests_get_the_reference_readers_messages() {
        let cases = [
            (
                r#""x""#,
                "invalid type: string \"x\", expected struct RequestIn",
            ),
            (
                "[]",
                "invalid length 0, expected struct RequestIn with 8 elements",
            ),
            (
                r#"{"uid":5}"#,
                "invalid type: integer `5`, expected a string",
            ),
            (r#"{"uid":"a","uid":"b"}"#, "duplicate field `uid`"),
        ];
        for (request, message) in cases {
            let err = parse(review(request).as_bytes()).expect_err(request);
            assert!(err.to_string().contains(message), "{request}: {err}");
        }
    }
}
