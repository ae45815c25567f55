//! Global variables set before load, by their BTF name (libbpf's
//! skeleton fields, aya's `set_global`, cilium/ebpf's `Variable.Set`).
//!
//! A global lives in one of the object's global-data maps (`.rodata`,
//! `.data`, `.bss`, `.rodata.*`, `.data.*`, `.bss.*`): a one-element array
//! whose value is the section, described by the section's BTF `DATASEC`.
//! Setting one writes its bytes into that map's initial data (`.bss` has
//! none: it gets zeroes first), before the map is created; `.rodata` is
//! frozen after it is written, as always. Externs (`.kconfig`, `.ksyms`)
//! are the loader's to fill and are refused.

use super::btf::value::{self, ValueError};
use super::btf::{Btf, BtfKind, BtfTypeData};
use super::externs::{KCONFIG_SECTION, KSYMS_SECTION};
use super::{MapOrigin, ObjectSpec};

/// A global variable the object declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalVar {
    /// Its name.
    pub name: String,
    /// The global-data map (and section) it lives in: `.rodata`, `.bss`, ...
    pub map: String,
    /// Its byte offset in the map's value.
    pub offset: u32,
    /// Its size in bytes.
    pub size: u32,
    /// Its type (the VAR's type) in the object's BTF.
    pub type_id: u32,
    /// Its type as C spells it (`int`, `char[16]`, `struct cfg`).
    pub type_name: String,
}

/// A value for a global: text typed by the variable's BTF type (see
/// [`value::encode`] for the syntax), or bytes from a Rust value
/// ([`GlobalType`]) checked against it.
#[derive(Debug, Clone, PartialEq)]
pub enum GlobalValue {
    /// Text such as `42`, `MODE_FAST`, `"eth0"`, `{a=1, b=2}`.
    Text(String),
    /// A Rust value's bytes, what kind of value it is, and its type's name.
    Typed {
        /// Its little-endian bytes.
        bytes: Vec<u8>,
        /// What kind of BTF type it may set.
        kind: RustKind,
        /// The Rust type, for messages (`u32`).
        rust_type: &'static str,
    },
}

/// The kinds of Rust value [`GlobalType`] knows, each matched against the
/// variable's BTF kind (sizes must be equal too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RustKind {
    /// An integer: sets an integer or enum (any signedness: the bits are the value's).
    Int,
    /// A `bool`: sets a `bool` or a one-byte integer.
    Bool,
    /// A float: sets a float.
    Float,
    /// Raw bytes (`[u8; N]`): set any type of that size.
    Bytes,
}

/// A Rust type a global can be set from, checked against the variable's
/// BTF type when the object is loaded.
pub trait GlobalType {
    /// The value's bytes and kind.
    fn global_value(&self) -> GlobalValue;
}

macro_rules! global_type {
    ($kind:ident: $($t:ty),*) => {
        $(impl GlobalType for $t {
            fn global_value(&self) -> GlobalValue {
                GlobalValue::Typed {
                    bytes: self.to_le_bytes().to_vec(),
                    kind: RustKind::$kind,
                    rust_type: stringify!($t),
                }
            }
        })*
    };
}

global_type!(Int: u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);
global_type!(Float: f32, f64);

impl GlobalType for bool {
    fn global_value(&self) -> GlobalValue {
        GlobalValue::Typed {
            bytes: vec![u8::from(*self)],
            kind: RustKind::Bool,
            rust_type: "bool",
        }
    }
}

impl<const N: usize> GlobalType for [u8; N] {
    fn global_value(&self) -> GlobalValue {
        GlobalValue::Typed {
            bytes: self.to_vec(),
            kind: RustKind::Bytes,
            rust_type: "[u8; N]",
        }
    }
}

