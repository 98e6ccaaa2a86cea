/*!
A small JSON writer: results are written straight into a `String`, with
no serde round trip and no float formatting machinery in the plugin
(decimals are printed from integers). Valid JSON by construction: strings
are escaped, non-finite numbers become `null`.

```
use icmp_host_sdk::json::{self, Decimal};
let line = json::object(|o| {
    o.field("address", "192.0.2.1")
        .field("alive", &true)
        .field("rtt", &Decimal::new(0.0414, 3))
        .field("ttl", &Some(64u8))
        .field("mark", &None::<String>);
});
assert_eq!(&*line, r#"{"address":"192.0.2.1","alive":true,"rtt":0.041,"ttl":64,"mark":null}"#);
```
*/

use std::time::Duration;

use crate::{Address, Family};

/// A value that writes itself as JSON.
pub trait ToJson {
    /// Appends this value's JSON text to `out`.
    fn write_json(&self, out: &mut String);

    /// This value as a JSON text.
    ///
    /// ```
    /// use icmp_host_sdk::json::ToJson;
    /// assert_eq!(vec![1u32, 2].to_json(), "[1,2]");
    /// ```
    fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }
}

/// Writes the fields of one JSON object; see [`object`].
pub struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Opens an object in `out`; [`Object::end`] closes it. For a value's
    /// own [`ToJson`] implementation.
    pub fn begin(out: &'a mut String) -> Object<'a> {
        out.push('{');
        Object { out, empty: true }
    }

    /// Adds `"name": value`.
    pub fn field<T: ToJson + ?Sized>(&mut self, name: &str, value: &T) -> &mut Object<'a> {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        string(self.out, name);
        self.out.push(':');
        value.write_json(self.out);
        self
    }

    /// Adds the field only when `value` is `Some`.
    pub fn optional<T: ToJson>(&mut self, name: &str, value: &Option<T>) -> &mut Object<'a> {
        if let Some(v) = value {
            self.field(name, v);
        }
        self
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push('}');
    }
}

/// A JSON object built by `fields`.
pub fn object(fields: impl FnOnce(&mut Object<'_>)) -> Json {
    let mut out = String::new();
    let mut o = Object::begin(&mut out);
    fields(&mut o);
    o.end();
    Json(out)
}

/// A finished JSON text (from [`object`] or [`ToJson::to_json`]); it
/// writes itself as is, so it nests in other values, and reads as a `&str`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json(String);

impl Json {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Json {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<Json> for String {
    fn from(j: Json) -> String {
        j.0
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ToJson for Json {
    fn write_json(&self, out: &mut String) {
        out.push_str(&self.0);
    }
}

/// JSON text written as is (it must be valid JSON already).
#[derive(Debug, Clone, Copy)]
pub struct Raw<'a>(pub &'a str);

impl ToJson for Raw<'_> {
    fn write_json(&self, out: &mut String) {
        out.push_str(self.0);
    }
}

/// A number rounded to a fixed count of decimal places (at most 9) and
/// written without trailing zeros, always with a fraction: `0.041`, `1.0`.
/// This is how Python prints `round(x, places)`, with no float formatting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decimal {
    value: f64,
    places: u32,
}

impl Decimal {
    /// `value` to `places` decimals.
    pub fn new(value: f64, places: u32) -> Decimal {
        Decimal {
            value,
            places: places.min(9),
        }
    }
}

impl ToJson for Decimal {
    fn write_json(&self, out: &mut String) {
        let scaled = self.value * 10f64.powi(self.places as i32);
        if !scaled.is_finite() || scaled.abs() >= 9.0e18 {
            out.push_str("null");
            return;
        }
        out.push_str(&decimal(scaled.round() as i64, self.places));
    }
}

/// A duration in milliseconds to the nanosecond: `0.041235`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub Duration);

impl ToJson for Millis {
    fn write_json(&self, out: &mut String) {
        let ns = i64::try_from(self.0.as_nanos()).unwrap_or(i64::MAX);
        out.push_str(&decimal(ns, 6));
    }
}

/// `units / 10^places` written as a decimal with at least one fractional
/// digit and no trailing zeros: `decimal(41, 3) == "0.041"`.
pub(crate) fn decimal(units: i64, places: u32) -> String {
    let scale = 10u64.pow(places);
    let magnitude = units.unsigned_abs();
    let mut s = String::new();
    if units < 0 {
        s.push('-');
    }
    s.push_str(&(magnitude / scale).to_string());
    s.push('.');
    let frac = (magnitude % scale).to_string();
    let mut digits = "0".repeat(places as usize - frac.len().min(places as usize));
    digits.push_str(&frac);
    let kept = digits.trim_end_matches('0');
    s.push_str(if kept.is_empty() { "0" } else { kept });
    s
}

/// Appends `s` as a JSON string literal.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl ToJson for str {
    fn write_json(&self, out: &mut String) {
        string(out, self);
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut String) {
        string(out, self);
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut String) {
                out.push_str(&self.to_string());
            }
        }
    )*};
}
integers!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// The shortest decimal that reads back as the same number; `null` when
/// not finite. (Links the standard float formatting: [`Decimal`] does not.)
impl ToJson for f64 {
    fn write_json(&self, out: &mut String) {
        if self.is_finite() {
            out.push_str(&self.to_string());
        } else {
            out.push_str("null");
        }
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(v) => v.write_json(out),
            None => out.push_str("null"),
        }
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            v.write_json(out);
        }
        out.push(']');
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out);
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out);
    }
}

/// Written as a string, like `ping` prints it.
impl ToJson for Address {
    fn write_json(&self, out: &mut String) {
        string(out, &self.to_string());
    }
}

/// `"4"` or `"6"`.
impl ToJson for Family {
    fn write_json(&self, out: &mut String) {
        out.push_str(match self {
            Family::V4 => "\"4\"",
            Family::V6 => "\"6\"",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_like_python_round() {
        let d = |x: f64, p: u32| Decimal::new(x, p).to_json();
        assert_eq!(d(1.0, 3), "1.0");
        assert_eq!(d(0.0, 2), "0.0");
        assert_eq!(d(0.041, 3), "0.041");
        assert_eq!(d(0.5, 2), "0.5");
        assert_eq!(d(-2.25, 2), "-2.25");
        assert_eq!(d(123456.789, 3), "123456.789");
        assert_eq!(d(f64::NAN, 3), "null");
        assert_eq!(Millis(Duration::from_nanos(41_235)).to_json(), "0.041235");
        assert_eq!(Millis(Duration::from_secs(2)).to_json(), "2000.0");
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!("a\"b\\c\n\u{1}é".to_json(), r#""a\"b\\c\n\u0001é""#);
    }

    #[test]
    fn objects_lists_and_options() {
        let s = object(|o| {
            o.field("list", &vec![Some(1u8), None])
                .optional("absent", &None::<u8>)
                .optional("present", &Some(false))
                .field("raw", &Raw("{\"x\":1}"));
        });
        assert_eq!(
            s.as_str(),
            r#"{"list":[1,null],"present":false,"raw":{"x":1}}"#
        );
    }
}
