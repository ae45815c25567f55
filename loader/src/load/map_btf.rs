//! A map's key and value types, as the kernel holds them: `bpf_map_info`'s
//! BTF id and key/value type ids, the BTF object's bytes read back from the
//! kernel and parsed, and the [value codec](crate::obj::btf::value) on top:
//! bytes to a typed [`Value`] (JSON), text to bytes checked against the type.
//!
//! Works on any map with BTF, not only rawbpf's: whoever created it handed
//! the kernel the types. A program's own BTF is standalone; a map whose
//! types live in the kernel's (split) BTF is refused with
//! [`MapBtfError::KernelBtf`], and a caller falls back to bytes.

use super::map::Map;
use crate::obj::btf::value::{self, Value, ValueError};
use crate::obj::btf::{Btf, BtfError, BtfKind, BtfTypeData, BtfVarSecinfo};
use crate::sys;
use crate::uapi::MapType;
use std::io;
use std::os::fd::AsFd;

/// What went wrong reading a map's types. Each names the map and the BTF.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum MapBtfError {
    /// The kernel did not hand out the map's info or its BTF.
    #[error("map {map}: reading its BTF{}: {source}", btf_id.map(|id| format!(" (id {id})")).unwrap_or_default())]
    Read {
        /// The map.
        map: String,
        /// The BTF object, once known.
        btf_id: Option<u32>,
        /// errno.
        source: io::Error,
    },
    /// The BTF does not parse.
    #[error("map {map}: its BTF (id {btf_id}) does not parse: {source}")]
    Parse {
        /// The map.
        map: String,
        /// The BTF object.
        btf_id: u32,
        /// What is wrong.
        source: BtfError,
    },
    /// The BTF is the kernel's or a module's (split BTF, types numbered
    /// after vmlinux's): not read here.
    #[error("map {map}: its types are in the kernel's BTF (id {btf_id}), which rawbpf does not decode values of")]
    KernelBtf {
        /// The map.
        map: String,
        /// The BTF object.
        btf_id: u32,
    },
}

debug_is_display!(MapBtfError);

/// A map's BTF: the types its keys and values have.
#[derive(Debug, Clone)]
pub struct MapBtf {
    btf: Btf,
    btf_id: u32,
    key: u32,
    value: u32,
}

impl MapBtf {
    /// The parsed BTF object.
    pub fn btf(&self) -> &Btf {
        &self.btf
    }

    /// The BTF object's kernel id.
    pub fn btf_id(&self) -> u32 {
        self.btf_id
    }

    /// The key's type id, if the map has one (global-data maps and maps
    /// whose keys the kernel fixes have none).
    pub fn key_type(&self) -> Option<u32> {
        (self.key != 0).then_some(self.key)
    }

    /// The value's type id, if the map has one.
    pub fn value_type(&self) -> Option<u32> {
        (self.value != 0).then_some(self.value)
    }

    /// The key type as C spells it (`__u32`, `struct flow`).
    pub fn key_type_name(&self) -> Option<String> {
        self.key_type().map(|id| value::type_name(&self.btf, id))
    }

    /// The value type as C spells it; a section of globals as `section
    /// .data`.
    pub fn value_type_name(&self) -> Option<String> {
        let id = self.value_type()?;
        if self.value_is_section() {
            let name = self.btf.type_name(id).unwrap_or("");
            return Some(format!("section {name}"));
        }
        Some(value::type_name(&self.btf, id))
    }

    /// A key's bytes as a value of the key type (`None`: no key type).
    pub fn decode_key(&self, bytes: &[u8]) -> Option<Result<Value, ValueError>> {
        self.key_type()
            .map(|id| value::decode(&self.btf, id, bytes, "key"))
    }

    /// One value's bytes (one CPU's, for a per-CPU map) as a value of the
    /// value type (`None`: no value type).
    pub fn decode_value(&self, bytes: &[u8]) -> Option<Result<Value, ValueError>> {
        self.value_type()
            .map(|id| value::decode(&self.btf, id, bytes, "value"))
    }

    /// Text (see [`value::encode`]) as a key's bytes (`None`: no key type).
    pub fn encode_key(&self, text: &str) -> Option<Result<Vec<u8>, ValueError>> {
        self.key_type()
            .map(|id| value::encode(&self.btf, id, text, "key"))
    }

    /// Text as one value's bytes (`None`: no value type). For a
    /// global-data map (its value a DATASEC), see [`MapBtf::encode_value_onto`].
    pub fn encode_value(&self, text: &str) -> Option<Result<Vec<u8>, ValueError>> {
        self.value_type()
            .map(|id| value::encode(&self.btf, id, text, "value"))
    }

    /// Whether the value is a section of global variables (`.data`,
    /// `.bss`, `.rodata`: a DATASEC).
    pub fn value_is_section(&self) -> bool {
        self.value_type()
            .and_then(|id| self.btf.type_by_id(id).ok())
            .is_some_and(|t| t.kind == BtfKind::Datasec)
    }

