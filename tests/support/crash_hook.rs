//! The hook the crash tests of kernel_crash.rs kill rawbpf on: the
//! commands and attach modes, what the kernel and bpffs hold for the
//! receiver's device, and reading, describing and cleaning it without
//! rawbpf's own code.

use super::crash::{command, tree};
use super::net::Net;
use super::{obj, rawbpf_bin};
use rawbpf::tc::{Direction, Tc, TcFilter};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The command killed at each of its system calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// `attach pipeline.bpf.o` on a bare hook.
    Attach,
    /// `attach pipeline.v2.bpf.o --replace` over an attached pipeline chain.
    Replace,
    /// `detach` of an attached pipeline chain.
    Detach,
    /// `swap prog_array:1=stage2_tag.bpf.o:tag_and_pass` on an attached
    /// pipeline chain.
    Swap,
}

/// One command in one attach mode.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub cmd: Cmd,
    /// TCX links (`--mode tcx`) instead of clsact filters.
    pub tcx: bool,
}

impl Case {
    pub fn name(self) -> String {
        let cmd = match self.cmd {
            Cmd::Attach => "attach",
            Cmd::Replace => "attach --replace",
            Cmd::Detach => "detach",
            Cmd::Swap => "swap",
        };
        if self.tcx {
            format!("{cmd} (tcx)")
        } else {
            cmd.to_owned()
        }
    }

    /// The command's arguments (the test adds `--netns B --dev B`).
    pub fn args(self) -> Vec<String> {
        let mut args: Vec<String> = match self.cmd {
            Cmd::Attach => vec!["attach".into(), obj("pipeline.bpf.o")],
            Cmd::Replace => vec![
                "attach".into(),
                obj("pipeline.v2.bpf.o"),
                "--replace".into(),
            ],
            Cmd::Detach => vec!["detach".into()],
            Cmd::Swap => vec![
                "swap".into(),
                format!("prog_array:1={}:tag_and_pass", obj("stage2_tag.bpf.o")),
            ],
        };
        if self.tcx && matches!(self.cmd, Cmd::Attach | Cmd::Replace) {
            args.extend(["--mode".into(), "tcx".into()]);
        }
        args
    }

    /// The plain attach of the pipeline chain, in this case's mode.
    pub fn plain_attach(self) -> Vec<String> {
        let mut args = vec!["attach".to_owned(), obj("pipeline.bpf.o")];
        if self.tcx {
            args.extend(["--mode".into(), "tcx".into()]);
        }
        args
    }

    /// Whether the hook runs a chain before the command.
    pub fn on_a_chain(self) -> bool {
        self.cmd != Cmd::Attach
    }
}

/// What the kernel and bpffs hold for the receiver's device, read without
/// rawbpf's own code for attach/list (so it works without `tc` too).
#[derive(Debug)]
pub struct State {
    /// Every filter on the ingress hook: (priority, kind, name, program id).
    pub filters: Vec<(u16, String, String, Option<u32>)>,
    /// Qdisc kinds on the device.
    pub qdiscs: Vec<String>,
    /// Programs attached to the device's TCX ingress (empty where the
    /// kernel has no TCX).
    pub tcx: Vec<u32>,
    /// Paths under `/sys/fs/bpf/rawbpf/ns_B`, relative to it; directories
    /// end in `/`.
    pub tree: Vec<String>,
}

impl State {
    /// Filters and links on the hook.
    pub fn hooked(&self) -> usize {
        self.filters.len() + self.tcx.len()
    }

    pub fn clsact(&self) -> bool {
        self.qdiscs.iter().any(|q| q == "clsact")
    }

    /// The program the hook runs, if exactly one filter or link.
    pub fn running(&self) -> Option<u32> {
        match (self.filters.as_slice(), self.tcx.as_slice()) {
            ([(_, _, _, id)], []) => *id,
            ([], [id]) => Some(*id),
            _ => None,
        }
    }

    pub fn is_clean(&self) -> bool {
        self.hooked() == 0 && !self.clsact() && self.tree.is_empty()
    }
}

