//! Target files: [`Features`] written as JSON by `rawbpf probe --json` on
//! one machine and read back by `rawbpf check OBJ --target FILE` on another,
//! with the kernel facts externs need ([`TargetExterns`]).
//!
//! The document is one object: `format` ([`FORMAT`]), `rawbpf` (the
//! version that wrote it), `kernel`, `arch`, then `prog_types`,
//! `map_types` (name → true/false/null for "not probed"), `btf_kinds`
//! (with `FUNC_GLOBAL`), `features`, `attach_types` (program type →
//! attach type → bool), `link_kinds`, `helpers` and `helpers_unavailable`
//! (program type → helper ids probed and found, or found missing), and
//! `externs` (null, or `kconfig`, `linux`, `kallsyms`, `kallsyms_hidden`).

use super::json::{JsonError, Value};
use super::{Feature, Features, LinkKind, PROBED_BTF_KINDS};
use crate::obj::btf::BtfKind;
use crate::uapi::{AttachType, MapType, ProgramType};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

/// The format tag of target files this rawbpf writes and reads.
pub const FORMAT: &str = "rawbpf-target/1";

/// The rawbpf version that writes target files.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `/proc/kallsyms` symbol types kept in a target file: data (initialised,
/// zeroed, read-only), absolute (x86-64 per-CPU variables before 6.15) and
/// weak objects. Typeless `__ksym` externs name variables
/// (`bpf_prog_active`, `runqueues`, `linux_banner`); functions (half of
/// kallsyms, T/t) and module symbols are left out to keep the file small.
pub const KALLSYMS_TYPES: &str = "dDbBrRAvV";

/// What externs need of a kernel, as a target file carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetExterns {
    /// Every `CONFIG_*` option the kernel's config sets, with its value as
    /// written (`y`, `m`, `250`, `"quoted"`); `None`: the config could not be read.
    pub kconfig: Option<BTreeMap<String, String>>,
    /// `LINUX_KERNEL_VERSION`, `LINUX_HAS_BPF_COOKIE`, `LINUX_HAS_SYSCALL_WRAPPER`.
    pub linux: BTreeMap<String, u64>,
    /// vmlinux symbols of the [`KALLSYMS_TYPES`]; `None`: not readable.
    pub kallsyms: Option<BTreeSet<String>>,
    /// Every kallsyms address read 0 (hidden from the user that probed).
    pub kallsyms_hidden: bool,
    /// Functions vmlinux BTF names that kallsyms has no function of that
    /// name for (the compiler inlined them, or kept only a renamed clone
    /// such as `f.isra.0` or `f.part.0`): the kernel cannot attach an
    /// fentry, fexit, fmod_ret or LSM program there (ENOENT). `None`: not
    /// known (no BTF or kallsyms where the file was made).
    pub btf_funcs_without_address: Option<BTreeSet<String>>,
}

impl TargetExterns {
    /// The kernel config as text (`CONFIG_X=value` lines), for
    /// [`kconfig::fill`](crate::kconfig::fill).
    pub fn config_text(&self) -> Option<String> {
        self.kconfig.as_ref().map(|c| {
            c.iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect::<String>()
        })
    }
}

