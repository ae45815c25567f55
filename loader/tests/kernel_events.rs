//! Event streams in the real kernel, through the library: the records that
//! programs/events.bpf.c writes into its ring buffer and perf event array
//! arrive, exactly, in order, with nothing lost — from a program run with
//! BPF_PROG_TEST_RUN (the test chooses each record's bytes) and from a
//! tracepoint on getppid(). Ring buffers need 5.8+. Needs root (skips with
//! a reason otherwise; under CI=true a skip fails).

#[path = "../../tests/support/mod.rs"]
mod support;

use rawbpf::events::{EventError, PerfEvent, PerfEventArray, RingBuffer};
use rawbpf::link::{attach_program, AttachTargets};
use rawbpf::{Collection, LoadOptions, ObjectSpec};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{kernel, obj};

/// Long enough for any record a test waits for; the tests never wait it out.
const WAIT: Option<Duration> = Some(Duration::from_secs(10));

/// `struct event` of events.bpf.c: magic "EVT!", tid, seq, source 1, 0.
fn tracepoint_event(tid: u32, seq: u32) -> Vec<u8> {
    [0x2154_5645, tid, seq, 1, 0]
        .iter()
        .flat_map(|w: &u32| w.to_le_bytes())
        .collect()
}

struct Loaded {
    spec: ObjectSpec,
    c: Collection,
}

fn load() -> Loaded {
    let name = "events.bpf.o";
    let spec = ObjectSpec::from_file(obj(name)).unwrap();
    let c = Collection::load(&spec, &LoadOptions::for_file(Path::new(name)))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));
    Loaded { spec, c }
}

impl Loaded {
    /// Runs `produce` on `packet`: one record of its bytes in each map.
    fn produce(&self, packet: &[u8]) {
        let run = self
            .c
            .program("produce")
            .unwrap()
            .test_run(packet, 1)
            .unwrap();
        assert_eq!(run.retval, 0, "produce could not copy the packet");
    }

    fn ring(&self) -> RingBuffer {
        RingBuffer::new(self.c.map("ring").unwrap()).unwrap()
    }

    fn perf(&self, pages: usize) -> PerfEventArray {
        PerfEventArray::new(self.c.map("perf").unwrap(), pages).unwrap()
    }
}

/// Record `i` of a test: 14 to 255 bytes (a packet's minimum to the
/// program's maximum), lengths of every remainder mod 8, bytes from `i`.
fn record(i: usize) -> Vec<u8> {
    let len = 14 + (i * 37) % 242;
    (0..len).map(|k| (i * 7 + k) as u8).collect()
}

/// The length a perf sample of `len` bytes arrives with: padded so that
/// its 4-byte size and it make a multiple of 8.
fn perf_len(len: usize) -> usize {
    (len + 4).next_multiple_of(8) - 4
}

/// Runs this thread on one CPU only (perf samples go to the ring of the
/// CPU the program runs on, and each CPU's ring is in order by itself);
/// gives the CPU.
fn stay_on_one_cpu() -> u32 {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
    let cpu = (0..CpuSet::count())
        .find(|&c| allowed.is_set(c).unwrap_or(false))
        .unwrap();
    let mut one = CpuSet::new();
    one.set(cpu).unwrap();
    sched_setaffinity(Pid::from_raw(0), &one).unwrap();
    cpu as u32
}

fn this_thread() -> u32 {
    nix::unistd::gettid().as_raw() as u32
}

#[test]
fn ring_buffer_gives_each_test_run_record_in_order() {
    if !kernel("ring_buffer_gives_each_test_run_record_in_order") {
        return;
    }
    let l = load();
    let mut ring = l.ring();
    assert_eq!(ring.try_next().unwrap(), None, "a new ring is empty");
    // 200 records of 8 to 263 bytes with their headers, about 29 KiB:
    // the 16 KiB ring wraps around, read in rounds of 25.
    for round in 0..8 {
        let ids: Vec<usize> = (round * 25..round * 25 + 25).collect();
        for &i in &ids {
            l.produce(&record(i));
        }
        for &i in &ids {
            let got = ring.next(WAIT).unwrap().expect("a record");
            assert_eq!(got, record(i), "record {i}");
        }
    }
    assert_eq!(ring.try_next().unwrap(), None, "no record more");
    // A reader dropped with a record in hand has consumed it: the next
    // reader of the map starts after it.
    l.produce(&record(500));
    l.produce(&record(501));
    assert_eq!(ring.next(WAIT).unwrap(), Some(&record(500)[..]));
    drop(ring);
    let mut again = l.ring();
    assert_eq!(again.next(WAIT).unwrap(), Some(&record(501)[..]));
    assert_eq!(again.try_next().unwrap(), None);
}

/// `consume` hands every waiting record to its callback, in order, across
/// the ring's wrap, after a record `next` handed out (which it gives back
/// first), and returns how many.
#[test]
fn ring_buffer_consume_takes_what_waits() {
    if !kernel("ring_buffer_consume_takes_what_waits") {
        return;
    }
    let l = load();
    let mut ring = l.ring();
    assert_eq!(ring.consume(|_| panic!("a new ring is empty")).unwrap(), 0);
    let mut next = 0;
    for round in 0..8 {
        let ids: Vec<usize> = (round * 25..round * 25 + 25).collect();
        for &i in &ids {
            l.produce(&record(i));
        }
        if round == 3 {
            assert_eq!(ring.next(WAIT).unwrap(), Some(&record(next)[..]));
            next += 1;
        }
        let n = ring
            .consume(|r| {
                assert_eq!(r, record(next), "record {next}");
                next += 1;
            })
            .unwrap();
        assert_eq!(n, if round == 3 { 24 } else { 25 });
    }
    assert_eq!(next, 200);
    assert_eq!(ring.try_next().unwrap(), None);
}

