//! `rawbpf demo`: the shipped pipeline between two throwaway network
//! namespaces, with a count of what arrives in each phase.

use crate::json::Json;
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
/// What each phase runs, in order.
const PHASES: [&str; 4] = [
    "nothing attached",
    "mark_packet only (slot 1 empty)",
    "full chain: mark_packet -> inspect_and_drop",
    "detached",
];

fn fail(e: impl std::fmt::Display) -> Failure {
    if crate::signals::interrupted() {
        Failure::Error("demo: interrupted; removed everything it had made".into())
    } else {
        Failure::Error(format!("demo: {e}"))
    }
}

/// Runs the demo; everything it makes is removed when it returns, also on
/// error or Ctrl-C.
pub fn demo(json: bool) -> Result<String, Failure> {
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
    let bench = Bench {
        netlink,
        target,
        sender,
        receiver,
        spec: &spec,
    };
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
    let phases = bench.run_phases(&mut out)?;
    phases.describe(&mut out);
    let ok = phases.as_expected();
    if json {
        let doc = phases.json(ok);
        return if ok {
            Ok(format!("{doc}\n"))
        } else {
            Err(Failure::Error(format!("demo: unexpected counts\n{doc}")))
        };
    }
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

/// What the phases work with: the pipeline, the hook on the lab's
/// receiving end, and a sender and a receiver across it. (Dropped in
/// this order, as the demo's locals were: netlink first, sockets after,
/// the lab itself last.)
struct Bench<'a> {
    netlink: Netlink,
    target: Target,
    sender: Sender,
    receiver: Receiver,
    spec: &'a ObjectSpec,
}

/// What the four phases saw and did.
struct Phases {
    /// Arrivals in phases 1 to 4.
    arrived: [Arrivals; 4],
    /// Phase 2: mark_packet alone.
    stage1: attach::Attached,
    /// Phase 3: the full chain, replacing stage 1.
    chain: attach::Attached,
    /// Before phase 4.
    detached: attach::Detached,
}

impl Bench<'_> {
    /// One phase: a batch of datagrams across, and a line counting what
    /// arrived and how much of it the pipeline marked.
    fn phase(&self, out: &mut String, n: usize) -> Result<Arrivals, Failure> {
        let what = PHASES[n - 1];
        // SIGINT and SIGTERM are held until here (see `catch_interrupts`).
        if crate::signals::interrupted() {
            return Err(fail("interrupted"));
        }
        self.sender
            .send_batch(self.receiver.port, BATCH)
            .map_err(fail)?;
        let got = self.receiver.collect_batch().map_err(fail)?;
        let marked = got.tos.iter().filter(|&&t| t & 0x01 != 0).count();
        let _ = writeln!(
            out,
            "  {n}. {what:<44} sent {BATCH:>2}  arrived {:>2}  with TOS bit 0x01: {marked:>2}",
            got.count
        );
        Ok(got)
    }

    /// Nothing attached; stage one alone; the full chain, swapped in
    /// atomically; detached.
    fn run_phases(&self, out: &mut String) -> Result<Phases, Failure> {
        let netlink = &self.netlink;
        // Detach on the way out, whatever happens after the first attach.
        let guard = DetachGuard(netlink, Some(self.target.clone()));
        let file = Path::new("pipeline.bpf.o");
        let mut opts = AttachOptions {
            target: self.target.clone(),
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
        let p1 = self.phase(out, 1)?;

        let stage1 = netlink
            .attach(file, self.spec, &load, &opts)
            .map_err(fail)?;
        let p2 = self.phase(out, 2)?;

        load.tails.clear();
        opts.replace = true;
        let chain = netlink
            .attach(file, self.spec, &load, &opts)
            .map_err(fail)?;
        let p3 = self.phase(out, 3)?;

        let detached = netlink.detach(&self.target, Some(1)).map_err(fail)?;
        guard.disarm();
        let p4 = self.phase(out, 4)?;
        Ok(Phases {
            arrived: [p1, p2, p3, p4],
            stage1,
            chain,
            detached,
        })
    }
}

impl Phases {
    /// `--json`: each phase's counts, the programs attached, and the verdict.
    fn json(&self, as_expected: bool) -> Json {
        let programs = |a: &attach::Attached| {
            Json::Arr(
                a.programs
                    .iter()
                    .map(|(n, id)| {
                        Json::Obj(vec![("name", n.as_str().into()), ("id", (*id).into())])
                    })
                    .collect(),
            )
        };
        let phases = PHASES
            .iter()
            .zip(&self.arrived)
            .map(|(what, got)| {
                Json::Obj(vec![
                    ("phase", Json::str(*what)),
                    ("sent", (BATCH as u64).into()),
                    ("arrived", (got.count as u64).into()),
                    (
                        "marked",
                        (got.tos.iter().filter(|&&t| t & 0x01 != 0).count() as u64).into(),
                    ),
                ])
            })
            .collect();
        Json::Obj(vec![
            ("phases", Json::Arr(phases)),
            ("stage1", programs(&self.stage1)),
            ("chain", programs(&self.chain)),
            ("deleted_qdisc", Json::Bool(self.detached.deleted_qdisc)),
            ("as_expected", Json::Bool(as_expected)),
        ])
    }

    /// What was attached, replaced, pinned and removed.
    fn describe(&self, out: &mut String) {
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
            self.stage1.filter_name,
            ids(&self.stage1)
        );
        let _ = writeln!(
            out,
            "  phase 3 replaced it atomically with the full chain: {}",
            ids(&self.chain)
        );
        let _ = writeln!(
            out,
            "  pinned under {} until detach{}",
            self.chain
                .pin_dir
                .as_deref()
                .unwrap_or(Path::new("-"))
                .display(),
            if self.detached.deleted_qdisc {
                "; detach removed the clsact qdisc too"
            } else {
                ""
            }
        );
    }

    /// All arrive; all arrive marked; none arrive; all arrive.
    fn as_expected(&self) -> bool {
        let [p1, p2, p3, p4] = &self.arrived;
        p1.count == BATCH
            && p2.count == BATCH
            && p2.tos.iter().all(|t| t & 0x01 != 0)
            && p3.count == 0
            && p4.count == BATCH
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