/// `CONFIG_*` options set in a kernel config's text.
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// vmlinux symbol names of [`KALLSYMS_TYPES`] in `/proc/kallsyms` text,
/// and whether every address (of all symbols) read 0.
pub fn kallsyms_names(text: impl BufRead) -> (BTreeSet<String>, bool) {
    let mut names = BTreeSet::new();
    let mut all_zero = true;
    for line in text.lines().map_while(Result::ok) {
        let mut parts = line.split_ascii_whitespace();
        let (Some(addr), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        all_zero &= addr.bytes().all(|b| b == b'0');
        if parts.next().is_none() && kind.len() == 1 && KALLSYMS_TYPES.contains(kind) {
            names.insert(name.to_owned());
        }
    }
    (names, all_zero)
}

/// Why a target file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Not JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// JSON without a `format` tag.
    #[error("not a rawbpf target file (no \"format\" field): write one with `rawbpf probe --json --full` on the target machine")]
    NoFormat,
    /// Another format version.
    #[error("target file format {found:?} (rawbpf {by}); this rawbpf ({VERSION}) reads {FORMAT:?}: run `rawbpf probe --json --full` on the target again with this version")]
    Format {
        /// The file's format tag.
        found: String,
        /// The rawbpf version that wrote it.
        by: String,
    },
    /// Another architecture.
    #[error("the target's architecture is {found}; this rawbpf checks objects for {expected} (use a rawbpf built for {found})")]
    Arch {
        /// The file's architecture.
        found: String,
        /// This build's.
        expected: String,
    },
    /// A field missing or of the wrong kind.
    #[error("field {field}: {reason}")]
    Field {
        /// The field, as a path (`helpers.xdp`).
        field: String,
        /// What is wrong.
        reason: String,
    },
}

