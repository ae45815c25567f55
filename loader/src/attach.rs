//! Attaching a loaded chain to a network device so that it outlives the
//! process: the entry program becomes a direct-action cls_bpf filter on the
//! device's clsact qdisc, and everything the chain needs is pinned under
//!
//! ```text
//! /sys/fs/bpf/rawbpf/<host|ns_NAME>/<device>/<ingress|egress>/<priority>/
//! ```
//!
//! because a prog array is emptied by the kernel when its last user
//! reference (fd or pin) goes: without the pins the filter would keep only
//! stage 1. `detach` deletes the filter and those pins, and the clsact
//! qdisc too if rawbpf created it and nothing else is attached to it.

use crate::error::{AttachError, LoadError};
use crate::load::{Collection, LoadOptions, TailSlot};

fn c_path(path: &Path) -> Result<std::ffi::CString, AttachError> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
        AttachError::Load(LoadError::Pin {
            path: path.to_owned(),
            action: "using the path",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        })
    })
}
use crate::netns;
use crate::obj::ObjectSpec;
use crate::tc::{BpfFilter, Direction, Tc};
use crate::uapi::ProgramType;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

/// Where rawbpf pins attached chains.
pub const PIN_ROOT: &str = "/sys/fs/bpf/rawbpf";
/// Marks a device whose clsact qdisc rawbpf created (a directory: bpffs
/// holds only pins and directories).
const CREATED_CLSACT: &str = "created_clsact";

/// A device and direction, in a network namespace or the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Named network namespace (`/run/netns/NAME`); `None` for the caller's.
    pub netns: Option<String>,
    /// Device name.
    pub dev: String,
    /// Direction.
    pub direction: Direction,
}

impl Target {
    /// `/sys/fs/bpf/rawbpf/<host|ns_NAME>/<dev>`.
    pub fn dev_dir(&self) -> PathBuf {
        let ns = match &self.netns {
            Some(n) => format!("ns_{}", n.replace('.', "_")),
            None => "host".to_owned(),
        };
        Path::new(PIN_ROOT)
            .join(ns)
            .join(self.dev.replace('.', "_"))
    }

    /// The pin directory of the chain at `priority`.
    pub fn chain_dir(&self, priority: u16) -> PathBuf {
        self.dev_dir()
            .join(self.direction.name())
            .join(priority.to_string())
    }

    fn in_ns<T>(&self, f: impl FnOnce() -> Result<T, AttachError>) -> Result<T, AttachError> {
        netns::run_in(self.netns.as_deref(), f)?
    }

    fn ifindex(&self, tc: &Tc) -> Result<u32, AttachError> {
        tc.ifindex(&self.dev)
            .map_err(|source| self.netlink("looking up the device", source))?
            .ok_or_else(|| AttachError::NoDevice {
                dev: self.dev.clone(),
                netns: self.netns.clone(),
            })
    }

    fn netlink(&self, action: &'static str, source: io::Error) -> AttachError {
        AttachError::Netlink {
            dev: self.dev.clone(),
            action,
            source,
        }
    }
}

fn open_tc(target: &Target) -> Result<Tc, AttachError> {
    Tc::new().map_err(|source| target.netlink("opening a netlink socket", source))
}

/// How to attach.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Where.
    pub target: Target,
    /// The entry program; by default the object's first sched_cls program.
    pub program: Option<String>,
    /// Prog-array slots to set or clear after the object's `.values`.
    pub tails: Vec<TailSlot>,
    /// Filter priority (tc's `prio`).
    pub priority: u16,
    /// Replace a chain already at this priority, atomically.
    pub replace: bool,
    /// A clsact filter, a TCX link, or TCX where the kernel has it.
    pub mode: Mode,
    /// The kernel BTF to relocate against instead of `/sys/kernel/btf/vmlinux`.
    pub target_btf: Option<PathBuf>,
}

/// How the entry program is hooked to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A direct-action cls_bpf filter on the clsact qdisc.
    Tc,
    /// A TCX link (`BPF_LINK_CREATE`, kernel >= 6.6), pinned with the chain.
    Tcx,
    /// TCX if the kernel has it, else tc.
    Auto,
}

