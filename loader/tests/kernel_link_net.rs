//! Links of the cgroup and network kinds on the running kernel: each test
//! attaches, triggers the hook (a process in a throwaway cgroup that
//! connects, binds, sends, reads a sysctl and opens a device; packets in a
//! throwaway network namespace; messages on a sockmap's sockets), reads the
//! program's counter, detaches, triggers again and sees the counter stay
//! still. Bad input gets an error naming the program, its section and the
//! target. Needs root (skips without, except under CI=true).

#[path = "../../tests/support/mod.rs"]
mod support;

use rawbpf::attach::{attach_loaded, AttachOptions, Hook, Pinning, Target};
use rawbpf::link::net::{self, NetfilterHook, NfFamily, NfHook};
use rawbpf::link::{attach_program, AttachTargets, Link, LinkError};
use rawbpf::{Collection, LoadOptions, ObjectSpec};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use support::{kernel, kernel_has, obj, unique};

/// Where the guests of tests/vm mount cgroup2 when nothing has.
const CGROUP2_MOUNT: &str = "/run/rawbpf-test-cgroup2";

/// The cgroup v2 hierarchy: where it is mounted (`/sys/fs/cgroup/unified`
/// here, `/sys/fs/cgroup` on systemd hosts), or mounted by this test at
/// `CGROUP2_MOUNT` (the busybox guests of tests/vm mount none).
fn cgroup2() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        if let Some(at) = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        }) {
            return at;
        }
        std::fs::create_dir_all(CGROUP2_MOUNT).unwrap();
        nix::mount::mount(
            Some("cgroup2"),
            CGROUP2_MOUNT,
            Some("cgroup2"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        PathBuf::from(CGROUP2_MOUNT)
    })
}

/// The environment variable that makes `cgroup_helper` (run as a child
/// process of this test binary) do its work in the cgroup it names.
const HELPER_CGROUP: &str = "RAWBPF_TEST_CGROUP";
/// `TCP4PORT TCP6PORT UNIXPATH` for the helper to connect to.
const HELPER_PEERS: &str = "RAWBPF_TEST_PEERS";

struct Loaded {
    spec: ObjectSpec,
    coll: Collection,
}

fn load(name: &str) -> Result<Loaded, rawbpf::LoadError> {
    let spec = ObjectSpec::from_file(obj(name)).unwrap();
    let coll = Collection::load(&spec, &LoadOptions::default())?;
    Ok(Loaded { spec, coll })
}

impl Loaded {
    fn attach(&self, prog: &str, targets: &AttachTargets) -> Result<Vec<Link>, LinkError> {
        let spec = self.spec.program(prog).unwrap();
        attach_program(self.coll.program(prog).unwrap(), spec, targets)
    }

    fn count(&self, slot: u32) -> u64 {
        let v = self.coll.map("counts").unwrap();
        let v = v.lookup(&slot.to_le_bytes()).unwrap().unwrap();
        u64::from_le_bytes(v[..8].try_into().unwrap())
    }

    fn counts(&self, slots: usize) -> Vec<u64> {
        (0..slots as u32).map(|s| self.count(s)).collect()
    }
}

/// Detaches links at once (`BPF_LINK_DETACH`). Dropping a link detaches
/// it when its last holder lets go, which another process that opened it
/// by id (a link listing running meanwhile) or a child forked by another
/// test thread (until its exec) may delay: [`dropping_a_link_detaches_it`]
/// waits for that.
fn detach_links(links: Vec<Link>) {
    for link in links {
        link.detach().unwrap();
    }
}

fn targets() -> AttachTargets {
    AttachTargets::default()
}

/// Targets with some fields set (the struct is non-exhaustive).
fn targets_with(set: impl FnOnce(&mut AttachTargets)) -> AttachTargets {
    let mut t = targets();
    set(&mut t);
    t
}

// ---------------------------------------------------------------- cgroups

/// A child cgroup of the v2 hierarchy, removed when the test ends.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(tag: &str) -> Cgroup {
        let path = cgroup2().join(unique(tag));
        std::fs::create_dir(&path).unwrap();
        Cgroup(path)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The helper has exited; the kernel may take a moment to see the
        // cgroup empty.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Not a test of its own: run as a child process (`cgroup_helper` with
