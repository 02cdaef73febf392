//! A strict, quick JSON reader for the request path.
//!
//! Most of an AdmissionReview is never read: `managedFields`, the status,
//! each container's image, env, probes and resources. serde_json walks
//! every one of those tokens through its general machinery; this reader
//! skips them with a tight scan (sixteen bytes at a time inside strings) and
//! hands the few values the object view reads to the same serde
//! `Deserialize` impls, borrowing every string that has no escapes.
//!
//! It is not a second JSON parser to trust: it is a filter in front of the
//! reference reader (`serde_json`). It accepts only a strict subset of what
//! serde_json accepts and reads the same values from it:
//!
//! - the text is UTF-8 (the caller checked), strings hold no control
//!   characters and only the escapes JSON defines, `\u` with four hex
//!   digits and never a surrogate;
//! - numbers follow the JSON grammar, and a number that is read is read by
//!   serde_json itself (`serde_json::Number`), so it visits the same
//!   `u64` / `i64` / `f64`;
//! - a string with escapes that is read is unescaped here (`unescape`),
//!   which the unit tests and the fuzz target check against serde_json;
//! - nesting deeper than `MAX_DEPTH` is refused.
//!
//! Anything else is `Refused`, with no message, and `admission::parse`
//! reads the body again with serde_json, whose answer (a decision or the
//! error message) is then the answer. The fuzz target `review` and the
//! property tests check that both readers agree on every input.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, Visitor};
use serde::forward_to_deserialize_any;

use crate::lenient::UNREAD;

/// Refused: the reference reader decides. (No message: nobody reads it.)
#[derive(Debug)]
pub(super) struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("left to the reference reader")
    }
}

impl std::error::Error for Refused {}

impl de::Error for Refused {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Refused
    }
}

type Result<T> = std::result::Result<T, Refused>;

/// Far below serde_json's own limit (128), so a deep body is always left
/// to it.
const MAX_DEPTH: u32 = 64;

/// The name of `Raw`'s newtype, which only this reader understands.
const RAW: &str = "$meshguard::admission::json::Raw";

/// A value kept as its JSON text, e.g. the old object, read only if
/// ratcheting needs it: a slice of the body from this reader, serde_json's
/// `RawValue` from serde_json.
pub(super) struct Raw<'a>(pub &'a str);

impl<'de: 'a, 'a> de::Deserialize<'de> for Raw<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Raw<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(Raw(v))
            }
            /// serde_json (the reference reader): its own raw value.
            fn visit_newtype_struct<D: de::Deserializer<'de>>(
                self,
                d: D,
            ) -> std::result::Result<Self::Value, D::Error> {
                <&serde_json::value::RawValue as de::Deserialize>::deserialize(d)
                    .map(|raw| Raw(raw.get()))
            }
        }
        d.deserialize_newtype_struct(RAW, V(std::marker::PhantomData))
    }
}

/// Reads `T` from the whole of `text` (trailing whitespace only).
pub(super) fn from_str<'de, T: de::Deserialize<'de>>(text: &'de str) -> Result<T> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let value = T::deserialize(&mut reader)?;
    match reader.peek() {
        None => Ok(value),
        Some(_) => Err(Refused),
    }
}

struct Reader<'de> {
    text: &'de str,
    bytes: &'de [u8],
    pos: usize,
    depth: u32,
}

/// The bytes of `chunk` that are `"`, `\` or a control character, as
/// 0xff bytes of the result (little-endian: the first such byte is the
/// lowest). Written so that the compiler turns it into a few vector
/// instructions (SSE2, part of every x86-64), in safe code.
#[inline(always)]
fn specials(chunk: &[u8; 16]) -> u128 {
    let mut flags = [0u8; 16];
    for (flag, &b) in flags.iter_mut().zip(chunk) {
        *flag = if (b == b'"') | (b == b'\\') | (b < 0x20) {
            0xff
        } else {
            0
        };
    }
    u128::from_le_bytes(flags)
}