impl Mode {
    /// "tc", "tcx" or "auto".
    pub fn name(self) -> &'static str {
        match self {
            Mode::Tc => "tc",
            Mode::Tcx => "tcx",
            Mode::Auto => "auto",
        }
    }
}

/// The pin of a chain's TCX link.
const LINK_PIN: &str = "link";

/// The TCX link pinned with the chain in `chain_dir`, if there is one.
fn pinned_link(chain_dir: &Path) -> Option<std::os::fd::OwnedFd> {
    crate::sys::obj_get(&c_path(&chain_dir.join(LINK_PIN)).ok()?).ok()
}

/// What the netns side of attach made.
enum Hook {
    Tc {
        ifindex: u32,
        created_qdisc: bool,
    },
    Tcx {
        ifindex: u32,
        link: std::os::fd::OwnedFd,
    },
}

/// What `attach` did.
#[derive(Debug)]
pub struct Attached {
    /// The entry program's name.
    pub program: String,
    /// Its kernel id.
    pub prog_id: u32,
    /// The device's index.
    pub ifindex: u32,
    /// Whether rawbpf added the clsact qdisc.
    pub created_qdisc: bool,
    /// The mode used (tc or tcx).
    pub mode: Mode,
    /// Where the chain is pinned.
    pub pin_dir: PathBuf,
    /// The filter's name (`obj:[prog]`).
    pub filter_name: String,
    /// Program names and ids, map names and ids of the chain.
    pub programs: Vec<(String, u32)>,
    /// Maps of the chain.
    pub maps: Vec<(String, u32)>,
    /// Warnings from loading.
    pub warnings: Vec<String>,
}