/// `HELPER_CGROUP` set), it moves itself into that cgroup and does what
/// each cgroup hook sees. Without the variable it does nothing.
#[test]
fn cgroup_helper() {
    let Ok(cgroup) = std::env::var(HELPER_CGROUP) else {
        return;
    };
    let peers = std::env::var(HELPER_PEERS).unwrap();
    let peers: Vec<&str> = peers.split(' ').collect();
    std::fs::write(
        Path::new(&cgroup).join("cgroup.procs"),
        std::process::id().to_string(),
    )
    .unwrap();
    // TCP over IPv4: sock_create, connect4, sockops, skb egress and
    // ingress, getpeername4, getsockname4, setsockopt, getsockopt and,
    // when it closes, sock_release.
    let tcp = TcpStream::connect(("127.0.0.1", peers[0].parse::<u16>().unwrap())).unwrap();
    tcp.peer_addr().unwrap();
    tcp.local_addr().unwrap();
    tcp.set_ttl(33).unwrap();
    assert_eq!(tcp.ttl().unwrap(), 33);
    drop(tcp);
    // connect6.
    drop(TcpStream::connect(("::1", peers[1].parse::<u16>().unwrap())).unwrap());
    // UDP: bind4, post_bind4, sendmsg4, recvmsg4; bind6.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp.send_to(b"ping", udp.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 8];
    udp.recv_from(&mut buf).unwrap();
    drop(UdpSocket::bind("[::1]:0").unwrap());
    // sysctl, dev.
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    drop(std::fs::File::open("/dev/null").unwrap());
    // connect_unix, getpeername_unix.
    let unix = UnixStream::connect(peers[2]).unwrap();
    unix.peer_addr().unwrap();
}

/// What the helper connects to, in the test's own cgroup.
struct Peers {
    tcp4: TcpListener,
    tcp6: TcpListener,
    _unix: UnixListener,
    unix_path: support::TempFile,
}

impl Peers {
    fn new() -> Peers {
        let unix_path = support::TempFile::new("cg-unix", b"");
        std::fs::remove_file(&unix_path.0).unwrap();
        Peers {
            tcp4: TcpListener::bind("127.0.0.1:0").unwrap(),
            tcp6: TcpListener::bind("[::1]:0").unwrap(),
            _unix: UnixListener::bind(&unix_path.0).unwrap(),
            unix_path,
        }
    }