fn field(field: impl Into<String>, reason: impl Into<String>) -> TargetError {
    TargetError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

fn obj(fields: impl IntoIterator<Item = (impl Into<String>, Value)>) -> Value {
    Value::Obj(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

fn opt_bool(v: Option<bool>) -> Value {
    v.map_or(Value::Null, Value::Bool)
}

impl Features {
    /// The target file: a JSON document [`Features::from_json`] reads back.
    pub fn to_json(&self) -> String {
        let mut doc = vec![
            ("format", Value::Str(FORMAT.into())),
            ("rawbpf", Value::Str(VERSION.into())),
            ("kernel", Value::Str(self.kernel.clone())),
            ("arch", Value::Str(self.arch.clone())),
            (
                "prog_types",
                obj(self
                    .prog_types
                    .iter()
                    .map(|(t, v)| (t.to_string(), opt_bool(*v)))),
            ),
            (
                "map_types",
                obj(self
                    .map_types
                    .iter()
                    .map(|(t, v)| (t.to_string(), opt_bool(*v)))),
            ),
            (
                "btf_kinds",
                obj(self
                    .btf_kinds
                    .iter()
                    .map(|(k, v)| (k.name().to_owned(), Value::Bool(*v)))
                    .chain([("FUNC_GLOBAL".to_owned(), Value::Bool(self.btf_global_func))])),
            ),
            (
                "features",
                obj(self
                    .features
                    .iter()
                    .map(|(k, v)| (k.name(), Value::Bool(*v)))),
            ),
        ];
        let mut attach: BTreeMap<ProgramType, Vec<(String, Value)>> = BTreeMap::new();
        for ((t, a), ok) in &self.attach_types {
            attach
                .entry(*t)
                .or_default()
                .push((a.to_string(), Value::Bool(*ok)));
        }
        doc.push((
            "attach_types",
            obj(attach
                .into_iter()
                .map(|(t, v)| (t.to_string(), Value::Obj(v)))),
        ));
        doc.push((
            "link_kinds",
            obj(self
                .link_kinds
                .iter()
                .map(|(k, v)| (k.name(), Value::Bool(*v)))),
        ));
        let helpers = |want: bool| {
            obj(self.helpers.iter().map(|(t, ids)| {
                let list = ids
                    .iter()
                    .filter(|(_, ok)| **ok == want)
                    .map(|(id, _)| Value::Num((*id).into()))
                    .collect();
                (t.to_string(), Value::Arr(list))
            }))
        };
        doc.push(("helpers", helpers(true)));
        doc.push(("helpers_unavailable", helpers(false)));
        doc.push((
            "externs",
            self.externs.as_ref().map_or(Value::Null, externs_json),
        ));
        format!("{}\n", obj(doc))
    }

    /// Reads a target file written by [`Features::to_json`]: it must carry
    /// this rawbpf's [`FORMAT`] and be for the architecture rawbpf was
    /// built for ([`machine`](super::machine)).
    pub fn from_json(text: &str) -> Result<Features, TargetError> {
        let doc = Value::parse(text)?;
        if !matches!(doc, Value::Obj(_)) {
            return Err(field("(document)", "not a JSON object"));
        }
        let format = doc.get("format").ok_or(TargetError::NoFormat)?;
        if format.as_str() != Some(FORMAT) {
            return Err(TargetError::Format {
                found: format
                    .as_str()
                    .map_or_else(|| format.to_string(), str::to_owned),
                by: doc
                    .get("rawbpf")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown version")
                    .to_owned(),
            });
        }
        let arch = string(&doc, "arch")?;
        if arch != super::machine() {
            return Err(TargetError::Arch {
                found: arch,
                expected: super::machine(),
            });
        }
        let mut f = Features {
            kernel: string(&doc, "kernel")?,
            arch,
            ..Features::default()
        };
        for (name, v) in entries(&doc, "prog_types")? {
            f.prog_types.insert(
                named(name, ProgramType::ALL, "prog_types")?,
                tri(v, "prog_types", name)?,
            );
        }
        for (name, v) in entries(&doc, "map_types")? {
            f.map_types.insert(
                named(name, MapType::ALL, "map_types")?,
                tri(v, "map_types", name)?,
            );
        }
        for (name, v) in entries(&doc, "btf_kinds")? {
            let ok = boolean(v, "btf_kinds", name)?;
            if name == "FUNC_GLOBAL" {
                f.btf_global_func = ok;
            } else {
                let kind = btf_kind(name)
                    .ok_or_else(|| field("btf_kinds", format!("unknown kind {name}")))?;
                f.btf_kinds.insert(kind, ok);
            }
        }
        for (name, v) in entries(&doc, "features")? {
            let feat = Feature::ALL
                .into_iter()
                .find(|x| x.name() == name)
                .ok_or_else(|| field("features", format!("unknown feature {name}")))?;
            f.features.insert(feat, boolean(v, "features", name)?);
        }
        read_attach_and_helpers(&doc, &mut f)?;
        f.externs = match doc.get("externs") {
            None | Some(Value::Null) => None,
            Some(v) => Some(externs_from(v)?),
        };
        Ok(f)
    }
}

/// `attach_types`, `link_kinds`, `helpers` and `helpers_unavailable`.
fn read_attach_and_helpers(doc: &Value, f: &mut Features) -> Result<(), TargetError> {
    for (tname, v) in entries(doc, "attach_types")? {
        let t = named(tname, ProgramType::ALL, "attach_types")?;
        let Value::Obj(list) = v else {
            return Err(field(format!("attach_types.{tname}"), "not an object"));
        };
        for (aname, ok) in list {
            let a = named(aname, AttachType::ALL, "attach_types")?;
            f.attach_types
                .insert((t, a), boolean(ok, "attach_types", aname)?);
        }
    }
    for (name, v) in entries(doc, "link_kinds")? {
        let k = LinkKind::from_name(name)
            .ok_or_else(|| field("link_kinds", format!("unknown link kind {name}")))?;
        f.link_kinds.insert(k, boolean(v, "link_kinds", name)?);
    }
    for (key, want) in [("helpers", true), ("helpers_unavailable", false)] {
        for (tname, v) in entries(doc, key)? {
            let t = named(tname, ProgramType::ALL, key)?;
            let ids = f.helpers.entry(t).or_default();
            for id in numbers(v, &format!("{key}.{tname}"))? {
                ids.insert(id, want);
            }
        }
    }
    Ok(())
}

fn externs_json(e: &TargetExterns) -> Value {
    obj([
        (
            "kconfig",
            e.kconfig.as_ref().map_or(Value::Null, |c| {
                obj(c.iter().map(|(k, v)| (k.clone(), Value::Str(v.clone()))))
            }),
        ),
        (
            "linux",
            obj(e.linux.iter().map(|(k, v)| (k.clone(), Value::Num(*v)))),
        ),
        (
            "kallsyms",
            e.kallsyms.as_ref().map_or(Value::Null, |n| {
                Value::Arr(n.iter().map(|s| Value::Str(s.clone())).collect())
            }),
        ),
        ("kallsyms_hidden", Value::Bool(e.kallsyms_hidden)),
        (
            "btf_funcs_without_address",
            e.btf_funcs_without_address
                .as_ref()
                .map_or(Value::Null, |n| {
                    Value::Arr(n.iter().map(|s| Value::Str(s.clone())).collect())
                }),
        ),
    ])
}

fn externs_from(v: &Value) -> Result<TargetExterns, TargetError> {
    let mut e = TargetExterns::default();
    match v.get("kconfig") {
        None | Some(Value::Null) => {}
        Some(Value::Obj(list)) => {
            let mut c = BTreeMap::new();
            for (k, val) in list {
                let s = val
                    .as_str()
                    .ok_or_else(|| field(format!("externs.kconfig.{k}"), "not a string"))?;
                c.insert(k.clone(), s.to_owned());
            }
            e.kconfig = Some(c);
        }
        Some(_) => return Err(field("externs.kconfig", "not an object")),
    }
    if let Some(Value::Obj(list)) = v.get("linux") {
        for (k, val) in list {
            let n = val
                .as_u64()
                .ok_or_else(|| field(format!("externs.linux.{k}"), "not a number"))?;
            e.linux.insert(k.clone(), n);
        }
    }
    e.kallsyms = name_set(v, "kallsyms")?;
    e.btf_funcs_without_address = name_set(v, "btf_funcs_without_address")?;
    e.kallsyms_hidden = v
        .get("kallsyms_hidden")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(e)
}

/// An optional array of names under `externs.KEY`.
fn name_set(v: &Value, key: &str) -> Result<Option<BTreeSet<String>>, TargetError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Arr(names)) => {
            let mut set = BTreeSet::new();
            for n in names {
                let s = n.as_str().ok_or_else(|| {
                    field(format!("externs.{key}"), "a name that is not a string")
                })?;
                set.insert(s.to_owned());
            }
            Ok(Some(set))
        }
        Some(_) => Err(field(format!("externs.{key}"), "not an array")),
    }
}