/// Loads `spec` and attaches its entry program as a direct-action filter.
/// Nothing is left behind on failure: pins are removed and a qdisc rawbpf
/// just created is deleted.
pub fn attach(
    file: &Path,
    spec: &ObjectSpec,
    opts: &AttachOptions,
) -> Result<Attached, AttachError> {
    let target = &opts.target;
    let entry = match &opts.program {
        Some(p) => spec.program(p).ok_or_else(|| {
            AttachError::Load(LoadError::NotFound {
                kind: "program",
                name: p.clone(),
                known: spec
                    .programs
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        })?,
        None => spec
            .programs
            .iter()
            .find(|p| p.prog_type == ProgramType::SCHED_CLS)
            .ok_or(AttachError::NoTcProgram)?,
    };
    if entry.prog_type != ProgramType::SCHED_CLS {
        return Err(AttachError::NotTcProgram {
            program: entry.name().to_owned(),
            prog_type: entry.prog_type,
        });
    }
    let chain_dir = target.chain_dir(opts.priority);
    if chain_dir.exists() && !opts.replace {
        return Err(AttachError::AlreadyAttached {
            dev: target.dev.clone(),
            direction: target.direction.name(),
            priority: opts.priority,
        });
    }
    let mut load_opts = LoadOptions::for_file(file);
    load_opts.tails = opts.tails.clone();
    load_opts.target_btf = opts.target_btf.clone();
    let chain = Collection::load(spec, &load_opts)?;
    let program = chain.program(entry.name())?;

    // Pin into a fresh directory first; it takes the final name only once the
    // filter points at the new chain.
    let staging = chain_dir.with_file_name(format!("{}_new_{}", opts.priority, std::process::id()));
    // (pin makes the directory; the guard removes it again on failure).
    let staged = StagedDir(Some(staging.clone()));
    chain.pin(&staging)?;

    let file_name = file.file_name().map_or_else(
        || file.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let filter_name = format!("{file_name}:[{}]", entry.name());
    let old_link = chain_dir.join(LINK_PIN);
    let replacing_tcx = opts.replace && old_link.exists();
    if opts.replace && chain_dir.exists() {
        let wanted_tc = opts.mode == Mode::Tc;
        let wanted_tcx = opts.mode == Mode::Tcx;
        if (wanted_tc && replacing_tcx) || (wanted_tcx && !replacing_tcx) {
            return Err(AttachError::ModeMismatch {
                dev: target.dev.clone(),
                attached: if replacing_tcx { "tcx" } else { "tc" },
            });
        }
    }
    let hook = target.in_ns(|| {
        let tc = open_tc(target)?;
        let ifindex = target.ifindex(&tc)?;
        if replacing_tcx {
            let link = crate::sys::obj_get(&c_path(&old_link)?)
                .map_err(|source| target.netlink("opening the pinned TCX link", source))?;
            crate::sys::link_update(link.as_fd(), program.fd().as_fd())
                .map_err(|source| target.netlink("updating the TCX link", source))?;
            return Ok(Hook::Tcx { ifindex, link });
        }
        if opts.mode != Mode::Tc && !(opts.replace && chain_dir.exists()) {
            let attach_type = match target.direction {
                Direction::Ingress => crate::uapi::AttachType::TCX_INGRESS,
                Direction::Egress => crate::uapi::AttachType::TCX_EGRESS,
            };
            match crate::sys::link_create_ifindex(program.fd().as_fd(), ifindex, attach_type.0, 0) {
                Ok(link) => return Ok(Hook::Tcx { ifindex, link }),
                // An older kernel does not know TCX: auto falls back to tc.
                Err(e) if opts.mode == Mode::Auto && e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(source) => return Err(target.netlink("creating the TCX link", source)),
            }
        }
        let created = tc
            .ensure_clsact(ifindex)
            .map_err(|source| target.netlink("adding the clsact qdisc", source))?;
        let added = tc.add_bpf_filter(
            ifindex,
            target.direction,
            opts.priority,
            program.fd().as_fd(),
            &filter_name,
            opts.replace,
        );
        if let Err(source) = added {
            if created {
                // Another rawbpf may have put its filter on the qdisc we
                // just made (two attaches racing): delete the qdisc only if
                // it is empty, else leave it to that chain's detach.
                if tc.has_filters(ifindex).is_ok_and(|any| !any) {
                    let _ = tc.delete_clsact(ifindex);
                } else {
                    let _ = std::fs::create_dir_all(target.dev_dir().join(CREATED_CLSACT));
                }
            }
            return Err(match crate::netlink::errno(&source) {
                Some(libc::EEXIST) => AttachError::AlreadyAttached {
                    dev: target.dev.clone(),
                    direction: target.direction.name(),
                    priority: opts.priority,
                },
                _ => target.netlink("adding the bpf filter", source),
            });
        }
        Ok(Hook::Tc {
            ifindex,
            created_qdisc: created,
        })
    })?;
    let (ifindex, created_qdisc, mode) = match &hook {
        Hook::Tc {
            ifindex,
            created_qdisc,
        } => (*ifindex, *created_qdisc, Mode::Tc),
        Hook::Tcx { ifindex, link } => {
            // The link lives as long as a pin of it: pin it with the chain.
            if let Err(source) =
                crate::sys::obj_pin(link.as_fd(), &c_path(&staging.join(LINK_PIN))?)
            {
                return Err(LoadError::Pin {
                    path: staging.join(LINK_PIN),
                    action: "pinning the TCX link",
                    source,
                }
                .into());
            }
            (*ifindex, false, Mode::Tcx)
        }
    };
    drop(hook);

    // The filter now runs the new chain: its pins replace the old ones.
    if chain_dir.exists() {
        let _ = std::fs::remove_dir_all(&chain_dir);
    }
    std::fs::rename(&staging, &chain_dir).map_err(|source| LoadError::Pin {
        path: chain_dir.clone(),
        action: "moving the new pins into place",
        source,
    })?;
    staged.keep();
    if created_qdisc {
        let _ = std::fs::create_dir_all(target.dev_dir().join(CREATED_CLSACT));
    }
    Ok(Attached {
        program: entry.name().to_owned(),
        prog_id: program.id,
        ifindex,
        created_qdisc,
        mode,
        pin_dir: chain_dir,
        filter_name,
        programs: chain
            .programs
            .iter()
            .map(|p| (p.name.clone(), p.id))
            .collect(),
        maps: chain.maps.iter().map(|m| (m.name.clone(), m.id)).collect(),
        warnings: chain.warnings.clone(),
    })
}

/// A pin directory removed on drop unless kept.
struct StagedDir(Option<PathBuf>);

impl StagedDir {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
            remove_empty_parents(dir);
        }
    }
}

/// Removes the directories above `path` that are empty, up to and
/// including the pin root.
fn remove_empty_parents(path: &Path) {
    let mut dir = path.to_path_buf();
    while dir.pop() && dir.starts_with(PIN_ROOT) && std::fs::remove_dir(&dir).is_ok() {}
}

/// What `detach` removed.
#[derive(Debug, Default)]
pub struct Detached {
    /// Priorities whose filters were deleted.
    pub priorities: Vec<u16>,
    /// Whether the clsact qdisc rawbpf had created was deleted too.
    pub deleted_qdisc: bool,
}

/// Priorities of the chains rawbpf pinned for a target.
fn pinned_priorities(target: &Target) -> Vec<u16> {
    let dir = target.dev_dir().join(target.direction.name());
    let mut prios: Vec<u16> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    prios.sort_unstable();
    prios
}

/// Deletes the filter at `priority` (or, with `None`, every chain rawbpf
/// attached in that direction) and its pins; deletes the clsact qdisc if
/// rawbpf created it and no filter is left on it.
pub fn detach(target: &Target, priority: Option<u16>) -> Result<Detached, AttachError> {
    let prios = match priority {
        Some(p) => vec![p],
        None => pinned_priorities(target),
    };
    let created_marker = target.dev_dir().join(CREATED_CLSACT);
    let result = target.in_ns(|| {
        let tc = open_tc(target)?;
        let ifindex = target.ifindex(&tc)?;
        let mut done = Detached::default();
        for &p in &prios {
            let deleted = tc
                .delete_filter(ifindex, target.direction, p)
                .map_err(|source| target.netlink("deleting the filter", source))?;
            if deleted || target.chain_dir(p).exists() {
                done.priorities.push(p);
            }
        }
        if created_marker.exists() {
            let any = tc
                .has_filters(ifindex)
                .map_err(|source| target.netlink("listing filters", source))?;
            if !any {
                tc.delete_clsact(ifindex)
                    .map_err(|source| target.netlink("deleting the clsact qdisc", source))?;
                done.deleted_qdisc = true;
            }
        }
        Ok(done)
    });
    let detached = match result {
        Ok(d) => d,
        // The device (or its namespace) is gone, and its filters with it:
        // what is left to remove is our pins.
        Err(AttachError::NoDevice { .. })
        | Err(AttachError::Netns(crate::netns::NetnsError::NotFound { .. })) => {
            let _ = std::fs::remove_dir_all(&created_marker);
            Detached {
                priorities: prios
                    .into_iter()
                    .filter(|&p| target.chain_dir(p).exists())
                    .collect(),
                deleted_qdisc: false,
            }
        }
        Err(e) => return Err(e),
    };
    if detached.priorities.is_empty() {
        return Err(AttachError::NotAttached {
            dev: target.dev.clone(),
            direction: target.direction.name(),
            priority,
        });
    }
    for &p in &detached.priorities {
        // A TCX link goes only when its last reference does, in a kernel
        // work item after the unpin: detach it now, so that when detach
        // returns, packets no longer see the chain.
        if let Some(link) = pinned_link(&target.chain_dir(p)) {
            let _ = crate::sys::link_detach(link.as_fd());
        }
        let _ = std::fs::remove_dir_all(target.chain_dir(p));
    }
    if detached.deleted_qdisc {
        let _ = std::fs::remove_dir(&created_marker);
    }
    remove_empty_parents(&target.chain_dir(0));
    Ok(detached)
}

/// A BPF filter found by `list`, with where rawbpf pinned its chain if it did.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The device's name.
    pub dev: String,
    /// The filter.
    pub filter: BpfFilter,
    /// The chain's pins, for filters rawbpf attached.
    pub pin_dir: Option<PathBuf>,
    /// tc (a cls_bpf filter) or tcx (a link rawbpf pinned).
    pub mode: Mode,
}

