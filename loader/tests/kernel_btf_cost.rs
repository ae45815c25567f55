//! What opening the kernel's BTF costs: `KernelBtf::open_kernel` for a
//! CO-RE object's worth of names against reading and parsing all of vmlinux
//! BTF (what libbpf does), in time and in heap bytes at the peak. A
//! measurement, not a check of this machine's speed: ignored by default.
//!
//! ```text
//! cargo test --release -p rawbpf --test kernel_btf_cost -- --ignored --nocapture
//! ```

use rawbpf::kernel_btf::{KernelBtf, VMLINUX};
use rawbpf::obj::btf::Btf;
use rawbpf::obj::core::TargetTypes;
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed straight to `System`; the counters are atomics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Best time of `runs`, and the most heap any run held above what was live before it.
fn measure<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut peak = 0;
    for _ in 0..runs {
        let before = LIVE.load(Relaxed);
        PEAK.store(before, Relaxed);
        let t = Instant::now();
        let kept = f();
        best = best.min(t.elapsed());
        drop(kept);
        peak = peak.max(PEAK.load(Relaxed) - before);
    }
    (best, peak)
}

/// The names a CO-RE object with a few tracing programs asks for.
const NAMES: [&str; 10] = [
    "task_struct",
    "mm_struct",
    "file",
    "inode",
    "sk_buff",
    "sock",
    "cred",
    "pid_t",
    "btf_trace_sched_switch",
    "do_unlinkat",
];

#[test]
#[ignore = "a measurement: run with --release --ignored --nocapture"]
fn open_for_ten_names_vs_full_parse() {
    if std::fs::metadata(VMLINUX).is_err() {
        eprintln!("SKIP: no {VMLINUX}");
        return;
    }
    let wanted: BTreeSet<String> = NAMES.iter().map(|s| s.to_string()).collect();
    let runs = 20;
    let (lazy, lazy_heap) = measure(runs, || {
        let k = KernelBtf::open_kernel(&wanted).unwrap();
        // What a CO-RE load then does: each root type and its members.
        for name in NAMES {
            for id in k.ids_by_essential_name(name).unwrap() {
                let t = k.type_by_id(id).unwrap().into_owned();
                let _ = k.string(t.name_off).unwrap();
                if let rawbpf::obj::btf::BtfTypeData::Members(m) = &t.data {
                    for m in m {
                        let _ = k.string(m.name_off).unwrap();
                        let _ = k.type_by_id(m.type_id).unwrap();
                    }
                }
            }
        }
        k
    });
    let (open_only, open_heap) = measure(runs, || KernelBtf::open_kernel(&wanted).unwrap());
    let (full, full_heap) = measure(runs, || {
        let bytes = std::fs::read(VMLINUX).unwrap();
        let btf = Btf::parse(&bytes).unwrap();
        for name in NAMES {
            let _ = TargetTypes::ids_by_essential_name(&btf, name).unwrap();
        }
        btf
    });
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "KernelBtf::open_kernel, 10 names:                  {:.2} ms, peak heap {:.2} MiB",
        open_only.as_secs_f64() * 1e3,
        mib(open_heap)
    );
    println!(
        "KernelBtf::open_kernel, 10 names + their members: {:.2} ms, peak heap {:.2} MiB",
        lazy.as_secs_f64() * 1e3,
        mib(lazy_heap)
    );
    println!(
        "read + Btf::parse of vmlinux + 10 look-ups:       {:.2} ms, peak heap {:.2} MiB",
        full.as_secs_f64() * 1e3,
        mib(full_heap)
    );
    println!(
        "ratio: {:.2}x time, {:.2}x heap (best of {runs})",
        lazy.as_secs_f64() / full.as_secs_f64(),
        lazy_heap as f64 / full_heap as f64
    );
}
