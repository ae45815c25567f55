//! The memory event streams share with their reader: a BPF ring buffer
//! map's consumer and producer pages (`BPF_MAP_TYPE_RINGBUF`), and the ring
//! of a perf event that `bpf_perf_event_output` writes into. Each is an
//! `mmap` of the kernel object's fd; positions are read with acquire and
//! written with release ordering, as the kernel's side pairs them.
//!
//! What makes handing out `&[u8]` over this memory sound: a slice is only
//! ever made over a record the kernel has committed (a ring buffer record
//! whose busy bit is clear, a perf record below `data_head`), and the
//! kernel writes no byte between the consumer position and the producer
//! position until the consumer position moves past it. Moving it takes
//! `&mut self`, so no record borrowed from `&self` is alive then. Only a
//! second consumer of the same ring, breaking that protocol from another
//! process, could change them (as with libbpf and aya).

use super::perf::{perf_event_enable, perf_event_open, PerfOpen, PERF_TYPE_SOFTWARE};
use std::ffi::c_void;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// One shared mapping of a kernel object's memory, unmapped on drop.
struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, writable: bool, offset: usize) -> io::Result<Mapping> {
        use nix::sys::mman::{mmap, MapFlags, ProtFlags};
        let length = NonZeroUsize::new(len).ok_or(io::ErrorKind::InvalidInput)?;
        let offset = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let prot = if writable {
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
        } else {
            ProtFlags::PROT_READ
        };
        // SAFETY: a new shared mapping at an address the kernel chooses (no
        // hint): it aliases no Rust memory. The fd is live for the call.
        let ptr = unsafe { mmap(None, length, prot, MapFlags::MAP_SHARED, fd, offset)? };
        Ok(Mapping { ptr, len })
    }

    /// The address `offset` bytes into the mapping (every caller's
    /// arithmetic keeps it inside; checked in debug builds).
    fn at(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset < self.len);
        self.ptr.as_ptr().cast::<u8>().wrapping_add(offset)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, once; every
        // borrow of it is tied to the owner's lifetime, so none outlives it.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr, self.len) };
    }
}

// SAFETY: a Mapping is the sole owner of its pages (like a Box); nothing
// in it is tied to the thread that made it.
unsafe impl Send for Mapping {}