/// The receiver's hook in one `Net`, with what the checks need.
pub struct Hook<'a> {
    pub net: &'a Net,
    pub ns_dir: PathBuf,
    /// `<ns_dir>/<dev>/ingress`: chains and their staging directories.
    pub ingress_dir: PathBuf,
    /// A directory of this test's in the pin root, so that the pin root
    /// exists throughout: whether rawbpf has to make it (other tests remove
    /// it when they leave it empty) would change the number of its mkdir
    /// calls from run to run, and with it what "mkdir #K" is.
    pub keeper: PathBuf,
}

impl<'a> Hook<'a> {
    pub fn new(net: &'a Net) -> Hook<'a> {
        let chain = net.pin_dir("ingress");
        let root = Path::new(rawbpf::attach::PIN_ROOT);
        let keeper = root.join(format!("crash-test-{}", net.lab.ns_b));
        std::fs::create_dir_all(&keeper).expect("a directory in the pin root (bpffs)");
        Hook {
            net,
            ns_dir: root.join(format!("ns_{}", net.lab.ns_b)),
            ingress_dir: chain.parent().unwrap().to_path_buf(),
            keeper,
        }
    }

    pub fn ns(&self) -> &str {
        &self.net.lab.ns_b
    }

    pub fn dev(&self) -> &str {
        &self.net.lab.dev_b
    }

    /// `ARGS --netns B --dev B`.
    pub fn full_args<S: AsRef<str>>(&self, args: &[S]) -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
        v.extend([
            "--netns".into(),
            self.ns().into(),
            "--dev".into(),
            self.dev().into(),
        ]);
        v
    }

    pub fn rawbpf<S: AsRef<str>>(&self, args: &[S]) -> Output {
        command(rawbpf_bin())
            .args(self.full_args(args))
            .output()
            .expect("run rawbpf")
    }

    /// `rawbpf list --netns B [--json]` (the whole namespace).
    pub fn list(&self, json: bool) -> Output {
        let mut c = command(rawbpf_bin());
        c.args(["list", "--netns", self.ns()]);
        if json {
            c.arg("--json");
        }
        c.output().expect("run rawbpf list")
    }

    pub fn ifindex_and_tc<T>(&self, f: impl AsyncFnOnce(&Tc, u32) -> T) -> T {
        rawbpf::blocking::block_on(async {
            let tc = rawbpf::netns::run_in(Some(self.ns()), Tc::open)
                .expect("enter the namespace")
                .expect("open a netlink socket");
            let devices = tc.devices().await.expect("list devices");
            let (ifindex, _, _) = devices
                .iter()
                .find(|(_, name, _)| name == self.dev())
                .expect("the receiver's device");
            f(&tc, *ifindex).await
        })
        .expect("a tokio runtime")
    }

    pub fn state(&self) -> State {
        let (filters, qdiscs, ifindex) = self.ifindex_and_tc(async |tc: &Tc, ifindex| {
            let filters = tc
                .filters(ifindex, Direction::Ingress)
                .await
                .expect("list ingress filters");
            let qdiscs = tc.qdisc_kinds(ifindex).await.expect("list qdiscs");
            (filters, qdiscs, ifindex)
        });
        State {
            filters: filters
                .into_iter()
                .map(
                    |TcFilter {
                         priority: prio,
                         kind,
                         bpf,
                     }| {
                        let (name, id) = match bpf {
                            Some(f) => (f.name, Some(f.prog_id)),
                            None => (String::new(), None),
                        };
                        (prio, kind, name, id)
                    },
                )
                .collect(),
            qdiscs,
            tcx: tcx_ingress_progs(self.ns(), ifindex),
            tree: tree(&self.ns_dir),
        }
    }

    /// The id of the entry program pinned in the chain directory of
    /// priority 1, if there is one.
    pub fn pinned_entry(&self) -> Option<u32> {
        let path = self.net.pin_dir("ingress").join("mark_packet");
        Some(rawbpf::Program::from_pin(path).ok()?.id)
    }

