//! `rawbpf demo`: the shipped pipeline between two throwaway network
//! namespaces, with a count of what arrives in each phase.

use crate::Failure;
use rawbpf::attach::{self, AttachOptions, Hook, Target};
use rawbpf::blocking::Netlink;
use rawbpf::lab::{Arrivals, Lab, Receiver, Sender};
use rawbpf::{LoadOptions, ObjectSpec};
use std::fmt::Write as _;
use std::path::Path;

/// The pipeline object, built into the binary.
const PIPELINE: &[u8] = include_bytes!("../../programs/obj/pipeline.bpf.o");
/// Datagrams per phase.
const BATCH: usize = 20;

fn fail(e: impl std::fmt::Display) -> Failure {
    if crate::signals::interrupted() {
        Failure::Error("demo: interrupted; removed everything it had made".into())
    } else {
        Failure::Error(format!("demo: {e}"))
    }
}

fn phase(
    out: &mut String,
    n: usize,
    what: &str,
    sender: &Sender,
    receiver: &Receiver,
) -> Result<Arrivals, Failure> {
    // SIGINT and SIGTERM are held until here (see `catch_interrupts`).
    if crate::signals::interrupted() {
        return Err(fail("interrupted"));
    }
    sender.send_batch(receiver.port, BATCH).map_err(fail)?;
    let got = receiver.collect_batch().map_err(fail)?;
    let marked = got.tos.iter().filter(|&&t| t & 0x01 != 0).count();
    let _ = writeln!(
        out,
        "  {n}. {what:<44} sent {BATCH:>2}  arrived {:>2}  with TOS bit 0x01: {marked:>2}",
        got.count
    );
    Ok(got)
}

/// Runs the demo; everything it makes is removed when it returns, also on
/// error or Ctrl-C.
pub fn demo() -> Result<String, Failure> {
    crate::signals::catch_interrupts().map_err(fail)?;
    let spec = ObjectSpec::parse(PIPELINE).map_err(fail)?;
    let lab = Lab::create(&format!("rawbpf-demo-{}", std::process::id())).map_err(fail)?;
    let receiver = lab.receiver(0).map_err(fail)?;
    let sender = lab.sender().map_err(fail)?;
    let target = Target {
        netns: Some(lab.ns_b.clone()),
        dev: lab.dev_b.clone(),
        hook: Hook::Ingress,
    };
    // One runtime for the demo's netlink; Lab::create ran its own.
    let netlink = Netlink::new().map_err(fail)?;
    // Detach on the way out, whatever happens after the first attach.
    let guard = DetachGuard(&netlink, Some(target.clone()));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "rawbpf demo: UDP from {} ({}) to {} ({}), filters on {} ingress\n",
        lab.ns_a,
        rawbpf::lab::ADDR_A,
        lab.ns_b,
        rawbpf::lab::ADDR_B,
        lab.dev_b
    );
    let file = Path::new("pipeline.bpf.o");
    let mut opts = AttachOptions {
        target: target.clone(),
        program: Some("mark_packet".into()),
        priority: 1,
        replace: false,
        mode: attach::Mode::Tc,
        xdp_mode: attach::XdpMode::Auto,
    };
    let mut load = LoadOptions {
        // Slot 1 empty: stage one alone.
        tails: vec![rawbpf::TailSlot {
            map: "prog_array".into(),
            key: 1,
            program: None,
        }],
        ..LoadOptions::for_file(file)
    };
    let p1 = phase(&mut out, 1, "nothing attached", &sender, &receiver)?;

    let stage1 = netlink.attach(file, &spec, &load, &opts).map_err(fail)?;
    let p2 = phase(
        &mut out,
        2,
        "mark_packet only (slot 1 empty)",
        &sender,
        &receiver,
    )?;

    load.tails.clear();
    opts.replace = true;
    let chain = netlink.attach(file, &spec, &load, &opts).map_err(fail)?;
    let p3 = phase(
        &mut out,
        3,
        "full chain: mark_packet -> inspect_and_drop",
        &sender,
        &receiver,
    )?;

    let detached = netlink.detach(&target, Some(1)).map_err(fail)?;
    guard.disarm();
    let p4 = phase(&mut out, 4, "detached", &sender, &receiver)?;

    let ids = |a: &attach::Attached| {
        a.programs
            .iter()
            .map(|(n, id)| format!("{n} id {id}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "\n  phase 2 attached {}: {}",
        stage1.filter_name,
        ids(&stage1)
    );
    let _ = writeln!(
        out,
        "  phase 3 replaced it atomically with the full chain: {}",
        ids(&chain)
    );
    let _ = writeln!(
        out,
        "  pinned under {} until detach{}",
        chain.pin_dir.as_deref().unwrap_or(Path::new("-")).display(),
        if detached.deleted_qdisc {
            "; detach removed the clsact qdisc too"
        } else {
            ""
        }
    );
    let ok = p1.count == BATCH
        && p2.count == BATCH
        && p2.tos.iter().all(|t| t & 0x01 != 0)
        && p3.count == 0
        && p4.count == BATCH;
    let _ = writeln!(
        out,
        "\n{}",
        if ok {
            "result: as expected (all, all marked with valid checksums, none, all); namespaces removed"
        } else {
            "result: UNEXPECTED counts (see above); namespaces removed"
        }
    );
    if ok {
        Ok(out)
    } else {
        Err(Failure::Error(format!("demo: unexpected counts\n{out}")))
    }
}

/// Detaches the demo's filter if the demo stops before it does.
struct DetachGuard<'n>(&'n Netlink, Option<Target>);

impl DetachGuard<'_> {
    fn disarm(mut self) {
        self.1 = None;
    }
}

impl Drop for DetachGuard<'_> {
    fn drop(&mut self) {
        if let Some(t) = &self.1 {
            let _ = self.0.detach(t, Some(1));
        }
    }
}
