//! What an embedder does with rawbpf, start to end: load the shipped
//! two-stage pipeline (`programs/obj/pipeline.bpf.o`), hook it to a
//! device's TC ingress, read its prog array, watch it drop IPv4 traffic,
//! and unhook it. Every step is logged through the `log` crate.
//!
//! ```text
//! sudo cargo run -p rawbpf --example pipeline [-- path/to/pipeline.bpf.o]
//! ```
//!
//! It needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN for the namespace),
//! works in a network namespace of its own and removes it on the way out,
//! also when a step fails; it exits non-zero on failure.
//!
//! The setup an embedder would not do is marked SETUP: your device exists
//! already, so you would skip the namespace and use `Target::new("eth0",
//! Hook::Ingress)` (no `in_netns`).

use rawbpf::attach::{AttachOptions, Hook, Pinning, Target};
use rawbpf::blocking::Netlink;
use rawbpf::{Collection, LoadOptions, ObjectSpec};
use std::error::Error;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

/// The entry program, slot 0 of the pipeline's prog array.
const ENTRY: &str = "mark_packet";
/// Datagrams sent per batch.
const BATCH: usize = 10;

/// A logger that writes records of level info and above to stderr. Any
/// `log` implementation works (env_logger, tracing's bridge, syslog).
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "[{:<5} {}] {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

