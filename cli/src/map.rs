//! `rawbpf map`: any map of the system, listed, shown, dumped, read and
//! written, with keys and values typed by the map's BTF.
//!
//! ```text
//! rawbpf map list [--json]
//! rawbpf map show|dump MAP [--json]
//! rawbpf map lookup|delete MAP KEY [--json]
//! rawbpf map update MAP KEY VALUE [--noexist|--exist] [--json]
//!
//! MAP:  id N | pinned PATH | NAME --name GROUP
//!     | NAME --dev IFACE [--netns NS] [--ingress|--egress|--xdp] [--priority N]
//! ```

use crate::cli::Parsed;
use crate::json::Json;
use crate::Failure;
use rawbpf::attach::{Hook, Target};
use rawbpf::load::map_btf::{value_is_map_id, value_is_prog_id};
use rawbpf::load::{pin_name, Map, MapBtf, Program};
use rawbpf::obj::btf::value::Value;
use rawbpf::uapi::MapType;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `rawbpf map SUBCOMMAND ...`: prints its own output (a dump streams).
pub fn map(p: &Parsed) -> Result<(), Failure> {
    let sub = p.positional[0].as_str();
    let rest = &p.positional[1..];
    let json = p.switch("--json");
    let (n_args, needs_map) = match sub {
        "list" => (0, false),
        "show" | "dump" => (0, true),
        "lookup" | "delete" => (1, true),
        "update" => (2, true),
        other => {
            return Err(Failure::Usage(format!(
                "map: unknown subcommand '{other}' (list, show, dump, lookup, update or delete)"
            )))
        }
    };
    if sub != "update" && (p.switch("--noexist") || p.switch("--exist")) {
        return Err(Failure::Usage(format!(
            "map {sub}: --noexist and --exist are for update"
        )));
    }
    if !needs_map {
        if let Some(extra) = rest.first() {
            return Err(Failure::Usage(format!(
                "map list: unexpected argument '{extra}'"
            )));
        }
        return crate::print(&list(json)?);
    }
    let (spec, args) = split_map_arg(sub, rest)?;
    if args.len() != n_args {
        return Err(Failure::Usage(format!(
            "map {sub}: expected {} after MAP (usage: {})",
            ["nothing", "KEY", "KEY VALUE"][n_args],
            p.command.usage.lines().next().unwrap_or("")
        )));
    }
    let (map, label) = open(p, &spec)?;
    let codec = Codec::new(&map);
    match sub {
        "show" => crate::print(&show(&map, &label, &codec, json)),
        "dump" => dump(&map, &label, &codec, json),
        "lookup" => crate::print(&lookup(&map, &label, &codec, &args[0], json)?),
        "delete" => crate::print(&delete(&map, &label, &codec, &args[0], json)?),
        _ => crate::print(&update(p, &map, &label, &codec, &args[0], &args[1], json)?),
    }
}

/// How the command names its map.
enum MapArg {
    Id(u32),
    Pinned(PathBuf),
    Name(String),
}

/// The MAP words (`id N`, `pinned PATH` or `NAME`) and what follows them.
fn split_map_arg<'a>(sub: &str, rest: &'a [String]) -> Result<(MapArg, &'a [String]), Failure> {
    let usage = |m: String| Failure::Usage(format!("map {sub}: {m}"));
    match rest.first().map(String::as_str) {
        None => Err(usage(
            "which map? (id N, pinned PATH, or NAME with --name GROUP or --dev IFACE)".into(),
        )),
        Some("id") => {
            let n = rest
                .get(1)
                .ok_or_else(|| usage("id: expected a map id".into()))?;
            let id = n
                .parse::<u32>()
                .map_err(|_| usage(format!("id {n}: expected a map id (a number)")))?;
            Ok((MapArg::Id(id), &rest[2..]))
        }
        Some("pinned") => {
            let path = rest
                .get(1)
                .ok_or_else(|| usage("pinned: expected a bpffs path".into()))?;
            Ok((MapArg::Pinned(PathBuf::from(path)), &rest[2..]))
        }
        Some(name) => Ok((MapArg::Name(name.to_owned()), &rest[1..])),
    }
}

