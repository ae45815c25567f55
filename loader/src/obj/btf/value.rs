//! Values of BTF types, both ways: the bytes of a variable, map key or
//! value decoded into a small tree ([`Value`], written out as JSON), and
//! the text a user types (`--set`, a map update) encoded into exactly a
//! type's bytes, checked against the type.
//!
//! # The text syntax ([`encode`])
//!
//! | type                        | text                                                    |
//! |-----------------------------|---------------------------------------------------------|
//! | integer (`int`, `__u8`, …)  | `42`, `-1`, `0x10`, `0o17`, `0b101` (`_` allowed between digits); checked against the type's range |
//! | `bool` (`_Bool`)            | `true`, `false`, `1`, `0`                               |
//! | `enum`                      | an enumerator's name (`MODE_FAST`), or a number in range |
//! | `float`, `double`           | `1.5`, `-2e3`                                           |
//! | `char[N]`                   | `"text"` (escapes `\" \\ \n \t \r \0`); at the top level a bare `text` too. It must leave room for its NUL. |
//! | other arrays                | `[1, 2, 3]`: at most N elements, the rest zero           |
//! | `struct`, `union`           | `{a=1, b=2}` or JSON `{"a": 1, "b": 2}`: fields by name, those not named zero |
//!
//! `typedef`s, `const` and `volatile` are seen through. Nested values use
//! the same syntax (`{name="eth0", ports=[80, 443]}`); inside brackets a
//! bare word runs to the next `,`, `]` or `}`. Pointers cannot be set.
//!
//! # The JSON rendering ([`Value::write_json`])
//!
//! Numbers as numbers, `bool`s as `true`/`false`, enums by enumerator name
//! (a number when no enumerator has the value), char arrays as strings (up
//! to the first NUL), structs and unions as objects by member name
//! (anonymous members' fields inline), arrays as arrays, pointers as
//! `"0x…"` strings, and bytes without a type as arrays of `"0x.."` strings
//! (bpftool's form).

use super::{Btf, BtfError, BtfKind, BtfTypeData};
use std::fmt;

const INT_SIGNED: u8 = 1;
const INT_CHAR: u8 = 2;
const INT_BOOL: u8 = 4;
/// How deeply types may nest (arrays of structs of arrays…).
const MAX_DEPTH: usize = 32;

/// A decoded value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A signed integer.
    Int(i128),
    /// An unsigned integer.
    Uint(u128),
    /// A `bool`.
    Bool(bool),
    /// A `float` or `double`.
    Float(f64),
    /// An enum: its enumerator's name, if one has the value.
    Enum {
        /// The enumerator's name.
        name: Option<String>,
        /// The number.
        value: i128,
    },
    /// A char array, up to its first NUL.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// A struct, union or DATASEC: members by name.
    Struct(Vec<(String, Value)>),
    /// A pointer.
    Ptr(u64),
    /// Bytes of a type that has no value form (void, functions).
    Bytes(Vec<u8>),
}

impl Value {
    /// Appends the value as JSON text (see the module's table).
    pub fn write_json(&self, out: &mut String) {
        use fmt::Write as _;
        match self {
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Uint(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f}");
            }
            Value::Float(f) => json_string(out, &f.to_string()),
            Value::Enum { name: Some(n), .. } => json_string(out, n),
            Value::Enum { name: None, value } => {
                let _ = write!(out, "{value}");
            }
            Value::Str(s) => json_string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Struct(fields) => {
                out.push('{');
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(out, name);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
            Value::Ptr(p) => json_string(out, &format!("{p:#x}")),
            Value::Bytes(b) => {
                out.push('[');
                for (i, byte) in b.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "\"0x{byte:02x}\"");
                }
                out.push(']');
            }
        }
    }

    /// The value as JSON text.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    use fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What is wrong with a value's bytes or text. Each names where in the value
