//! Loading, failing to load and failing to attach must give back every fd
//! and leave no pin, qdisc, filter or namespace behind. Alone in its own test
//! binary, so no other test opens fds while these count; the two tests here
//! take turns.

mod support;

use rawbpf::attach::{AttachOptions, Hook, Target};
use rawbpf::blocking;
use rawbpf::lab::Lab;
use rawbpf::load::{Collection, LoadOptions};
use rawbpf::tc::{Direction, Tc};
use rawbpf::{AttachError, ObjectSpec};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use support::{kernel, obj, open_fds, unique};

static COUNTING: Mutex<()> = Mutex::new(());

const ROUNDS: usize = 1000;

#[test]
fn thousand_load_drop_cycles_leak_no_fd() {
    if !kernel("thousand_load_drop_cycles_leak_no_fd") {
        return;
    }
    let _turn = COUNTING.lock().unwrap_or_else(|p| p.into_inner());
    let spec = ObjectSpec::from_file(obj("pipeline.bpf.o")).unwrap();
    let failing = ObjectSpec::from_file(obj("verifier_reject.bpf.o")).unwrap();
    let opts = LoadOptions::for_file(Path::new("pipeline.bpf.o"));
    // One warm-up cycle, so lazily opened files (if any) are counted in both.
    drop(Collection::load(&spec, &opts).unwrap());
    let before = open_fds();
    for _ in 0..ROUNDS {
        let c = Collection::load(&spec, &opts).unwrap();
        assert_eq!(c.programs.len(), 2);
        drop(c);
        // The verifier rejects this one after its maps and BTF are made.
        assert!(Collection::load(&failing, &opts).is_err());
    }
    assert_eq!(open_fds(), before);
}

/// Every file and directory under `dir`, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// 1000 attaches that fail (a program the verifier rejects, a priority
/// already taken, a device that does not exist) leave fds, pins, qdiscs,
/// filters and namespaces exactly as they were.
#[test]
fn thousand_failing_attaches_leave_nothing() {
    if !kernel("thousand_failing_attaches_leave_nothing") {
        return;
    }
    let _turn = COUNTING.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::create(&unique("leaks")).expect("build the two namespaces");
    let pipeline_path = PathBuf::from(obj("pipeline.bpf.o"));
    let pipeline = ObjectSpec::from_file(&pipeline_path).unwrap();
    let reject_path = PathBuf::from(obj("verifier_reject.bpf.o"));
    let reject = ObjectSpec::from_file(&reject_path).unwrap();
    let target = |dev: &str, hook| Target {
        netns: Some(lab.ns_b.clone()),
        dev: dev.to_owned(),
        hook,
    };
    let opts = |target: Target| AttachOptions {
        target,
        ..AttachOptions::default()
    };
    // One runtime for every attach, made before the fds are counted.
    let netlink = blocking::Netlink::new().unwrap();
    let attach = |path: &Path, spec: &ObjectSpec, opts: &AttachOptions| {
        netlink.attach(path, spec, &LoadOptions::for_file(path), opts)
    };
    // A chain on ingress, so priority 1 there is taken.
    let taken = opts(target(&lab.dev_b, Hook::Ingress));
    attach(&pipeline_path, &pipeline, &taken).unwrap();
    // What the kernel and bpffs hold now.
    let state = || {
        let (filters, qdiscs) = blocking::block_on(async {
            let tc = rawbpf::netns::run_in(Some(&lab.ns_b), Tc::open)
                .unwrap()
                .unwrap();
            let devices = tc.devices().await.unwrap();
            let mut filters = Vec::new();
            let mut qdiscs = Vec::new();
            for (i, _, _) in &devices {
                for d in [Direction::Ingress, Direction::Egress] {
                    filters.push(tc.filters(*i, d).await.unwrap());
                }
                qdiscs.push(tc.qdisc_kinds(*i).await.unwrap());
            }
            (filters, qdiscs)
        })
        .unwrap();
        let namespaces = tree(Path::new(rawbpf::netns::NETNS_DIR));
        (
            filters,
            qdiscs,
            tree(Path::new(rawbpf::attach::PIN_ROOT))
                .into_iter()
                .filter(|p| p.to_string_lossy().contains(&lab.ns_b))
                .collect::<Vec<_>>(),
            namespaces
                .into_iter()
                .filter(|p| p.to_string_lossy().contains("leaks"))
                .collect::<Vec<_>>(),
        )
    };
    let before = state();
    let fds = open_fds();
    for i in 0..ROUNDS {
        let err = match i % 3 {
            0 => attach(
                &reject_path,
                &reject,
                &opts(target(&lab.dev_b, Hook::Egress)),
            ),
            1 => attach(&pipeline_path, &pipeline, &taken),
            _ => attach(
                &pipeline_path,
                &pipeline,
                &opts(target("nodev0", Hook::Egress)),
            ),
        }
        .expect_err("every attach here fails");
        match (i % 3, &err) {
            (0, AttachError::Load(_)) | (1, AttachError::AlreadyAttached { .. }) => {}
            (2, AttachError::NoDevice { .. }) => {}
            _ => panic!("round {i}: unexpected error {err}"),
        }
    }
    assert_eq!(open_fds(), fds, "fds");
    assert!(
        state() == before,
        "filters, qdiscs, pins or namespaces changed"
    );
    netlink.detach(&taken.target, Some(1)).unwrap();
    let _ = std::fs::remove_dir_all(
        Path::new(rawbpf::attach::PIN_ROOT).join(format!("ns_{}", lab.ns_b)),
    );
}