/// Opens the map the command names: the map and how messages name it.
fn open(p: &Parsed, spec: &MapArg) -> Result<(Map, String), Failure> {
    let by_name = p.value("--name").is_some() || p.value("--dev").is_some();
    if by_name && !matches!(spec, MapArg::Name(_)) {
        return Err(Failure::Usage(
            "map: --name and --dev name a map by its name (NAME --name GROUP), not with id or pinned".into(),
        ));
    }
    let map = match spec {
        MapArg::Id(id) => Map::from_id(*id).map_err(|e| match e {
            rawbpf::LoadError::MapRead { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Failure::Error(format!("no map with id {id}"))
            }
            e => Failure::Error(e.to_string()),
        })?,
        MapArg::Pinned(path) => open_pin(path, None)?,
        MapArg::Name(name) => {
            let (dir, what) = named_dir(p)?;
            open_pin(&dir.join(pin_name(name)), Some((name, &dir, &what)))?
        }
    };
    let label = format!("map {} (id {})", map.name(), map.id());
    Ok((map, label))
}

/// The directory NAME is looked up in: the group's maps or the chain's
/// directory, and how messages name it.
fn named_dir(p: &Parsed) -> Result<(PathBuf, String), Failure> {
    match (p.value("--name"), p.value("--dev")) {
        (Some(_), Some(_)) => Err(Failure::Usage(
            "map: --name GROUP and --dev IFACE exclude each other".into(),
        )),
        (Some(group), None) => {
            rawbpf::link::group::check_name(group)
                .map_err(|e| Failure::Usage(format!("map: --name: {e}")))?;
            let dir = rawbpf::link::group::group_dir(group);
            if !dir.is_dir() {
                return Err(Failure::Error(format!(
                    "no group '{group}' ({} does not exist)",
                    dir.display()
                )));
            }
            Ok((dir.join("maps"), format!("group '{group}'")))
        }
        (None, Some(dev)) => {
            let (target, priority) = chain_target(p, dev)?;
            let dir = target.chain_dir(priority);
            let what = match target.hook {
                Hook::Xdp => format!("the xdp chain of {dev}"),
                hook => format!("the {} chain of {dev} at priority {priority}", hook.name()),
            };
            if !dir.is_dir() {
                return Err(Failure::Error(format!(
                    "no {} ({} does not exist)",
                    what.trim_start_matches("the "),
                    dir.display()
                )));
            }
            Ok((dir, what))
        }
        (None, None) => Err(Failure::Usage(
            "map: a map NAME needs --name GROUP or --dev IFACE (or use id N, pinned PATH)".into(),
        )),
    }
}

/// `--dev`, `--netns`, the hook and `--priority` (1 if not given).
fn chain_target(p: &Parsed, dev: &str) -> Result<(Target, u16), Failure> {
    let hooks: Vec<&str> = ["--ingress", "--egress", "--xdp"]
        .into_iter()
        .filter(|h| p.switch(h))
        .collect();
    if hooks.len() > 1 {
        return Err(Failure::Usage(format!(
            "map: {} exclude each other",
            hooks.join(" and ")
        )));
    }
    let hook = match hooks.first() {
        Some(&"--egress") => Hook::Egress,
        Some(&"--xdp") => Hook::Xdp,
        _ => Hook::Ingress,
    };
    let priority = match p.value("--priority") {
        Some(_) if hook == Hook::Xdp => {
            return Err(Failure::Usage(
                "map: --priority is for TC hooks, not --xdp".into(),
            ))
        }
        Some(v) => v.parse::<u16>().ok().filter(|&n| n > 0).ok_or_else(|| {
            Failure::Usage(format!("--priority {v}: expected a number from 1 to 65535"))
        })?,
        None => 1,
    };
    let mut target = Target::new(dev, hook);
    if let Some(ns) = p.value("--netns") {
        target = target.in_netns(ns);
    }
    Ok((target, priority))
}

