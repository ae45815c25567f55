//! Text to bytes: the syntax of the module's table, typed by BTF.

use super::{
    enumerators, is_char, member_bits, type_name, write_uint, Class, Scalar, ValueError, MAX_DEPTH,
};
use crate::obj::btf::{Btf, BtfKind, BtfTypeData};

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
