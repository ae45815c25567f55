//! What the fuzz targets share: the per-input allocation bound, and the two
//! harnesses (`parse`, `cli`) as plain functions so that a crashing input can
//! be replayed without AFL (`cargo run --bin parse -- FILE...`).
//!
//! Properties checked, per input: the code returns `Ok` or a typed error
//! (a panic aborts: AFL reports a crash), it finishes (AFL's `-t` timeout
//! reports a hang), and no single allocation exceeds
//! [`alloc_bound`]`(input length)` (the allocator below aborts: a crash).

use rawbpf::obj::btf::{Btf, BtfKind};
use rawbpf::obj::btf_ext::{encode_func_info, encode_line_info};
use rawbpf::probe::{Feature, Features};
use rawbpf::uapi::{MapType, ProgramType};
use rawbpf::ObjectSpec;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The `rawbpf` binary's command-line parser, included as it is (it is a
/// module of the binary, with no dependencies beyond std).
#[path = "../../cli/src/cli.rs"]
#[allow(dead_code)]
mod rawbpf_cli;

/// The largest single allocation allowed for an input of `len` bytes:
/// generous (every parsed structure is a small multiple of the bytes that
/// describe it) but far below what a length field read from the input could
/// ask for.
pub fn alloc_bound(len: usize) -> usize {
    len.saturating_mul(64).saturating_add(1 << 20)
}

/// The bound in force; `usize::MAX` outside a harness (AFL's own setup).
static BOUND: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The system allocator, aborting on any allocation above [`BOUND`].
pub struct BoundedAlloc;

impl BoundedAlloc {
    fn check(size: usize) {
        let bound = BOUND.load(Ordering::Relaxed);
        if size > bound {
            // No allocation from here on: write fixed text and digits from a stack buffer.
            let mut buf = [0u8; 128];
            let mut n = 0;
            let head = b"rawbpf-fuzz: allocation of ";
            buf[..head.len()].copy_from_slice(head);
            n += head.len();
            n += write_usize(&mut buf[n..], size);
            let mid = b" bytes exceeds the bound of ";
            buf[n..n + mid.len()].copy_from_slice(mid);
            n += mid.len();
            n += write_usize(&mut buf[n..], bound);
            buf[n] = b'\n';
            let _ = std::io::stderr().write_all(&buf[..=n]);
            std::process::abort();
        }
    }
}

fn write_usize(out: &mut [u8], mut v: usize) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    out[..len].copy_from_slice(&digits[i..]);
    len
}