/// Opens a pinned map; for a NAME, a missing pin names the map, where it
/// was looked for and the maps that are there.
fn open_pin(path: &Path, named: Option<(&str, &Path, &str)>) -> Result<Map, Failure> {
    if let (Some((name, dir, what)), false) = (named, path.exists()) {
        let known: Vec<String> = rawbpf::load::pinned_maps(dir)
            .into_iter()
            .filter(|(_, p)| p.parent() == Some(dir))
            .filter_map(|(_, p)| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .collect();
        return Err(Failure::Error(format!(
            "{what} has no map '{name}' (no pin {}; its maps: {})",
            path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    if named.is_none() && !path.exists() {
        return Err(Failure::Error(format!(
            "no pinned map at {} (no such file)",
            path.display()
        )));
    }
    Map::from_pin(path).map_err(|e| Failure::Error(e.to_string()))
}

/// Keys and values to and from text, by the map's BTF or its type.
struct Codec {
    btf: Option<MapBtf>,
    map_type: MapType,
    key_size: usize,
    value_size: usize,
}

impl Codec {
    fn new(map: &Map) -> Codec {
        let btf = match map.btf() {
            Ok(b) => b,
            Err(e) => {
                crate::warn(&format!("{e}; keys and values are shown as bytes"));
                None
            }
        };
        Codec {
            btf,
            map_type: map.map_type(),
            key_size: map.key_size() as usize,
            value_size: map.value_size() as usize,
        }
    }

    /// Whether keys are array indexes (`u32`), whatever the BTF says.
    fn index_keys(&self) -> bool {
        self.key_size == 4 && is_array_kind(self.map_type)
    }

    fn key_json(&self, key: &[u8], out: &mut String) {
        match self.btf.as_ref().and_then(|b| b.decode_key(key)) {
            Some(Ok(v)) => v.write_json(out),
            _ if self.index_keys() => {
                let _ = write!(out, "{}", u32_at(key));
            }
            _ => Value::Bytes(key.to_vec()).write_json(out),
        }
    }

    /// One CPU's value (or the value).
    fn one_value_json(&self, value: &[u8], out: &mut String) {
        if value_is_prog_id(self.map_type) || value_is_map_id(self.map_type) {
            let id = u32_at(value);
            let name = if value_is_prog_id(self.map_type) {
                Program::from_id(id).map(|p| p.name).ok()
            } else {
                Map::from_id(id).map(|m| m.name().to_owned()).ok()
            };
            let j = Json::Obj(vec![
                ("id", id.into()),
                ("name", Json::opt(name, Json::from)),
            ]);
            let _ = write!(out, "{j}");
            return;
        }
        match self.btf.as_ref().and_then(|b| b.decode_value(value)) {
            Some(Ok(v)) => v.write_json(out),
            _ => Value::Bytes(value.to_vec()).write_json(out),
        }
    }

    fn value_json(&self, map: &Map, value: &[u8], out: &mut String) {
        if !map.is_per_cpu() {
            return self.one_value_json(value, out);
        }
        out.push('[');
        for (cpu, v) in map.per_cpu(value).into_iter().enumerate() {
            if cpu > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"cpu\":{cpu},\"value\":");
            self.one_value_json(v, out);
            out.push('}');
        }
        out.push(']');
    }

    fn parse_key(&self, text: &str) -> Result<Vec<u8>, Failure> {
        let b = self.btf.as_ref();
        match b.and_then(|b| b.encode_key(text)) {
            Some(r) => r.map_err(|e| Failure::Usage(e.to_string())),
            None if self.index_keys() => {
                parse_u32("key", "__u32 (an index)", text).map(|n| n.to_le_bytes().to_vec())
            }
            None => parse_hex("key", text, self.key_size),
        }
    }

    /// The value to write, and the program or map whose fd it holds (kept
    /// open until the write).
    fn parse_value(
        &self,
        map: &Map,
        key: &[u8],
        text: &str,
    ) -> Result<(Vec<u8>, Option<Held>), Failure> {
        if value_is_prog_id(self.map_type) || value_is_map_id(self.map_type) {
            let prog = value_is_prog_id(self.map_type);
            let what = if prog { "a program id" } else { "a map id" };
            let id = parse_u32("value", what, text)?;
            let held = if prog {
                Held::Prog(
                    Program::from_id(id)
                        .map_err(|_| Failure::Error(format!("no program with id {id}")))?,
                )
            } else {
                Held::Map(
                    Map::from_id(id).map_err(|_| Failure::Error(format!("no map with id {id}")))?,
                )
            };
            let fd = std::os::fd::AsRawFd::as_raw_fd(&held.fd()) as u32;
            return Ok((fd.to_le_bytes().to_vec(), Some(held)));
        }
        let b = self.btf.as_ref();
        let encoded = match b.filter(|b| b.value_is_section()) {
            // Global data: the variables named, over what the map holds.
            Some(b) => {
                let current = map
                    .lookup(key)
                    .map_err(|e| Failure::Error(e.to_string()))?
                    .unwrap_or_else(|| vec![0; map.value_len()]);
                b.encode_value_onto(text, map.per_cpu(&current)[0])
            }
            None => b.and_then(|b| b.encode_value(text)),
        };
        let one = match encoded {
            Some(r) => r.map_err(|e| Failure::Usage(e.to_string()))?,
            None => parse_hex("value", text, self.value_size)?,
        };
        Ok((map.same_on_every_cpu(&one), None))
    }
}

/// `BPF_F_RDONLY_PROG`: what libbpf gives `.rodata`, which it freezes.
const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// What a prog-array or map-in-map value's fd comes from.
enum Held {
    Prog(Program),
    Map(Map),
}

impl Held {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Held::Prog(p) => p.fd(),
            Held::Map(m) => m.fd(),
        }
    }
}

/// Map types whose keys are `u32` indexes.
fn is_array_kind(t: MapType) -> bool {
    matches!(
        t,
        MapType::ARRAY
            | MapType::PERCPU_ARRAY
            | MapType::PROG_ARRAY
            | MapType::PERF_EVENT_ARRAY
            | MapType::CGROUP_ARRAY
            | MapType::ARRAY_OF_MAPS
            | MapType::DEVMAP
            | MapType::CPUMAP
            | MapType::XSKMAP
    )
}

fn u32_at(b: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    let n = b.len().min(4);
    w[..n].copy_from_slice(&b[..n]);
    u32::from_le_bytes(w)
}

fn parse_u32(field: &str, ty: &str, text: &str) -> Result<u32, Failure> {
    let t = text.trim();
    let n = match t.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => t.parse::<u32>().ok(),
    };
    n.ok_or_else(|| {
        Failure::Usage(format!(
            "{field} ({ty}): '{text}' is not a number from 0 to 4294967295"
        ))
    })
}

/// Bytes in hex for a map without BTF: `0x01 0x00 0x00 0x00`, `01 00 00
/// 00`, or the `["0x01","0x00",...]` that dump prints; exactly `size` bytes.
/// For a key or value of 2, 4 or 8 bytes, one word (`7`, `0x2a`) is an
/// unsigned number in the machine's byte order: as hex bytes it could only
/// fill one byte.
pub(crate) fn parse_hex(field: &str, text: &str, size: usize) -> Result<Vec<u8>, Failure> {
    let word = text.trim();
    if matches!(size, 2 | 4 | 8) && !word.is_empty() && !word.contains([' ', '[', '"', ',']) {
        let n = match word.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => word.parse::<u64>().ok(),
        };
        let max = u64::MAX >> (64 - 8 * size);
        return match n.filter(|&n| n <= max) {
            Some(n) => Ok(n.to_ne_bytes()[..size].to_vec()),
            None => Err(Failure::Usage(format!(
                "{field} ({size} bytes, no BTF): '{word}' is not a number from 0 to {max} (or write the bytes in hex, like \"0x01 0x00\")"
            ))),
        };
    }
    let cleaned: String = text
        .chars()
        .map(|c| {
            if matches!(c, '[' | ']' | '"' | ',') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out = Vec::new();
    for word in cleaned.split_whitespace() {
        let h = word
            .strip_prefix("0x")
            .or_else(|| word.strip_prefix("0X"))
            .unwrap_or(word);
        let byte = (h.len() <= 2)
            .then(|| u8::from_str_radix(h, 16).ok())
            .flatten()
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "{field} ({size} bytes, no BTF): '{word}' is not a hex byte (write bytes like \"0x01 0x00\")"
                ))
            })?;
        out.push(byte);
    }
    if out.len() != size {
        return Err(Failure::Usage(format!(
            "{field} ({size} bytes, no BTF): {} bytes given; write all {size} in hex, like \"0x01 0x00\"",
            out.len()
        )));
    }
    Ok(out)
}