/// The FUNC names of a kernel's BTF (`btf`, parsed) that `kallsyms` (its
/// `/proc/kallsyms` text) has no function symbol of the same name for.
pub fn btf_funcs_without_address(
    btf: &crate::obj::btf::Btf,
    kallsyms: impl BufRead,
) -> Option<BTreeSet<String>> {
    use crate::obj::btf::BtfKind;
    let mut functions = BTreeSet::new();
    for line in kallsyms.lines().map_while(Result::ok) {
        let mut parts = line.split_ascii_whitespace();
        let (Some(_), Some(kind), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if matches!(kind, "T" | "t" | "W" | "w") {
            functions.insert(name.to_owned());
        }
    }
    if functions.is_empty() {
        return None;
    }
    Some(
        btf.types()
            .filter(|(_, t)| t.kind == BtfKind::Func)
            .filter_map(|(_, t)| btf.string(t.name_off).ok())
            .filter(|n| !n.is_empty() && !functions.contains(*n))
            .map(str::to_owned)
            .collect(),
    )
}

fn string(doc: &Value, key: &str) -> Result<String, TargetError> {
    doc.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| field(key, "missing, or not a string"))
}

/// The fields of object `key` (absent: none).
fn entries<'a>(doc: &'a Value, key: &str) -> Result<&'a [(String, Value)], TargetError> {
    match doc.get(key) {
        None => Ok(&[]),
        Some(Value::Obj(list)) => Ok(list),
        Some(_) => Err(field(key, "not an object")),
    }
}

fn tri(v: &Value, key: &str, name: &str) -> Result<Option<bool>, TargetError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        _ => Err(field(format!("{key}.{name}"), "not true, false or null")),
    }
}