/// The TCX link pinned for a chain, described like a filter: the entry
/// program's name, id and tag come from the link's program.
fn pinned_tcx(target: &Target, ifindex: u32, priority: u16) -> Option<BpfFilter> {
    use crate::sys;
    let link = pinned_link(&target.chain_dir(priority))?;
    let info = sys::link_info(link.as_fd()).ok()?;
    let prog = sys::prog_info(sys::prog_get_fd_by_id(info.prog_id).ok()?.as_fd()).ok()?;
    let end = prog
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(prog.name.len());
    Some(BpfFilter {
        ifindex,
        direction: target.direction,
        priority,
        handle: 0,
        name: String::from_utf8_lossy(&prog.name[..end]).into_owned(),
        prog_id: info.prog_id,
        tag: prog.tag,
        direct_action: true,
    })
}

/// BPF filters on every device (or one) of a namespace.
pub fn list(netns: Option<&str>, dev: Option<&str>) -> Result<Vec<Listed>, AttachError> {
    netns::run_in(netns, || {
        let probe = Target {
            netns: netns.map(str::to_owned),
            dev: dev.unwrap_or("").to_owned(),
            direction: Direction::Ingress,
        };
        let tc = open_tc(&probe)?;
        let devices = match dev {
            Some(d) => vec![(probe.ifindex(&tc)?, d.to_owned())],
            None => tc
                .devices()
                .map_err(|source| probe.netlink("listing devices", source))?,
        };
        let mut out = Vec::new();
        for (ifindex, name) in devices {
            for direction in [Direction::Ingress, Direction::Egress] {
                let target = Target {
                    netns: netns.map(str::to_owned),
                    dev: name.clone(),
                    direction,
                };
                let filters = tc
                    .filters(ifindex, direction)
                    .map_err(|source| target.netlink("listing filters", source))?;
                for (_, _, bpf) in filters {
                    let Some(filter) = bpf else { continue };
                    let pin_dir = Some(target.chain_dir(filter.priority)).filter(|d| d.exists());
                    out.push(Listed {
                        dev: name.clone(),
                        filter,
                        pin_dir,
                        mode: Mode::Tc,
                    });
                }
                for priority in pinned_priorities(&target) {
                    if let Some(filter) = pinned_tcx(&target, ifindex, priority) {
                        out.push(Listed {
                            dev: name.clone(),
                            filter,
                            pin_dir: Some(target.chain_dir(priority)),
                            mode: Mode::Tcx,
                        });
                    }
                }
            }
        }
        Ok(out)
    })?
}