/// Where rawbpf pins: every map pin under it, by map id.
fn rawbpf_pins() -> Vec<(u32, PathBuf)> {
    rawbpf::load::pinned_maps(Path::new(rawbpf::pins::PIN_ROOT))
}

fn pins_of(pins: &[(u32, PathBuf)], id: u32) -> Vec<String> {
    pins.iter()
        .filter(|(i, _)| *i == id)
        .map(|(_, p)| p.display().to_string())
        .collect()
}

fn map_json(m: &Map, pins: Vec<String>) -> Vec<(&'static str, Json)> {
    vec![
        ("id", m.id().into()),
        ("type", m.map_type().to_string().into()),
        ("name", m.name().into()),
        ("key_size", m.key_size().into()),
        ("value_size", m.value_size().into()),
        ("max_entries", m.max_entries().into()),
        ("flags", m.flags().into()),
        (
            "pins",
            Json::Arr(pins.into_iter().map(Json::from).collect()),
        ),
    ]
}

/// `rawbpf map list`.
fn list(json: bool) -> Result<String, Failure> {
    let maps = rawbpf::load::maps().map_err(|e| Failure::Error(e.to_string()))?;
    let pins = rawbpf_pins();
    if json {
        let arr = maps
            .iter()
            .map(|m| Json::Obj(map_json(m, pins_of(&pins, m.id()))))
            .collect();
        return Ok(format!("{}\n", Json::Arr(arr)));
    }
    let mut out = String::new();
    for m in &maps {
        let _ = write!(
            out,
            "{:<6} {:<16} {:<16} key {:<3} value {:<5} max_entries {:<8} flags {:#x}",
            m.id(),
            m.map_type().to_string(),
            m.name(),
            m.key_size(),
            m.value_size(),
            m.max_entries(),
            m.flags()
        );
        for p in pins_of(&pins, m.id()) {
            let _ = write!(out, "  pinned {p}");
        }
        out.push('\n');
    }
    if maps.is_empty() {
        out.push_str("no maps\n");
    }
    Ok(out)
}