/// At the backslash at `pos`: the position past the escape.
#[inline(never)]
fn skip_escape(bytes: &[u8], pos: usize) -> Result<usize> {
    match bytes.get(pos + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(pos + 2),
        Some(b'u') => {
            let hex = bytes.get(pos + 2..pos + 6).ok_or(Refused)?;
            // A surrogate needs its pair checked: left to the reference.
            let surrogate = matches!(hex[0], b'd' | b'D')
                && matches!(hex[1], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F');
            if !hex.iter().all(u8::is_ascii_hexdigit) || surrogate {
                return Err(Refused);
            }
            Ok(pos + 6)
        }
        _ => Err(Refused),
    }
}

#[inline(always)]
fn whitespace_end(bytes: &[u8], mut pos: usize) -> usize {
    // kube-apiserver sends compact JSON: one comparison in the usual case
    // (every JSON whitespace byte is at most a space).
    if bytes.get(pos).is_some_and(|&b| b > b' ') {
        return pos;
    }
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// The text between the quotes of a string that `string_end` accepted
/// with escapes (so every escape is one JSON defines and no `\u` is a
/// surrogate), unescaped. (Refused cannot happen after `string_end`.)
fn unescape(text: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escape = *rest.as_bytes().get(at + 1).ok_or(Refused)?;
        let mut len = 2;
        let c = match escape {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                len = 6;
                let hex = rest.get(at + 2..at + 6).ok_or(Refused)?;
                u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or(Refused)?
            }
            // They stand for themselves.
            b'"' | b'\\' | b'/' => char::from(escape),
            _ => return Err(Refused),
        };
        out.push(c);
        rest = rest.get(at + len..).ok_or(Refused)?;
    }
    out.push_str(rest);
    Ok(out)
}

/// From just after an opening quote: the position past the closing one,
/// and whether the string has escapes.
#[inline(always)]
fn string_end(bytes: &[u8], mut pos: usize) -> Result<(usize, bool)> {
    let mut escaped = false;
    loop {
        // The next `"`, `\` or control character: sixteen bytes at a time,
        // then one at a time near the end of the text.
        let special = loop {
            if let Some(chunk) = bytes.get(pos..pos + 16) {
                // The offset of the first special byte, 16 when none is.
                let at = specials(chunk.try_into().unwrap_or(&[0; 16])).trailing_zeros() / 8;
                pos += at as usize;
                if at == 16 {
                    continue;
                }
                break bytes[pos];
            }
            match bytes.get(pos) {
                Some(&b) if b != b'"' && b != b'\\' && b >= 0x20 => pos += 1,
                Some(&b) => break b,
                None => return Err(Refused),
            }
        };
        match special {
            b'"' => return Ok((pos + 1, escaped)),
            b'\\' => {
                escaped = true;
                pos = skip_escape(bytes, pos)?;
            }
            _ => return Err(Refused),
        }
    }
}

/// At a number: the position past it, checking the JSON grammar
/// (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`).
fn number_end(bytes: &[u8], mut pos: usize) -> Result<usize> {
    fn digits(bytes: &[u8], mut pos: usize) -> usize {
        while let Some(b'0'..=b'9') = bytes.get(pos) {
            pos += 1;
        }
        pos
    }
    fn some_digits(bytes: &[u8], pos: usize) -> Result<usize> {
        let end = digits(bytes, pos);
        if end == pos { Err(Refused) } else { Ok(end) }
    }
    if bytes.get(pos) == Some(&b'-') {
        pos += 1;
    }
    pos = match bytes.get(pos) {
        Some(b'0') => pos + 1,
        Some(b'1'..=b'9') => digits(bytes, pos + 1),
        _ => return Err(Refused),
    };
    if bytes.get(pos) == Some(&b'.') {
        pos = some_digits(bytes, pos + 1)?;
    }
    if let Some(b'e' | b'E') = bytes.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = bytes.get(pos) {
            pos += 1;
        }
        pos = some_digits(bytes, pos)?;
    }
    Ok(pos)
}

/// At an object's key (after `{` or `,`): the position past its `:`.
#[inline(always)]
fn key_end(bytes: &[u8], pos: usize) -> Result<usize> {
    let pos = whitespace_end(bytes, pos);
    if bytes.get(pos) != Some(&b'"') {
        return Err(Refused);
    }
    let (pos, _) = string_end(bytes, pos + 1)?;
    let pos = whitespace_end(bytes, pos);
    if bytes.get(pos) != Some(&b':') {
        return Err(Refused);
    }
    Ok(pos + 1)
}

/// At a value: the position past it, with at most `depth` levels of
/// nesting. One loop, no recursion: the open containers are bits of
/// `objects` (1 for an object, 0 for an array).
fn value_end(bytes: &[u8], mut pos: usize, depth: u32) -> Result<usize> {
    let mut objects: u64 = 0;
    let mut open: u32 = 0;
    loop {
        // A value.
        pos = whitespace_end(bytes, pos);
        match bytes.get(pos) {
            Some(b'"') => pos = string_end(bytes, pos + 1)?.0,
            Some(&b @ (b'{' | b'[')) => {
                // An empty container is a level too, as in `deserialize_any`.
                if open >= depth {
                    return Err(Refused);
                }
                let close = if b == b'{' { b'}' } else { b']' };
                pos = whitespace_end(bytes, pos + 1);
                if bytes.get(pos) == Some(&close) {
                    pos += 1;
                } else {
                    open += 1;
                    objects = (objects << 1) | u64::from(b == b'{');
                    if b == b'{' {
                        pos = key_end(bytes, pos)?;
                    }
                    continue;
                }
            }
            Some(b't') if bytes[pos..].starts_with(b"true") => pos += 4,
            Some(b'f') if bytes[pos..].starts_with(b"false") => pos += 5,
            Some(b'n') if bytes[pos..].starts_with(b"null") => pos += 4,
            Some(b'-' | b'0'..=b'9') => pos = number_end(bytes, pos)?,
            _ => return Err(Refused),
        }
        // After a value: close what ends here, then the next value.
        loop {
            if open == 0 {
                return Ok(pos);
            }
            pos = whitespace_end(bytes, pos);
            let in_object = objects & 1 == 1;
            match bytes.get(pos) {
                Some(b',') => {
                    pos += 1;
                    if in_object {
                        pos = key_end(bytes, pos)?;
                    }
                    break;
                }
                Some(b'}') if in_object => {}
                Some(b']') if !in_object => {}
                _ => return Err(Refused),
            }
            pos += 1;
            open -= 1;
            objects >>= 1;
        }
    }
}