    /// Why this state is half-done (neither bare nor one whole chain with
    /// its pins), if it is.
    pub fn half_done(&self, s: &State) -> Option<String> {
        let mut why = Vec::new();
        // Staging directories (`<prio>_new_<pid>`) and anything else named
        // for a process that no longer runs.
        let staging: Vec<&String> = s
            .tree
            .iter()
            .filter(|p| {
                let Some(rest) = p.strip_prefix(&format!("{}/", self.dev())) else {
                    return false;
                };
                rest.split('/').any(|name| {
                    name.contains("_new_")
                        || name.rsplit_once('_').is_some_and(|(_, pid)| {
                            pid.parse::<u32>()
                                .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
                        })
                })
            })
            .collect();
        if !staging.is_empty() {
            why.push(format!(
                "staged pins or leftovers of a process gone {staging:?}"
            ));
        }
        let chain = self.net.pin_dir("ingress").exists();
        match (s.hooked(), chain) {
            (0, true) => why.push("pins of a chain the hook does not run".into()),
            (1, false) => why.push("a filter or link without its pins".into()),
            (1, true) => {
                if let (Some(run), pinned) = (s.running(), self.pinned_entry()) {
                    if pinned != Some(run) {
                        why.push(format!(
                            "the hook runs program {run}, the pins hold {pinned:?}"
                        ));
                    }
                }
            }
            _ => {}
        }
        if s.hooked() == 0 && s.clsact() {
            why.push("a clsact qdisc with no filter".into());
        }
        if s.hooked() == 0 && !chain && staging.is_empty() && !s.tree.is_empty() {
            why.push("pins left with nothing attached".into());
        }
        (!why.is_empty()).then(|| why.join("; "))
    }

    pub fn describe(&self, s: &State) -> String {
        let mut d = String::new();
        let _ = writeln!(d, "    filters (ingress): {:?}", s.filters);
        let _ = writeln!(d, "    qdiscs: {:?}", s.qdiscs);
        let _ = writeln!(d, "    tcx ingress programs: {:?}", s.tcx);
        let _ = writeln!(
            d,
            "    pinned entry program of chain 1: {:?}",
            self.pinned_entry()
        );
        let _ = writeln!(d, "    bpffs {}: {:?}", self.ns_dir.display(), s.tree);
        // iproute2's view too, where it is installed (not in the VM guests).
        for args in [
            vec!["filter", "show", "dev", self.dev(), "ingress"],
            vec!["qdisc", "show", "dev", self.dev()],
        ] {
            if let Ok(o) = Command::new("tc")
                .args(["-n", self.ns()])
                .args(&args)
                .output()
            {
                let _ = writeln!(
                    d,
                    "    tc {}: {:?}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stdout).trim_end()
                );
            }
        }
        d
    }

    /// Removes everything from the hook and bpffs without rawbpf, after a
    /// check found rawbpf's own clean-up wanting.
    pub fn force_clean(&self) {
        for p in tree(&self.ns_dir) {
            if p.ends_with("/link") {
                let _ = rawbpf::pin::link_detach(self.ns_dir.join(&p));
            }
        }
        let _ = std::fs::remove_dir_all(&self.ns_dir);
        self.ifindex_and_tc(async |tc: &Tc, ifindex| {
            let _ = tc.delete_clsact(ifindex).await;
        });
        // A TCX link goes in a kernel work item once its last reference does.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.state();
            if s.is_clean() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cannot clean the hook up:\n{}",
                self.describe(&s)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Hook<'_> {
    fn drop(&mut self) {
        // (The pin root itself stays: a rawbpf of another test may be
        // about to make its directory in it.)
        let _ = std::fs::remove_dir(&self.keeper);
    }
}

/// `BPF_PROG_QUERY` of the device's TCX ingress, in its namespace: the ids
/// of the programs attached there (none where the kernel has no TCX).
pub fn tcx_ingress_progs(ns: &str, ifindex: u32) -> Vec<u32> {
    #[repr(C)]
    #[derive(Default)]
    struct QueryAttr {
        target_ifindex: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        _pad: u32,
        prog_attach_flags: u64,
        link_ids: u64,
        link_attach_flags: u64,
        revision: u64,
    }
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_TCX_INGRESS: u32 = 46;
    let mut ids = [0u32; 16];
    let mut attr = QueryAttr {
        target_ifindex: ifindex,
        attach_type: BPF_TCX_INGRESS,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    let rc = rawbpf::netns::run_in(Some(ns), || unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            &mut attr as *mut QueryAttr,
            std::mem::size_of::<QueryAttr>(),
        )
    })
    .expect("enter the namespace");
    if rc < 0 {
        // EINVAL: a kernel without TCX.
        return Vec::new();
    }
    ids[..(attr.prog_cnt as usize).min(ids.len())].to_vec()
}