/// (`cfg.ports[1]`, starting at the variable or key the caller names) and
/// the type there.
#[derive(Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// An integer outside its type's range.
    #[error("{path} ({ty}): {text} is out of range ({min} to {max})")]
    OutOfRange {
        /// Where.
        path: String,
        /// The type, as C spells it.
        ty: String,
        /// What was given.
        text: String,
        /// The smallest value.
        min: String,
        /// The largest value.
        max: String,
    },
    /// Text of the wrong form for the type.
    #[error("{path} ({ty}): '{text}' is not {expected}")]
    Expected {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// What was given.
        text: String,
        /// What the type takes, in words.
        expected: &'static str,
    },
    /// An enum name that is none of the type's enumerators.
    #[error("{path} ({ty}): '{text}' is not one of its enumerators ({known})")]
    UnknownEnumerator {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// What was given.
        text: String,
        /// The enumerators, comma-separated.
        known: String,
    },
    /// A string longer than its char array holds (with its NUL).
    #[error(
        "{path} ({ty}): the string is {len} bytes; it holds at most {max} and the terminating NUL"
    )]
    StringTooLong {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// The string's length in bytes.
        len: usize,
        /// The most it takes.
        max: u32,
    },
    /// More elements than the array has.
    #[error("{path} ({ty}): {given} elements given; it has {max}")]
    TooManyElements {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// How many were given.
        given: usize,
        /// How many it has.
        max: u32,
    },
    /// A field name that the struct does not have.
    #[error("{path} ({ty}): no field '{field}' (its fields: {known})")]
    UnknownField {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// The name given.
        field: String,
        /// Its fields, comma-separated.
        known: String,
    },
    /// A type whose values cannot be written as text (pointers, functions).
    #[error("{path} ({ty}): a value of this type cannot be set")]
    Unsupported {
        /// Where.
        path: String,
        /// The type.
        ty: String,
    },
    /// Text that does not parse.
    #[error("{path}: cannot read '{text}' at byte {at}: {reason}")]
    Syntax {
        /// Where.
        path: String,
        /// The whole text.
        text: String,
        /// Byte offset of the problem.
        at: usize,
        /// What was expected.
        reason: &'static str,
    },
    /// Fewer bytes than the type's size.
    #[error("{path} ({ty}): {len} bytes given; the type is {size} bytes")]
    Size {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// Bytes given.
        len: usize,
        /// The type's size.
        size: u32,
    },
    /// Types nested more deeply than rawbpf follows.
    #[error("{path}: types nest more than {MAX_DEPTH} deep")]
    TooDeep {
        /// Where.
        path: String,
    },
    /// The BTF itself is inconsistent.
    #[error("{path}: {source}")]
    Btf {
        /// Where.
        path: String,
        /// What is wrong.
        source: BtfError,
    },
}

debug_is_display!(ValueError);

/// The name of a type as C spells it, for messages: typedef names kept,
/// `const`/`volatile` dropped (`__u32`, `enum mode`, `char[16]`, `struct cfg`).
pub fn type_name(btf: &Btf, id: u32) -> String {
    type_name_depth(btf, id, 0)
}

fn type_name_depth(btf: &Btf, id: u32, depth: usize) -> String {
    let Ok(t) = btf.type_by_id(id) else {
        return format!("type {id}");
    };
    if depth > MAX_DEPTH {
        return format!("type {id}");
    }
    let name = btf.string(t.name_off).unwrap_or("");
    let named = |prefix: &str| {
        if name.is_empty() {
            format!("{prefix} <anon>")
        } else {
            format!("{prefix} {name}")
        }
    };
    match t.kind {
        BtfKind::Void => "void".into(),
        BtfKind::Int | BtfKind::Float | BtfKind::Typedef => name.to_owned(),
        BtfKind::Enum | BtfKind::Enum64 => named("enum"),
        BtfKind::Struct => named("struct"),
        BtfKind::Union => named("union"),
        BtfKind::Fwd => named("struct"),
        BtfKind::Array => match t.data {
            BtfTypeData::Array {
                elem_type, nelems, ..
            } => format!("{}[{nelems}]", type_name_depth(btf, elem_type, depth + 1)),
            _ => "array".into(),
        },
        BtfKind::Ptr => format!("{} *", type_name_depth(btf, t.size_or_type, depth + 1)),
        BtfKind::Const
        | BtfKind::Volatile
        | BtfKind::Restrict
        | BtfKind::TypeTag
        | BtfKind::Var => type_name_depth(btf, t.size_or_type, depth + 1),
        other => other.name().to_ascii_lowercase(),
    }
}