impl<'de> Reader<'de> {
    /// The next byte that is not whitespace, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.pos = whitespace_end(self.bytes, self.pos);
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Refused)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Refused)
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Refused);
        }
        Ok(())
    }

    /// At a string: its text, borrowed, or unescaped.
    #[inline(always)]
    fn string(&mut self) -> Result<Text<'de>> {
        let start = self.pos;
        let (end, escaped) = string_end(self.bytes, start + 1)?;
        self.pos = end;
        // Between the quotes (ASCII, so both are character boundaries).
        let (_, rest) = self.text.split_at_checked(start + 1).ok_or(Refused)?;
        let (text, _) = rest.split_at_checked(end - start - 2).ok_or(Refused)?;
        if escaped {
            unescape(text).map(Text::Owned)
        } else {
            Ok(Text::Borrowed(text))
        }
    }

    /// At a number: moves past it (see `number_end`).
    fn skip_number(&mut self) -> Result<()> {
        self.pos = number_end(self.bytes, self.pos)?;
        Ok(())
    }

    /// Moves past one value, checking it as the reference reader would.
    fn skip_value(&mut self) -> Result<()> {
        self.pos = value_end(self.bytes, self.pos, MAX_DEPTH - self.depth)?;
        Ok(())
    }
}

enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek().ok_or(Refused)? {
            b'"' => match self.string()? {
                Text::Borrowed(s) => visitor.visit_borrowed_str(s),
                Text::Owned(s) => visitor.visit_string(s),
            },
            b'{' => {
                self.enter()?;
                self.pos += 1;
                let value = visitor.visit_map(Entries {
                    reader: &mut *self,
                    first: true,
                })?;
                self.expect(b'}')?;
                self.depth -= 1;
                Ok(value)
            }
            b'[' => {
                self.enter()?;
                self.pos += 1;
                let value = visitor.visit_seq(Entries {
                    reader: &mut *self,
                    first: true,
                })?;
                self.expect(b']')?;
                self.depth -= 1;
                Ok(value)
            }
            b't' => {
                self.literal(b"true")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                visitor.visit_bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                visitor.visit_unit()
            }
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                self.skip_number()?;
                let number = serde_json::Number::from_str(&self.text[start..self.pos])
                    .map_err(|_| Refused)?;
                if let Some(n) = number.as_u64() {
                    visitor.visit_u64(n)
                } else if let Some(n) = number.as_i64() {
                    visitor.visit_i64(n)
                } else {
                    visitor.visit_f64(number.as_f64().ok_or(Refused)?)
                }
            }
            _ => Err(Refused),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip_value()?;
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == UNREAD {
            // Checked as `deserialize_any` would check it, without keeping
            // it: only a number is read (its range is checked), the rest is
            // checked as it is skipped.
            return match self.peek() {
                Some(b'-' | b'0'..=b'9') => self.deserialize_any(visitor),
                _ => {
                    self.skip_value()?;
                    visitor.visit_unit()
                }
            };
        }
        if name == RAW {
            self.peek();
            let start = self.pos;
            self.skip_value()?;
            visitor.visit_borrowed_str(&self.text[start..self.pos])
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct enum
        identifier
    }
}

/// The entries of a map or the elements of a sequence.
struct Entries<'r, 'de> {
    reader: &'r mut Reader<'de>,
    first: bool,
}

impl Entries<'_, '_> {
    /// Whether another entry follows (consuming the comma before it).
    fn more(&mut self, close: u8) -> Result<bool> {
        let next = self.reader.peek().ok_or(Refused)?;
        if next == close {
            return Ok(false);
        }
        if self.first {
            self.first = false;
        } else if next == b',' {
            self.reader.pos += 1;
            self.reader.peek();
        } else {
            return Err(Refused);
        }
        Ok(true)
    }
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = Refused;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if !self.more(b'}')? {
            return Ok(None);
        }
        if self.reader.bytes.get(self.reader.pos) != Some(&b'"') {
            return Err(Refused);
        }
        let key = seed.deserialize(&mut *self.reader)?;
        self.reader.expect(b':')?;
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.reader)
    }
}