    /// Text as one value's bytes, written over `current` (the value the
    /// map holds now): for a section of globals, `{var=VALUE, ...}` sets
    /// the variables named and keeps the others as they are; any other
    /// type is encoded whole, as [`MapBtf::encode_value`] does.
    pub fn encode_value_onto(
        &self,
        text: &str,
        current: &[u8],
    ) -> Option<Result<Vec<u8>, ValueError>> {
        let id = self.value_type()?;
        let t = self.btf.type_by_id(id).ok()?;
        let BtfTypeData::Datasec(vars) = &t.data else {
            return self.encode_value(text);
        };
        Some(self.patch_section(text, vars, current))
    }

    fn patch_section(
        &self,
        text: &str,
        vars: &[BtfVarSecinfo],
        current: &[u8],
    ) -> Result<Vec<u8>, ValueError> {
        let mut out = current.to_vec();
        let name_of = |v: &BtfVarSecinfo| self.btf.type_name(v.type_id).unwrap_or("").to_owned();
        for (name, value_text) in record_fields(text, "value")? {
            let Some(var) = vars.iter().find(|v| name_of(v) == name) else {
                return Err(ValueError::UnknownField {
                    path: "value".into(),
                    ty: self.value_type_name().unwrap_or_default(),
                    field: name,
                    known: vars.iter().map(name_of).collect::<Vec<_>>().join(", "),
                });
            };
            let path = format!("value.{name}");
            let bytes = value::encode(&self.btf, var.type_id, &value_text, &path)?;
            let start = var.offset as usize;
            let end = (start + bytes.len()).min(out.len());
            if start < end {
                out[start..end].copy_from_slice(&bytes[..end - start]);
            }
        }
        Ok(out)
    }
}