fn boolean(v: &Value, key: &str, name: &str) -> Result<bool, TargetError> {
    v.as_bool()
        .ok_or_else(|| field(format!("{key}.{name}"), "not true or false"))
}

fn numbers(v: &Value, key: &str) -> Result<Vec<u32>, TargetError> {
    let Value::Arr(items) = v else {
        return Err(field(key, "not an array"));
    };
    items
        .iter()
        .map(|n| {
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| field(key, "an item that is not a helper id"))
        })
        .collect()
}

/// A kernel enum value by the name its `Display` gives (`sched_cls`, or
/// `prog_type_40` for one this table lacks).
fn named<T: Copy + std::fmt::Display + From<Raw>>(
    name: &str,
    all: &[T],
    key: &str,
) -> Result<T, TargetError> {
    if let Some(t) = all.iter().find(|t| t.to_string() == name) {
        return Ok(*t);
    }
    name.rsplit_once('_')
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .filter(|_| name.contains("type_"))
        .map(|n| T::from(Raw(n)))
        .ok_or_else(|| field(key, format!("unknown name {name}")))
}

/// A raw kernel number, for [`named`].
struct Raw(u32);

impl From<Raw> for ProgramType {
    fn from(n: Raw) -> Self {
        ProgramType(n.0)
    }
}

impl From<Raw> for MapType {
    fn from(n: Raw) -> Self {
        MapType(n.0)
    }
}

impl From<Raw> for AttachType {
    fn from(n: Raw) -> Self {
        AttachType(n.0)
    }
}

