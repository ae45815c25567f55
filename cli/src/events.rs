//! `rawbpf events MAP [--count N] [--json]`: the records BPF programs write
//! into a ring buffer or a perf event array, one line each, as they come.
//! MAP is `id N`, `pinned PATH`, or `--name GROUP MAPNAME` (a map of a
//! rawbpf group). Losses go to stderr. The command ends with exit 0 after N
//! records or at SIGINT/SIGTERM (blocked, and read from a signalfd that is
//! waited on beside the reader's fd).
//!
//! [`format_record`] turns one record's bytes into its line: the place to
//! decode records by their BTF type.

use crate::cli::Parsed;
use crate::json::Json;
use crate::{signals, Failure};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rawbpf::events::{EventError, PerfEvent, PerfEventArray, RingBuffer};
use rawbpf::load::hex;
use rawbpf::uapi::MapType;
use rawbpf::Map;
use std::io::Write;
use std::os::fd::AsFd;

/// Pages of each CPU's ring for a perf event array (64 KiB with 4 KiB pages).
const PERF_PAGES: usize = 16;

/// One record's line, without its newline: hex, or decoded by `typed`'s
/// BTF type (the record's first bytes; hex if it is shorter), or with
/// `json` an object `{"cpu"?, "len", "data"}` (`cpu` for perf event arrays,
/// whose records come from one ring per CPU; `data` a hex string, or the
/// decoded value).
pub(crate) fn format_record(
    json: bool,
    typed: Option<&RecordType>,
    cpu: Option<u32>,
    data: &[u8],
) -> String {
    let decoded = typed.and_then(|t| {
        let bytes = data.get(..t.size)?;
        rawbpf::obj::btf::value::decode(&t.btf, t.id, bytes, "record")
            .ok()
            .map(|v| v.to_json())
    });
    if json {
        let mut fields = Vec::with_capacity(3);
        if let Some(cpu) = cpu {
            fields.push(("cpu", Json::from(cpu)));
        }
        fields.push(("len", data.len().into()));
        fields.push(("data", decoded.map_or_else(|| hex(data).into(), Json::Raw)));
        Json::Obj(fields).to_string()
    } else {
        let shown = decoded.unwrap_or_else(|| hex(data));
        match cpu {
            Some(cpu) => format!("cpu {cpu}: {} bytes: {shown}", data.len()),
            None => format!("{} bytes: {shown}", data.len()),
        }
    }
}

/// `--type NAME`: the BTF type records are decoded by, from the map's BTF
/// (the object's, which the loader gave the kernel with the map).
pub(crate) struct RecordType {
    btf: rawbpf::obj::btf::Btf,
    id: u32,
    size: usize,
}

impl RecordType {
    fn find(map: &Map, name: &str) -> Result<RecordType, Failure> {
        use rawbpf::obj::btf::BtfKind as K;
        let missing = |why: String| {
            Failure::Error(format!("events --type {name}: map {}: {why}", map.name()))
        };
        let btf = map
            .object_btf()
            .map_err(|e| missing(e.to_string()))?
            .ok_or_else(|| {
                missing("neither it nor a program using it has BTF to find the type in".into())
            })?;
        let bare = ["struct ", "union ", "enum "]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .unwrap_or(name);
        let id = [K::Struct, K::Union, K::Typedef, K::Int, K::Enum]
            .into_iter()
            .find_map(|k| btf.find_by_name(k, bare))
            .ok_or_else(|| missing(format!("its BTF has no type {bare}")))?;
        let size = btf.resolve_size(id).map_err(|e| missing(e.to_string()))? as usize;
        Ok(RecordType { btf, id, size })
    }
}

/// The map named on the command line.
fn open_map(p: &Parsed) -> Result<Map, Failure> {
    let args: Vec<&str> = p.positional.iter().map(String::as_str).collect();
    let opened = match (p.value("--name"), args.as_slice()) {
        (Some(group), [name]) => {
            let path = rawbpf::link::group::group_dir(group)
                .join("maps")
                .join(rawbpf::pin::pin_name(name));
            if !path.exists() {
                return Err(Failure::Error(format!(
                    "group {group} has no map {name} (no pin at {})",
                    path.display()
                )));
            }
            Map::from_pin(&path)
        }
        (None, ["id", id]) => {
            let id = id.parse().map_err(|_| {
                Failure::Usage(format!(
                    "events: map id '{id}' is not a number from 0 to 4294967295"
                ))
            })?;
            Map::from_id(id)
        }
        (None, ["pinned", path]) => Map::from_pin(path),
        _ => {
            return Err(Failure::Usage(
                "events: name the map as 'id N', 'pinned PATH' or '--name GROUP MAPNAME'".into(),
            ))
        }
    };
    opened.map_err(|e| Failure::Error(e.to_string()))
}

/// Either reader, as one.
enum Reader {
    Ring(RingBuffer),
    Perf(PerfEventArray),
}

fn event_err(e: EventError) -> Failure {
    Failure::Error(e.to_string())
}