// SAFETY: forwards to `System` unchanged after a size check that only reads an atomic.
unsafe impl GlobalAlloc for BoundedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` with the allocation bound for an input of `len` bytes.
pub fn bounded<T>(len: usize, f: impl FnOnce() -> T) -> T {
    BOUND.store(alloc_bound(len), Ordering::Relaxed);
    let out = f();
    BOUND.store(usize::MAX, Ordering::Relaxed);
    out
}

/// A kernel that has everything, and one that has nothing: `check` takes
/// both branches of every comparison (the latter lacks every helper `spec` calls).
fn feature_sets(spec: &ObjectSpec) -> [Features; 2] {
    let mut all = Features {
        kernel: "fuzz".into(),
        btf_global_func: true,
        ..Features::default()
    };
    for &t in ProgramType::ALL {
        all.prog_types.insert(t, Some(true));
    }
    for &t in MapType::ALL {
        all.map_types.insert(t, Some(true));
    }
    let kinds = spec
        .btf
        .as_ref()
        .map(|b| b.kinds_used())
        .unwrap_or_default();
    for &k in &kinds {
        all.btf_kinds.insert(k, true);
    }
    for f in Feature::ALL {
        all.features.insert(f, true);
    }
    let mut none = Features::default();
    for &t in ProgramType::ALL {
        none.prog_types.insert(t, Some(false));
    }
    for &t in MapType::ALL {
        none.map_types.insert(t, Some(false));
    }
    for &k in &kinds {
        none.btf_kinds.insert(k, false);
    }
    none.btf_kinds.insert(BtfKind::Func, false);
    for (t, ids) in rawbpf::probe::program_helpers(spec) {
        none.helpers
            .entry(t)
            .or_default()
            .extend(ids.into_iter().map(|i| (i, false)));
    }
    [all, none]
}

/// The `parse` target: bytes → [`ObjectSpec`], and for a spec that parses,
/// everything that turns it into what `BPF_PROG_LOAD` gets, without the
/// kernel: each program linked with its `.text` subprograms, map fds patched
/// in as the loader does (fake fds), func/line info encoded, BTF re-encoded,
/// and `check` against two made-up kernels.
pub fn parse(data: &[u8]) {
    bounded(data.len(), || {
        let Ok(spec) = ObjectSpec::parse(data) else {
            return;
        };
        for p in &spec.programs {
            // A spec that parsed must link: LinkError means the parser let an
            // inconsistency through (a subprogram or call target it lacks).
            let mut linked = match p.link(&spec) {
                Ok(l) => l,
                Err(e) => panic!("parsed spec does not link: {e}"),
            };
            // As load.rs's load_program: each map named exists, and the
            // ld_imm64 pair is indexed directly.
            let fd_of = |name: &str| {
                spec.maps
                    .iter()
                    .position(|m| m.name == name)
                    .map(|i| 100 + i as i32)
            };
            if let Err(map) = linked.set_map_fds(fd_of) {
                panic!("program {} refers to map {map}, not in the spec", p.name());
            }
            let code = linked.code();

            assert_eq!(code.len(), linked.insns.len() * 8);
            let _ = encode_func_info(&linked.func_info);
            let _ = encode_line_info(&linked.line_info);
        }
        if let Some(btf) = &spec.btf {
            // What the loader hands the kernel must at least parse again.
            if let Err(e) = Btf::parse(&btf.to_bytes()) {
                panic!("the object's re-encoded BTF does not parse: {e}");
            }
            let _ = btf.kinds_used();
        }
        for m in &spec.maps {
            let _ = m.is_rodata();
        }
        for f in feature_sets(&spec) {
            let _ = rawbpf::probe::check(&spec, &f).would_load();
        }
    })
}

/// The `cli` target: the command-line value parsers the library has
/// (`--tail MAP:KEY=PROG`, swap's `MAP:KEY=OBJ:PROG`), on the input as text.
/// Each line is one argument, so one input exercises several.
pub fn cli(data: &[u8]) {
    bounded(data.len(), || {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        // The whole command line: NUL-separated arguments, as execve passes them.
        let argv: Vec<String> = text.split('\0').map(str::to_owned).collect();
        match rawbpf_cli::parse(&argv) {
            Ok(rawbpf_cli::Request::Run(p)) => {
                // What parsed is a known command with its positional count.
                let (min, max) = p.command.positional;
                assert!(p.positional.len() >= min && p.positional.len() <= max);
                for (flag, _) in p.command.flags.iter().flat_map(|group| group.iter()) {
                    let _ = (p.switch(flag), p.value(flag), p.values(flag).count());
                }
            }
            Ok(rawbpf_cli::Request::Help(Some(c))) => {
                let _ = rawbpf_cli::command_help(c);
            }
            Ok(_) => {}
            Err(msg) => assert!(!msg.is_empty()),
        }
        for arg in std::iter::once(text).chain(text.lines()) {
            if let Ok(t) = rawbpf_cli::tail_slot(arg) {
                // What parses must say what was written.
                assert!(!t.map.is_empty());
                assert!(arg.starts_with(&t.map));
            }
            if let Ok(s) = rawbpf_cli::swap_spec(arg) {
                assert!(!s.map.is_empty() && !s.program.is_empty());
                assert!(arg.ends_with(&s.program));
            }
        }
    })
}

/// The `btf` target: bytes → `Btf::parse`; for BTF that parses, every
/// look-up the map parser makes on every type id, then the re-encoding the
/// loader hands the kernel must parse back to the same BTF.
pub fn btf(data: &[u8]) {
    bounded(data.len(), || {
        let Ok(btf) = Btf::parse(data) else {
            return;
        };
        for (id, _) in btf.types() {
            let _ = btf.type_name(id);
            let _ = btf.strip_modifiers(id);
            let _ = btf.resolve_size(id);
            let _ = btf.pointee(id);
            let _ = btf.uint_from_ptr_to_array(id);
        }
        let bytes = btf.to_bytes();
        match Btf::parse(&bytes) {
            Ok(again) => assert!(again == btf, "BTF changed through to_bytes and parse"),
            Err(e) => panic!("re-encoded BTF does not parse: {e}"),
        }
    })
}

/// Seeds for the `btf` target: the (re-encoded) `.BTF` of each object.
pub fn btf_seeds(objects: &[String], dir: &str) {
    for path in objects {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        if let Ok(ObjectSpec { btf: Some(b), .. }) = ObjectSpec::parse(&data) {
            let name = std::path::Path::new(path)
                .file_name()
                .unwrap()
                .to_string_lossy();
            std::fs::write(format!("{dir}/{name}.btf"), b.to_bytes()).unwrap();
        }
    }
}

/// Replays inputs from files (for a crash AFL found), outside AFL.
pub fn replay(target: fn(&[u8]), paths: &[String]) {
    for path in paths {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        eprintln!("{path}: {} bytes", data.len());
        target(&data);
        eprintln!("{path}: ok");
    }
}