fn main() -> ExitCode {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let object = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../programs/obj/pipeline.bpf.o"
        )
        .to_owned()
    });
    match run(&object) {
        Ok(()) => {
            log::info!(
                "done: the pipeline dropped the IPv4 traffic while hooked, and nothing is left"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(object: &str) -> Result<(), Box<dyn Error>> {
    let chain = load_and_read(object)?;
    // SETUP: a throwaway network namespace whose loopback device carries
    // the traffic. Dropping `ns` deletes it, also when a step below fails.
    let ns = Namespace::create(&format!("rawbpf-example-{}", std::process::id()))?;
    // One runtime for every netlink call of this program.
    let netlink = Netlink::new()?;
    loopback_up(&netlink, &ns.0)?;
    let (tx, rx) = ns.udp_pair()?;
    log::info!(
        "before attach: {} of {BATCH} datagrams arrive",
        batch(&tx, &rx)?
    );

    // 3. Hook the chain to the device. Unpinned: nothing goes to bpffs and
    //    the hook runs the chain while `chain` lives; `Pinning::Pinned`
    //    would make it outlive this process, as `rawbpf attach` does.
    let opts = AttachOptions {
        target: Target::new("lo", Hook::Ingress).in_netns(ns.0.clone()),
        ..AttachOptions::default()
    };
    let hooked = netlink.attach_loaded(&chain, ENTRY, &opts, Pinning::Unpinned)?;
    log::info!(
        "attached {} to lo ingress in {} (mode {}, program id {})",
        hooked.filter_name,
        ns.0,
        hooked.mode.name(),
        hooked.prog_id
    );
    let listing = netlink.list(Some(&ns.0), Some("lo"))?;
    for l in &listing.attached {
        log::info!(
            "listed: {} {} prio {} runs {} (id {})",
            l.dev,
            l.hook.name(),
            l.filter.priority,
            l.filter.name,
            l.filter.prog_id
        );
    }

    // 4. Traffic: stage 1 marks each IPv4 packet, stage 2 drops it.
    let arrived = batch(&tx, &rx)?;
    log::info!("while attached: {arrived} of {BATCH} datagrams arrive");
    if arrived != 0 {
        return Err(
            format!("the pipeline should drop every IPv4 datagram; {arrived} arrived").into(),
        );
    }

    // 5. Unhook it; the chain's maps and programs go when `chain` drops.
    let detached = netlink.detach_attached(hooked)?;
    log::info!(
        "detached (filter priorities removed: {:?}, qdisc deleted: {})",
        detached.priorities,
        detached.deleted_qdisc
    );
    let arrived = batch(&tx, &rx)?;
    log::info!("after detach: {arrived} of {BATCH} datagrams arrive");
    if arrived != BATCH {
        return Err(format!("after detach every datagram should arrive; {arrived} did").into());
    }
    Ok(())
}

/// Steps 1 and 2: the loaded chain, its prog array read and logged.
fn load_and_read(object: &str) -> Result<Collection, Box<dyn Error>> {
    // 1. Parse the object (pure: no kernel involved) and load it: maps are
    //    created, programs verified, and the prog array is filled from the
    //    object's own `.values` (slot 0 mark_packet, slot 1 inspect_and_drop).
    let file = std::path::Path::new(object);
    let spec = ObjectSpec::from_file(file)?;
    log::info!(
        "parsed {object}: {} programs, {} maps",
        spec.programs.len(),
        spec.maps.len()
    );
    let chain = Collection::load(&spec, &LoadOptions::for_file(file))?;
    for p in &chain.programs {
        log::info!("loaded program {} (kernel id {})", p.name, p.id);
    }

    // 2. Read a map: a prog array answers a lookup with the id of the
    //    program in the slot.
    let prog_array = chain.map("prog_array")?;
    for slot in 0u32..2 {
        let id = prog_array
            .lookup(&slot.to_le_bytes())?
            .map(|v| u32::from_le_bytes(v[..4].try_into().expect("4-byte value")));
        let name = chain
            .programs
            .iter()
            .find(|p| Some(p.id) == id)
            .map(|p| p.name.as_str());
        log::info!("prog_array[{slot}] = {}", name.unwrap_or("(empty)"));
    }

    Ok(chain)
}

/// SETUP: a named network namespace (`/run/netns/NAME`), deleted on drop.
struct Namespace(String);

impl Namespace {
    fn create(name: &str) -> Result<Namespace, Box<dyn Error>> {
        rawbpf::netns::create(name)?;
        log::info!("created network namespace {name}");
        Ok(Namespace(name.to_owned()))
    }

    /// Two UDP sockets on 127.0.0.1 in the namespace: sockets stay in the
    /// namespace they were made in, whatever thread uses them later.
    fn udp_pair(&self) -> Result<(UdpSocket, UdpSocket), Box<dyn Error>> {
        let pair = rawbpf::netns::run_in(Some(&self.0), || -> std::io::Result<_> {
            let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
            let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
            rx.set_read_timeout(Some(Duration::from_millis(200)))?;
            tx.connect(rx.local_addr()?)?;
            Ok((tx, rx))
        })??;
        Ok(pair)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        match rawbpf::netns::delete(&self.0) {
            Ok(()) => log::info!("deleted network namespace {}", self.0),
            Err(e) => log::warn!("{e}"),
        }
    }
}

/// SETUP: brings the namespace's loopback device up, with rtnetlink (a
/// device an embedder hooks is up already).
fn loopback_up(netlink: &Netlink, ns: &str) -> Result<(), Box<dyn Error>> {
    netlink.block_on(async {
        let (connection, handle, _) = rawbpf::netns::run_in(Some(ns), rtnetlink::new_connection)??;
        tokio::spawn(connection);
        let up = rtnetlink::LinkUnspec::new_with_name("lo").up().build();
        handle.link().set(up).execute().await?;
        log::info!("brought lo up in {ns}");
        Ok(())
    })
}

/// Sends a batch of datagrams and counts those that arrive.
fn batch(tx: &UdpSocket, rx: &UdpSocket) -> Result<usize, Box<dyn Error>> {
    for i in 0..BATCH {
        tx.send(format!("datagram {i}").as_bytes())?;
    }
    let mut buf = [0u8; 64];
    let mut arrived = 0;
    // Loopback delivers at once; the read timeout ends the batch.
    while arrived < BATCH {
        match rx.recv(&mut buf) {
            Ok(_) => arrived += 1,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(arrived)
}
