//! A small JSON value, reader and compact writer for target files
//! ([`Features::to_json`](super::Features::to_json) /
//! [`Features::from_json`](super::Features::from_json)): enough for what
//! `rawbpf probe --json` writes, with no serde in a binary whose size is
//! measured. Numbers are unsigned integers (all a target file holds).

use std::fmt::{self, Write as _};

/// A JSON value; objects keep their keys in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A non-negative integer.
    Num(u64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Value>),
    /// An object.
    Obj(Vec<(String, Value)>),
}

/// Where the text stops being JSON, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not valid JSON at byte {offset}: {reason}")]
pub struct JsonError {
    /// Byte offset of the fault.
    pub offset: usize,
    /// What was expected.
    pub reason: String,
}

/// The deepest nesting read: a target file is 3 levels deep.
const MAX_DEPTH: usize = 32;

impl Value {
    /// Parses one JSON document (surrounding white space allowed).
    pub fn parse(text: &str) -> Result<Value, JsonError> {
        let mut r = Reader {
            s: text.as_bytes(),
            at: 0,
        };
        let v = r.value(0)?;
        r.ws();
        if r.at != r.s.len() {
            return Err(r.err("text after the document"));
        }
        Ok(v)
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Num(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn err(&self, reason: &str) -> JsonError {
        JsonError {
            offset: self.at,
            reason: reason.to_owned(),
        }
    }

    fn ws(&mut self) {
        while self.s.get(self.at).is_some_and(|b| b" \t\r\n".contains(b)) {
            self.at += 1;
        }
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.ws();
        match self.s.get(self.at) {
            None => Err(self.err("unexpected end of the text")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'0'..=b'9') => self.number(),
            Some(_) if self.eat("null") => Ok(Value::Null),
            Some(_) if self.eat("true") => Ok(Value::Bool(true)),
            Some(_) if self.eat("false") => Ok(Value::Bool(false)),
            Some(_) => Err(self.err("expected a value")),
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.at;
        while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        if matches!(self.s.get(self.at), Some(b'.' | b'e' | b'E')) {
            return Err(self.err("expected an unsigned integer"));
        }
        std::str::from_utf8(&self.s[start..self.at])
            .ok()
            .and_then(|t| t.parse().ok())
            .map(Value::Num)
            .ok_or_else(|| self.err("number too large"))
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.at += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.at) else {
                return Err(self.err("unterminated string"));
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.at) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.at += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode()?,
                        _ => return Err(self.err("bad escape")),
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                b if b < 0x20 => return Err(self.err("control character in a string")),
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .s
            .get(self.at..self.at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.at += 4;
        Ok(digits)
    }

    fn unicode(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&hi) && self.eat("\\u") {
            let lo = self.hex4()?;
            0x10000 + ((hi - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.err("bad \\u escape"))
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.at += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat("]") {
            return Ok(Value::Arr(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.ws();
            if self.eat("]") {
                return Ok(Value::Arr(items));
            }
            if !self.eat(",") {
                return Err(self.err("expected ',' or ']'"));
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.at += 1;
        let mut fields = Vec::new();
        self.ws();
        if self.eat("}") {
            return Ok(Value::Obj(fields));
        }
        loop {
            self.ws();
            if self.s.get(self.at) != Some(&b'"') {
                return Err(self.err("expected a key string"));
            }
            let key = self.string()?;
            self.ws();
            if !self.eat(":") {
                return Err(self.err("expected ':'"));
            }
            fields.push((key, self.value(depth + 1)?));
            self.ws();
            if self.eat("}") {
                return Ok(Value::Obj(fields));
            }
            if !self.eat(",") {
                return Err(self.err("expected ',' or '}'"));
            }
        }
    }
}

/// Writes `s` as a JSON string: quoted, with `"`, `\\` and control
/// characters escaped. Runs that need no escape are written whole (`rawbpf
/// list --json` writes thousands of names); every byte escaped is ASCII,
/// so `start..i` always falls on character boundaries.
pub fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => "",
            _ => continue,
        };
        f.write_str(&s[start..i])?;
        if escaped.is_empty() {
            write!(f, "\\u{b:04x}")?;
        } else {
            f.write_str(escaped)?;
        }
        start = i + 1;
    }
    f.write_str(&s[start..])?;
    f.write_char('"')
}

/// Writes `items` as a JSON array, each item by its `Display`.
pub fn write_arr<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: impl IntoIterator<Item = T>,
) -> fmt::Result {
    f.write_char('[')?;
    for (i, v) in items.into_iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{v}")?;
    }
    f.write_char(']')
}

/// Writes `fields` as a JSON object: each key as a JSON string, each value
/// by its `Display`.
pub fn write_obj<'a, V: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    fields: impl IntoIterator<Item = (&'a str, V)>,
) -> fmt::Result {
    f.write_char('{')?;
    for (i, (k, v)) in fields.into_iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write_str(f, k)?;
        write!(f, ":{v}")?;
    }
    f.write_char('}')
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Num(n) => write!(f, "{n}"),
            Value::Str(s) => write_str(f, s),
            Value::Arr(items) => write_arr(f, items),
            Value::Obj(fields) => write_obj(f, fields.iter().map(|(k, v)| (k.as_str(), v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_escapes() {
        let text = r#" {"a":[1,true,null,"x\"\\\n\u00e9\ud83d\ude00"],"b":{},"c":[]} "#;
        let v = Value::parse(text).unwrap();
        assert_eq!(
            v.get("a").unwrap(),
            &Value::Arr(vec![
                Value::Num(1),
                Value::Bool(true),
                Value::Null,
                Value::Str("x\"\\\né😀".into())
            ])
        );
        assert_eq!(Value::parse(&v.to_string()).unwrap(), v);
    }

    #[test]
    fn says_where_it_is_not_json() {
        for (text, at) in [
            ("{\"a\":1,}", 7),
            ("[1 2]", 3),
            ("{\"a\"", 4),
            ("\"abc", 4),
            ("-1", 0),
            ("1.5", 1),
            ("{} x", 3),
            ("", 0),
        ] {
            let e = Value::parse(text).unwrap_err();
            assert_eq!(e.offset, at, "{text}: {e}");
        }
        let deep = "[".repeat(100);
        assert!(Value::parse(&deep).unwrap_err().reason.contains("deeply"));
    }
}
