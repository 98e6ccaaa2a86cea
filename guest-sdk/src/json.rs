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

use std::net::IpAddr;
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
        self.out.push_str(if self.empty { "\"" } else { ",\"" });
        self.empty = false;
        escaped(self.out, name);
        self.out.push_str("\":");
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

    /// Adds a field whose key is a [`key!`] literal: written as is, with
    /// no escaping to look for (the SDK's own records, written by the
    /// thousand).
    pub(crate) fn known<T: ToJson + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> &mut Object<'a> {
        // The key carries its comma: one append for both.
        let key = match self.empty {
            true => key.get(1..).unwrap_or_default(),
            false => key,
        };
        self.empty = false;
        self.out.push_str(key);
        value.write_json(self.out);
        self
    }

    /// [`Object::known`], only when `value` is `Some`.
    pub(crate) fn known_optional<T: ToJson>(
        &mut self,
        key: &'static str,
        value: &Option<T>,
    ) -> &mut Object<'a> {
        if let Some(v) = value {
            self.known(key, v);
        }
        self
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push('}');
    }
}

/// `,"name":` as one literal, for [`Object::known`] (`name` must need no
/// escaping; the comma goes when the field is the first).
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}
pub(crate) use key;

/// A string that needs no escaping (a name from a fixed set), written
/// without looking for any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plain(pub &'static str);

