//! The kernel's links as `rawbpf list` reads them: through rawbpf's link
//! iterator (programs/link_iter.bpf.c) and through bpf(2) per link, the two
//! must say the same of every link, for links of many kinds at once
//! (raw tracepoints, syscall and scheduler tracepoints through perf links,
//! a perf event, an iterator, a uprobe, cgroup links, a netfilter link, a
//! struct_ops link). The iterator's pin is used only when it is ours; a
//! kernel without the iterator (5.10) lists through bpf(2).
//! Needs root (skips without, except under CI=true).

#[path = "../../tests/support/mod.rs"]
mod support;

use rawbpf::link::kernel_links::{
    list_links, list_links_with, KernelLink, LinkIterError, LinkIterator, ListOptions,
};
use rawbpf::link::{attach_program, struct_ops, AttachTargets, Link};
use rawbpf::{Collection, LoadOptions, ObjectSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::{kernel, obj, unique, BpffsDir};

struct Loaded {
    spec: ObjectSpec,
    c: Collection,
}

fn load(name: &str) -> Option<Loaded> {
    let spec = ObjectSpec::from_file(obj(name)).unwrap();
    match Collection::load(&spec, &LoadOptions::for_file(Path::new(name))) {
        Ok(c) => Some(Loaded { spec, c }),
        Err(e) => {
            eprintln!("{name} does not load here ({e}): its links are not compared");
            None
        }
    }
}

impl Loaded {
    /// The program's links, or none where this kernel cannot attach it.
    fn attach(&self, prog: &str, targets: &AttachTargets) -> Vec<Link> {
        attach_program(
            self.c.program(prog).unwrap(),
            self.spec.program(prog).unwrap(),
            targets,
        )
        .unwrap_or_else(|e| {
            eprintln!("{prog} does not attach here ({e}): not compared");
            Vec::new()
        })
    }
}

/// A throwaway cgroup v2 directory, or none where cgroup2 is not mounted.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new() -> Option<Cgroup> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let root = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })?;
        let path = root.join(unique("listlinks"));
        std::fs::create_dir(&path).ok()?;
        Some(Cgroup(path))
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The listed links among `ids`, by id.
fn ours(listed: Vec<KernelLink>, ids: &[u32]) -> BTreeMap<u32, KernelLink> {
    listed
        .into_iter()
        .filter(|l| ids.contains(&l.id))
        .map(|l| (l.id, l))
        .collect()
}

fn link_ids(links: &[Link]) -> Vec<u32> {
    links
        .iter()
        .filter_map(|l| l.info().unwrap().map(|i| i.id))
        .collect()
}

#[test]
fn iterator_and_bpf2_list_every_kind_alike() {
    if !kernel("iterator_and_bpf2_list_every_kind_alike") {
        return;
    }
    let mut links = Vec::new();
    // Raw tracepoints, syscall and scheduler tracepoints (perf links).
    let many = load("tracing_many.bpf.o");
    if let Some(l) = &many {
        for p in &l.spec.programs {
            links.extend(l.attach(p.name(), &AttachTargets::default()));
        }
    }
    // A perf event on each CPU, a task iterator, a uprobe, tp_btf.
    let tracing = load("link_tracing.bpf.o");
    if let Some(l) = &tracing {
        for p in [
            "on_sample",
            "dump_tasks",
            "on_tp_btf",
            "on_libc_getppid",
            "on_tp",
        ] {
            if l.spec.program(p).is_some() {
                links.extend(l.attach(p, &AttachTargets::default()));
            }
        }
    }
    // Cgroup links on a throwaway cgroup (nothing runs in it).
    let cgroup = Cgroup::new();
    let cgroups = load("cgroup_kinds.bpf.o");
    if let (Some(l), Some(cg)) = (&cgroups, &cgroup) {
        let mut t = AttachTargets::default();
        t.cgroup = Some(cg.0.clone());
        for p in ["on_skb_ingress", "on_connect4", "on_sysctl", "on_dev"] {
            links.extend(l.attach(p, &t));
        }
    }
    // A netfilter link (6.4+), accepting every packet it sees.
    let nf = load("net_netfilter.bpf.o");
    if let Some(l) = &nf {
        use rawbpf::link::net::{NetfilterHook, NfFamily, NfHook};
        let mut t = AttachTargets::default();
        t.netfilter = Some(NetfilterHook::new(NfFamily::Ipv4, NfHook::LocalOut, -1234));
        links.extend(l.attach("count_netfilter", &t));
    }
    // A struct_ops link registering a congestion control nobody uses.
    let cc = ObjectSpec::from_file(obj("struct_ops_cc.bpf.o"))
        .ok()
        .and_then(|mut spec| {
            let name = format!("rbll_{}", std::process::id());
            let m = spec.struct_ops.iter_mut().find(|s| s.name == "rawbpf_cc")?;
            m.set_member("name", name.as_bytes()).ok()?;
            Collection::load(&spec, &LoadOptions::default()).ok()
        });
    let cc_link = cc
        .as_ref()
        .and_then(|c| struct_ops::register(c, "rawbpf_cc").ok());
    let mut ids = link_ids(&links);
    if let Some(id) = cc_link
        .as_ref()
        .and_then(|l| l.info().ok().flatten())
        .map(|i| i.id)
    {
        ids.push(id);
    }
    // Before perf_event links (5.15) tracepoints, perf events and uprobes
    // are attached without a BPF link: fewer links to compare.
    let perf_links = rawbpf::probe::probe_link_kind(rawbpf::probe::LinkKind::PerfEvent);
    let least = if perf_links { 10 } else { 6 };
    assert!(
        ids.len() >= least,
        "only {} links attached (perf_event links: {perf_links})",
        ids.len()
    );

    let pin = BpffsDir::new("listlinks");
    let opts = ListOptions::with_iterator_pin(pin.0.join("iter"));
    let by_iterator = ours(list_links_with(&opts).unwrap(), &ids);
    let by_bpf2 = ours(list_links().unwrap(), &ids);
    assert_eq!(
        by_bpf2.len(),
        ids.len(),
        "bpf(2) lists every link: {by_bpf2:#?}"
    );
    for (id, l) in &by_bpf2 {
        assert_eq!(by_iterator.get(id), Some(l), "link {id}");
    }
    // Listed again from the pin the first listing left: the same.
    match LinkIterator::open_pinned(&pin.0.join("iter")) {
        Ok(iter) => {
            let again = ours(list_links_with(&opts).unwrap(), &ids);
            assert_eq!(again, by_iterator);
            // The iterator's own link is not listed.
            let listed = list_links_with(&opts).unwrap();
            assert!(listed.iter().all(|l| l.id != iter.link_id()));
            eprintln!(
                "{} links compared; the iterator decoded: {:?}",
                ids.len(),
                decoded(&iter, &ids)
            );
        }
        Err(e) => eprintln!("no link iterator on this kernel ({e}): listed through bpf(2)"),
    }
    drop(links);
    drop(cc_link);
}

/// Which of `ids` the iterator decoded itself (the others went to bpf(2)).
fn decoded(iter: &LinkIterator, ids: &[u32]) -> Vec<String> {
    let mut kinds: Vec<String> = iter
        .read()
        .unwrap()
        .into_iter()
        .filter(|r| ids.contains(&r.id) && r.decoded)
        .map(|r| rawbpf::link::kernel_links::link_type_name(r.link_type))
        .collect();
    kinds.dedup();
    kinds
}

#[test]
fn the_iterator_decodes_raw_tracepoints_itself() {
    if !kernel("the_iterator_decodes_raw_tracepoints_itself") {
        return;
    }
    let iter = match LinkIterator::load() {
        Ok(i) => i,
        Err(e) => {
            // A kernel without iter/bpf_link (5.10): listing uses bpf(2).
            eprintln!("SKIP: no link iterator here ({e})");
            let listed = list_links_with(&ListOptions::with_iterator_pin(
                BpffsDir::new("listlinks").0.join("iter"),
            ));
            assert!(listed.is_ok(), "{listed:?}");
            return;
        }
    };
    let l = load("tracing_many.bpf.o").unwrap();
    let links = l.attach("raw_sys_enter", &AttachTargets::default());
    let ids = link_ids(&links);
    let records = iter.read().unwrap();
    let r = records.iter().find(|r| r.id == ids[0]).unwrap();
    assert!(r.decoded, "{r:?}");
    assert_eq!(r.prog_name, "raw_sys_enter");
    // The iterator lists itself.
    assert!(records.iter().any(|r| r.id == iter.link_id()));
}

#[test]
fn a_pin_that_is_not_the_link_iterator_is_never_read() {
    if !kernel("a_pin_that_is_not_the_link_iterator_is_never_read") {
        return;
    }
    let Some(l) = load("link_tracing.bpf.o") else {
        return;
    };
    // Another iterator (over tasks) pinned where the link iterator goes.
    let dir = BpffsDir::new("listlinks");
    std::fs::create_dir_all(&dir.0).unwrap();
    let at = dir.0.join("iter");
    let mut task_iter = l.attach("dump_tasks", &AttachTargets::default());
    task_iter[0].pin(&at).unwrap();
    match LinkIterator::open_pinned(&at) {
        Err(LinkIterError::NotOurs(p)) => assert_eq!(p, at),
        other => panic!("{other:?}"),
    }
    let raw = load("tracing_many.bpf.o").unwrap();
    let links = raw.attach("raw_sys_exit", &AttachTargets::default());
    let ids = link_ids(&links);
    // Listed right (by an iterator of its own, or bpf(2)), the task
    // iterator's pin left as it was.
    let listed = list_links_with(&ListOptions::with_iterator_pin(&at)).unwrap();
    let ours = ours(listed, &ids);
    assert_eq!(ours[&ids[0]].target, "sys_exit");
    assert_eq!(ours[&ids[0]].prog_name, "raw_sys_exit");
    assert!(matches!(
        LinkIterator::open_pinned(&at),
        Err(LinkIterError::NotOurs(_))
    ));
    // Nor is a pinned map or program.
    for other in l.c.pin(&dir.0.join("collection")).unwrap() {
        assert!(
            matches!(
                LinkIterator::open_pinned(&other),
                Err(LinkIterError::NotOurs(_))
            ),
            "{other:?}"
        );
    }
    task_iter.remove(0).detach().unwrap();
}

#[test]
fn an_iterator_that_cannot_be_pinned_is_used_once() {
    if !kernel("an_iterator_that_cannot_be_pinned_is_used_once") {
        return;
    }
    // Not bpffs: nothing can be pinned there (and nothing is made).
    let at = std::env::temp_dir().join(unique("listlinks")).join("iter");
    let raw = load("tracing_many.bpf.o").unwrap();
    let links = raw.attach("raw_sys_enter", &AttachTargets::default());
    let ids = link_ids(&links);
    let listed = ours(
        list_links_with(&ListOptions::with_iterator_pin(&at)).unwrap(),
        &ids,
    );
    assert_eq!(listed, ours(list_links().unwrap(), &ids));
    assert_eq!(listed[&ids[0]].target, "sys_enter");
    assert!(!at.exists());
    let _ = std::fs::remove_dir(at.parent().unwrap());
}