/// One stage to put into an attached chain: `MAP:KEY=OBJ:PROG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapSpec {
    /// The chain's prog array.
    pub map: String,
    /// The slot.
    pub key: u32,
    /// The object holding the new stage.
    pub object: PathBuf,
    /// The new stage's program name.
    pub program: String,
}

impl std::str::FromStr for SwapSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<SwapSpec, String> {
        let usage = || "expected MAP:KEY=OBJ:PROG".to_owned();
        let (slot, stage) = s.split_once('=').ok_or_else(usage)?;
        let (map, key) = slot.split_once(':').ok_or_else(usage)?;
        let (object, program) = stage.rsplit_once(':').ok_or_else(usage)?;
        if map.is_empty() || object.is_empty() || program.is_empty() {
            return Err(usage());
        }
        let key = key
            .parse()
            .map_err(|_| format!("key '{key}' is not a number from 0 to 4294967295"))?;
        Ok(SwapSpec {
            map: map.to_owned(),
            key,
            object: PathBuf::from(object),
            program: program.to_owned(),
        })
    }
}

/// What `swap` did.
#[derive(Debug)]
pub struct Swapped {
    /// The program now in the slot.
    pub program: String,
    /// Its kernel id.
    pub prog_id: u32,
    /// The prog array's kernel id.
    pub map_id: u32,
}