impl<'de> de::SeqAccess<'de> for Entries<'_, 'de> {
    type Error = Refused;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if !self.more(b']')? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// What serde_json reads as a `Value`, this reader reads the same, or
    /// refuses.
    fn same_or_refused(text: &str) -> bool {
        let reference = serde_json::from_str::<serde_json::Value>(text);
        match from_str::<serde_json::Value>(text) {
            Ok(v) => reference.is_ok_and(|r| r == v),
            Err(Refused) => true,
        }
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            r#"{"a":[1,-2,3.5,1e3,-0,0.0,true,false,null],"b":{"c":"d\"\u00e9\n"}}"#,
            r#" [ ] "#,
            r#"{}"#,
            r#""plain""#,
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-0",
            "-0.0",
            "1.5E-3",
        ] {
            assert!(from_str::<serde_json::Value>(text).is_ok(), "{text}");
            assert!(same_or_refused(text), "{text}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for text in [
            "",
            "{",
            "[1,]",
            r#"{"a":1,}"#,
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "1e+",
            "tru",
            "nul",
            r#""a"#,
            "\"a\u{1}b\"",
            r#""\x""#,
            r#""\u12g4""#,
            r#"{"a" 1}"#,
            r#"{1:2}"#,
            "[1 2]",
            "1 2",
            "1e400",
            r#""\ud800""#,
            "NaN",
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_err(),
                "{text}"
            );
            assert!(from_str::<serde_json::Value>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn unescapes_as_serde_json_does() {
        let mut texts: Vec<String> = [
            r#""\"\\\/\b\f\n\r\t""#,
            r#""a\nb""#,
            r#""\\""#,
            r#""é\té""#,
            r#""{\"holdApplicationUntilProxyStarts\": true}""#,
            r#""\u0000\u001f\u007F\u00e9\u20AC\uffff""#,
            r#""x\u0041y\\u0041""#,
        ]
        .map(String::from)
        .into();
        // Every code point a `\u` escape can name without a surrogate.
        texts.extend(
            (0..=0xffff_u32)
                .filter(|c| !(0xd800..0xe000).contains(c))
                .map(|c| format!("\"<\\u{c:04x}>\"")),
        );
        for text in &texts {
            let ours: String = from_str(text).unwrap_or_else(|_| panic!("reads {text}"));
            let reference: String = serde_json::from_str(text).expect("serde_json reads it");
            assert_eq!(ours, reference, "{text}");
        }
    }

    #[test]
    fn surrogates_are_left_to_the_reference_reader() {
        // A valid pair too: refusing is always safe, serde_json reads it.
        for text in [r#""\ud83d\ude00""#, r#""\uDBFF\uDFFF""#, r#""\udc00""#] {
            assert!(from_str::<serde_json::Value>(text).is_err(), "{text}");
            assert!(from_str::<de::IgnoredAny>(text).is_err(), "{text}");
        }
        assert!(same_or_refused(r#""\ud7ff\ue000""#));
        assert!(from_str::<de::IgnoredAny>(r#""\ud7ff\ue000""#).is_ok());
    }

    #[test]
    fn deep_nesting_is_left_to_the_reference_reader() {
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(from_str::<serde_json::Value>(&deep).is_err());
        assert!(from_str::<de::IgnoredAny>(&deep).is_err());
        let fine = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(same_or_refused(&fine));
        assert!(from_str::<serde_json::Value>(&fine).is_ok());
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        #[derive(Deserialize)]
        struct S<'a> {
            #[serde(borrow)]
            a: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            b: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            raw: Raw<'a>,
        }
        let s: S =
            from_str(r#"{"a":"plain","b":"esc\"aped","raw": {"x": [1, "y"]} }"#).expect("reads");
        assert!(matches!(s.a, std::borrow::Cow::Borrowed("plain")));
        assert_eq!(s.b, "esc\"aped");
        assert_eq!(s.raw.0, r#"{"x": [1, "y"]}"#);
    }

    #[test]
    fn finds_specials_in_every_position() {
        for special in [b'"', b'\\', 0x00, 0x1f] {
            for at in 0..16 {
                let mut bytes = *b"abcdefghijklmnop";
                bytes[at] = special;
                let found = specials(&bytes);
                assert_eq!((found.trailing_zeros() / 8) as usize, at);
            }
        }
        assert_eq!(specials(b"ab\xc3\xa9 ~\x7f\xff!#[]{}:/"), 0);
    }
}