#[test]
fn ring_buffer_wakes_a_blocked_reader() {
    if !kernel("ring_buffer_wakes_a_blocked_reader") {
        return;
    }
    let l = load();
    let mut ring = l.ring();
    let start = Instant::now();
    assert_eq!(ring.next(Some(Duration::from_millis(30))).unwrap(), None);
    assert!(start.elapsed() >= Duration::from_millis(30), "waited");
    // The producer runs while the reader waits (or before it does: either
    // way the record comes, through the epoll wake-up or at once).
    std::thread::scope(|s| {
        s.spawn(|| l.produce(&record(1)));
        let got = ring.next(WAIT).unwrap().expect("a record");
        assert_eq!(got, record(1));
    });
}

#[test]
fn perf_event_array_gives_each_test_run_record_in_order() {
    if !kernel("perf_event_array_gives_each_test_run_record_in_order") {
        return;
    }
    let cpu = stay_on_one_cpu();
    let l = load();
    // One 4 KiB page per CPU: wraps every 20 records or so.
    let mut perf = l.perf(1);
    assert!(perf.cpus().any(|c| c == cpu), "CPU {cpu} has a ring");
    for round in 0..20 {
        let ids: Vec<usize> = (round * 10..round * 10 + 10).collect();
        for &i in &ids {
            l.produce(&record(i));
        }
        for &i in &ids {
            let want = record(i);
            match perf.next(WAIT).unwrap().expect("a record") {
                PerfEvent::Sample { cpu: c, data } => {
                    assert_eq!(c, cpu, "record {i}: from the CPU it ran on");
                    assert_eq!(data.len(), perf_len(want.len()), "record {i}'s length");
                    assert_eq!(&data[..want.len()], &want[..], "record {i}");
                }
                lost => panic!("record {i}: {lost:?}"),
            }
        }
    }
    assert_eq!(perf.try_next().unwrap(), None, "no record more");
    assert_eq!(perf.lost(), 0);
}

#[test]
fn perf_event_array_counts_what_a_full_ring_lost() {
    if !kernel("perf_event_array_counts_what_a_full_ring_lost") {
        return;
    }
    stay_on_one_cpu();
    let l = load();
    let mut perf = l.perf(1);
    // 100 records of 255 bytes (272 with headers) into a 4 KiB ring.
    let full = vec![0xabu8; 255];
    for _ in 0..100 {
        l.produce(&full);
    }
    let (mut samples, mut lost) = (0u64, 0u64);
    let mut read = |perf: &mut PerfEventArray| {
        while let Some(event) = perf.try_next().unwrap() {
            match event {
                PerfEvent::Sample { data, .. } => {
                    assert_eq!(&data[..255], &full[..]);
                    samples += 1;
                }
                PerfEvent::Lost { count, .. } => lost += count,
            }
        }
    };
    read(&mut perf);
    // The kernel writes the loss record before the next sample that fits.
    l.produce(&full);
    read(&mut perf);
    assert!(samples > 1 && lost > 0, "{samples} read, {lost} lost");
    assert_eq!(samples + lost, 101, "every record read or counted lost");
    assert_eq!(perf.lost(), lost);
}

#[test]
fn tracepoint_records_arrive_in_both_maps() {
    if !kernel("tracepoint_records_arrive_in_both_maps") {
        return;
    }
    let cpu = stay_on_one_cpu();
    let l = load();
    let mut ring = l.ring();
    let mut perf = l.perf(2);
    let program = l.c.program("on_getppid").unwrap();
    let links = attach_program(
        program,
        l.spec.program("on_getppid").unwrap(),
        &AttachTargets::default(),
    )
    .unwrap();
    // Only this thread's getppid() calls write records.
    let tid = this_thread();
    let bss = l.c.map(".bss").unwrap();
    let mut state = bss.lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
    state[..4].copy_from_slice(&tid.to_le_bytes());
    bss.update(&0u32.to_ne_bytes(), &state).unwrap();
    for _ in 0..50 {
        std::hint::black_box(nix::unistd::getppid());
    }
    for seq in 0..50 {
        let got = ring.next(WAIT).unwrap().expect("a ring record");
        assert_eq!(got, tracepoint_event(tid, seq), "ring record {seq}");
    }
    assert_eq!(ring.try_next().unwrap(), None);
    for seq in 0..50 {
        let want = tracepoint_event(tid, seq);
        let got = perf.next(WAIT).unwrap().expect("a perf record");
        assert_eq!(
            got,
            PerfEvent::Sample {
                cpu,
                data: &want[..]
            },
            "perf record {seq}"
        );
    }
    assert_eq!(perf.try_next().unwrap(), None);
    assert_eq!(perf.lost(), 0);
    drop(links);
}

#[test]
fn readers_refuse_a_map_of_another_type() {
    if !kernel("readers_refuse_a_map_of_another_type") {
        return;
    }
    let l = load();
    let err = RingBuffer::new(l.c.map("perf").unwrap()).err().unwrap();
    assert!(matches!(err, EventError::WrongType { .. }));
    assert_eq!(
        err.to_string(),
        "map perf is a perf_event_array, not a ringbuf"
    );
    let err = PerfEventArray::new(l.c.map("ring").unwrap(), 1)
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "map ring is a ringbuf, not a perf_event_array"
    );
    let err = PerfEventArray::new(l.c.map("perf").unwrap(), 3)
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "map perf: 3 pages per CPU is not a power of 2"
    );
}