/// Why a global cannot be set.
#[derive(Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GlobalError {
    /// No global of that name.
    #[error("global variable {name}: the object has no such global (its globals: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The object's settable globals, comma-separated.
        known: String,
    },
    /// An extern, which the loader fills.
    #[error("global variable {name}: it is an extern in {section}, filled by the loader from the kernel; it cannot be set")]
    Extern {
        /// Its name.
        name: String,
        /// `.kconfig` or `.ksyms`.
        section: String,
    },
    /// An object without BTF: its globals have no names or types.
    #[error(
        "global variable {name}: the object has no BTF, so its globals cannot be found by name"
    )]
    NoBtf {
        /// The name asked for.
        name: String,
    },
    /// Text that does not fit the variable's type.
    #[error("global variable {0}")]
    Value(#[from] ValueError),
    /// A Rust value of another size or kind than the variable.
    #[error(
        "global variable {name} ({ty}, {}): a Rust {rust_type} ({}) does not fit it",
        bytes(*size as usize),
        bytes(*len)
    )]
    Mismatch {
        /// Its name.
        name: String,
        /// Its type.
        ty: String,
        /// Its size.
        size: u32,
        /// The Rust type given.
        rust_type: &'static str,
        /// The Rust value's size.
        len: usize,
    },
}

debug_is_display!(GlobalError);

/// "1 byte", "4 bytes".
fn bytes(n: usize) -> String {
    format!("{n} byte{}", if n == 1 { "" } else { "s" })
}

impl ObjectSpec {
    /// The globals that can be set: every variable of the global-data
    /// maps' DATASECs (externs excluded), in map order.
    pub fn globals(&self) -> Vec<GlobalVar> {
        let Some(btf) = &self.btf else {
            return Vec::new();
        };
        self.maps
            .iter()
            .filter(|m| m.origin == MapOrigin::GlobalData && !is_extern_section(&m.section))
            .flat_map(|m| datasec_vars(btf, m.btf_value_type_id, &m.name))
            .collect()
    }

