//! KernelBtf against the full parse, from memory, files and the host.

use super::source::Backing;
use super::*;
use crate::obj::btf::tests::Builder;
use crate::obj::btf::{Btf, BtfKind, BtfTypeData};
use std::fs::File;
use BtfKind as K;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A file of its own under the temp directory, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        TempPath(std::env::temp_dir().join(format!(
            "rawbpf-kbtf-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        )))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0).or_else(|_| std::fs::remove_dir_all(&self.0));
    }
}

/// The same BTF opened from memory and from a file read with pread
/// (64 KiB at a time: records and strings cross the reads).
fn both_ways(bytes: Vec<u8>, wanted: &BTreeSet<String>) -> [KernelBtf; 2] {
    let file = TempPath::new("btf");
    std::fs::write(&file.0, &bytes).unwrap();
    let from_file = KernelBtf::open(&file.0, wanted).unwrap();
    assert!(matches!(from_file.base.data, Backing::File(_)));
    [KernelBtf::from_bytes(bytes, wanted).unwrap(), from_file]
}

/// One type of every kind, names with and without flavors.
fn every_kind() -> Builder {
    let mut b = Builder::new();
    let int = b.s("int");
    b.t(int, K::Int, 0, 4, &[(1 << 24) | 32]); // 1
    b.t(0, K::Ptr, 0, 3, &[]); // 2 -> 3
    let task = b.s("task_struct");
    let pid = b.s("pid");
    let next = b.s("next");
    b.t(task, K::Struct, 2, 16, &[pid, 1, 0, next, 2, 64]); // 3
    let old = b.s("task_struct___old");
    b.t(old, K::Struct, 1, 4, &[pid, 1, 0]); // 4
    let u = b.s("u");
    b.t(u, K::Union, 1, 4, &[pid, 1, 0]); // 5
    let e = b.s("e");
    let a = b.s("A");
    b.t(e, K::Enum, 1, 4, &[a, (-1i32) as u32]); // 6
    let fwd = b.s("fwd");
    b.t(fwd, K::Fwd, 0, 0, &[]); // 7
    let pid_t = b.s("pid_t");
    b.t(pid_t, K::Typedef, 0, 1, &[]); // 8
    b.t(0, K::Volatile, 0, 1, &[]); // 9
    b.t(0, K::Const, 0, 9, &[]); // 10
    b.t(0, K::Restrict, 0, 2, &[]); // 11
    let x = b.s("x");
    b.t(0, K::FuncProto, 1, 1, &[x, 1]); // 12
    let f = b.s("do_unlinkat");
    b.t(f, K::Func, 1, 12, &[]); // 13 (global linkage)
    let v = b.s("v");
    b.t(v, K::Var, 0, 1, &[1]); // 14
    let data = b.s(".data");
    b.t(data, K::Datasec, 1, 4, &[14, 0, 4]); // 15
    let float = b.s("float");
    b.t(float, K::Float, 0, 4, &[]); // 16
    let tag = b.s("tag");
    b.t(tag, K::DeclTag, 0, 13, &[(-1i32) as u32]); // 17
    b.t(tag, K::TypeTag, 0, 1, &[]); // 18
    let e64 = b.s("e64");
    let big = b.s("BIG");
    b.t(e64, K::Enum64, 1, 8, &[big, 1, 2]); // 19
    b.t(0, K::Array, 0, 0, &[1, 1, 7]); // 20
    let tp = b.s("btf_trace_sched_switch");
    b.t(tp, K::Struct, 0, 0, &[]); // 21: a decoy of another kind
    b.t(tp, K::Typedef, 0, 2, &[]); // 22
    b
}

/// Every name a type (or member, parameter, enumerator) of `btf` has.
fn name_offsets(btf: &Btf) -> Vec<u32> {
    let mut out = Vec::new();
    for (_, t) in btf.types() {
        out.push(t.name_off);
        match &t.data {
            BtfTypeData::Members(m) => out.extend(m.iter().map(|m| m.name_off)),
            BtfTypeData::Params(p) => out.extend(p.iter().map(|p| p.name_off)),
            BtfTypeData::Enum(e) => out.extend(e.iter().map(|e| e.name_off)),
            BtfTypeData::Enum64(e) => out.extend(e.iter().map(|e| e.name_off)),
            _ => {}
        }
    }
    out
}

/// The lazy reader decodes every type and string as `Btf::parse` does.
fn assert_same(k: &KernelBtf, btf: &Btf) {
    assert_eq!(k.len(), btf.len());
    for (id, t) in btf.types() {
        assert_eq!(k.type_by_id(id).unwrap().as_ref(), t, "type {id}");
    }
    for off in name_offsets(btf) {
        assert_eq!(
            k.string(off).unwrap(),
            btf.string(off).unwrap(),
            "string {off}"
        );
    }
    assert!(matches!(
        k.type_by_id(btf.len()),
        Err(BtfError::NoSuchType { .. })
    ));
}

#[test]
fn decodes_every_kind_as_parse_does() {
    let bytes = every_kind().build();
    let btf = Btf::parse(&bytes).unwrap();
    let wanted = set(&[
        "task_struct",
        "do_unlinkat",
        "btf_trace_sched_switch",
        "pid",
        "nope",
    ]);
    for k in both_ways(bytes, &wanted) {
        decodes_as_parse_does(&k, &btf);
    }
}

fn decodes_as_parse_does(k: &KernelBtf, btf: &Btf) {
    assert_same(k, btf);
    // Twice: the second answers come from the caches.
    assert_same(k, btf);
    // Candidates by essential name, flavors included, in id order, as
    // the full parse's answer.
    for name in [
        "task_struct",
        "do_unlinkat",
        "btf_trace_sched_switch",
        "pid",
        "nope",
    ] {
        assert_eq!(
            k.ids_by_essential_name(name).unwrap(),
            TargetTypes::ids_by_essential_name(btf, name).unwrap(),
            "{name}"
        );
    }
    assert_eq!(k.ids_by_essential_name("task_struct").unwrap(), vec![3, 4]);
    // A flavored name asks for its essential name.
    assert_eq!(
        k.ids_by_essential_name("task_struct___new").unwrap(),
        vec![3, 4]
    );
    assert_eq!(k.ids_by_essential_name("pid").unwrap(), Vec::<u32>::new());
    assert_eq!(
        k.ids_by_essential_name("pid_t").unwrap_err().to_string(),
        "BTF name pid_t was not indexed (it was not among the names asked for when the BTF was opened)"
    );
    assert_eq!(k.kernel_id(3), 3);
    assert_eq!(k.module(3), None);
    assert!(k.string(10_000).is_err());
}

#[test]
fn strings_and_records_across_buffer_boundaries() {
    let mut b = Builder::new();
    // A name that straddles the first 64 KiB read of the string section,
    // a string longer than the buffer, then a name after it.
    while b.strings.len() + 21 < CHUNK - 5 {
        b.s("filler_filler_filler");
    }
    let pad = CHUNK - 5 - b.strings.len();
    b.strings.extend(std::iter::repeat_n(b'x', pad));
    b.strings.push(0);
    let task = b.s("task_struct");
    assert!(task < CHUNK as u32 && task as usize + 11 > CHUNK);
    let long = "y".repeat(CHUNK + 100);
    b.s(&long);
    let f = b.s("do_unlinkat");
    let int = b.s("int");
    b.t(int, K::Int, 0, 4, &[32]); // 1
                                   // A struct whose record is longer than the read buffer.
    let m = b.s("m");
    let members: Vec<u32> = (0..6000).flat_map(|i| [m, 1, i * 32]).collect();
    b.t(task, K::Struct, 6000, 6000 * 4, &members); // 2
    b.t(0, K::FuncProto, 0, 1, &[]); // 3
    b.t(f, K::Func, 0, 3, &[]); // 4
    let bytes = b.build();
    let btf = Btf::parse(&bytes).unwrap();
    for k in both_ways(bytes, &set(&["task_struct", "do_unlinkat", &long])) {
        assert_eq!(k.ids_by_essential_name("task_struct").unwrap(), vec![2]);
        assert_eq!(k.ids_by_essential_name("do_unlinkat").unwrap(), vec![4]);
        assert_eq!(k.ids_by_essential_name(&long).unwrap(), Vec::<u32>::new());
        assert_same(&k, &btf);
    }
}

#[test]
fn bad_blobs_are_errors_naming_the_file() {
    let good = every_kind().build();
    let mut bad = good.clone();
    bad[0] = 0;
    let e = KernelBtf::from_bytes(bad, &set(&["x"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "vmlinux: bad BTF magic 0xeb00 (expected 0xeb9f)"
    );
    // An unknown kind in the type section.
    let mut b = Builder::new();
    b.types
        .extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x1f, 0, 0, 0, 0]);
    let e = KernelBtf::from_bytes(b.build(), &set(&["x"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "vmlinux: BTF type 1 at byte 0: unknown kind 31"
    );
    // A record running past the section.
    let mut b = Builder::new();
    b.t(0, K::Struct, 0xffff, 4, &[]);
    let e = KernelBtf::from_bytes(b.build(), &set(&["x"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "vmlinux: BTF type 1 (STRUCT) at byte 0: its 786432 bytes run past the type section (12 bytes)"
    );
    let e = KernelBtf::from_bytes(good[..10].to_vec(), &set(&["x"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "vmlinux: BTF is truncated: the header ends at byte 24 but the section has 10 bytes"
    );
    let e = KernelBtf::open(Path::new("/nonexistent/btf"), &set(&["x"])).unwrap_err();
    assert_eq!(e.path(), Path::new("/nonexistent/btf"));
    assert!(
        e.to_string().starts_with("/nonexistent/btf: No such file"),
        "{e}"
    );
}

/// vmlinux: [1] int, [2] struct task_struct { int pid; int shared_name; }.
/// modA (split): [3] proto int(int x), [4] FUNC mod_a_fn, [5] struct
/// shared_name { [6] *next; } named by vmlinux's string, [6] ptr -> 5,
/// [7] struct task_struct {}. modB: [3] FUNC mod_b_fn -> [4] proto void(),
/// [5] int. modC: [3] int c_int (nothing wanted).
/// Modules' names and split BTF.
type Modules = Vec<(String, Vec<u8>)>;

fn base_and_modules() -> (Vec<u8>, Modules, u32) {
    let mut b = Builder::new();
    let int = b.s("int");
    b.t(int, K::Int, 0, 4, &[32]); // 1
    let task = b.s("task_struct");
    let pid = b.s("pid");
    let shared = b.s("shared_name");
    b.t(task, K::Struct, 2, 8, &[pid, 1, 0, shared, 1, 32]); // 2
    let base_str = b.strings.len() as u32;
    let base = b.build();

    let mut a = Builder::new();
    let s = |a: &mut Builder, name: &str| base_str + a.s(name);
    let x = s(&mut a, "x");
    a.t(0, K::FuncProto, 1, 1, &[x, 1]); // 3
    let fa = s(&mut a, "mod_a_fn");
    a.t(fa, K::Func, 0, 3, &[]); // 4
    let next = s(&mut a, "next");
    a.t(shared, K::Struct, 1, 8, &[next, 6, 0]); // 5
    a.t(0, K::Ptr, 0, 5, &[]); // 6
    a.t(task, K::Struct, 0, 0, &[]); // 7

    let mut bm = Builder::new();
    let fb = base_str + bm.s("mod_b_fn");
    bm.t(fb, K::Func, 0, 4, &[]); // 3
    bm.t(0, K::FuncProto, 0, 0, &[]); // 4
    bm.t(int, K::Int, 0, 4, &[32]); // 5

    let mut c = Builder::new();
    let ci = base_str + c.s("c_int");
    c.t(ci, K::Int, 0, 4, &[32]); // 3
    (
        base,
        vec![
            ("modA".into(), a.build()),
            ("modB".into(), bm.build()),
            ("modC".into(), c.build()),
        ],
        base_str,
    )
}

fn check_modules(k: &KernelBtf) {
    // modA's 5 types are private ids 3..=7, modB's 3 are 8..=10; modC is dropped.
    assert_eq!(k.modules().collect::<Vec<_>>(), ["modA", "modB"]);
    assert_eq!(k.len(), 11);
    // Names vmlinux has are not looked for in modules...
    assert_eq!(k.ids_by_essential_name("task_struct").unwrap(), vec![2]);
    // ...unless a module is named.
    assert_eq!(
        k.ids_by_essential_name("modA:task_struct").unwrap(),
        vec![7]
    );
    assert_eq!(
        k.ids_by_essential_name("vmlinux:task_struct").unwrap(),
        vec![2]
    );
    assert_eq!(k.ids_by_essential_name("mod_a_fn").unwrap(), vec![4]);
    assert_eq!(k.ids_by_essential_name("mod_b_fn").unwrap(), vec![8]);
    assert_eq!(k.ids_by_essential_name("shared_name").unwrap(), vec![5]);
    assert_eq!(
        k.ids_by_essential_name("nowhere").unwrap(),
        Vec::<u32>::new()
    );
    assert_eq!(
        (k.kernel_id(8), k.module(8), k.kernel_id(4), k.module(4)),
        (3, Some("modB"), 4, Some("modA"))
    );
    assert_eq!((k.kernel_id(2), k.module(2)), (2, None));
    // References inside a module move with it; those to vmlinux stay.
    let f = k.type_by_id(8).unwrap();
    assert_eq!((f.kind, f.size_or_type), (K::Func, 9));
    assert_eq!(k.string(f.name_off).unwrap(), "mod_b_fn");
    assert_eq!(k.type_by_id(9).unwrap().kind, K::FuncProto);
    assert_eq!(k.type_by_id(10).unwrap().kind, K::Int);
    assert_eq!(k.string(k.type_by_id(10).unwrap().name_off).unwrap(), "int");
    let proto = k.type_by_id(k.type_by_id(4).unwrap().size_or_type).unwrap();
    let BtfTypeData::Params(p) = &proto.data else {
        panic!("{proto:?}")
    };
    assert_eq!((proto.size_or_type, p[0].type_id), (1, 1));
    assert_eq!(k.string(p[0].name_off).unwrap(), "x");
    let shared = k.type_by_id(5).unwrap();
    assert_eq!(k.string(shared.name_off).unwrap(), "shared_name");
    let BtfTypeData::Members(m) = &shared.data else {
        panic!("{shared:?}")
    };
    assert_eq!(k.string(m[0].name_off).unwrap(), "next");
    assert_eq!(k.type_by_id(m[0].type_id).unwrap().size_or_type, 5);
    assert!(k.type_by_id(11).is_err());
}

fn module_wanted() -> BTreeSet<String> {
    set(&[
        "task_struct",
        "modA:task_struct",
        "vmlinux:task_struct",
        "mod_a_fn",
        "mod_b_fn",
        "shared_name",
        "nowhere",
    ])
}

#[test]
fn module_ids_get_private_ranges() {
    let (base, modules, base_str) = base_and_modules();
    let k = KernelBtf::from_bytes_with_modules(base, modules, &module_wanted()).unwrap();
    check_modules(&k);
    // Strings of the second module follow the first's.
    let f = k.type_by_id(8).unwrap();
    assert!(f.name_off > base_str + 10, "{}", f.name_off);
}

#[test]
fn module_files_are_read_only_when_needed() {
    let tmp = TempPath::new("modules");
    let dir = tmp.0.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let (base, modules, _) = base_and_modules();
    std::fs::write(dir.join("vmlinux"), &base).unwrap();
    for (name, bytes) in &modules {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let k = KernelBtf::open_with_modules(&dir.join("vmlinux"), &dir, &module_wanted()).unwrap();
    check_modules(&k);
    // A broken module file is an error naming it, when it is read...
    std::fs::write(dir.join("modB"), b"not btf at all, not at all").unwrap();
    let e = KernelBtf::open_with_modules(&dir.join("vmlinux"), &dir, &module_wanted()).unwrap_err();
    assert_eq!(e.path(), dir.join("modB"));
    // ...and no error when every name is in vmlinux (modules are not read).
    let k =
        KernelBtf::open_with_modules(&dir.join("vmlinux"), &dir, &set(&["task_struct"])).unwrap();
    assert_eq!(k.modules().count(), 0);
    // Nor is the directory listed then.
    let k = KernelBtf::open_with_modules(&dir.join("vmlinux"), &dir.join("none"), &set(&["int"]))
        .unwrap();
    assert_eq!(k.ids_by_essential_name("int").unwrap(), vec![1]);
}

/// The running kernel's BTF, if this machine has it: the lazy reader
/// sees task_struct (and what its `pid` member refers to) as the full
/// parse does.
#[test]
fn host_vmlinux_matches_full_parse() {
    let path = Path::new(VMLINUX);
    let Ok(bytes) = std::fs::read(path) else {
        eprintln!("SKIP host_vmlinux_matches_full_parse: no {VMLINUX}");
        return;
    };
    let btf = Btf::parse(&bytes).unwrap();
    let wanted = set(&["task_struct", "pid_t", "do_unlinkat", "no_such_name_xyz"]);
    // Mapped where the kernel allows it (6.16+), and read with pread.
    let mapped = KernelBtf::open_kernel(&wanted).unwrap();
    if matches!(mapped.base.data, Backing::Map(_)) {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(maps.lines().any(|l| l.ends_with(VMLINUX)), "{maps}");
    }
    let file = File::open(path).unwrap();
    let read = KernelBtf::build(
        Source::open("vmlinux", path, Backing::File(file), false).unwrap(),
        Vec::new(),
        &wanted,
    )
    .unwrap();
    for k in [mapped, read] {
        matches_full_parse(&k, &btf);
    }
}

/// What the pread path costs on the running kernel (kernels before 6.16
/// cannot map their BTF), against the mapped one.
/// `cargo test --release -p rawbpf --lib pread_vs_mapped -- --ignored --nocapture`
#[test]
#[ignore = "a measurement"]
fn pread_vs_mapped() {
    let path = Path::new(VMLINUX);
    let wanted = set(&[
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
    ]);
    let best = |f: &dyn Fn() -> KernelBtf| {
        (0..20)
            .map(|_| {
                let t = std::time::Instant::now();
                drop(f());
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    let mapped = best(&|| KernelBtf::open_kernel(&wanted).unwrap());
    let read = best(&|| {
        let file = File::open(path).unwrap();
        let src = Source::open("vmlinux", path, Backing::File(file), false).unwrap();
        KernelBtf::build(src, Vec::new(), &wanted).unwrap()
    });
    println!("open_kernel, 10 names: mapped {mapped:?}, pread {read:?}");
}

fn matches_full_parse(k: &KernelBtf, btf: &Btf) {
    assert_eq!(k.len(), btf.len());
    let ids = k.ids_by_essential_name("task_struct").unwrap();
    assert_eq!(
        ids,
        TargetTypes::ids_by_essential_name(btf, "task_struct").unwrap()
    );
    let task = ids
        .iter()
        .copied()
        .find(|&id| k.type_by_id(id).unwrap().kind == K::Struct)
        .expect("a STRUCT task_struct");
    let t = k.type_by_id(task).unwrap();
    assert_eq!(t.as_ref(), btf.type_by_id(task).unwrap());
    let BtfTypeData::Members(members) = &t.data else {
        panic!("{t:?}")
    };
    let pid = members
        .iter()
        .find(|m| k.string(m.name_off).unwrap() == "pid")
        .expect("task_struct.pid");
    // pid_t -> __kernel_pid_t -> int, each as the full parse has it.
    let mut id = pid.type_id;
    for _ in 0..4 {
        let t = k.type_by_id(id).unwrap();
        assert_eq!(t.as_ref(), btf.type_by_id(id).unwrap());
        assert_eq!(
            k.string(t.name_off).unwrap(),
            btf.string(t.name_off).unwrap()
        );
        if t.kind != K::Typedef {
            break;
        }
        id = t.size_or_type;
    }
    assert_eq!(
        k.string(k.type_by_id(pid.type_id).unwrap().name_off)
            .unwrap(),
        "pid_t"
    );
    for name in ["pid_t", "do_unlinkat", "no_such_name_xyz"] {
        assert_eq!(
            k.ids_by_essential_name(name).unwrap(),
            TargetTypes::ids_by_essential_name(btf, name).unwrap(),
            "{name}"
        );
    }
}

/// `--btf` given a vmlinux-like ELF (here a BPF object, whose `.BTF` has
/// `struct __sk_buff` or not) reads its `.BTF` section, for `load` as for
/// `check`; an ELF without one is an error naming the file.
#[test]
fn open_reads_an_elf_files_btf_section() {
    let obj = |name: &str| {
        PathBuf::from(format!(
            "{}/../programs/obj/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
    };
    let path = obj("xdp.bpf.o");
    let k = KernelBtf::open(&path, &set(&["xdp_md"])).unwrap();
    let ids = k.ids_by_essential_name("xdp_md").unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(k.type_by_id(ids[0]).unwrap().kind, K::Struct);

    let exe = std::env::current_exe().unwrap();
    let err = KernelBtf::open(&exe, &set(&["xdp_md"])).err().unwrap();
    assert_eq!(err.path(), exe);
    assert!(
        err.reason().contains("without a .BTF section"),
        "{}",
        err.reason()
    );
}
