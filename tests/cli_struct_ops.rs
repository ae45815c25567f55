//! `rawbpf attach OBJ` of an object with struct_ops maps:
//! programs/struct_ops_cc.bpf.o's two `tcp_congestion_ops` (`rawbpf_cc` in
//! `.struct_ops.link`, `rawbpf_cc_map` in `.struct_ops`) are registered as
//! part of the group, so the kernel lists them among its available
//! congestion controls, and `detach --name` unregisters both. (That the
//! programs run is loader/tests/kernel_struct_ops.rs's: it connects a
//! socket with each and reads the counter.)
//!
//! The object's congestion-control names are fixed: this is the only test
//! that registers them unrenamed.

mod support;

use std::path::Path;
use support::json::Value;
use support::{kernel, kernel_has, obj, rawbpf, rawbpf_json, stderr, unique};

const AVAILABLE: &str = "/proc/sys/net/ipv4/tcp_available_congestion_control";

fn available() -> Vec<String> {
    std::fs::read_to_string(AVAILABLE)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Detaches the group when the test ends, passed or not.
struct Group(String);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = rawbpf(&["detach", "--name", &self.0]);
    }
}

/// Whether the kernel's BTF has the struct_ops value type of
/// `tcp_congestion_ops` (the kernel can register one from BPF).
fn has_bpf_tcp_ca() -> bool {
    std::fs::read("/sys/kernel/btf/vmlinux")
        .is_ok_and(|b| memchr_find(&b, b"\0bpf_struct_ops_tcp_congestion_ops\0"))
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).str()
}

#[test]
fn attach_registers_struct_ops_maps_and_detach_unregisters_them() {
    let test = "attach_registers_struct_ops_maps_and_detach_unregisters_them";
    if !kernel(test)
        || !kernel_has(
            test,
            "BPF tcp_congestion_ops (bpf_struct_ops_tcp_congestion_ops)",
            has_bpf_tcp_ca(),
        )
    {
        return;
    }
    let name = unique("sops").replace('-', "");
    let group = Group(name.clone());
    let object = obj("struct_ops_cc.bpf.o");
    let out = rawbpf_json(&["attach", &object, "--name", &name, "--json"]);
    let links = out.get("links").array();
    let mut kinds: Vec<(&str, &str, bool)> = links
        .iter()
        .map(|l| {
            (
                str_of(l, "program"),
                str_of(l, "section"),
                *l.get("link_id") != Value::Null,
            )
        })
        .collect();
    kinds.sort();
    let plain = ("struct_ops map rawbpf_cc_map", ".struct_ops", false);
    assert_eq!(kinds[1], plain, "{kinds:?}");
    // A link where the kernel has struct_ops links (6.4+), else held by
    // its map as the plain one.
    assert_eq!(kinds[0].0, "struct_ops map rawbpf_cc", "{kinds:?}");
    for l in links {
        assert!(Path::new(str_of(l, "pin")).exists(), "{l:?}");
        assert!(str_of(l, "target").contains("tcp_congestion_ops"), "{l:?}");
    }
    let now = available();
    assert!(
        now.iter().any(|c| c == "rawbpf_cc") && now.iter().any(|c| c == "rawbpf_cc_map"),
        "{now:?}"
    );
    // A second group of the same object: the kernel refuses the names,
    // the error names the map and the struct, and nothing of it stays.
    let second = Group(format!("{name}x"));
    let o = rawbpf(&["attach", &object, "--name", &second.0]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("struct_ops map rawbpf_cc") && e.contains("tcp_congestion_ops"),
        "{e}"
    );
    assert!(!Path::new("/sys/fs/bpf/rawbpf/groups")
        .join(&second.0)
        .exists());
    drop(second);
    assert_eq!(available(), now);

    let o = rawbpf(&["detach", "--name", &name]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let after = available();
    assert!(
        !after
            .iter()
            .any(|c| c == "rawbpf_cc" || c == "rawbpf_cc_map"),
        "{after:?}"
    );
    drop(group);
}