    /// A global by name.
    pub fn global(&self, name: &str) -> Result<GlobalVar, GlobalError> {
        if let Some(e) = self.externs.iter().find(|e| e.name == name) {
            return Err(GlobalError::Extern {
                name: name.to_owned(),
                section: match e.kind {
                    super::ExternKind::Kconfig { .. } => KCONFIG_SECTION,
                    _ => KSYMS_SECTION,
                }
                .to_owned(),
            });
        }
        let Some(btf) = &self.btf else {
            return Err(GlobalError::NoBtf {
                name: name.to_owned(),
            });
        };
        let all = self.globals();
        if let Some(v) = all.iter().find(|v| v.name == name) {
            return Ok(v.clone());
        }
        // An extern the spec does not list (a .kconfig/.ksyms VAR).
        for m in self.maps.iter().filter(|m| is_extern_section(&m.section)) {
            if datasec_vars(btf, m.btf_value_type_id, &m.name).any(|v| v.name == name) {
                return Err(GlobalError::Extern {
                    name: name.to_owned(),
                    section: m.section.clone(),
                });
            }
        }
        Err(GlobalError::Unknown {
            name: name.to_owned(),
            known: if all.is_empty() {
                "none".to_owned()
            } else {
                all.iter()
                    .map(|v| format!("{} ({} in {})", v.name, v.type_name, v.map))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }

    /// The bytes a value gives a global, checked against its type: what
    /// [`set_global`](ObjectSpec::set_global) would write.
    pub fn encode_global(
        &self,
        name: &str,
        value: &GlobalValue,
    ) -> Result<(GlobalVar, Vec<u8>), GlobalError> {
        let var = self.global(name)?;
        let btf = self.btf.as_ref().ok_or_else(|| GlobalError::NoBtf {
            name: name.to_owned(),
        })?;
        let bytes = match value {
            GlobalValue::Text(text) => value::encode(btf, var.type_id, text, name)?,
            GlobalValue::Typed {
                bytes,
                kind,
                rust_type,
            } => {
                if bytes.len() != var.size as usize || !kind_fits(btf, var.type_id, *kind) {
                    return Err(GlobalError::Mismatch {
                        name: name.to_owned(),
                        ty: var.type_name.clone(),
                        size: var.size,
                        rust_type,
                        len: bytes.len(),
                    });
                }
                bytes.clone()
            }
        };
        Ok((var, bytes))
    }

    /// Sets a global's initial value: the next load creates its map with it.
    pub fn set_global(&mut self, name: &str, value: &GlobalValue) -> Result<(), GlobalError> {
        let (var, bytes) = self.encode_global(name, value)?;
        // `globals()` found the map, so it is there.
        if let Some(m) = self.maps.iter_mut().find(|m| m.name == var.map) {
            let data = m.data.get_or_insert_with(|| vec![0; m.value_size as usize]);
            let start = var.offset as usize;
            if let Some(slot) = data.get_mut(start..start + bytes.len()) {
                slot.copy_from_slice(&bytes);
            }
        }
        Ok(())
    }
}

fn is_extern_section(section: &str) -> bool {
    section == KCONFIG_SECTION || section == KSYMS_SECTION
}

/// The VARs of a DATASEC, with their places.
fn datasec_vars<'b>(
    btf: &'b Btf,
    datasec: u32,
    map: &'b str,
) -> impl Iterator<Item = GlobalVar> + 'b {
    let vars = match btf.type_by_id(datasec).map(|t| (t.kind, &t.data)) {
        Ok((BtfKind::Datasec, BtfTypeData::Datasec(vars))) if datasec != 0 => vars.as_slice(),
        _ => &[],
    };
    vars.iter().filter_map(move |v| {
        let var = btf.type_by_id(v.type_id).ok()?;
        if var.kind != BtfKind::Var {
            return None;
        }
        Some(GlobalVar {
            name: btf.string(var.name_off).ok()?.to_owned(),
            map: map.to_owned(),
            offset: v.offset,
            size: v.size,
            type_id: var.size_or_type,
            type_name: value::type_name(btf, var.size_or_type),
        })
    })
}

/// Whether a Rust value of `kind` may set a variable of BTF type `id`.
fn kind_fits(btf: &Btf, id: u32, kind: RustKind) -> bool {
    let Ok(t) = btf.strip_modifiers(id).and_then(|id| btf.type_by_id(id)) else {
        return false;
    };
    let is_bool = matches!(t.data, BtfTypeData::Int { encoding, .. } if encoding & 4 != 0);
    match kind {
        RustKind::Bytes => true,
        RustKind::Int => {
            matches!(t.kind, BtfKind::Enum | BtfKind::Enum64)
                || (t.kind == BtfKind::Int && !is_bool)
        }
        RustKind::Bool => t.kind == BtfKind::Int,
        RustKind::Float => t.kind == BtfKind::Float,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ObjectSpec {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs/obj/globals.bpf.o");
        ObjectSpec::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    fn text(s: &str) -> GlobalValue {
        GlobalValue::Text(s.into())
    }

    #[test]
    fn globals_are_listed_with_their_maps_and_types() {
        let spec = spec();
        let listed: Vec<(String, String, String)> = spec
            .globals()
            .into_iter()
            .map(|g| (g.name, g.type_name, g.map))
            .collect();
        for want in [
            ("base", "__s32", ".rodata"),
            ("enabled", "bool", ".rodata"),
            ("mode", "enum mode", ".rodata"),
            ("tag", "char[8]", ".rodata"),
            ("pair", "struct pair", ".rodata"),
            ("weights", "__u32[3]", ".rodata"),
            ("data_add", "__u32", ".data"),
            ("bss_add", "__u32", ".bss"),
        ] {
            let want = (want.0.to_owned(), want.1.to_owned(), want.2.to_owned());
            assert!(listed.contains(&want), "{want:?} in {listed:?}");
        }
        let err = spec.global("nope").unwrap_err().to_string();
        assert!(
            err.starts_with("global variable nope: the object has no such global (its globals: "),
            "{err}"
        );
        assert!(err.contains("base (__s32 in .rodata)"), "{err}");
    }

    #[test]
    fn text_and_rust_values_are_written_into_the_maps_data() {
        let mut spec = spec();
        assert!(spec.map(".bss").unwrap().data.is_none());
        spec.set_global("bss_add", &text("7")).unwrap();
        spec.set_global("mode", &text("MODE_MUL")).unwrap();
        spec.set_global("pair", &text("{a=4, b=5}")).unwrap();
        spec.set_global("tag", &text("xyz")).unwrap();
        spec.set_global("data_add", &20u32.global_value()).unwrap();
        spec.set_global("enabled", &false.global_value()).unwrap();
        let read = |name: &str| {
            let g = spec.global(name).unwrap();
            let data = spec.map(&g.map).unwrap().data.clone().unwrap();
            let btf = spec.btf.as_ref().unwrap();
            let bytes = &data[g.offset as usize..(g.offset + g.size) as usize];
            value::decode(btf, g.type_id, bytes, name)
                .unwrap()
                .to_json()
        };
        assert_eq!(read("bss_add"), "7");
        assert_eq!(
            spec.map(".bss").unwrap().data.as_ref().unwrap().len() as u32,
            spec.map(".bss").unwrap().value_size
        );
        assert_eq!(read("mode"), "\"MODE_MUL\"");
        assert_eq!(read("pair"), r#"{"a":4,"b":5}"#);
        assert_eq!(read("tag"), "\"xyz\"");
        assert_eq!(read("data_add"), "20");
        assert_eq!(read("enabled"), "false");
        assert_eq!(read("base"), "1", "what was not set keeps its value");
    }

    #[test]
    fn bad_values_name_the_variable_and_its_type() {
        let mut spec = spec();
        let err = |spec: &mut ObjectSpec, name: &str, v: GlobalValue| {
            spec.set_global(name, &v).unwrap_err().to_string()
        };
        assert_eq!(
            err(&mut spec, "small", text("256")),
            "global variable small (__u8): 256 is out of range (0 to 255)"
        );
        assert_eq!(
            err(&mut spec, "mode", text("MODE_FAST")),
            "global variable mode (enum mode): 'MODE_FAST' is not one of its enumerators (MODE_OFF, MODE_ADD, MODE_MUL)"
        );
        assert_eq!(
            err(&mut spec, "tag", text("12345678")),
            "global variable tag (char[8]): the string is 8 bytes; it holds at most 7 and the terminating NUL"
        );
        assert_eq!(
            err(&mut spec, "base", 1u64.global_value()),
            "global variable base (__s32, 4 bytes): a Rust u64 (8 bytes) does not fit it"
        );
        assert_eq!(
            err(&mut spec, "enabled", 1u8.global_value()),
            "global variable enabled (bool, 1 byte): a Rust u8 (1 byte) does not fit it"
        );
        assert_eq!(
            err(&mut spec, "base", 1.0f32.global_value()),
            "global variable base (__s32, 4 bytes): a Rust f32 (4 bytes) does not fit it"
        );
        spec.set_global("base", &(-3i32).global_value()).unwrap();
        spec.set_global("small", &[9u8].global_value()).unwrap();
    }

    /// A whole global-data map decodes by its DATASEC, as `map dump` will show it.
    #[test]
    fn a_data_map_decodes_to_json_by_its_datasec() {
        let spec = spec();
        let btf = spec.btf.as_ref().unwrap();
        let rodata = spec.map(".rodata").unwrap();
        let data = rodata.data.as_ref().unwrap();
        let json = value::decode(btf, rodata.btf_value_type_id, data, ".rodata")
            .unwrap()
            .to_json();
        assert_eq!(
            json,
            r#"{"base":1,"enabled":true,"mode":"MODE_ADD","tag":"abc","pair":{"a":2,"b":3},"step":1,"weights":[0,0,0],"small":0,"target_tid":0}"#
        );
    }

    #[test]
    fn externs_are_refused() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs/obj/kconfig.bpf.o");
        let mut spec = ObjectSpec::parse(&std::fs::read(path).unwrap()).unwrap();
        let name = spec.externs[0].name.clone();
        let err = spec.set_global(&name, &text("1")).unwrap_err().to_string();
        assert!(err.contains("it is an extern in .kconfig"), "{err}");
    }
}
