//! Event streams: reading the records BPF programs write into a ring
//! buffer (`BPF_MAP_TYPE_RINGBUF`, `bpf_ringbuf_output`/`_submit`) or a
//! perf event array (`BPF_MAP_TYPE_PERF_EVENT_ARRAY`,
//! `bpf_perf_event_output`), from a [`Map`] the caller has: one it
//! loaded, [`Map::from_pin`] or [`Map::from_id`].
//!
//! Records are borrowed in place, without a copy, until the next call
//! (a perf record that wraps around the end of its ring is the one
//! exception: it is copied, once). `next(timeout)` blocks on epoll until a
//! record comes; `try_next()` never blocks. For an event loop of the
//! caller's, each reader is [`AsFd`]: the fd is readable when a record may
//! be waiting; drain the reader with `try_next` each time it is, as here
//! with tokio (the library starts no runtime for this):
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use rawbpf::events::RingBuffer;
//! use tokio::io::unix::AsyncFd;
//!
//! let map = rawbpf::Map::from_pin("/sys/fs/bpf/my_ring")?;
//! let mut ring = AsyncFd::new(RingBuffer::new(&map)?)?;
//! loop {
//!     let mut ready = ring.readable_mut().await?;
//!     while let Some(record) = ready.get_inner_mut().try_next()? {
//!         println!("{} bytes", record.len());
//!     }
//!     ready.clear_ready();
//! }
//! # }
//! ```
//!
//! A ring buffer has no lost records on the reader's side: a producer
//! that finds it full is refused (`-ENOSPC`) and counts that itself. A
//! perf event array's readers are told each `PERF_RECORD_LOST` as
//! [`PerfEvent::Lost`], and [`PerfEventArray::lost`] adds them up.

use crate::load::{possible_cpus, Map};
use crate::sys::ring::{perf_bpf_output_open, PerfRing, RingbufMaps, RingbufNext};
use crate::sys::{self, ElemSizes};
use crate::uapi::MapType;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// What went wrong opening or reading an event stream; each names the map.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The map is not of the type the reader reads.
    #[error("map {map} is a {map_type}, not a {expected}")]
    WrongType {
        /// The map.
        map: String,
        /// Its type.
        map_type: MapType,
        /// The type the reader needs.
        expected: MapType,
    },
    /// Pages per CPU for a perf event array's rings must be a power of 2.
    #[error("map {map}: {pages} pages per CPU is not a power of 2")]
    Pages {
        /// The map.
        map: String,
        /// The pages asked for.
        pages: usize,
    },
    /// A system call failed, or the ring held a record that cannot be.
    #[error("map {map}: {action}: {source}")]
    Io {
        /// The map.
        map: String,
        /// What was being done (`mapping the ring`, `waiting for records`).
        action: String,
        /// errno, or `InvalidData` for a malformed record.
        source: io::Error,
    },
}

debug_is_display!(EventError);

/// An `io::Error` as an [`EventError`] naming the map and the action. It
/// allocates the action's text when made: on a hot path, make it inside the
/// error closure (`|e| io_err(..)(e)`).
fn io_err(map: &str, action: impl Into<String>) -> impl FnOnce(io::Error) -> EventError + '_ {
    let action = action.into();
    move |source| EventError::Io {
        map: map.to_owned(),
        action,
        source,
    }
}

fn page_size() -> usize {
    use nix::unistd::{sysconf, SysconfVar};
    sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0)
        .unwrap_or(4096)
}

/// An epoll instance watching `fds` for input, each tagged by its index.
fn epoll_on<'a>(map: &str, fds: impl Iterator<Item = BorrowedFd<'a>>) -> Result<Epoll, EventError> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
        .map_err(|e| io_err(map, "creating an epoll instance")(e.into()))?;
    for (i, fd) in fds.enumerate() {
        epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
            .map_err(|e| io_err(map, "watching the ring with epoll")(e.into()))?;
    }
    Ok(epoll)
}

