//! struct_ops on the running kernel: programs/struct_ops_cc.bpf.o's
//! `tcp_congestion_ops`, renamed per test (congestion controls are global:
//! the name is the test's own), loaded, registered (as a BPF link for the
//! `.struct_ops.link` map, by its map update for the `.struct_ops` one),
//! chosen by a TCP socket with `setsockopt(TCP_CONGESTION)` in a throwaway
//! network namespace, whose connect() runs the `init` member (its counter
//! goes up); once unregistered, the name is unknown (`ENOENT`) and the
//! counter stays still. Needs root (skips without, except under CI=true).

#[path = "../../tests/support/mod.rs"]
mod support;

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use rawbpf::link::{struct_ops, LinkError};
use rawbpf::{Collection, LoadError, LoadOptions, ObjectSpec};
use std::ffi::OsString;
use std::net::{SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use support::{kernel, kernel_has, obj};

/// `struct_ops_cc.bpf.o` with map `map`'s congestion control named `name`.
fn load(map: &str, name: &str) -> Result<Collection, LoadError> {
    let mut spec = ObjectSpec::from_file(obj("struct_ops_cc.bpf.o")).unwrap();
    let cc = spec.struct_ops.iter_mut().find(|s| s.name == map).unwrap();
    cc.set_member("name", name.as_bytes()).unwrap();
    Collection::load(&spec, &LoadOptions::default())
}

/// Loads, or says why this kernel cannot (no struct_ops, or refused here).
fn load_or_skip(test: &str, map: &str, name: &str) -> Option<Collection> {
    match load(map, name) {
        Ok(c) => Some(c),
        Err(e @ (LoadError::StructOps { .. } | LoadError::KernelBtf(_))) => {
            kernel_has(test, &format!("struct_ops tcp_congestion_ops ({e})"), false);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn init_calls(coll: &Collection) -> u64 {
    let v = coll
        .map(".bss")
        .unwrap()
        .lookup(&0u32.to_le_bytes())
        .unwrap()
        .unwrap();
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

/// A throwaway network namespace with its loopback up; the calling thread
/// is in it while the value lives.
struct Netns {
    name: String,
    inside: Option<rawbpf::netns::Entered>,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = support::unique(tag);
        rawbpf::netns::create(&name).unwrap();
        let mut ns = Netns { name, inside: None };
        ns.inside = Some(rawbpf::netns::enter(&ns.name).unwrap());
        rawbpf::blocking::block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection().unwrap();
            tokio::spawn(conn);
            handle
                .link()
                .set(rtnetlink::LinkUnspec::new_with_index(1).up().build())
                .execute()
                .await
        })
        .unwrap()
        .unwrap();
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        drop(self.inside.take());
        let _ = rawbpf::netns::delete(&self.name);
    }
}

/// A TCP socket with congestion control `cc` (the kernel's default with
/// `None`), connected to `to`: its connect() runs the control's `init`.
fn connect_with(cc: Option<&str>, to: &TcpListener) -> nix::Result<OwnedFd> {
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    if let Some(cc) = cc {
        socket::setsockopt(&fd, sockopt::TcpCongestion, &OsString::from(cc))?;
    }
    let std::net::SocketAddr::V4(addr) = to.local_addr().unwrap() else {
        unreachable!()
    };
    socket::connect(fd.as_raw_fd(), &SockaddrIn::from(addr))?;
    to.accept().unwrap();
    Ok(fd)
}

/// Waits (two seconds at most) until the kernel no longer lists
/// congestion control `name`: where a struct_ops link has no
/// `BPF_LINK_DETACH` (before 6.9), it ends when the kernel frees the link,
/// which it may do in a work item after the last fd closed.
fn await_unregistered(name: &str) {
    let listed = || {
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
            .unwrap()
            .split_whitespace()
            .any(|c| c == name)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while listed() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
}

/// Registers `map` as congestion control `name`, connects with it, and
/// unregisters: the shared body of both kinds.
fn runs_until_unregistered(test: &str, map: &str, name: &str, expect_link: bool) {
    if !kernel(test) {
        return;
    }
    let Some(coll) = load_or_skip(test, map, name) else {
        return;
    };
    let _ns = Netns::new("sops");
    let listener = TcpListener::bind(SocketAddrV4::new([127, 0, 0, 1].into(), 0)).unwrap();
    // Not registered yet: the name is unknown.
    assert_eq!(
        connect_with(Some(name), &listener).unwrap_err(),
        nix::Error::ENOENT
    );
    let link = struct_ops::register(&coll, map).unwrap();
    assert_eq!(link.program(), format!("struct_ops map {map}"));
    assert!(
        link.target().contains("tcp_congestion_ops"),
        "{}",
        link.target()
    );
    let is_link = coll.struct_ops.iter().find(|m| m.name == map).unwrap().link;
    if expect_link && !is_link {
        eprintln!("{test}: this kernel has no struct_ops links; registered by the map update");
    }
    assert_eq!(link.info().unwrap().is_some(), is_link);
    let before = init_calls(&coll);
    let sock = connect_with(Some(name), &listener).unwrap();
    let cc = socket::getsockopt(&sock, sockopt::TcpCongestion).unwrap();
    assert_eq!(cc.to_string_lossy().trim_end_matches('\0'), name);
    assert_eq!(init_calls(&coll), before + 1);
    // A socket on the default control does not run ours.
    connect_with(None, &listener).unwrap();
    assert_eq!(init_calls(&coll), before + 1);
    link.detach().unwrap();
    await_unregistered(name);
    assert_eq!(
        connect_with(Some(name), &listener).unwrap_err(),
        nix::Error::ENOENT
    );
    connect_with(None, &listener).unwrap();
    assert_eq!(init_calls(&coll), before + 1);
    drop(sock);
}

#[test]
fn struct_ops_link_registers_a_congestion_control_until_detached() {
    let name = format!("rbl_{}", std::process::id());
    runs_until_unregistered(
        "struct_ops_link_registers_a_congestion_control_until_detached",
        "rawbpf_cc",
        &name,
        true,
    );
}

#[test]
fn struct_ops_map_update_registers_until_key_0_is_deleted() {
    let name = format!("rbm_{}", std::process::id());
    runs_until_unregistered(
        "struct_ops_map_update_registers_until_key_0_is_deleted",
        "rawbpf_cc_map",
        &name,
        false,
    );
}

#[test]
fn dropping_the_link_unregisters_and_a_name_taken_is_named() {
    let test = "dropping_the_link_unregisters_and_a_name_taken_is_named";
    if !kernel(test) {
        return;
    }
    let name = format!("rbd_{}", std::process::id());
    let Some(first) = load_or_skip(test, "rawbpf_cc_map", &name) else {
        return;
    };
    let second = load("rawbpf_cc_map", &name).unwrap();
    let held = struct_ops::register(&first, "rawbpf_cc_map").unwrap();
    // The kernel refuses a second control of the same name; the error
    // names the map and the struct.
    let e = struct_ops::register(&second, "rawbpf_cc_map").unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, LinkError::Attach { .. }), "{text}");
    assert!(
        text.contains("rawbpf_cc_map") && text.contains("tcp_congestion_ops"),
        "{text}"
    );
    drop(held);
    // Dropped: unregistered, so the second takes the name.
    struct_ops::register(&second, "rawbpf_cc_map")
        .unwrap()
        .detach()
        .unwrap();
    let e = struct_ops::register(&first, "nope").unwrap_err();
    assert!(e.to_string().contains("rawbpf_cc_map"), "{e}");
}