/// Decodes `bytes` as a value of type `id`; `path` names it in errors.
pub fn decode(btf: &Btf, id: u32, bytes: &[u8], path: &str) -> Result<Value, ValueError> {
    let size = btf.resolve_size(id).map_err(|source| ValueError::Btf {
        path: path.to_owned(),
        source,
    })?;
    if bytes.len() < size as usize {
        return Err(ValueError::Size {
            path: path.to_owned(),
            ty: type_name(btf, id),
            len: bytes.len(),
            size,
        });
    }
    Decoder { btf, path }.value(id, &bytes[..size as usize], 0)
}

struct Decoder<'a> {
    btf: &'a Btf,
    path: &'a str,
}

impl Decoder<'_> {
    fn btf_err(&self, source: BtfError) -> ValueError {
        ValueError::Btf {
            path: self.path.to_owned(),
            source,
        }
    }

    /// The value of type `id` in `bytes` (which start at it).
    fn value(&self, id: u32, bytes: &[u8], depth: usize) -> Result<Value, ValueError> {
        if depth > MAX_DEPTH {
            return Err(ValueError::TooDeep {
                path: self.path.to_owned(),
            });
        }
        let id = self.btf.strip_modifiers(id).map_err(|e| self.btf_err(e))?;
        let t = self.btf.type_by_id(id).map_err(|e| self.btf_err(e))?;
        let size = (t.size_or_type as usize).min(bytes.len());
        Ok(match (&t.kind, &t.data) {
            (BtfKind::Int, BtfTypeData::Int { .. }) | (BtfKind::Enum | BtfKind::Enum64, _) => {
                self.bits(id, bytes, 0, 0)?
            }
            (BtfKind::Float, _) => match size {
                4 => Value::Float(f64::from(f32::from_le_bytes(
                    bytes[..4].try_into().unwrap_or([0; 4]),
                ))),
                8 => Value::Float(f64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]))),
                _ => Value::Bytes(bytes[..size].to_vec()),
            },
            (BtfKind::Ptr, _) => Value::Ptr(read_uint(bytes, 0, 64) as u64),
            (
                BtfKind::Array,
                BtfTypeData::Array {
                    elem_type, nelems, ..
                },
            ) => self.array(*elem_type, *nelems, bytes, depth)?,
            (BtfKind::Struct | BtfKind::Union, BtfTypeData::Members(members)) => {
                let mut fields = Vec::with_capacity(members.len());
                for m in members {
                    let (bit_off, bit_size) = member_bits(t.kind_flag, m.offset);
                    let v = if bit_size > 0 {
                        self.bits(m.type_id, bytes, bit_off, bit_size)?
                    } else {
                        let start = (bit_off / 8) as usize;
                        self.value(m.type_id, bytes.get(start..).unwrap_or(&[]), depth + 1)?
                    };
                    let name = self.btf.string(m.name_off).unwrap_or("");
                    match v {
                        // An anonymous struct/union's fields are the parent's, as in C.
                        Value::Struct(inner) if name.is_empty() => fields.extend(inner),
                        v => fields.push((name.to_owned(), v)),
                    }
                }
                Value::Struct(fields)
            }
            (BtfKind::Datasec, BtfTypeData::Datasec(vars)) => {
                let mut fields = Vec::with_capacity(vars.len());
                for v in vars {
                    let name = self.btf.type_name(v.type_id).unwrap_or("").to_owned();
                    let start = v.offset as usize;
                    let end = start.saturating_add(v.size as usize).min(bytes.len());
                    let part = bytes.get(start..end).unwrap_or(&[]);
                    fields.push((name, self.value(v.type_id, part, depth + 1)?));
                }
                Value::Struct(fields)
            }
            (BtfKind::Var, _) => self.value(t.size_or_type, bytes, depth + 1)?,
            _ => Value::Bytes(bytes[..size].to_vec()),
        })
    }

    fn array(
        &self,
        elem: u32,
        nelems: u32,
        bytes: &[u8],
        depth: usize,
    ) -> Result<Value, ValueError> {
        if is_char(self.btf, elem) {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            if let Ok(s) = std::str::from_utf8(&bytes[..end]) {
                return Ok(Value::Str(s.to_owned()));
            }
        }
        let elem_size = self.btf.resolve_size(elem).map_err(|e| self.btf_err(e))? as usize;
        let mut items = Vec::with_capacity(nelems.min(4096) as usize);
        for i in 0..nelems as usize {
            let start = i.saturating_mul(elem_size);
            let part = bytes.get(start..).unwrap_or(&[]);
            items.push(self.value(elem, part, depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    /// An integer, bool or enum of type `id`: the whole type at the start
    /// of `bytes`, or (`bit_size` > 0) a bitfield at `bit_off`.
    fn bits(
        &self,
        id: u32,
        bytes: &[u8],
        bit_off: u32,
        bit_size: u32,
    ) -> Result<Value, ValueError> {
        let id = self.btf.strip_modifiers(id).map_err(|e| self.btf_err(e))?;
        let t = self.btf.type_by_id(id).map_err(|e| self.btf_err(e))?;
        let scalar = Scalar::of(self.btf, id).ok_or_else(|| ValueError::Unsupported {
            path: self.path.to_owned(),
            ty: type_name(self.btf, id),
        })?;
        let (off, bits) = if bit_size > 0 {
            (bit_off, bit_size)
        } else {
            (scalar.bit_off, scalar.bits)
        };
        let raw = read_uint(bytes, off, bits);
        let signed_value = sign_extend(raw, bits);
        Ok(match scalar.class {
            Class::Bool => Value::Bool(raw != 0),
            Class::Int if scalar.signed => Value::Int(signed_value),
            Class::Int => Value::Uint(raw),
            Class::Enum => {
                let value = if scalar.signed {
                    signed_value
                } else {
                    raw as i128
                };
                let name = enumerators(self.btf, &t.data)
                    .into_iter()
                    .find(|(_, v)| *v == value)
                    .map(|(n, _)| n.to_owned());
                Value::Enum { name, value }
            }
        })
    }
}

/// A member's (bit offset, bitfield size; 0 for a whole member).
fn member_bits(kind_flag: bool, offset: u32) -> (u32, u32) {
    if kind_flag {
        (offset & 0xff_ffff, offset >> 24)
    } else {
        (offset, 0)
    }
}

/// Whether an array of `elem` is a string: a one-byte integer named `char`
/// (clang's) or marked CHAR (pahole's).
fn is_char(btf: &Btf, elem: u32) -> bool {
    let Ok(id) = btf.strip_modifiers(elem) else {
        return false;
    };
    let Ok(t) = btf.type_by_id(id) else {
        return false;
    };
    match t.data {
        BtfTypeData::Int { encoding, bits, .. } if t.kind == BtfKind::Int && bits == 8 => {
            encoding & INT_CHAR != 0
                || (encoding & INT_BOOL == 0
                    && matches!(btf.string(t.name_off), Ok("char" | "signed char")))
        }
        _ => false,
    }
}

/// The kinds of scalar.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Int,
    Bool,
    Enum,
}

/// An integer-like type's layout.
#[derive(Clone, Copy)]
struct Scalar {
    class: Class,
    signed: bool,
    /// Bits from the start of the type where the value starts (INT's offset).
    bit_off: u32,
    bits: u32,
}

impl Scalar {
    /// The layout of `id` (modifiers already stripped), if it is an
    /// integer, bool or enum.
    fn of(btf: &Btf, id: u32) -> Option<Scalar> {
        let t = btf.type_by_id(id).ok()?;
        match (t.kind, &t.data) {
            (
                BtfKind::Int,
                BtfTypeData::Int {
                    encoding,
                    offset,
                    bits,
                },
            ) => Some(Scalar {
                class: if encoding & INT_BOOL != 0 {
                    Class::Bool
                } else {
                    Class::Int
                },
                signed: encoding & INT_SIGNED != 0,
                bit_off: u32::from(*offset),
                bits: u32::from(*bits).min(128),
            }),
            (BtfKind::Enum | BtfKind::Enum64, _) => Some(Scalar {
                class: Class::Enum,
                signed: t.kind_flag,
                bit_off: 0,
                bits: (t.size_or_type * 8).min(64),
            }),
            _ => None,
        }
    }

    fn range(&self) -> (i128, u128) {
        let bits = self.bits.clamp(1, 128);
        if self.signed {
            let max = (1u128 << (bits - 1)) - 1;
            (-(max as i128) - 1, max)
        } else {
            let max = if bits == 128 {
                u128::MAX
            } else {
                (1u128 << bits) - 1
            };
            (0, max)
        }
    }
}

/// An enum's enumerators as (name, value).
fn enumerators<'b>(btf: &'b Btf, data: &BtfTypeData) -> Vec<(&'b str, i128)> {
    match data {
        BtfTypeData::Enum(e) => e
            .iter()
            .map(|e| (btf.string(e.name_off).unwrap_or(""), i128::from(e.val)))
            .collect(),
        BtfTypeData::Enum64(e) => e
            .iter()
            .map(|e| (btf.string(e.name_off).unwrap_or(""), i128::from(e.val)))
            .collect(),
        _ => Vec::new(),
    }
}

/// `bits` bits (at most 128) at bit `off` of `bytes`, little-endian; bytes
/// past the end read as zero.
fn read_uint(bytes: &[u8], off: u32, bits: u32) -> u128 {
    let mut v: u128 = 0;
    for i in 0..bits.min(128) {
        let bit = off + i;
        let byte = bytes.get((bit / 8) as usize).copied().unwrap_or(0);
        if byte >> (bit % 8) & 1 != 0 {
            v |= 1u128 << i;
        }
    }
    v
}

/// Writes the low `bits` bits of `v` at bit `off` of `out`, little-endian.
fn write_uint(out: &mut [u8], off: u32, bits: u32, v: u128) {
    for i in 0..bits.min(128) {
        let bit = off + i;
        if let Some(byte) = out.get_mut((bit / 8) as usize) {
            let mask = 1u8 << (bit % 8);
            if v >> i & 1 != 0 {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }
}

fn sign_extend(raw: u128, bits: u32) -> i128 {
    if bits == 0 || bits >= 128 {
        return raw as i128;
    }
    let shift = 128 - bits;
    ((raw << shift) as i128) >> shift
}

// ---- text → bytes ----

/// Text read but not yet typed.
#[derive(Clone, Debug, PartialEq)]
enum Text {
    /// A number, a word or a bare string.
    Bare(String),
    /// A `"quoted"` string.
    Quoted(String),
    /// `[a, b]`
    List(Vec<Text>),
    /// `{a=1, "b": 2}`
    Record(Vec<(String, Text)>),
}

impl Text {
    fn shown(&self) -> String {
        match self {
            Text::Bare(s) => s.clone(),
            Text::Quoted(s) => format!("\"{s}\""),
            Text::List(_) => "[...]".into(),
            Text::Record(_) => "{...}".into(),
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    path: &'a str,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> ValueError {
        ValueError::Syntax {
            path: self.path.to_owned(),
            text: self.text.to_owned(),
            at: self.at,
            reason,
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.at += c.len_utf8();
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Text, ValueError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.skip_space();
        match self.peek() {
            Some('"') => self.quoted().map(Text::Quoted),
            Some('[') => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(']') {
                    return Ok(Text::List(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(']') {
                        return Ok(Text::List(items));
                    }
                    if !self.eat(',') {
                        return Err(self.err("expected ',' or ']'"));
                    }
                }
            }
            Some('{') => {
                self.at += 1;
                let mut fields = Vec::new();
                if self.eat('}') {
                    return Ok(Text::Record(fields));
                }
                loop {
                    self.skip_space();
                    let name = if self.peek() == Some('"') {
                        self.quoted()?
                    } else {
                        self.word(&['=', ':', ',', '}'])
                    };
                    if name.is_empty() {
                        return Err(self.err("expected a field name"));
                    }
                    if !self.eat('=') && !self.eat(':') {
                        return Err(self.err("expected '=' or ':' after the field name"));
                    }
                    fields.push((name, self.value(depth + 1)?));
                    if self.eat('}') {
                        return Ok(Text::Record(fields));
                    }
                    if !self.eat(',') {
                        return Err(self.err("expected ',' or '}'"));
                    }
                }
            }
            _ => {
                let w = self.word(&[',', ']', '}']);
                if w.is_empty() {
                    return Err(self.err("expected a value"));
                }
                Ok(Text::Bare(w))
            }
        }
    }

    /// Text up to one of `stops`, trimmed.
    fn word(&mut self, stops: &[char]) -> String {
        let rest = &self.text[self.at..];
        let end = rest.find(|c| stops.contains(&c)).unwrap_or(rest.len());
        self.at += end;
        rest[..end].trim().to_owned()
    }

    fn quoted(&mut self) -> Result<String, ValueError> {
        self.at += 1; // the opening quote
        let mut s = String::new();
        let mut chars = self.text[self.at..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(s);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('0') => s.push('\0'),
                    Some(c @ ('"' | '\\')) => s.push(c),
                    _ => {
                        self.at += i;
                        return Err(self.err("unknown escape (use \\\" \\\\ \\n \\t \\r \\0)"));
                    }
                },
                c => s.push(c),
            }
        }
        Err(self.err("the string has no closing '\"'"))
    }
}

/// Encodes `text` as a value of type `id`: exactly its size in bytes.
/// `path` (a variable's or key's name) starts the paths errors give.
pub fn encode(btf: &Btf, id: u32, text: &str, path: &str) -> Result<Vec<u8>, ValueError> {
    let size = btf.resolve_size(id).map_err(|source| ValueError::Btf {
        path: path.to_owned(),
        source,
    })?;
    let mut out = vec![0u8; size as usize];
    let parsed = if is_char_array(btf, id) && !text.trim_start().starts_with('"') {
        // A bare string at the top: taken whole, spaces, commas and all.
        Text::Quoted(text.to_owned())
    } else {
        let mut p = Parser { text, at: 0, path };
        let v = p.value(0)?;
        p.skip_space();
        if p.at != text.len() {
            return Err(p.err("unexpected text after the value"));
        }
        v
    };
    Encoder { btf }.value(id, &parsed, path, &mut out, 0)?;
    Ok(out)
}

fn is_char_array(btf: &Btf, id: u32) -> bool {
    let Ok(id) = btf.strip_modifiers(id) else {
        return false;
    };
    matches!(
        btf.type_by_id(id).map(|t| &t.data),
        Ok(BtfTypeData::Array { elem_type, .. }) if is_char(btf, *elem_type)
    )
}

struct Encoder<'a> {
    btf: &'a Btf,
}

impl Encoder<'_> {
    /// Writes `text` as a value of type `id` at the start of `out`.
    fn value(
        &self,
        id: u32,
        text: &Text,
        path: &str,
        out: &mut [u8],
        depth: usize,
    ) -> Result<(), ValueError> {
        let btf_err = |source| ValueError::Btf {
            path: path.to_owned(),
            source,
        };
        if depth > MAX_DEPTH {
            return Err(ValueError::TooDeep {
                path: path.to_owned(),
            });
        }
        let ty = || type_name(self.btf, id);
        let expected = |expected| ValueError::Expected {
            path: path.to_owned(),
            ty: ty(),
            text: text.shown(),
            expected,
        };
        let real = self.btf.strip_modifiers(id).map_err(btf_err)?;
        let t = self.btf.type_by_id(real).map_err(btf_err)?;
        match (&t.kind, &t.data) {
            (BtfKind::Int | BtfKind::Enum | BtfKind::Enum64, _) => {
                self.scalar(id, text, path, out, None)
            }
            (BtfKind::Float, _) => {
                let Text::Bare(s) = text else {
                    return Err(expected("a number"));
                };
                let f: f64 = s.parse().map_err(|_| expected("a number"))?;
                match t.size_or_type {
                    4 => out[..4].copy_from_slice(&(f as f32).to_le_bytes()),
                    8 => out[..8].copy_from_slice(&f.to_le_bytes()),
                    _ => {
                        return Err(ValueError::Unsupported {
                            path: path.to_owned(),
                            ty: ty(),
                        })
                    }
                }
                Ok(())
            }
            (
                BtfKind::Array,
                BtfTypeData::Array {
                    elem_type, nelems, ..
                },
            ) => self.array(id, *elem_type, *nelems, text, path, out, depth),
            (BtfKind::Struct | BtfKind::Union, BtfTypeData::Members(_)) => {
                let Text::Record(fields) = text else {
                    return Err(expected("a struct {field=value, ...}"));
                };
                for (name, v) in fields {
                    let sub = format!("{path}.{name}");
                    let Some((m_type, bit_off, bit_size)) = self.member(real, name, 0) else {
                        return Err(ValueError::UnknownField {
                            path: path.to_owned(),
                            ty: ty(),
                            field: name.clone(),
                            known: self.field_names(real, 0).join(", "),
                        });
                    };
                    if bit_size > 0 {
                        self.scalar(m_type, v, &sub, out, Some((bit_off, bit_size)))?;
                    } else {
                        let part = out.get_mut((bit_off / 8) as usize..).unwrap_or(&mut []);
                        self.value(m_type, v, &sub, part, depth + 1)?;
                    }
                }
                Ok(())
            }
            (BtfKind::Var, _) => self.value(t.size_or_type, text, path, out, depth + 1),
            _ => Err(ValueError::Unsupported {
                path: path.to_owned(),
                ty: ty(),
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn array(
        &self,
        id: u32,
        elem: u32,
        nelems: u32,
        text: &Text,
        path: &str,
        out: &mut [u8],
        depth: usize,
    ) -> Result<(), ValueError> {
        let ty = || type_name(self.btf, id);
        if is_char(self.btf, elem) {
            if let Text::Quoted(s) | Text::Bare(s) = text {
                if s.len() >= nelems as usize {
                    return Err(ValueError::StringTooLong {
                        path: path.to_owned(),
                        ty: ty(),
                        len: s.len(),
                        max: nelems.saturating_sub(1),
                    });
                }
                out[..s.len()].copy_from_slice(s.as_bytes());
                out[s.len()..nelems as usize].fill(0);
                return Ok(());
            }
        }
        let Text::List(items) = text else {
            return Err(ValueError::Expected {
                path: path.to_owned(),
                ty: ty(),
                text: text.shown(),
                expected: "an array [a, b, ...]",
            });
        };
        if items.len() > nelems as usize {
            return Err(ValueError::TooManyElements {
                path: path.to_owned(),
                ty: ty(),
                given: items.len(),
                max: nelems,
            });
        }
        let elem_size = self
            .btf
            .resolve_size(elem)
            .map_err(|source| ValueError::Btf {
                path: path.to_owned(),
                source,
            })? as usize;
        for (i, item) in items.iter().enumerate() {
            let part = out.get_mut(i * elem_size..).unwrap_or(&mut []);
            self.value(elem, item, &format!("{path}[{i}]"), part, depth + 1)?;
        }
        Ok(())
    }

    /// A member by name, looked for through anonymous members too: its
    /// type, bit offset from `id`'s start, and bitfield size (0: whole).
    fn member(&self, id: u32, name: &str, depth: usize) -> Option<(u32, u32, u32)> {
        let t = self.btf.type_by_id(id).ok()?;
        let BtfTypeData::Members(members) = &t.data else {
            return None;
        };
        if depth > MAX_DEPTH {
            return None;
        }
        for m in members {
            let (off, size) = member_bits(t.kind_flag, m.offset);
            let m_name = self.btf.string(m.name_off).unwrap_or("");
            if m_name == name {
                return Some((m.type_id, off, size));
            }
            if m_name.is_empty() {
                let inner = self.btf.strip_modifiers(m.type_id).ok()?;
                if let Some((ty, o, s)) = self.member(inner, name, depth + 1) {
                    return Some((ty, off + o, s));
                }
            }
        }
        None
    }

    fn field_names(&self, id: u32, depth: usize) -> Vec<String> {
        let Ok(t) = self.btf.type_by_id(id) else {
            return Vec::new();
        };
        let BtfTypeData::Members(members) = &t.data else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for m in members {
            match self.btf.string(m.name_off).unwrap_or("") {
                "" if depth < MAX_DEPTH => {
                    if let Ok(inner) = self.btf.strip_modifiers(m.type_id) {
                        names.extend(self.field_names(inner, depth + 1));
                    }
                }
                n => names.push(n.to_owned()),
            }
        }
        names
    }

    /// An integer, bool or enum; `bitfield` (bit offset, size) for a
    /// bitfield member of the value `out` starts.
    fn scalar(
        &self,
        id: u32,
        text: &Text,
        path: &str,
        out: &mut [u8],
        bitfield: Option<(u32, u32)>,
    ) -> Result<(), ValueError> {
        let ty = || type_name(self.btf, id);
        let real = self
            .btf
            .strip_modifiers(id)
            .map_err(|source| ValueError::Btf {
                path: path.to_owned(),
                source,
            })?;
        let Some(mut scalar) = Scalar::of(self.btf, real) else {
            return Err(ValueError::Unsupported {
                path: path.to_owned(),
                ty: ty(),
            });
        };
        if let Some((off, bits)) = bitfield {
            scalar.bit_off = off;
            scalar.bits = bits;
        }
        let expected = |expected| ValueError::Expected {
            path: path.to_owned(),
            ty: ty(),
            text: text.shown(),
            expected,
        };
        let word = match text {
            Text::Bare(s) => s.as_str(),
            Text::Quoted(s) if scalar.class == Class::Enum => s.as_str(),
            _ => {
                return Err(expected(match scalar.class {
                    Class::Bool => "true or false",
                    Class::Enum => "an enumerator's name or a number",
                    Class::Int => "a number",
                }))
            }
        };
        let raw: u128 = match scalar.class {
            Class::Bool => match word {
                "true" | "1" => 1,
                "false" | "0" => 0,
                _ => return Err(expected("true or false")),
            },
            Class::Int | Class::Enum => match parse_int(word) {
                Some(n) => in_range(n, &scalar).ok_or_else(|| {
                    let (min, max) = scalar.range();
                    ValueError::OutOfRange {
                        path: path.to_owned(),
                        ty: ty(),
                        text: word.to_owned(),
                        min: min.to_string(),
                        max: max.to_string(),
                    }
                })?,
                None if scalar.class == Class::Int => return Err(expected("a number")),
                None => {
                    let data = &self.btf.type_by_id(real).map(|t| &t.data);
                    let known = data
                        .as_ref()
                        .map(|d| enumerators(self.btf, d))
                        .unwrap_or_default();
                    match known.iter().find(|(n, _)| *n == word) {
                        Some((_, v)) => *v as u128,
                        None => {
                            return Err(ValueError::UnknownEnumerator {
                                path: path.to_owned(),
                                ty: ty(),
                                text: word.to_owned(),
                                known: known.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                            })
                        }
                    }
                }
            },
        };
        write_uint(out, scalar.bit_off, scalar.bits, raw);
        Ok(())
    }
}

/// A number as written: sign, `0x`/`0o`/`0b` prefix, `_` between digits.
/// `None` if it is not one; the magnitude as (negative, u128).
fn parse_int(s: &str) -> Option<(bool, u128)> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = match rest.get(..2) {
        Some("0x" | "0X") => (16, &rest[2..]),
        Some("0o" | "0O") => (8, &rest[2..]),
        Some("0b" | "0B") => (2, &rest[2..]),
        _ => (10, rest),
    };
    if digits.is_empty() || !digits.starts_with(|c: char| c.is_digit(radix)) {
        return None;
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    // Too many digits for u128 is still a number: out of every range.
    match u128::from_str_radix(&digits, radix) {
        Ok(v) => Some((neg, v)),
        Err(_) if digits.chars().all(|c| c.is_digit(radix)) => Some((neg, u128::MAX)),
        Err(_) => None,
    }
}

/// The bits to store for a number, if it is in the scalar's range.
fn in_range((neg, mag): (bool, u128), scalar: &Scalar) -> Option<u128> {
    let (min, max) = scalar.range();
    if neg {
        if mag == 0 {
            return Some(0);
        }
        let min_mag = min.unsigned_abs();
        (mag <= min_mag).then(|| (mag as i128).wrapping_neg() as u128)
    } else {
        (mag <= max).then_some(mag)
    }
}

#[cfg(test)]
#[path = "value_tests.rs"]
mod tests;
