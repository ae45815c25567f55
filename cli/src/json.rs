//! A minimal JSON value and compact writer: enough for `--json` output, without
//! pulling serde into a binary whose size is measured.

use std::fmt;

/// A JSON value. Objects keep their keys in insertion order, so output is deterministic.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(u64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
    /// An object whose keys are data (map names from the command line).
    Map(Vec<(String, Json)>),
    /// JSON text already written (see [`Escaped`]), put out as it is: for
    /// long arrays, written in one string instead of a value per field.
    Raw(String),
}

/// A string as a JSON string literal, quoted and escaped, for `write!`
/// into a [`Json::Raw`].
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_str(f, self.0)
    }
}

impl Json {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// `null` for `None`.
    pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Json) -> Json {
        v.map_or(Json::Null, f)
    }
}

impl From<u32> for Json {
    fn from(v: u32) -> Json {
        Json::Num(v.into())
    }
}

impl From<u64> for Json {
    fn from(v: u64) -> Json {
        Json::Num(v)
    }
}

impl From<usize> for Json {
    fn from(v: usize) -> Json {
        Json::Num(v as u64)
    }
}

impl From<bool> for Json {
    fn from(v: bool) -> Json {
        Json::Bool(v)
    }
}

impl From<String> for Json {
    fn from(v: String) -> Json {
        Json::Str(v)
    }
}

impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::Str(v.to_owned())
    }
}

// One JSON writer for the library's target files and the CLI.
use rawbpf::probe::json::{write_arr, write_obj, write_str};

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Num(n) => write!(f, "{n}"),
            Json::Str(s) => write_str(f, s),
            Json::Arr(items) => write_arr(f, items),
            Json::Obj(fields) => write_obj(f, fields.iter().map(|(k, v)| (*k, v))),
            Json::Map(fields) => write_obj(f, fields.iter().map(|(k, v)| (k.as_str(), v))),
            Json::Raw(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_compact_escaped_json() {
        let v = Json::Obj(vec![
            ("name", "a\"b\\c\n\u{1}é".into()),
            ("n", 42u32.into()),
            ("ok", true.into()),
            ("none", Json::Null),
            ("list", Json::Arr(vec![1u32.into(), Json::Arr(vec![])])),
            ("obj", Json::Obj(vec![])),
            ("map", Json::Map(vec![("k.x".to_owned(), Json::Null)])),
            ("raw", Json::Raw(format!("[{}]", Escaped("q\"")))),
        ]);
        assert_eq!(
            v.to_string(),
            r#"{"name":"a\"b\\c\n\u0001é","n":42,"ok":true,"none":null,"list":[1,[]],"obj":{},"map":{"k.x":null},"raw":["q\""]}"#
        );
    }
}