    /// Runs the helper in `cgroup`; it must succeed.
    fn run_helper(&self, cgroup: &Cgroup) {
        let peers = format!(
            "{} {} {}",
            self.tcp4.local_addr().unwrap().port(),
            self.tcp6.local_addr().unwrap().port(),
            self.unix_path.path()
        );
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "cgroup_helper",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(HELPER_CGROUP, &cgroup.0)
            .env(HELPER_PEERS, peers)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the helper failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Attaches every program of `loaded` to `cgroup`.
fn attach_all(loaded: &Loaded, cgroup: &Cgroup) -> Vec<Link> {
    let targets = targets_with(|t| t.cgroup = Some(cgroup.0.clone()));
    let mut links = Vec::new();
    for p in &loaded.spec.programs {
        links.extend(loaded.attach(p.name(), &targets).unwrap());
    }
    links
}

#[test]
fn every_cgroup_hook_runs_until_its_link_goes() {
    if !kernel("every_cgroup_hook_runs_until_its_link_goes") {
        return;
    }
    let loaded = load("cgroup_kinds.bpf.o").unwrap();
    let cgroup = Cgroup::new("cg");
    let peers = Peers::new();
    let links = attach_all(&loaded, &cgroup);
    assert_eq!(links.len(), 18);
    support::mechanism("every_cgroup_hook_runs_until_its_link_goes", &links[0]);
    for link in &links {
        assert!(link.target().contains(&*cgroup.0.to_string_lossy()));
        // This kernel has cgroup links: each is one, of this program.
        let info = link.info().unwrap().expect("a cgroup link");
        assert!(info.id > 0 && info.prog_id > 0, "{info:?}");
    }
    peers.run_helper(&cgroup);
    let names = [
        "skb_ingress",
        "skb_egress",
        "sock_create",
        "sock_release",
        "post_bind4",
        "bind4",
        "connect4",
        "sendmsg4",
        "recvmsg4",
        "getpeername4",
        "getsockname4",
        "connect6",
        "bind6",
        "sockops",
        "sysctl",
        "getsockopt",
        "setsockopt",
        "dev",
    ];
    let ran = loaded.counts(names.len());
    for (name, n) in names.iter().zip(&ran) {
        assert!(*n > 0, "the {name} program did not run: {ran:?}");
    }
    // The counters are read after the detach: the first helper's sockets
    // may still see packets (their FIN's ACK, on a busy machine) until then.
    detach_links(links);
    let detached = loaded.counts(names.len());
    peers.run_helper(&cgroup);
    assert_eq!(
        loaded.counts(names.len()),
        detached,
        "detached programs ran"
    );
}

#[test]
fn unix_socket_cgroup_hooks_run() {
    if !kernel("unix_socket_cgroup_hooks_run") {
        return;
    }
    let loaded = load("cgroup_unix.bpf.o");
    if !kernel_has(
        "unix_socket_cgroup_hooks_run",
        "cgroup hooks for Unix sockets (6.7)",
        loaded.is_ok(),
    ) {
        return;
    }
    let loaded = loaded.unwrap();
    let cgroup = Cgroup::new("cg-unix");
    let peers = Peers::new();
    let links = attach_all(&loaded, &cgroup);
    peers.run_helper(&cgroup);
    let ran = loaded.counts(2);
    assert!(ran.iter().all(|&n| n > 0), "{ran:?}");
    detach_links(links);
    let detached = loaded.counts(2);
    peers.run_helper(&cgroup);
    assert_eq!(loaded.counts(2), detached);
}

#[test]
fn a_cgroup_program_needs_an_existing_cgroup() {
    if !kernel("a_cgroup_program_needs_an_existing_cgroup") {
        return;
    }
    let loaded = load("cgroup_kinds.bpf.o").unwrap();
    let e = loaded.attach("on_connect4", &targets()).unwrap_err();
    assert!(matches!(e, LinkError::NoTarget { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("on_connect4") && msg.contains("cgroup/connect4") && msg.contains("--cgroup"),
        "{msg}"
    );

    let missing = cgroup2().join(unique("missing"));
    let e = loaded
        .attach(
            "on_connect4",
            &targets_with(|t| t.cgroup = Some(missing.clone())),
        )
        .unwrap_err();
    assert!(matches!(e, LinkError::TargetNotFound { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("on_connect4")
            && msg.contains("cgroup/connect4")
            && msg.contains(&*missing.to_string_lossy())
            && msg.contains("No such file"),
        "{msg}"
    );
    // Nothing was attached: the same program still goes onto a real
    // cgroup, and runs only from there.
    let cgroup = Cgroup::new("cg-after");
    let peers = Peers::new();
    let links = loaded
        .attach(
            "on_connect4",
            &targets_with(|t| t.cgroup = Some(cgroup.0.clone())),
        )
        .unwrap();
    peers.run_helper(&cgroup);
    assert_eq!(loaded.count(6), 1);
    detach_links(links);
}

// ------------------------------------------------- network namespaces

/// A throwaway network namespace with its loopback up; the calling thread
/// is in it while the value lives (sockets opened meanwhile are its).
struct Netns {
    name: String,
    inside: Option<rawbpf::netns::Entered>,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = unique(tag);
        rawbpf::netns::create(&name).unwrap();
        let mut ns = Netns { name, inside: None };
        ns.inside = Some(rawbpf::netns::enter(&ns.name).unwrap());
        loopback_up();
        ns
    }

    fn targets(&self) -> AttachTargets {
        targets_with(|t| t.netns = Some(self.name.clone()))
    }
}

/// Brings up `lo` (ifindex 1 in every namespace) of the thread's namespace.
fn loopback_up() {
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
}

impl Drop for Netns {
    fn drop(&mut self) {
        drop(self.inside.take());
        let _ = rawbpf::netns::delete(&self.name);
    }
}

/// A UDP receiver on the loopback and a sender, in the current namespace.
struct Udp {
    rx: UdpSocket,
    tx: UdpSocket,
}

impl Udp {
    fn new() -> Udp {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Udp {
            rx,
            tx: UdpSocket::bind("127.0.0.1:0").unwrap(),
        }
    }

    /// Sends one datagram and receives it.
    fn round_trip(&self) {
        self.tx
            .send_to(b"hello", self.rx.local_addr().unwrap())
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = self.rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
    }
}

#[test]
fn sk_lookup_runs_in_its_namespace_until_its_link_goes() {
    if !kernel("sk_lookup_runs_in_its_namespace_until_its_link_goes") {
        return;
    }
    let loaded = load("net_hooks.bpf.o").unwrap();
    let ns = Netns::new("sklookup");
    let udp = Udp::new();
    udp.round_trip();
    assert_eq!(loaded.count(0), 0);
    let links = loaded.attach("count_lookup", &ns.targets()).unwrap();
    assert_eq!(links.len(), 1);
    assert!(
        links[0].target().contains(&ns.name),
        "{}",
        links[0].target()
    );
    support::mechanism("kernel_link_net", &links[0]);
    assert!(links[0].info().unwrap().is_some());
    udp.round_trip();
    assert!(loaded.count(0) > 0);
    detach_links(links);
    let detached = loaded.count(0);
    udp.round_trip();
    assert_eq!(loaded.count(0), detached);
}

#[test]
fn one_flow_dissector_per_namespace_until_its_link_goes() {
    if !kernel("one_flow_dissector_per_namespace_until_its_link_goes") {
        return;
    }
    let loaded = load("net_hooks.bpf.o").unwrap();
    let ns = Netns::new("flow");
    let first = loaded.attach("count_dissect", &ns.targets()).unwrap();
    support::mechanism("kernel_link_net", &first[0]);
    assert!(first[0].info().unwrap().is_some());
    // A namespace has one flow dissector: a second is refused while the
    // first is attached, and taken once it is gone.
    let e = loaded.attach("count_dissect", &ns.targets()).unwrap_err();
    assert!(matches!(e, LinkError::Attach { .. }), "{e}");
    assert!(e.to_string().contains("count_dissect"), "{e}");
    detach_links(first);
    let again = loaded.attach("count_dissect", &ns.targets()).unwrap();
    detach_links(again);
    // The program itself runs when test-run; real traffic runs it in
    // `flow_dissector_runs_on_real_traffic_until_its_link_goes`.
    let frame = rawbpf::packet::ipv4_udp_frame(0);
    let prog = loaded.coll.program("count_dissect").unwrap();
    prog.test_run(&frame, 1).unwrap();
    assert_eq!(loaded.count(1), 1);
}

/// The kernel runs a namespace's BPF flow dissector whenever it dissects
/// a packet of that namespace. `rehash` (tc, on the loopback's ingress: the
/// receiving side) forgets each packet's hash and asks for it again, which
/// makes the kernel dissect it: one dissection per packet it sees.
#[test]
fn flow_dissector_runs_on_real_traffic_until_its_link_goes() {
    if !kernel("flow_dissector_runs_on_real_traffic_until_its_link_goes") {
        return;
    }
    let loaded = load("flow_dissect.bpf.o").unwrap();
    let ns = Netns::new("dissect");
    let udp = Udp::new();
    let opts = AttachOptions {
        target: Target::new("lo", Hook::Ingress).in_netns(&ns.name),
        ..AttachOptions::default()
    };
    // Unpinned: the namespace's end (`ns` dropped, pass or fail) takes the
    // filter with it.
    let hooked = rawbpf::blocking::block_on(attach_loaded(
        &loaded.coll,
        "rehash",
        &opts,
        Pinning::Unpinned,
    ))
    .unwrap()
    .unwrap();
    // (dissections, packets rehashed)
    let counts = || (loaded.count(0), loaded.count(1));

    // Without a BPF flow dissector, the kernel's own dissects.
    udp.round_trip();
    let (dissected, rehashed) = counts();
    assert_eq!(dissected, 0);
    assert!(rehashed > 0, "the tc program saw no packet");

    let links = loaded.attach("count_dissect", &ns.targets()).unwrap();
    support::mechanism("kernel_link_net", &links[0]);
    for _ in 0..3 {
        udp.round_trip();
    }
    let (attached, rehashed_attached) = counts();
    let packets = rehashed_attached - rehashed;
    assert!(packets >= 3, "the tc program saw {packets} of 3 packets");
    assert!(
        attached - dissected >= packets,
        "{packets} packets rehashed, {} dissected by the BPF flow dissector",
        attached - dissected
    );

    detach_links(links);
    let detached = loaded.count(0);
    for _ in 0..3 {
        udp.round_trip();
    }
    let (after, rehashed_after) = counts();
    assert!(
        rehashed_after >= rehashed_attached + 3,
        "no traffic was rehashed"
    );
    assert_eq!(after, detached, "a detached flow dissector ran");
    rawbpf::blocking::block_on(hooked.detach())
        .unwrap()
        .unwrap();
}

/// The netfilter object, where the kernel loads netfilter programs (6.4+).
fn load_netfilter(test: &str) -> Option<Loaded> {
    let loaded = load("net_netfilter.bpf.o");
    kernel_has(test, "netfilter programs (6.4)", loaded.is_ok()).then(|| loaded.unwrap())
}

#[test]
fn netfilter_counts_sent_packets_until_its_link_goes() {
    if !kernel("netfilter_counts_sent_packets_until_its_link_goes") {
        return;
    }
    let Some(loaded) = load_netfilter("netfilter_counts_sent_packets_until_its_link_goes") else {
        return;
    };
    let ns = Netns::new("nf");
    let udp = Udp::new();
    let no_hook = loaded.attach("count_netfilter", &ns.targets()).unwrap_err();
    assert!(matches!(no_hook, LinkError::NoTarget { .. }), "{no_hook}");
    assert!(no_hook.to_string().contains("netfilter hook"), "{no_hook}");
    let mut targets = ns.targets();
    targets.netfilter = Some(NetfilterHook::new(NfFamily::Ipv4, NfHook::LocalOut, 0));
    let links = loaded.attach("count_netfilter", &targets).unwrap();
    assert_eq!(
        links[0].target(),
        format!("netfilter ipv4:output:0 in network namespace {}", ns.name)
    );
    support::mechanism("kernel_link_net", &links[0]);
    assert!(links[0].info().unwrap().is_some());
    udp.round_trip();
    assert!(loaded.count(0) > 0);
    detach_links(links);
    let detached = loaded.count(0);
    udp.round_trip();
    assert_eq!(loaded.count(0), detached);
}

/// Sends datagrams until the counter in `slot` stops moving (a link whose
/// last holder just let go, or a pin just removed), for at most a second.
fn stops_counting(loaded: &Loaded, slot: u32, udp: &Udp) -> bool {
    let mut before = loaded.count(slot);
    for _ in 0..100 {
        udp.round_trip();
        let after = loaded.count(slot);
        if after == before {
            return true;
        }
        before = after;
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn dropping_a_link_detaches_it_unless_pinned() {
    if !kernel("dropping_a_link_detaches_it_unless_pinned") {
        return;
    }
    let loaded = load("net_hooks.bpf.o").unwrap();
    let ns = Netns::new("drop");
    let udp = Udp::new();
    let targets = ns.targets();

    let links = loaded.attach("count_lookup", &targets).unwrap();
    udp.round_trip();
    assert_eq!(loaded.count(0), 1);
    drop(links);
    assert!(
        stops_counting(&loaded, 0, &udp),
        "a dropped link still runs"
    );

    // Pinned, it outlives the value, until the pin goes.
    let dir = support::BpffsDir::new("link-pin");
    std::fs::create_dir(&dir.0).unwrap();
    let pin = dir.0.join("sk_lookup");
    let mut links = loaded.attach("count_lookup", &targets).unwrap();
    links[0].pin(&pin).unwrap();
    assert_eq!(links[0].pinned_at(), Some(pin.as_path()));
    drop(links);
    let before = loaded.count(0);
    udp.round_trip();
    assert_eq!(loaded.count(0), before + 1, "a pinned link runs on");
    std::fs::remove_file(&pin).unwrap();
    assert!(
        stops_counting(&loaded, 0, &udp),
        "an unpinned link still runs"
    );
}

#[test]
fn a_missing_namespace_is_named() {
    if !kernel("a_missing_namespace_is_named") {
        return;
    }
    let name = unique("nons");
    let targets = targets_with(|t| {
        t.netns = Some(name.clone());
        t.netfilter = Some(NetfilterHook::new(NfFamily::Ipv6, NfHook::LocalIn, 1));
    });
    let mut objects = vec![(load("net_hooks.bpf.o").unwrap(), "count_lookup")];
    if let Some(netfilter) = load_netfilter("a_missing_namespace_is_named") {
        objects.push((netfilter, "count_netfilter"));
    }
    for (loaded, prog) in objects {
        let e = loaded.attach(prog, &targets).unwrap_err();
        assert!(matches!(e, LinkError::TargetNotFound { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(prog) && msg.contains(&name), "{msg}");
    }
}

// ------------------------------------------------------------- sockmaps

/// A connected TCP pair on the loopback.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    (client, server)
}

fn put_socket(loaded: &Loaded, key: u32, socket: &TcpStream) {
    let map = loaded.coll.map("socks").unwrap();
    map.update(
        &key.to_le_bytes(),
        &(socket.as_raw_fd() as u32).to_le_bytes(),
    )
    .unwrap();
}

fn send_and_receive(client: &mut TcpStream, server: &mut TcpStream) {
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
}

#[test]
fn sk_msg_and_sk_skb_run_on_the_sockmap_until_their_links_go() {
    if !kernel("sk_msg_and_sk_skb_run_on_the_sockmap_until_their_links_go") {
        return;
    }
    let loaded = load("net_hooks.bpf.o").unwrap();
    // The dispatcher cannot know the map: it says where to go.
    let e = loaded.attach("count_msg", &targets()).unwrap_err();
    assert!(matches!(e, LinkError::NoTarget { .. }), "{e}");
    assert!(e.to_string().contains("attach_to_sockmap"), "{e}");

    let mut links = Vec::new();
    for prog in ["count_msg", "count_verdict"] {
        let spec = loaded.spec.program(prog).unwrap();
        let map = net::sockmap_of(spec, &loaded.coll.maps).unwrap();
        assert_eq!(map.name(), "socks");
        let program = loaded.coll.program(prog).unwrap();
        links.push(net::attach_to_sockmap(program, spec, map).unwrap());
    }
    links
        .iter()
        .for_each(|l| support::mechanism("kernel_link_net", l));
    let (mut client, mut server) = tcp_pair();
    put_socket(&loaded, 0, &client);
    put_socket(&loaded, 1, &server);
    send_and_receive(&mut client, &mut server);
    let (msgs, verdicts) = (loaded.count(3), loaded.count(5));
    assert!(msgs > 0 && verdicts > 0, "sk_msg {msgs}, sk_skb {verdicts}");
    detach_links(links);
    // Sockets added after the detach run neither.
    let detached = (loaded.count(3), loaded.count(5));
    let (mut client, mut server) = tcp_pair();
    put_socket(&loaded, 2, &client);
    put_socket(&loaded, 3, &server);
    send_and_receive(&mut client, &mut server);
    assert_eq!((loaded.count(3), loaded.count(5)), detached);
}

#[test]
fn a_sockmap_program_needs_a_sockmap() {
    if !kernel("a_sockmap_program_needs_a_sockmap") {
        return;
    }
    let loaded = load("net_hooks.bpf.o").unwrap();
    let spec = loaded.spec.program("count_msg").unwrap();
    let program = loaded.coll.program("count_msg").unwrap();
    let counts = loaded.coll.map("counts").unwrap();
    let e = net::attach_to_sockmap(program, spec, counts).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("count_msg") && msg.contains("sk_msg") && msg.contains("counts"),
        "{msg}"
    );
    let socks = loaded.coll.map("socks").unwrap();
    let lookup = loaded.spec.program("count_lookup").unwrap();
    let e = net::attach_to_sockmap(loaded.coll.program("count_lookup").unwrap(), lookup, socks)
        .unwrap_err();
    assert!(matches!(e, LinkError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("count_lookup"), "{e}");
    let none = net::sockmap_of(spec, &[]).unwrap_err();
    assert!(none.to_string().contains("declares none"), "{none}");
}

// ------------------------------------------------------- socket filters

#[test]
fn a_socket_filter_counts_until_it_is_detached() {
    if !kernel("a_socket_filter_counts_until_it_is_detached") {
        return;
    }
    let loaded = load("net_hooks.bpf.o").unwrap();
    let udp = Udp::new();
    let program = loaded.coll.program("count_socket").unwrap();
    let filter = net::attach_socket_filter(program, udp.rx.as_fd()).unwrap();
    assert_eq!(filter.program(), "count_socket");
    udp.round_trip();
    assert_eq!(loaded.count(4), 1);
    drop(filter);
    udp.round_trip();
    assert_eq!(loaded.count(4), 1);

    // Explicit detach, then a second detach finds nothing.
    let filter = net::attach_socket_filter(program, udp.rx.as_fd()).unwrap();
    udp.round_trip();
    assert_eq!(loaded.count(4), 2);
    filter.detach().unwrap();
    udp.round_trip();
    assert_eq!(loaded.count(4), 2);

    // Only socket filter programs go on a socket.
    let wrong = loaded.coll.program("count_msg").unwrap();
    let e = net::attach_socket_filter(wrong, udp.rx.as_fd()).unwrap_err();
    assert!(e.to_string().contains("count_msg"), "{e}");
}