/// `BPF_RINGBUF_BUSY_BIT`: the producer has reserved the record but not
/// committed it yet.
const RINGBUF_BUSY: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: the producer discarded the record.
const RINGBUF_DISCARD: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`: `{ u32 len; u32 pg_off; }` before each record.
const RINGBUF_HDR: usize = 8;

/// A `BPF_MAP_TYPE_RINGBUF` map mapped for a reader: the consumer
/// position's page read-write at offset 0, then the producer position's
/// page and the data read-only. The kernel lays the data out twice in a
/// row so that a reader may see a wrapping record whole; its mapping
/// populates every page it maps (a resident set of twice the ring), so the
/// data is mapped once, and the rare record that wraps is copied.
pub struct RingbufMaps {
    consumer: Mapping,
    producer: Mapping,
    page: usize,
    /// The data size (`max_entries`, a power of 2) minus one.
    mask: usize,
    /// A wrapping record, copied whole.
    scratch: Vec<u8>,
    /// The producer position last read: records before it are committed
    /// or being written, so it is read again only once the reader gets
    /// there (as libbpf's consume loop does).
    producer_seen: usize,
}

/// What is at the consumer position.
pub enum RingbufNext {
    /// Nothing: the consumer has caught up with the producer.
    Empty,
    /// A record still being written (the producer will wake the reader).
    Busy,
    /// A record its producer discarded: skip to `next`.
    Discarded { next: usize },
    /// A committed record of `len` bytes; the one after it is at `next`.
    Sample { next: usize, len: usize },
}

impl RingbufMaps {
    /// Maps the ring buffer map `fd` of `data_size` bytes (its
    /// `max_entries`: a power of 2 and a multiple of the page size, which
    /// the kernel enforced when it created the map).
    pub fn new(fd: BorrowedFd<'_>, data_size: usize, page: usize) -> io::Result<RingbufMaps> {
        if !data_size.is_power_of_two() || data_size < page || !page.is_power_of_two() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let consumer = Mapping::new(fd, page, true, 0)?;
        let len = data_size
            .checked_add(page)
            .ok_or(io::ErrorKind::InvalidInput)?;
        let producer = Mapping::new(fd, len, false, page)?;
        Ok(RingbufMaps {
            consumer,
            producer,
            page,
            mask: data_size - 1,
            scratch: Vec::new(),
            producer_seen: 0,
        })
    }

    fn consumer_atomic(&self) -> &AtomicUsize {
        // SAFETY: `consumer_pos` (an unsigned long, page-aligned) is the
        // first word of the consumer page, mapped for as long as `self`;
        // the kernel reads it concurrently, hence an atomic.
        unsafe { AtomicUsize::from_ptr(self.consumer.at(0).cast::<usize>()) }
    }

    /// The consumer position (only this reader writes it).
    pub fn consumer_pos(&self) -> usize {
        self.consumer_atomic().load(Ordering::Acquire)
    }

    /// Hands the bytes before `pos` back to the producer. `&mut self`: no
    /// record borrowed from this mapping may be alive.
    pub fn set_consumer_pos(&mut self, pos: usize) {
        self.consumer_atomic().store(pos, Ordering::Release);
    }

    /// The producer position, with everything the producer committed
    /// before it visible.
    pub fn producer_pos(&self) -> usize {
        // SAFETY: `producer_pos` is the first word of the producer page,
        // mapped (read-only) for as long as `self`; the kernel writes it
        // concurrently, hence an atomic, and only ever loaded here.
        let p = unsafe { AtomicUsize::from_ptr(self.producer.at(0).cast::<usize>()) };
        p.load(Ordering::Acquire)
    }

    /// The data offset (within the producer mapping) of position `pos`.
    fn data_offset(&self, pos: usize) -> usize {
        self.page + (pos & self.mask)
    }

    /// What the record at position `pos` is (`pos` at or after the
    /// consumer position). A length that does not fit the ring is
    /// `InvalidData`.
    #[inline]
    pub fn next(&mut self, pos: usize) -> io::Result<RingbufNext> {
        if self.producer_seen.wrapping_sub(pos) as isize <= 0 {
            self.producer_seen = self.producer_pos();
            if self.producer_seen.wrapping_sub(pos) as isize <= 0 {
                return Ok(RingbufNext::Empty);
            }
        }
        // SAFETY: the 8-byte-aligned header word at `pos` is inside the
        // first copy of the data; the producer writes it concurrently (it
        // clears the busy bit with a release store), hence an atomic load.
        let header = unsafe {
            AtomicU32::from_ptr(self.producer.at(self.data_offset(pos)).cast::<u32>())
                .load(Ordering::Acquire)
        };
        if header & RINGBUF_BUSY != 0 {
            return Ok(RingbufNext::Busy);
        }
        let len = (header & !(RINGBUF_BUSY | RINGBUF_DISCARD)) as usize;
        if len + RINGBUF_HDR > self.mask + 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("record at {pos} says {len} bytes, more than the ring holds"),
            ));
        }
        let next = pos.wrapping_add(record_span(len));
        Ok(if header & RINGBUF_DISCARD != 0 {
            RingbufNext::Discarded { next }
        } else {
            RingbufNext::Sample { next, len }
        })
    }

    /// From position `pos`, calls `f` with each committed record waiting
    /// now and moves the consumer position past each (libbpf's consume
    /// loop: the producer position read once per pass, each header once);
    /// stops at the producer position or a record still being written.
    /// Leaves `pos` after the last record given; the number given.
    pub fn consume(&mut self, pos: &mut usize, mut f: impl FnMut(&[u8])) -> io::Result<usize> {
        let mut n = 0;
        let mask = self.mask;
        let size = mask + 1;
        let data = self.producer.at(self.page);
        let consumer = self.consumer_atomic() as *const AtomicUsize;
        loop {
            let producer = self.producer_pos();
            self.producer_seen = producer;
            if producer.wrapping_sub(*pos) as isize <= 0 {
                return Ok(n);
            }
            let mut at = *pos;
            while producer.wrapping_sub(at) as isize > 0 {
                let off = at & mask;
                // SAFETY: as in `next`: the 8-byte-aligned header word at
                // `off`, inside the data, written concurrently by the
                // producer (the busy bit cleared with a release store).
                let header = unsafe {
                    AtomicU32::from_ptr(data.wrapping_add(off).cast::<u32>())
                        .load(Ordering::Acquire)
                };
                if header & RINGBUF_BUSY != 0 {
                    break;
                }
                let len = (header & !(RINGBUF_BUSY | RINGBUF_DISCARD)) as usize;
                let start = off + RINGBUF_HDR;
                if start + len >= size {
                    // The rare record that wraps, or one whose length the
                    // ring cannot hold (which the kernel never writes).
                    if len + RINGBUF_HDR > size {
                        *pos = at;
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("record at {at} says {len} bytes, more than the ring holds"),
                        ));
                    }
                    if header & RINGBUF_DISCARD == 0 {
                        f(self.sample(at, len));
                        n += 1;
                    }
                } else if header & RINGBUF_DISCARD == 0 {
                    // SAFETY: a committed record (busy bit clear, read with
                    // acquire) of `len` bytes ending inside the one copy of
                    // the data; the kernel does not write it until the
                    // consumer position passes it, which happens below,
                    // after `f` returned.
                    f(unsafe { std::slice::from_raw_parts(data.wrapping_add(start), len) });
                    n += 1;
                }
                at = at.wrapping_add(record_span(len));
                // SAFETY: `consumer` points into `self.consumer`, mapped for
                // as long as `self` (see `consumer_atomic`).
                unsafe { (*consumer).store(at, Ordering::Release) };
            }
            let stopped = producer.wrapping_sub(at) as isize > 0;
            *pos = at;
            if stopped {
                return Ok(n);
            }
        }
    }

    /// The bytes of the committed record of `len` bytes at `pos`, as
    /// [`next`](Self::next) found it (`RingbufNext::Sample`): borrowed from
    /// the mapping, or for a record that wraps past the data's end, copied.
    #[inline]
    pub fn sample(&mut self, pos: usize, len: usize) -> &[u8] {
        let size = self.mask + 1;
        let start = (pos.wrapping_add(RINGBUF_HDR)) & self.mask;
        let len = len.min(size - RINGBUF_HDR);
        let first = len.min(size - start);
        // SAFETY: a committed record (busy bit clear, read with acquire
        // after the producer position covered it) of `len` bytes, at most
        // the data size minus its header: `first` bytes from `start` end
        // inside the one copy of the data, and the rest (if it wraps)
        // starts at the data's beginning. The kernel does not write them
        // until the consumer position passes them, which takes `&mut self`
        // (see the module's comment).
        let head =
            unsafe { std::slice::from_raw_parts(self.producer.at(self.page + start), first) };
        if first == len {
            return head;
        }
        // SAFETY: as above: the wrapped rest, from the data's beginning.
        let rest = unsafe { std::slice::from_raw_parts(self.producer.at(self.page), len - first) };
        self.scratch.clear();
        self.scratch.extend_from_slice(head);
        self.scratch.extend_from_slice(rest);
        &self.scratch
    }
}

/// How far a ring buffer record of `len` bytes moves the position: its
/// header and data, rounded up to 8 bytes. Masked rather than
/// `next_multiple_of(8)`, whose remainder test and branch cost `consume`
/// 10% of its rate (`bash bench/run.sh --events-only`: 319 M records/s
/// against 361 M).
#[inline]
fn record_span(len: usize) -> usize {
    (len + RINGBUF_HDR + 7) & !7
}

/// `PERF_COUNT_SW_BPF_OUTPUT`: the software event `bpf_perf_event_output`
/// writes samples into.
const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
/// `PERF_SAMPLE_RAW`: each sample carries `{ u32 size; u8 data[size]; }`.
const PERF_SAMPLE_RAW: u64 = 1 << 10;
/// Offset of `data_head` in `struct perf_event_mmap_page`.
const DATA_HEAD: usize = 1024;
/// Offset of `data_tail`.
const DATA_TAIL: usize = 1032;
/// `struct perf_event_header`: `{ u32 type; u16 misc; u16 size; }`.
const PERF_HDR: usize = 8;

/// Opens a `PERF_COUNT_SW_BPF_OUTPUT` event on `cpu` (any process), one
/// raw sample per output and a wake-up for each, enabled.
pub fn perf_bpf_output_open(cpu: u32) -> io::Result<OwnedFd> {
    let open = PerfOpen {
        type_: PERF_TYPE_SOFTWARE,
        config: PERF_COUNT_SW_BPF_OUTPUT,
        sample_type: PERF_SAMPLE_RAW,
        sample_period: 1,
        wakeup_events: 1,
        ..PerfOpen::default()
    };
    let cpu = i32::try_from(cpu).map_err(|_| io::ErrorKind::InvalidInput)?;
    let fd = perf_event_open(&open, -1, cpu)?;
    use std::os::fd::AsFd;
    perf_event_enable(fd.as_fd())?;
    Ok(fd)
}

/// A perf event's ring: its `perf_event_mmap_page` and `2^n` data pages,
/// mapped read-write (the reader writes `data_tail`).
pub struct PerfRing {
    map: Mapping,
    page: usize,
    data_size: usize,
}

/// One perf record, borrowed in place or, where it wraps around the end
/// of the ring, copied.
pub struct PerfRecord<'a> {
    /// The position after it.
    pub next: u64,
    /// The bytes after its 8-byte header.
    pub body: &'a [u8],
}

impl PerfRing {
    /// Maps the ring of perf event `fd` with `pages` data pages (a power of 2).
    pub fn new(fd: BorrowedFd<'_>, pages: usize, page: usize) -> io::Result<PerfRing> {
        if !pages.is_power_of_two() || !page.is_power_of_two() || page <= DATA_TAIL + 8 {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let data_size = pages.checked_mul(page).ok_or(io::ErrorKind::InvalidInput)?;
        let len = data_size
            .checked_add(page)
            .ok_or(io::ErrorKind::InvalidInput)?;
        let map = Mapping::new(fd, len, true, 0)?;
        Ok(PerfRing {
            map,
            page,
            data_size,
        })
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: `data_head` and `data_tail` are 8-byte-aligned u64s of
        // the metadata page, mapped for as long as `self`; the kernel
        // writes the one and reads the other concurrently, hence atomics.
        unsafe { AtomicU64::from_ptr(self.map.at(offset).cast::<u64>()) }
    }

    /// `data_head`, with every record before it visible.
    pub fn head(&self) -> u64 {
        self.word(DATA_HEAD).load(Ordering::Acquire)
    }

    /// `data_tail` (only this reader writes it).
    pub fn tail(&self) -> u64 {
        self.word(DATA_TAIL).load(Ordering::Acquire)
    }

    /// Hands the bytes before `pos` back to the kernel. `&mut self`: no
    /// record borrowed from this ring may be alive.
    pub fn set_tail(&mut self, pos: u64) {
        self.word(DATA_TAIL).store(pos, Ordering::Release);
    }

    /// Copies committed bytes from position `pos` into `out` (all of it),
    /// in two parts where they wrap around the end of the data.
    fn copy_to(&self, pos: u64, out: &mut [u8]) {
        let len = out.len();
        assert!(len <= self.data_size);
        let off = (pos % self.data_size as u64) as usize;
        let first = len.min(self.data_size - off);
        // SAFETY: both ranges lie inside the data pages (`off + first` is
        // at most the data size, `len - first` at most `off`) and hold
        // committed bytes the kernel does not write until the tail passes
        // them; `out` is `len` bytes of Rust memory, not in the mapping.
        unsafe {
            let dst = out.as_mut_ptr();
            std::ptr::copy_nonoverlapping(self.map.at(self.page + off), dst, first);
            std::ptr::copy_nonoverlapping(self.map.at(self.page), dst.add(first), len - first);
        }
    }

    /// The type of the record at `tail` (before `head`, which
    /// [`head`](Self::head) returned) and the position after it. A size
    /// that does not fit between `tail` and `head` is `InvalidData`.
    pub fn peek(&self, tail: u64, head: u64) -> io::Result<Option<(u32, u64)>> {
        let avail = head.wrapping_sub(tail);
        if avail == 0 {
            return Ok(None);
        }
        if avail < PERF_HDR as u64 {
            return Err(bad_perf(tail, "a partial header"));
        }
        let mut header = [0u8; PERF_HDR];
        self.copy_to(tail, &mut header);
        let kind = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
        let size = u16::from_ne_bytes([header[6], header[7]]) as usize;
        if size < PERF_HDR || size as u64 > avail || size > self.data_size {
            return Err(bad_perf(tail, &format!("a size of {size} bytes")));
        }
        Ok(Some((kind, tail.wrapping_add(size as u64))))
    }

    /// The record at `tail` (before `head`): in place, or copied into
    /// `scratch` if it wraps around the end of the ring.
    pub fn record<'a>(
        &'a self,
        tail: u64,
        head: u64,
        scratch: &'a mut Vec<u8>,
    ) -> io::Result<Option<PerfRecord<'a>>> {
        let Some((_, next)) = self.peek(tail, head)? else {
            return Ok(None);
        };
        let body_len = (next.wrapping_sub(tail) as usize) - PERF_HDR;
        let body_pos = tail.wrapping_add(PERF_HDR as u64);
        let off = (body_pos % self.data_size as u64) as usize;
        let body: &'a [u8] = if off + body_len <= self.data_size {
            // SAFETY: committed bytes (below `head`, read with acquire) of
            // the data pages, which the kernel does not write until the
            // tail passes them; moving the tail takes `&mut self`.
            unsafe { std::slice::from_raw_parts(self.map.at(self.page + off), body_len) }
        } else {
            scratch.resize(body_len, 0);
            self.copy_to(body_pos, scratch);
            scratch
        };
        Ok(Some(PerfRecord { next, body }))
    }
}

fn bad_perf(pos: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("perf record at {pos} has {what}"),
    )
}