/// `rawbpf events`.
pub fn events(p: &Parsed) -> Result<(), Failure> {
    let count = match p.value("--count") {
        None => None,
        Some(n) => Some(n.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
            Failure::Usage(format!(
                "events: --count '{n}' is not a number of records (1 or more)"
            ))
        })?),
    };
    let map = open_map(p)?;
    let typed = p
        .value("--type")
        .map(|name| RecordType::find(&map, name))
        .transpose()?;
    let mut reader = match map.map_type() {
        MapType::RINGBUF => Reader::Ring(RingBuffer::new(&map).map_err(event_err)?),
        MapType::PERF_EVENT_ARRAY => {
            Reader::Perf(PerfEventArray::new(&map, PERF_PAGES).map_err(event_err)?)
        }
        other => {
            return Err(Failure::Error(format!(
                "map {} is of type {other}: events reads a ringbuf or a perf_event_array",
                map.name()
            )))
        }
    };
    let what = format!("{} map {} (id {})", map.map_type(), map.name(), map.id());
    drop(map);
    signals::catch_interrupts().map_err(|e| Failure::Error(format!("blocking signals: {e}")))?;
    let interrupts: SigSet = [Signal::SIGINT, Signal::SIGTERM].into_iter().collect();
    let sigfd = SignalFd::with_flags(&interrupts, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| Failure::Error(format!("reading signals: {e}")))?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
        .and_then(|ep| {
            let fd = match &reader {
                Reader::Ring(r) => r.as_fd(),
                Reader::Perf(r) => r.as_fd(),
            };
            ep.add(fd, EpollEvent::new(EpollFlags::EPOLLIN, 0))?;
            ep.add(&sigfd, EpollEvent::new(EpollFlags::EPOLLIN, 1))?;
            Ok(ep)
        })
        .map_err(|e| Failure::Error(format!("waiting for records: {e}")))?;
    // Said once the reader is in place (a perf event array's slots are
    // filled): what is written from now on is printed.
    crate::to_stderr(&format!(
        "rawbpf: events: reading {what} until {}Ctrl-C\n",
        count.map_or(String::new(), |n| format!("{n} records or "))
    ));
    let mut out = Output {
        json: p.switch("--json"),
        typed,
        left: count,
        lost: 0,
        stdout: std::io::stdout().lock(),
    };
    loop {
        let done = match &mut reader {
            Reader::Ring(r) => out.drain_ring(r)?,
            Reader::Perf(r) => out.drain_perf(r)?,
        };
        out.stdout.flush()?;
        if done || signals::interrupted() {
            break;
        }
        let mut events = [EpollEvent::empty(); 2];
        match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Failure::Error(format!("waiting for records: {e}"))),
        }
        if sigfd.read_signal().ok().flatten().is_some() {
            break;
        }
    }
    if out.lost > 0 {
        crate::to_stderr(&format!("rawbpf: events: {} records lost\n", out.lost));
    }
    Ok(())
}

/// Where records go, and how many more.
struct Output<'a> {
    json: bool,
    typed: Option<RecordType>,
    left: Option<u64>,
    lost: u64,
    stdout: std::io::StdoutLock<'a>,
}

impl Output<'_> {
    /// Prints one record; whether the count is reached.
    fn record(&mut self, cpu: Option<u32>, data: &[u8]) -> Result<bool, Failure> {
        let mut line = format_record(self.json, self.typed.as_ref(), cpu, data);
        line.push('\n');
        self.stdout.write_all(line.as_bytes())?;
        if let Some(left) = &mut self.left {
            *left -= 1;
            return Ok(*left == 0);
        }
        Ok(false)
    }

    /// Prints every record waiting; whether the count is reached.
    fn drain_ring(&mut self, ring: &mut RingBuffer) -> Result<bool, Failure> {
        while let Some(data) = ring.try_next().map_err(event_err)? {
            if self.record(None, data)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn drain_perf(&mut self, perf: &mut PerfEventArray) -> Result<bool, Failure> {
        while let Some(event) = perf.try_next().map_err(event_err)? {
            match event {
                PerfEvent::Sample { cpu, data } => {
                    if self.record(Some(cpu), data)? {
                        return Ok(true);
                    }
                }
                PerfEvent::Lost { cpu, count } => {
                    self.lost += count;
                    crate::to_stderr(&format!("rawbpf: events: cpu {cpu} lost {count} records\n"));
                }
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::format_record;

    #[test]
    fn records_print_as_hex_or_json() {
        assert_eq!(
            format_record(false, None, None, &[1, 0xab]),
            "2 bytes: 01ab"
        );
        assert_eq!(format_record(false, None, Some(3), &[]), "cpu 3: 0 bytes: ");
        assert_eq!(
            format_record(true, None, None, &[0xff]),
            r#"{"len":1,"data":"ff"}"#
        );
        assert_eq!(
            format_record(true, None, Some(0), &[1, 2]),
            r#"{"cpu":0,"len":2,"data":"0102"}"#
        );
    }
}