impl ToJson for Plain {
    fn write_json(&self, out: &mut String) {
        out.push('"');
        out.push_str(self.0);
        out.push('"');
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

/// A JSON list whose items come in any order and are written in index
/// order: an item that comes early waits, as JSON text, for those before
/// it; the others go straight into the list. For results reported as they
/// finish but listed in input order, without keeping every record.
///
/// ```
/// use icmp_host_sdk::json::OrderedList;
/// let mut list = OrderedList::with_capacity(16);
/// list.push(1, &"b");
/// list.push(0, &"a");
/// list.push(2, &"c");
/// assert_eq!(list.finish(), r#"["a","b","c"]"#);
/// ```
#[derive(Debug, Default)]
pub struct OrderedList {
    out: String,
    /// Items written so far.
    written: usize,
    /// Items that came before their turn: `early[i]` is item
    /// `written + 1 + i`.
    early: std::collections::VecDeque<Option<String>>,
    /// Room of early items already written, for the next ones.
    spare: Vec<String>,
}

impl OrderedList {
    /// An empty list with room for `bytes` of JSON text (room that is
    /// never written costs no memory: size it generously).
    pub fn with_capacity(bytes: usize) -> OrderedList {
        let mut out = String::with_capacity(bytes);
        out.push('[');
        OrderedList {
            out,
            written: 0,
            early: Default::default(),
            spare: Vec::new(),
        }
    }

    /// Adds item `index` (each index once; an index already passed is
    /// ignored).
    pub fn push<T: ToJson + ?Sized>(&mut self, index: usize, item: &T) {
        let Some(ahead) = index.checked_sub(self.written) else {
            return;
        };
        if ahead > 0 {
            if self.early.len() < ahead {
                self.early.resize(ahead, None);
            }
            let mut text = self.spare.pop().unwrap_or_default();
            item.write_json(&mut text);
            self.early[ahead - 1] = Some(text);
            return;
        }
        self.separate();
        item.write_json(&mut self.out);
        self.written += 1;
        // Then those that were waiting for it, up to the next that has not
        // come (its empty place goes too: the rest move up one).
        while let Some(Some(mut text)) = self.early.pop_front() {
            self.separate();
            self.out.push_str(&text);
            self.written += 1;
            text.clear();
            self.spare.push(text);
        }
    }

    fn separate(&mut self) {
        if self.written > 0 {
            self.out.push(',');
        }
    }

    /// Once the items written so far take `size` bytes, hands their text to
    /// `write` and keeps only what follows: a list of many megabytes (a
    /// sweep's report) goes out in parts, [`crate::write_report`], instead
    /// of being held whole. [`OrderedList::finish`] then gives the rest.
    ///
    /// ```
    /// use icmp_host_sdk::json::OrderedList;
    /// let (mut list, mut parts) = (OrderedList::with_capacity(16), String::new());
    /// for (i, item) in ["a", "b", "c"].iter().enumerate() {
    ///     list.push(i, item);
    ///     list.hand_on(8, |part| parts.push_str(part));
    /// }
    /// assert_eq!(parts, r#"["a","b""#);
    /// assert_eq!(parts + &list.finish(), r#"["a","b","c"]"#);
    /// ```
    pub fn hand_on(&mut self, size: usize, write: impl FnOnce(&str)) {
        if self.out.len() >= size {
            write(&self.out);
            // The same room takes the next part: memory stays one part.
            self.out.clear();
        }
    }

    /// The list's text: every item pushed, in index order (an index that
    /// never came is left out).
    pub fn finish(mut self) -> String {
        let mut first = self.written == 0;
        for text in std::mem::take(&mut self.early).into_iter().flatten() {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(&text);
        }
        self.out.push(']');
        self.out
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
        let scaled = self.value * POW10[self.places as usize] as f64;
        if !scaled.is_finite() || scaled.abs() >= 9.0e18 {
            out.push_str("null");
            return;
        }
        write_decimal(out, scaled.round() as i64, self.places);
    }
}

/// A duration in milliseconds to the nanosecond: `0.041235`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub Duration);

impl ToJson for Millis {
    fn write_json(&self, out: &mut String) {
        let ns = i64::try_from(self.0.as_nanos()).unwrap_or(i64::MAX);
        write_decimal(out, ns, 6);
    }
}

/// `units / 10^places` written as a decimal with at least one fractional
/// digit and no trailing zeros: `decimal(41, 3) == "0.041"`.
pub(crate) fn decimal(units: i64, places: u32) -> String {
    let mut s = String::new();
    write_decimal(&mut s, units, places);
    s
}

/// Appends [`decimal`]`(units, places)` to `out` (`places` ≤ 9).
fn write_decimal(out: &mut String, units: i64, places: u32) {
    let mut text = Ascii::default();
    if units < 0 {
        text.byte(b'-');
    }
    let magnitude = units.unsigned_abs();
    let scale = POW10[places as usize];
    text.unsigned(magnitude / scale);
    text.byte(b'.');
    let mut frac = magnitude % scale;
    let mut digits = places as usize;
    if frac == 0 {
        digits = 1;
    }
    while frac != 0 && frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    // `frac` has at most `digits` digits: leading zeros pad it.
    text.padded(frac, digits);
    text.append_to(out);
}

/// Appends `n` in decimal, with no allocation and no formatting machinery.
fn write_unsigned(out: &mut String, n: u64) {
    if n < 10 {
        out.push(char::from(b'0' + n as u8));
        return;
    }
    let mut text = Ascii::default();
    text.unsigned(n);
    text.append_to(out);
}

/// Short ASCII text (a number, an address) assembled on the stack and
/// appended in one go rather than a character at a time.
struct Ascii {
    buf: [u8; 48],
    len: usize,
}

impl Default for Ascii {
    fn default() -> Ascii {
        Ascii {
            buf: [0; 48],
            len: 0,
        }
    }
}

impl Ascii {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `n` in decimal.
    fn unsigned(&mut self, n: u64) {
        let mut digits = 1;
        while digits < 20 && n >= POW10[digits] {
            digits += 1;
        }
        self.padded(n, digits);
    }

    /// The last `digits` decimal digits of `n`, leading zeros included.
    fn padded(&mut self, mut n: u64, digits: usize) {
        let end = self.len + digits;
        for slot in self.buf[self.len..end].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len = end;
    }

    /// Dotted quad.
    fn ipv4(&mut self, ip: std::net::Ipv4Addr) {
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                self.byte(b'.');
            }
            self.unsigned(u64::from(octet));
        }
    }

    fn append_to(&self, out: &mut String) {
        // One append, not one per character: in wasm each is a call. The
        // text is ASCII, so the check never fails.
        out.push_str(std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default());
    }
}

/// `10^i` for every `i` a `u64` holds (`10^19` is the last).
const POW10: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// Appends `s` as a JSON string literal.
fn string(out: &mut String, s: &str) {
    out.push('"');
    escaped(out, s);
    out.push('"');
}

