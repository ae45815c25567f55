//! Loading and dropping must give every fd back. Alone in its own test
//! binary, so no other test opens fds while it counts.

mod support;

use rawbpf::load::{Collection, LoadOptions};
use rawbpf::ObjectSpec;
use support::{kernel, obj, open_fds};

#[test]
fn thousand_load_drop_cycles_leak_no_fd() {
    if !kernel("thousand_load_drop_cycles_leak_no_fd") {
        return;
    }
    let spec = ObjectSpec::from_file(obj("pipeline.bpf.o")).unwrap();
    let failing = ObjectSpec::from_file(obj("verifier_reject.bpf.o")).unwrap();
    let opts = LoadOptions::for_file(std::path::Path::new("pipeline.bpf.o"));
    // One warm-up cycle, so lazily opened files (if any) are counted in both.
    drop(Collection::load(&spec, &opts).unwrap());
    let before = open_fds();
    for i in 0..1000 {
        let c = Collection::load(&spec, &opts).unwrap();
        assert_eq!(c.programs.len(), 2);
        drop(c);
        if i % 100 == 0 {
            // Failing loads must not leak either.
            assert!(Collection::load(&failing, &opts).is_err());
        }
    }
    assert_eq!(open_fds(), before);
}