/// `rawbpf map show MAP`.
fn show(map: &Map, label: &str, codec: &Codec, json: bool) -> String {
    let pins = pins_of(&rawbpf_pins(), map.id());
    let b = codec.btf.as_ref();
    let key_type = b.and_then(MapBtf::key_type_name);
    let value_type = b.and_then(MapBtf::value_type_name);
    if json {
        let mut fields = map_json(map, pins);
        fields.push(("btf_id", Json::opt(b.map(MapBtf::btf_id), Json::from)));
        fields.push(("key_type", Json::opt(key_type, Json::from)));
        fields.push(("value_type", Json::opt(value_type, Json::from)));
        return format!("{}\n", Json::Obj(fields));
    }
    let mut out = format!(
        "{label}: {} key {} value {} max_entries {} flags {:#x}\n",
        map.map_type(),
        map.key_size(),
        map.value_size(),
        map.max_entries(),
        map.flags()
    );
    match b {
        Some(b) => {
            let _ = writeln!(
                out,
                "  btf id {}: key {}, value {}",
                b.btf_id(),
                key_type.as_deref().unwrap_or("(none)"),
                value_type.as_deref().unwrap_or("(none)")
            );
        }
        None => {
            let ids = value_is_prog_id(codec.map_type) || value_is_map_id(codec.map_type);
            let _ = writeln!(
                out,
                "  no BTF: keys {}, values {}",
                if codec.index_keys() {
                    "are indexes"
                } else {
                    "in hex"
                },
                if ids { "are ids" } else { "in hex" }
            );
        }
    }
    for p in pins {
        let _ = writeln!(out, "  pinned {p}");
    }
    out
}