/// Appends `s` escaped for a JSON string: unescaped runs are copied whole.
fn escaped(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut run = 0;
    for (at, &b) in s.as_bytes().iter().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        // Only ASCII bytes end a run: its bounds are char boundaries, so
        // `get` always finds it. (Indexing would link the panic that
        // `Debug`-formats the string: Unicode escaping, about 3 KB.)
        out.push_str(s.get(run..at).unwrap_or_default());
        run = at + 1;
        if short.is_empty() {
            let mut text = Ascii::default();
            for c in [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ] {
                text.byte(c);
            }
            text.append_to(out);
        } else {
            out.push_str(short);
        }
    }
    out.push_str(s.get(run..).unwrap_or_default());
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

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut String) {
                write_unsigned(out, *self as u64);
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, usize);

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut String) {
                if *self < 0 {
                    out.push('-');
                }
                write_unsigned(out, self.unsigned_abs() as u64);
            }
        }
    )*};
}
signed!(i8, i16, i32, i64, isize);

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

/// Written as a string, like `ping` prints it. (An address's text never
/// needs escaping.)
impl ToJson for Address {
    fn write_json(&self, out: &mut String) {
        match self.ip {
            IpAddr::V4(ip) if self.scope_id == 0 => {
                let mut text = Ascii::default();
                text.byte(b'"');
                text.ipv4(ip);
                text.byte(b'"');
                text.append_to(out);
            }
            _ => {
                use std::fmt::Write;
                let _ = write!(out, "\"{self}\"");
            }
        }
    }
}

/// `address` as `Display` writes it; IPv4 without the formatting machinery
/// (a sweep writes one per host).
pub(crate) fn address_text(address: &Address) -> String {
    match address.ip {
        IpAddr::V4(ip) if address.scope_id == 0 => {
            let mut text = Ascii::default();
            text.ipv4(ip);
            let mut out = String::new();
            text.append_to(&mut out);
            out
        }
        _ => address.to_string(),
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
        assert_eq!(d(0.000001, 6), "0.000001");
        assert_eq!(d(7.0, 0), "7.0");
        assert_eq!(d(-0.5, 3), "-0.5");
        assert_eq!(decimal(1_000_100, 6), "1.0001");
    }

    #[test]
    fn integers_and_addresses_print_as_std_does() {
        for n in [0u64, 7, 10, 99, 1234567890, u64::MAX] {
            assert_eq!(n.to_json(), n.to_string());
        }
        for n in [i64::MIN, -1, 0, 42, i64::MAX] {
            assert_eq!(n.to_json(), n.to_string());
        }
        for a in [
            "0.0.0.0",
            "127.1.255.254",
            "255.255.255.255",
            "::1",
            "fe80::1%2",
        ] {
            let a: Address = a.parse().unwrap();
            assert_eq!(a.to_json(), format!("\"{a}\""));
        }
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!("a\"b\\c\n\u{1}é".to_json(), r#""a\"b\\c\n\u0001é""#);
        assert_eq!("é\u{1f}ü\t".to_json(), r#""é\u001fü\t""#);
        assert_eq!("plain".to_json(), r#""plain""#);
    }

    #[test]
    fn an_ordered_list_writes_items_in_index_order_whatever_their_order() {
        let orders: [&[usize]; 5] = [
            &[0, 1, 2, 3, 4],
            &[4, 3, 2, 1, 0],
            &[1, 0, 3, 2, 4],
            &[2, 4, 0, 3, 1],
            &[3, 0, 1, 4, 2],
        ];
        for order in orders {
            let mut list = OrderedList::with_capacity(0);
            for &i in order {
                list.push(i, &(i as u32));
            }
            assert_eq!(list.finish(), "[0,1,2,3,4]", "{order:?}");
        }
        // Gaps are left out; an index already written is ignored.
        let mut list = OrderedList::with_capacity(0);
        for i in [3, 0, 5, 0] {
            list.push(i, &(i as u32));
        }
        assert_eq!(list.finish(), "[0,3,5]");
        assert_eq!(OrderedList::with_capacity(8).finish(), "[]");
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