fn btf_kind(name: &str) -> Option<BtfKind> {
    PROBED_BTF_KINDS
        .into_iter()
        .chain([BtfKind::FuncProto, BtfKind::Var])
        .find(|k| k.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target with one of everything a file can hold.
    fn sample() -> Features {
        let mut f = Features {
            kernel: "5.10.0-35-amd64".into(),
            arch: super::super::machine(),
            btf_global_func: true,
            ..Features::default()
        };
        f.prog_types.insert(ProgramType::XDP, Some(true));
        f.prog_types.insert(ProgramType::LSM, None);
        f.prog_types.insert(ProgramType(99), Some(false));
        f.map_types.insert(MapType::RINGBUF, Some(true));
        f.map_types.insert(MapType::ARENA, Some(false));
        f.map_types.insert(MapType::STRUCT_OPS, None);
        f.btf_kinds.insert(BtfKind::Enum64, false);
        f.btf_kinds.insert(BtfKind::Float, true);
        f.features.insert(Feature::Tcx, false);
        f.features.insert(Feature::Fentry, true);
        f.attach_types.insert(
            (
                ProgramType::CGROUP_SOCK_ADDR,
                AttachType::CGROUP_UNIX_CONNECT,
            ),
            false,
        );
        f.attach_types.insert(
            (ProgramType::CGROUP_SOCK_ADDR, AttachType::CGROUP_INET4_BIND),
            true,
        );
        f.link_kinds.insert(LinkKind::PerfEvent, false);
        f.link_kinds.insert(LinkKind::Cgroup, true);
        f.helpers
            .entry(ProgramType::TRACEPOINT)
            .or_default()
            .extend([(1, true), (9, false), (181, false)]);
        let mut e = TargetExterns {
            kallsyms_hidden: false,
            ..TargetExterns::default()
        };
        e.kconfig = Some(parse_config(
            "# comment\nCONFIG_HZ=250\nCONFIG_BPF=y\nCONFIG_S=\"a \\\"b\\\"\"\n# CONFIG_X is not set\n",
        ));
        e.linux.insert("LINUX_KERNEL_VERSION".into(), 330_240);
        e.kallsyms = Some(["bpf_prog_active".to_owned(), "runqueues".into()].into());
        f.externs = Some(e);
        f
    }

    #[test]
    fn a_target_file_reads_back_as_written() {
        let f = sample();
        let text = f.to_json();
        assert!(text.starts_with(&format!("{{\"format\":\"{FORMAT}\",\"rawbpf\":")));
        assert_eq!(Features::from_json(&text).unwrap(), f);
        let plain = Features {
            arch: super::super::machine(),
            ..Features::default()
        };
        assert_eq!(Features::from_json(&plain.to_json()).unwrap(), plain);
        let config = f.externs.unwrap().kconfig.unwrap();
        assert_eq!(config.len(), 3);
        assert_eq!(config["CONFIG_S"], "\"a \\\"b\\\"\"");
    }

    /// A BTF function that kallsyms names is attachable; one it lacks (the
    /// compiler kept only `f.isra.0`) is listed; a kallsyms without
    /// functions (unreadable, or not one) tells nothing.
    #[test]
    fn btf_functions_kallsyms_lacks_are_listed() {
        use crate::obj::btf::tests::Builder;
        use crate::obj::btf::{Btf, BtfKind};
        let mut b = Builder::new();
        b.t(0, BtfKind::FuncProto, 0, 0, &[]);
        for name in ["traced", "inlined", "cloned"] {
            let n = b.s(name);
            b.t(n, BtfKind::Func, 0, 1, &[]);
        }
        let kallsyms = "ffffffff81000000 T traced\nffffffff81000010 t cloned.isra.0\nffffffff82000000 D inlined\n";
        let missing =
            btf_funcs_without_address(&Btf::parse(&b.build()).unwrap(), kallsyms.as_bytes())
                .unwrap();
        assert_eq!(
            missing.into_iter().collect::<Vec<_>>(),
            ["cloned", "inlined"]
        );
        assert_eq!(
            btf_funcs_without_address(
                &Btf::parse(&b.build()).unwrap(),
                "ffffffff82000000 D x\n".as_bytes()
            ),
            None
        );
    }

    #[test]
    fn kallsyms_keeps_vmlinux_data_symbols() {
        let text = "0000000000000000 A __per_cpu_start\n\
                    0000000000012340 D runqueues\n\
                    ffffffff81000000 T _stext\n\
                    ffffffff82000000 b some_static\n\
                    ffffffffc0000000 d mod_var\t[veth]\n";
        let (names, hidden) = kallsyms_names(text.as_bytes());
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["__per_cpu_start", "runqueues", "some_static"]
        );
        assert!(!hidden, "a real 0 is a real address");
        let (_, hidden) = kallsyms_names("0000000000000000 T a\n0000000000000000 D b\n".as_bytes());
        assert!(hidden);
    }

    #[test]
    fn bad_target_files_say_what_is_wrong() {
        let good = sample().to_json();
        let err = |text: &str| Features::from_json(text).unwrap_err().to_string();
        assert!(err("{\"format\":").contains("not valid JSON at byte 10"));
        assert!(err("[]").contains("not a JSON object"));
        assert!(err("{\"kernel\":\"x\"}").contains("not a rawbpf target file"));
        let old = good.replace(FORMAT, "rawbpf-target/0");
        let e = err(&old);
        assert!(
            e.contains("format \"rawbpf-target/0\"") && e.contains("reads \"rawbpf-target/1\""),
            "{e}"
        );
        let arch = format!("\"arch\":\"{}\"", super::super::machine());
        let e = err(&good.replace(&arch, "\"arch\":\"sparc64\""));
        assert!(e.contains("architecture is sparc64"), "{e}");
        let e = err(&good.replace("\"xdp\":true", "\"xdp\":1"));
        assert!(e.contains("prog_types.xdp: not true, false or null"), "{e}");
        let e = err(&good.replace("\"xdp\":true", "\"no_such_type\":true"));
        assert!(e.contains("unknown name no_such_type"), "{e}");
        let e = err(&good.replace("\"tracepoint\":[1]", "\"tracepoint\":[\"x\"]"));
        assert!(e.contains("helpers.tracepoint"), "{e}");
    }
}