/// Replaces one stage of an attached chain with one map update, so packets
/// see either the old stage or the new one. Refuses, changing nothing, a
/// program the prog array cannot hold.
pub fn swap(
    target: &Target,
    priority: u16,
    swap: &SwapSpec,
    spec: &ObjectSpec,
) -> Result<Swapped, AttachError> {
    use crate::sys::{self, ElemSizes};
    let chain_dir = target.chain_dir(priority);
    if !chain_dir.exists() {
        return Err(AttachError::NotAttached {
            dev: target.dev.clone(),
            direction: target.direction.name(),
            priority: Some(priority),
        });
    }
    let refuse = |reason: String| AttachError::SwapRefused {
        spec: format!(
            "{}:{}={}:{}",
            swap.map,
            swap.key,
            swap.object.display(),
            swap.program
        ),
        reason,
    };
    let pin = chain_dir.join(crate::load::pin_name(&swap.map));
    let pin_c = std::ffi::CString::new(pin.as_os_str().as_encoded_bytes())
        .map_err(|_| refuse("the map name is not a valid path".into()))?;
    let array = sys::obj_get(&pin_c).map_err(|e| {
        refuse(format!(
            "the attached chain has no map {} ({}: {e})",
            swap.map,
            pin.display()
        ))
    })?;
    let info = sys::map_info(array.as_fd())
        .map_err(|e| refuse(format!("reading map {}: {e}", swap.map)))?;
    if info.map_type != crate::uapi::MapType::PROG_ARRAY.0 {
        return Err(refuse(format!(
            "map {} is a {}, not a prog_array",
            swap.map,
            crate::uapi::MapType(info.map_type)
        )));
    }
    if swap.key >= info.max_entries {
        return Err(refuse(format!(
            "key {} is past max_entries {} of {}",
            swap.key, info.max_entries, swap.map
        )));
    }
    let new = spec.program(&swap.program).ok_or_else(|| {
        refuse(format!(
            "no program {} in {} (it has: {})",
            swap.program,
            swap.object.display(),
            spec.programs
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if new.prog_type != ProgramType::SCHED_CLS {
        return Err(refuse(format!(
            "program {} is a {} program; this prog array holds sched_cls programs",
            swap.program, new.prog_type
        )));
    }
    let chain = Collection::load(spec, &LoadOptions::for_file(&swap.object))?;
    let program = chain.program(&swap.program)?;
    let value = (program.fd().as_raw_fd() as u32).to_le_bytes();
    sys::map_update(
        array.as_fd(),
        ElemSizes { key: 4, value: 4 },
        &swap.key.to_le_bytes(),
        &value,
        0,
    )
    .map_err(|e| refuse(format!("the kernel refused it for this prog array: {e}")))?;
    Ok(Swapped {
        program: swap.program.clone(),
        prog_id: program.id,
        map_id: info.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_specs_parse() {
        let s: SwapSpec = "prog_array:1=objs/v2.bpf.o:inspect_and_drop"
            .parse()
            .unwrap();
        assert_eq!(
            (
                s.map.as_str(),
                s.key,
                s.object.to_str().unwrap(),
                s.program.as_str()
            ),
            ("prog_array", 1, "objs/v2.bpf.o", "inspect_and_drop")
        );
        assert_eq!(
            "prog_array:1=x.o".parse::<SwapSpec>().unwrap_err(),
            "expected MAP:KEY=OBJ:PROG"
        );
        assert_eq!(
            "m:k=x.o:p".parse::<SwapSpec>().unwrap_err(),
            "key 'k' is not a number from 0 to 4294967295"
        );
    }

    #[test]
    fn pin_layout() {
        let t = Target {
            netns: Some("blue".into()),
            dev: "eth0.100".into(),
            direction: Direction::Egress,
        };
        assert_eq!(
            t.chain_dir(7),
            Path::new("/sys/fs/bpf/rawbpf/ns_blue/eth0_100/egress/7")
        );
        let host = Target { netns: None, ..t };
        assert_eq!(
            host.chain_dir(1),
            Path::new("/sys/fs/bpf/rawbpf/host/eth0_100/egress/1")
        );
    }
}