/// The fields of a `{a=1, b="x, y", c=[1, 2]}` or JSON `{"a": 1}` record
/// at the top level: (name, the value's text), split at commas outside
/// quotes and brackets.
fn record_fields(text: &str, path: &str) -> Result<Vec<(String, String)>, ValueError> {
    let syntax = |at, reason| ValueError::Syntax {
        path: path.to_owned(),
        text: text.to_owned(),
        at,
        reason,
    };
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| syntax(0, "expected {variable=value, ...}"))?;
    let base = text.find('{').unwrap_or(0) + 1;
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0i32, false, false, 0);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push((start, &inner[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push((start, &inner[start..]));
    let mut fields = Vec::new();
    for (at, part) in parts {
        if part.trim().is_empty() {
            continue;
        }
        let (name, value) = part
            .split_once('=')
            .filter(|(n, _)| !n.contains('"') || n.trim().ends_with('"'))
            .or_else(|| part.split_once(':'))
            .ok_or_else(|| syntax(base + at, "expected variable=value"))?;
        let name = name.trim().trim_matches('"').to_owned();
        if name.is_empty() {
            return Err(syntax(base + at, "a variable's name is empty"));
        }
        fields.push((name, value.trim().to_owned()));
    }
    Ok(fields)
}

impl Map {
    /// The map's BTF, read from the kernel (`btf_id` of `bpf_map_info`,
    /// `BPF_BTF_GET_FD_BY_ID`, the object's bytes); `Ok(None)` for a map
    /// created without BTF types.
    pub fn btf(&self) -> Result<Option<MapBtf>, MapBtfError> {
        let read = |btf_id, source| MapBtfError::Read {
            map: self.name().to_owned(),
            btf_id,
            source,
        };
        let info = sys::map_info_full(self.fd()).map_err(|e| read(None, e))?;
        if info.btf_id == 0 || (info.btf_key_type_id == 0 && info.btf_value_type_id == 0) {
            return Ok(None);
        }
        let id = info.btf_id;
        let fd = sys::btf_get_fd_by_id(id).map_err(|e| read(Some(id), e))?;
        let (data, kernel) =
            sys::btf_data(std::os::fd::AsFd::as_fd(&fd)).map_err(|e| read(Some(id), e))?;
        if kernel {
            return Err(MapBtfError::KernelBtf {
                map: self.name().to_owned(),
                btf_id: id,
            });
        }
        let btf = Btf::parse(&data).map_err(|source| MapBtfError::Parse {
            map: self.name().to_owned(),
            btf_id: id,
            source,
        })?;
        Ok(Some(MapBtf {
            btf,
            btf_id: id,
            key: info.btf_key_type_id,
            value: info.btf_value_type_id,
        }))
    }

    /// The BTF of the object the map came from: the map's own, or, for a
    /// map created without BTF types (ring buffers, perf event arrays: the
    /// kernel keeps no BTF for them), that of a program using the map.
    /// `Ok(None)` if neither has one. Record types of event streams are
    /// found here (`rawbpf events --type`).
    pub fn object_btf(&self) -> Result<Option<Btf>, MapBtfError> {
        if let Some(own) = self.btf()? {
            return Ok(Some(own.btf));
        }
        let read = |btf_id, source| MapBtfError::Read {
            map: self.name().to_owned(),
            btf_id,
            source,
        };
        let mut id = 0;
        while let Some(next) = sys::prog_next_id(id).map_err(|e| read(None, e))? {
            id = next;
            let Ok(prog) = sys::prog_get_fd_by_id(id) else {
                continue; // gone meanwhile
            };
            let uses = sys::prog_map_ids(prog.as_fd()).is_ok_and(|ids| ids.contains(&self.id()));
            let btf_id = match sys::prog_info(prog.as_fd()) {
                Ok(info) if uses && info.btf_id != 0 => info.btf_id,
                _ => continue,
            };
            let fd = sys::btf_get_fd_by_id(btf_id).map_err(|e| read(Some(btf_id), e))?;
            let (data, _) = sys::btf_data(fd.as_fd()).map_err(|e| read(Some(btf_id), e))?;
            let btf = Btf::parse(&data).map_err(|source| MapBtfError::Parse {
                map: self.name().to_owned(),
                btf_id,
                source,
            })?;
            return Ok(Some(btf));
        }
        Ok(None)
    }

    /// Whether a value holds one slot per possible CPU.
    pub fn is_per_cpu(&self) -> bool {
        is_per_cpu(self.map_type())
    }

    /// The bytes of one slot of a per-CPU value: `value_size` rounded up to 8.
    fn cpu_stride(&self) -> usize {
        (self.value_size() as usize).next_multiple_of(8)
    }

    /// A value as [`Map::lookup`] returns it, split per CPU: each CPU's
    /// `value_size` bytes, in CPU order; for other maps, the value alone.
    pub fn per_cpu<'a>(&self, value: &'a [u8]) -> Vec<&'a [u8]> {
        if !self.is_per_cpu() {
            return vec![value];
        }
        let size = self.value_size() as usize;
        value
            .chunks(self.cpu_stride())
            .map(|c| &c[..size.min(c.len())])
            .collect()
    }

    /// The value [`Map::update`] takes that sets every CPU's slot of a
    /// per-CPU map to `one` (`value_size` bytes); for other maps, `one`.
    pub fn same_on_every_cpu(&self, one: &[u8]) -> Vec<u8> {
        if !self.is_per_cpu() {
            return one.to_vec();
        }
        let stride = self.cpu_stride();
        let mut out = vec![0u8; self.value_len()];
        for slot in out.chunks_mut(stride) {
            let n = one.len().min(slot.len());
            slot[..n].copy_from_slice(&one[..n]);
        }
        out
    }

    /// Writes one element with `BPF_MAP_UPDATE_ELEM` flags (`BPF_ANY` 0,
    /// `BPF_NOEXIST` 1, `BPF_EXIST` 2): one call, never a partial write.
    pub fn update_with_flags(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), super::LoadError> {
        sys::map_update(self.fd(), self.elem_sizes(), key, value, flags).map_err(|source| {
            super::LoadError::MapUpdate {
                map: self.name().to_owned(),
                what: format!("key {}", super::hex(key)),
                source,
            }
        })
    }
}

/// Map types whose values hold one slot per possible CPU.
pub(super) fn is_per_cpu(t: MapType) -> bool {
    matches!(
        t,
        MapType::PERCPU_HASH
            | MapType::PERCPU_ARRAY
            | MapType::LRU_PERCPU_HASH
            | MapType::PERCPU_CGROUP_STORAGE
    )
}

/// Map types whose values, read from user space, are ids: of a program
/// (prog arrays) or of a map (maps of maps).
pub fn value_is_prog_id(t: MapType) -> bool {
    t == MapType::PROG_ARRAY
}

/// Map types whose values, read from user space, are map ids.
pub fn value_is_map_id(t: MapType) -> bool {
    matches!(t, MapType::ARRAY_OF_MAPS | MapType::HASH_OF_MAPS)
}

#[cfg(test)]
mod tests {
    use super::record_fields;

    #[test]
    fn records_split_at_top_level_commas() {
        let f = record_fields(r#"{a=1, b="x, y", c=[1, 2], "d": {e=3, f=4}}"#, "value").unwrap();
        let got: Vec<(&str, &str)> = f.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("a", "1"),
                ("b", "\"x, y\""),
                ("c", "[1, 2]"),
                ("d", "{e=3, f=4}")
            ]
        );
        assert!(record_fields("{}", "value").unwrap().is_empty());
        let e = record_fields("a=1", "value").unwrap_err().to_string();
        assert!(e.contains("expected {variable=value, ...}"), "{e}");
        let e = record_fields("{a}", "value").unwrap_err().to_string();
        assert!(e.contains("expected variable=value"), "{e}");
    }
}