/// `rawbpf map dump MAP`: streamed through a buffer, batch lookups.
fn dump(map: &Map, label: &str, codec: &Codec, json: bool) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut line = String::with_capacity(256);
    let mut failed: Option<std::io::Error> = None;
    let mut n = 0usize;
    if json {
        w.write_all(b"[")?;
    }
    map.for_each_entry(0, |k, v| {
        line.clear();
        if json {
            if n > 0 {
                line.push(',');
            }
            line.push_str("{\"key\":");
            codec.key_json(k, &mut line);
            line.push_str(",\"value\":");
            codec.value_json(map, v, &mut line);
            line.push('}');
        } else {
            line.push_str("key: ");
            codec.key_json(k, &mut line);
            line.push_str("  value: ");
            codec.value_json(map, v, &mut line);
            line.push('\n');
        }
        n += 1;
        match w.write_all(line.as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })
    .map_err(|e| Failure::Error(e.to_string()))?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if json {
        w.write_all(b"]\n")?;
    } else if n == 0 {
        writeln!(w, "{label}: no elements")?;
    }
    w.flush()?;
    Ok(())
}

fn entry_text(codec: &Codec, map: &Map, key: &[u8], value: &[u8], json: bool) -> String {
    let mut out = String::new();
    if json {
        out.push_str("{\"key\":");
        codec.key_json(key, &mut out);
        out.push_str(",\"value\":");
        codec.value_json(map, value, &mut out);
        out.push_str("}\n");
    } else {
        out.push_str("key: ");
        codec.key_json(key, &mut out);
        out.push_str("  value: ");
        codec.value_json(map, value, &mut out);
        out.push('\n');
    }
    out
}

/// `rawbpf map lookup MAP KEY`.
fn lookup(map: &Map, label: &str, codec: &Codec, key: &str, json: bool) -> Result<String, Failure> {
    let k = codec.parse_key(key)?;
    match map.lookup(&k).map_err(|e| Failure::Error(e.to_string()))? {
        Some(v) => Ok(entry_text(codec, map, &k, &v, json)),
        None => {
            let mut shown = String::new();
            codec.key_json(&k, &mut shown);
            Err(Failure::Error(format!(
                "{label}: no element with key {shown}"
            )))
        }
    }
}

/// `rawbpf map delete MAP KEY`.
fn delete(map: &Map, label: &str, codec: &Codec, key: &str, json: bool) -> Result<String, Failure> {
    let k = codec.parse_key(key)?;
    let mut shown = String::new();
    codec.key_json(&k, &mut shown);
    if !map.delete(&k).map_err(|e| Failure::Error(e.to_string()))? {
        return Err(Failure::Error(format!(
            "{label}: no element with key {shown}"
        )));
    }
    Ok(if json {
        format!("{{\"id\":{},\"deleted\":{shown}}}\n", map.id())
    } else {
        format!("{label}: deleted key {shown}\n")
    })
}