/// Waits on `epoll` until `ready` says yes, up to `timeout` (`None`: for
/// ever); whether it did. A signal cutting the wait short ends it too.
fn wait_until(
    map: &str,
    epoll: &Epoll,
    timeout: Option<Duration>,
    mut ready: impl FnMut() -> Result<bool, EventError>,
) -> Result<bool, EventError> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if ready()? {
            return Ok(true);
        }
        let timeout = match deadline {
            None => EpollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                // Rounded up: a wait of 0.5 ms must not become a busy loop.
                let ms = left.as_nanos().div_ceil(1_000_000);
                EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
            }
        };
        let mut events = [EpollEvent::empty(); 1];
        match epoll.wait(&mut events, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return ready(),
            Err(e) => return Err(io_err(map, "waiting for records")(e.into())),
        }
    }
}

fn check_type(map: &Map, expected: MapType) -> Result<(), EventError> {
    if map.map_type() == expected {
        Ok(())
    } else {
        Err(EventError::WrongType {
            map: map.name().to_owned(),
            map_type: map.map_type(),
            expected,
        })
    }
}

/// A reader of a `BPF_MAP_TYPE_RINGBUF` map: the consumer page mapped
/// read-write, the producer page and the data read-only, the data once (a
/// record that wraps past its end is copied; libbpf maps the data twice,
/// which the kernel populates whole: twice the ring resident). Records are
/// borrowed in place otherwise. It holds its own fd of the map.
///
/// ```no_run
/// use rawbpf::events::RingBuffer;
/// use std::time::{Duration, Instant};
///
/// let map = rawbpf::Map::from_pin("/sys/fs/bpf/my_ring")?;
/// let mut ring = RingBuffer::new(&map)?;
/// while let Some(record) = ring.next(Some(Duration::from_secs(1)))? {
///     println!("{record:02x?}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RingBuffer {
    name: String,
    maps: RingbufMaps,
    /// The next record's position.
    pos: usize,
    /// The position after the record handed out last: the consumer
    /// position moves there on the next call.
    handed_out: Option<usize>,
    epoll: Epoll,
    fd: OwnedFd,
}

impl RingBuffer {
    /// Maps ring buffer `map` for reading, from where its consumer
    /// position stands.
    pub fn new(map: &Map) -> Result<RingBuffer, EventError> {
        check_type(map, MapType::RINGBUF)?;
        let name = map.name().to_owned();
        let fd = map
            .fd()
            .try_clone_to_owned()
            .map_err(io_err(&name, "duplicating the map's fd"))?;
        let maps = RingbufMaps::new(fd.as_fd(), map.max_entries() as usize, page_size())
            .map_err(io_err(&name, "mapping the ring"))?;
        let epoll = epoll_on(&name, std::iter::once(fd.as_fd()))?;
        Ok(RingBuffer {
            pos: maps.consumer_pos(),
            name,
            maps,
            handed_out: None,
            epoll,
            fd,
        })
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next record, waiting up to `timeout` (`None`: for ever) for one;
    /// `Ok(None)` when none came in time (or a signal cut the wait short).
    /// The record is valid until the next call, which gives its space back
    /// to the producers.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Option<&[u8]>, EventError> {
        if !self.wait(timeout)? {
            return Ok(None);
        }
        self.try_next()
    }

    /// Blocks until a record is waiting, up to `timeout` (`None`: for
    /// ever, unless a signal interrupts it); whether one is. Gives back the
    /// record handed out last.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, EventError> {
        let epoll = &self.epoll;
        let (name, maps, pos, handed_out) = (
            &self.name,
            &mut self.maps,
            &mut self.pos,
            &mut self.handed_out,
        );
        wait_until(name, epoll, timeout, || {
            ready(name, maps, pos, handed_out).map(|r| r.is_some())
        })
    }

    /// The next record if one is there now, without waiting.
    pub fn try_next(&mut self) -> Result<Option<&[u8]>, EventError> {
        let Some((len, next)) = ready(
            &self.name,
            &mut self.maps,
            &mut self.pos,
            &mut self.handed_out,
        )?
        else {
            return Ok(None);
        };
        self.handed_out = Some(next);
        Ok(Some(self.maps.sample(self.pos, len)))
    }
}

impl RingBuffer {
    /// Calls `f` with each record waiting now, in order, without waiting
    /// for more (libbpf's `ring_buffer__consume`); each record's space goes
    /// back to the producers as soon as `f` returns. The number of records.
    pub fn consume(&mut self, f: impl FnMut(&[u8])) -> Result<usize, EventError> {
        if let Some(next) = self.handed_out.take() {
            self.pos = next;
            self.maps.set_consumer_pos(next);
        }
        self.maps
            .consume(&mut self.pos, f)
            .map_err(|e| io_err(&self.name, "reading the ring")(e))
    }
}

/// Gives back the record handed out last and skips discarded ones; the
/// committed record at the consumer position `pos` now, if there is one:
/// its length and the position after it.
fn ready(
    name: &str,
    maps: &mut RingbufMaps,
    pos: &mut usize,
    handed_out: &mut Option<usize>,
) -> Result<Option<(usize, usize)>, EventError> {
    if let Some(next) = handed_out.take() {
        *pos = next;
        maps.set_consumer_pos(next);
    }
    loop {
        let next = maps
            .next(*pos)
            .map_err(|e| io_err(name, "reading the ring")(e))?;
        match next {
            RingbufNext::Sample { next, len } => return Ok(Some((len, next))),
            RingbufNext::Discarded { next } => {
                *pos = next;
                maps.set_consumer_pos(next);
            }
            RingbufNext::Empty | RingbufNext::Busy => return Ok(None),
        }
    }
}

impl Drop for RingBuffer {
    /// Gives back the record handed out last: the next reader starts after it.
    fn drop(&mut self) {
        let _ = ready(
            &self.name,
            &mut self.maps,
            &mut self.pos,
            &mut self.handed_out,
        );
    }
}

impl AsFd for RingBuffer {
    /// The map's fd: readable when a record is waiting.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for RingBuffer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// One record from a perf event array.
#[derive(Debug, PartialEq, Eq)]
pub enum PerfEvent<'a> {
    /// A sample a program wrote on CPU `cpu`. Its `data` is what the
    /// program passed, padded by the kernel so that 4 + its length is a
    /// multiple of 8 (the padding's bytes are not zeroed).
    Sample {
        /// The CPU whose ring it came from.
        cpu: u32,
        /// The bytes.
        data: &'a [u8],
    },
    /// `count` samples were lost on CPU `cpu`: its ring was full.
    Lost {
        /// The CPU.
        cpu: u32,
        /// How many.
        count: u64,
    },
}

/// `PERF_RECORD_LOST`.
const PERF_RECORD_LOST: u32 = 2;
/// `PERF_RECORD_SAMPLE`.
const PERF_RECORD_SAMPLE: u32 = 9;

/// One CPU's event and ring.
struct CpuRing {
    cpu: u32,
    ring: PerfRing,
    tail: u64,
    /// Keeps the event alive (and its slot in the map filled).
    _event: OwnedFd,
}

/// A reader of a `BPF_MAP_TYPE_PERF_EVENT_ARRAY` map: on each CPU a
/// `PERF_COUNT_SW_BPF_OUTPUT` event with a mapped ring, its fd put in the
/// map at the CPU's index (the slots are emptied again on drop). It holds
/// its own fd of the map: the kernel empties the slots set through an fd
/// when that fd closes.
///
/// ```no_run
/// use rawbpf::events::{PerfEvent, PerfEventArray};
///
/// let map = rawbpf::Map::from_pin("/sys/fs/bpf/my_events")?;
/// let mut events = PerfEventArray::new(&map, 8)?;
/// while let Some(event) = events.next(None)? {
///     match event {
///         PerfEvent::Sample { cpu, data } => println!("cpu {cpu}: {data:02x?}"),
///         PerfEvent::Lost { cpu, count } => eprintln!("cpu {cpu}: {count} lost"),
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PerfEventArray {
    name: String,
    rings: Vec<CpuRing>,
    /// The ring to look at first (rings are read in turn).
    next_ring: usize,
    /// A sample handed out: the tail of ring `.0` moves to `.1` on the
    /// next call.
    handed_out: Option<(usize, u64)>,
    scratch: Vec<u8>,
    lost: u64,
    epoll: Epoll,
    fd: OwnedFd,
    elem: ElemSizes,
}