/// `rawbpf map update MAP KEY VALUE [--noexist|--exist]`: one
/// `BPF_MAP_UPDATE_ELEM`, after both parsed.
fn update(
    p: &Parsed,
    map: &Map,
    label: &str,
    codec: &Codec,
    key: &str,
    value: &str,
    json: bool,
) -> Result<String, Failure> {
    let flags = match (p.switch("--noexist"), p.switch("--exist")) {
        (true, true) => {
            return Err(Failure::Usage(
                "map update: --noexist and --exist exclude each other".into(),
            ))
        }
        (true, false) => 1,
        (false, true) => 2,
        (false, false) => 0,
    };
    let k = codec.parse_key(key)?;
    let (v, held) = codec.parse_value(map, &k, value)?;
    let res = map.update_with_flags(&k, &v, flags);
    drop(held);
    res.map_err(|e| {
        let frozen = matches!(&e, rawbpf::LoadError::MapUpdate { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied)
            && map.flags() & BPF_F_RDONLY_PROG != 0;
        if frozen {
            Failure::Error(format!(
                "{label}: user space cannot write it: it is frozen read-only (.rodata); set its variables before load with --set NAME=VALUE"
            ))
        } else {
            Failure::Error(e.to_string())
        }
    })?;
    let mut out = String::new();
    if json {
        let _ = write!(out, "{{\"id\":{},\"updated\":", map.id());
        out.push_str(entry_text(codec, map, &k, &read_back(map, &k, &v), true).trim_end());
        out.push_str("}\n");
    } else {
        let _ = write!(out, "{label}: updated ");
        out.push_str(&entry_text(codec, map, &k, &read_back(map, &k, &v), false));
    }
    Ok(out)
}

/// The element as the map holds it now (a prog array reads back an id
/// where the update wrote an fd); what was written if it cannot be read.
fn read_back(map: &Map, key: &[u8], written: &[u8]) -> Vec<u8> {
    map.lookup(key)
        .ok()
        .flatten()
        .unwrap_or_else(|| written.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(r: Result<Vec<u8>, Failure>) -> String {
        match r {
            Err(Failure::Usage(m)) => m,
            _ => panic!("not a usage error"),
        }
    }

    #[test]
    fn hex_bytes_in_every_form() {
        let want = vec![1, 0, 0xab, 0];
        for text in [
            "0x01 0x00 0xab 0x00",
            "01 00 ab 00",
            r#"["0x01","0x00","0xab","0x00"]"#,
        ] {
            assert!(
                matches!(parse_hex("key", text, 4), Ok(ref b) if *b == want),
                "{text}"
            );
        }
        assert!(matches!(parse_hex("key", "7", 4), Ok(ref b) if *b == 7u32.to_ne_bytes()));
        assert!(matches!(parse_hex("key", "0x2a", 2), Ok(ref b) if *b == 42u16.to_ne_bytes()));
        assert!(matches!(parse_hex("key", "10", 1), Ok(ref b) if *b == [0x10]));
        assert!(usage(parse_hex("key", "65536", 2)).contains("not a number from 0 to 65535"));
        assert_eq!(
            usage(parse_hex("key", "0x01 0x02", 4)),
            "key (4 bytes, no BTF): 2 bytes given; write all 4 in hex, like \"0x01 0x00\""
        );
        assert!(usage(parse_hex("value", "zz", 1)).contains("'zz' is not a hex byte"));
    }

    #[test]
    fn index_numbers() {
        assert!(matches!(parse_u32("key", "__u32", "0x10"), Ok(16)));
        assert!(matches!(
            parse_u32("key", "__u32", "-1"),
            Err(Failure::Usage(m)) if m == "key (__u32): '-1' is not a number from 0 to 4294967295"
        ));
    }
}