impl PerfEventArray {
    /// Opens an event and a ring of `pages_per_cpu` pages (a power of 2)
    /// on each CPU the map has a slot for, and puts the events in the map.
    /// CPUs that are offline are left out.
    pub fn new(map: &Map, pages_per_cpu: usize) -> Result<PerfEventArray, EventError> {
        check_type(map, MapType::PERF_EVENT_ARRAY)?;
        let name = map.name().to_owned();
        if !pages_per_cpu.is_power_of_two() {
            return Err(EventError::Pages {
                map: name,
                pages: pages_per_cpu,
            });
        }
        let fd = map
            .fd()
            .try_clone_to_owned()
            .map_err(io_err(&name, "duplicating the map's fd"))?;
        let possible = possible_cpus().map_err(|e| EventError::Io {
            map: name.clone(),
            action: "counting the CPUs".into(),
            source: io::Error::other(e.to_string()),
        })?;
        let cpus = (map.max_entries() as usize).min(possible);
        let mut reader = PerfEventArray {
            rings: Vec::with_capacity(cpus),
            next_ring: 0,
            handed_out: None,
            scratch: Vec::new(),
            lost: 0,
            epoll: epoll_on(&name, std::iter::empty())?,
            elem: map.elem_sizes(),
            name,
            fd,
        };
        for cpu in 0..cpus as u32 {
            reader.open_cpu(cpu, pages_per_cpu)?;
        }
        Ok(reader)
    }

    /// The event and ring of one CPU, in the map at the CPU's index.
    fn open_cpu(&mut self, cpu: u32, pages: usize) -> Result<(), EventError> {
        let event = match perf_bpf_output_open(cpu) {
            Ok(fd) => fd,
            // An offline CPU: no event, as libbpf does.
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(()),
            Err(e) => return Err(io_err(&self.name, format!("opening CPU {cpu}'s event"))(e)),
        };
        let ring = PerfRing::new(event.as_fd(), pages, page_size())
            .map_err(io_err(&self.name, format!("mapping CPU {cpu}'s ring")))?;
        self.epoll
            .add(
                event.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, self.rings.len() as u64),
            )
            .map_err(|e| io_err(&self.name, "watching the ring with epoll")(e.into()))?;
        let slot = (event.as_raw_fd() as u32).to_ne_bytes();
        sys::map_update(self.fd.as_fd(), self.elem, &cpu.to_ne_bytes(), &slot, 0).map_err(
            io_err(&self.name, format!("putting CPU {cpu}'s event in the map")),
        )?;
        let tail = ring.tail();
        self.rings.push(CpuRing {
            cpu,
            ring,
            tail,
            _event: event,
        });
        Ok(())
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CPUs read (those online when the reader was made).
    pub fn cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.rings.iter().map(|r| r.cpu)
    }

    /// Samples lost so far, on every CPU (the `PERF_RECORD_LOST` read).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// The next sample or loss report, waiting up to `timeout` (`None`:
    /// for ever) for one; `Ok(None)` when none came in time (or a signal
    /// cut the wait short). A sample is valid until the next call.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Option<PerfEvent<'_>>, EventError> {
        if !self.wait(timeout)? {
            return Ok(None);
        }
        self.try_next()
    }

    /// Blocks until a record is waiting, up to `timeout` (`None`: for
    /// ever, unless a signal interrupts it); whether one is. Gives back the
    /// sample handed out last.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, EventError> {
        self.give_back();
        // A perf event reports input once per wake-up: every ring is seen
        // empty before each wait, so one written since wakes it.
        let (rings, next_ring) = (&self.rings, self.next_ring);
        wait_until(&self.name, &self.epoll, timeout, || {
            Ok(with_data(rings, next_ring).is_some())
        })
    }

    /// Moves the tail past the sample handed out last.
    fn give_back(&mut self) {
        if let Some((i, next)) = self.handed_out.take() {
            let r = &mut self.rings[i];
            r.tail = next;
            r.ring.set_tail(next);
        }
    }

    fn with_data(&self) -> Option<usize> {
        with_data(&self.rings, self.next_ring)
    }

    /// The next sample or loss report if one is there now, without waiting.
    pub fn try_next(&mut self) -> Result<Option<PerfEvent<'_>>, EventError> {
        self.give_back();
        // Records other than samples and losses are skipped.
        let (i, head) = loop {
            let Some(i) = self.with_data() else {
                return Ok(None);
            };
            self.next_ring = (i + 1) % self.rings.len();
            let r = &mut self.rings[i];
            let head = r.ring.head();
            let cpu = r.cpu;
            let read_err = |e| io_err(&self.name, format!("reading CPU {cpu}'s ring"))(e);
            let Some((kind, next)) = r.ring.peek(r.tail, head).map_err(read_err)? else {
                continue;
            };
            if kind == PERF_RECORD_SAMPLE {
                break (i, head);
            }
            let lost = if kind == PERF_RECORD_LOST {
                let rec = r.ring.record(r.tail, head, &mut self.scratch);
                let rec = rec.map_err(|e| io_err(&self.name, "reading a loss record")(e))?;
                rec.map(|rec| lost_count(rec.body))
            } else {
                None
            };
            let cpu = r.cpu;
            r.tail = next;
            r.ring.set_tail(next);
            if let Some(count) = lost {
                self.lost += count;
                return Ok(Some(PerfEvent::Lost { cpu, count }));
            }
        };
        let r = &self.rings[i];
        let rec = r
            .ring
            .record(r.tail, head, &mut self.scratch)
            .map_err(|e| io_err(&self.name, format!("reading CPU {}'s ring", r.cpu))(e))?
            .expect("the sample found above");
        self.handed_out = Some((i, rec.next));
        let data = raw_sample(rec.body).ok_or_else(|| EventError::Io {
            map: self.name.clone(),
            action: format!("reading CPU {}'s ring", r.cpu),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                "a sample whose raw size is larger than the record",
            ),
        })?;
        Ok(Some(PerfEvent::Sample { cpu: r.cpu, data }))
    }
}

/// The first ring, in turn from `from`, with a record in it.
fn with_data(rings: &[CpuRing], from: usize) -> Option<usize> {
    let n = rings.len();
    (0..n)
        .map(|k| (from + k) % n)
        .find(|&i| rings[i].ring.head() != rings[i].tail)
}

/// A `PERF_RECORD_SAMPLE` of `PERF_SAMPLE_RAW`: `{ u32 size; u8 data[size]; }`.
fn raw_sample(body: &[u8]) -> Option<&[u8]> {
    let size = u32::from_ne_bytes(body.get(..4)?.try_into().ok()?) as usize;
    body.get(4..4usize.checked_add(size)?)
}

/// A `PERF_RECORD_LOST`: `{ u64 id; u64 lost; }`.
fn lost_count(body: &[u8]) -> u64 {
    body.get(8..16)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

impl Drop for PerfEventArray {
    /// Empties the slots this reader filled (its events close after).
    fn drop(&mut self) {
        for r in &self.rings {
            let _ = sys::map_delete(self.fd.as_fd(), self.elem, &r.cpu.to_ne_bytes());
        }
    }
}

impl AsFd for PerfEventArray {
    /// An epoll fd watching every CPU's event: readable when a record may
    /// be waiting.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }
}

impl AsRawFd for PerfEventArray {
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::{lost_count, raw_sample, PerfEventArray, RingBuffer};

    /// A reader can be moved to the thread that reads.
    #[test]
    fn readers_are_send() {
        fn send<T: Send>() {}
        send::<RingBuffer>();
        send::<PerfEventArray>();
    }

    #[test]
    fn raw_samples_and_losses_parse() {
        let mut body = 3u32.to_ne_bytes().to_vec();
        body.extend_from_slice(&[1, 2, 3, 0xee]);
        assert_eq!(raw_sample(&body), Some(&[1u8, 2, 3][..]));
        assert_eq!(raw_sample(&9u32.to_ne_bytes()), None);
        assert_eq!(raw_sample(&[1, 2]), None);
        let mut lost = 7u64.to_ne_bytes().to_vec();
        lost.extend_from_slice(&42u64.to_ne_bytes());
        assert_eq!(lost_count(&lost), 42);
    }
}
