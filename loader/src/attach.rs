//! Attaching a loaded chain to a network device so that it outlives the
//! process: the entry program becomes a direct-action cls_bpf filter on the
//! device's clsact qdisc, a TCX link, or the device's XDP program, and
//! everything the chain needs is pinned under
//!
//! ```text
//! /sys/fs/bpf/rawbpf/<host|ns_NAME>/<device>/<ingress|egress>/<priority>/
//! /sys/fs/bpf/rawbpf/<host|ns_NAME>/<device>/xdp/
//! ```
//!
//! because a prog array is emptied by the kernel when its last user
//! reference (fd or pin) goes: without the pins the hook would keep only
//! stage 1. `detach` removes the hook and those pins, and the clsact
//! qdisc too if rawbpf created it and nothing else is attached to it.
//!
//! `attach`, `detach` and `list` talk netlink and are `async`: they run on
//! the caller's tokio runtime. [`crate::blocking`] has the same functions for
//! callers without one.

use crate::error::{AttachError, LoadError};
use crate::load::{Collection, LoadOptions, TailSlot};
use crate::netns;
use crate::obj::{ObjectSpec, ProgramSpec};
use crate::tc::{BpfFilter, Direction, NetlinkError, Tc};
use crate::uapi::{xdp_flags, ProgramType};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

fn c_path(path: &Path) -> Result<std::ffi::CString, AttachError> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
        AttachError::Load(LoadError::Pin {
            path: path.to_owned(),
            action: "using the path",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        })
    })
}

pub use crate::pins::PIN_ROOT;
use crate::pins::{ChainDir, DevicePins, LINK_PIN};

mod view;
use view::{pinned_link, DeviceView};

/// Where on a device a chain's entry program is hooked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Hook {
    /// A TC hook on received packets (clsact ingress or TCX ingress).
    #[default]
    Ingress,
    /// A TC hook on sent packets (clsact egress or TCX egress).
    Egress,
    /// The device's XDP program (`IFLA_XDP`): received packets, before the
    /// kernel builds a socket buffer.
    Xdp,
}

impl Hook {
    /// "ingress", "egress" or "xdp".
    pub fn name(self) -> &'static str {
        match self {
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
            Hook::Xdp => "xdp",
        }
    }

    /// The TC direction, for the TC hooks.
    pub fn direction(self) -> Option<Direction> {
        match self {
            Hook::Ingress => Some(Direction::Ingress),
            Hook::Egress => Some(Direction::Egress),
            Hook::Xdp => None,
        }
    }

    /// The program type the hook runs.
    pub fn program_type(self) -> ProgramType {
        match self {
            Hook::Xdp => ProgramType::XDP,
            _ => ProgramType::SCHED_CLS,
        }
    }

    /// The hook in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Hook::Xdp => "a device's XDP hook",
            _ => "a TC hook (ingress or egress)",
        }
    }

    /// The hook a program of type `t` attaches to, if it is a device hook.
    pub fn for_program(t: ProgramType) -> Option<Hook> {
        match t {
            ProgramType::SCHED_CLS => Some(Hook::Ingress),
            ProgramType::XDP => Some(Hook::Xdp),
            _ => None,
        }
    }
}

/// A device and hook, in a network namespace or the caller's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// Named network namespace (`/run/netns/NAME`); `None` for the caller's.
    pub netns: Option<String>,
    /// Device name.
    pub dev: String,
    /// The hook.
    pub hook: Hook,
}

impl Target {
    /// A device's hook in the caller's network namespace.
    pub fn new(dev: impl Into<String>, hook: Hook) -> Target {
        Target {
            netns: None,
            dev: dev.into(),
            hook,
        }
    }

    /// The same hook in the named network namespace (`/run/netns/NAME`).
    pub fn in_netns(mut self, netns: impl Into<String>) -> Target {
        self.netns = Some(netns.into());
        self
    }

    /// The device's pins (see [`crate::pins`]).
    pub fn pins(&self) -> DevicePins {
        DevicePins::new(self.netns.as_deref(), &self.dev)
    }

    /// The slot of a chain at `priority`: the priority, or 0 for XDP.
    fn slot(&self, priority: u16) -> u16 {
        if self.hook == Hook::Xdp {
            0
        } else {
            priority
        }
    }

    /// The pin directory of the hooked chain at `priority` (XDP: its one chain).
    pub fn chain_dir(&self, priority: u16) -> PathBuf {
        self.pins().chain(self.hook, self.slot(priority))
    }

    fn not_attached(&self, priority: Option<u16>) -> AttachError {
        AttachError::NotAttached {
            dev: self.dev.clone(),
            direction: self.hook.name(),
            priority: priority.filter(|_| self.hook != Hook::Xdp),
        }
    }

    fn no_device(&self) -> AttachError {
        AttachError::NoDevice {
            dev: self.dev.clone(),
            netns: self.netns.clone(),
        }
    }

    fn in_ns<T>(&self, f: impl FnOnce() -> Result<T, AttachError>) -> Result<T, AttachError> {
        netns::run_in(self.netns.as_deref(), f)?
    }

    /// The device's index, in the calling thread's namespace.
    fn ifindex(&self) -> Result<u32, AttachError> {
        match nix::net::if_::if_nametoindex(self.dev.as_str()) {
            Ok(i) => Ok(i),
            Err(nix::errno::Errno::ENODEV) => Err(self.no_device()),
            Err(e) => Err(self.os("looking up the device", io::Error::from(e))),
        }
    }

    /// Opens a netlink connection in the target's namespace and finds the
    /// device there; `also` runs in the namespace too, with the index.
    fn connect<T>(
        &self,
        also: impl FnOnce(u32) -> Result<T, AttachError>,
    ) -> Result<(Tc, u32, T), AttachError> {
        self.in_ns(|| {
            let tc = Tc::open().map_err(|e| self.netlink("opening a netlink socket", e))?;
            let ifindex = self.ifindex()?;
            let more = also(ifindex)?;
            Ok((tc, ifindex, more))
        })
    }

    /// What this command reads of the target's device, read once.
    fn view<'t>(&self, tc: &'t Tc, ifindex: u32) -> DeviceView<'t> {
        DeviceView::new(tc, ifindex, self.netns.as_deref(), &self.dev)
    }

    fn netlink(&self, action: &'static str, source: NetlinkError) -> AttachError {
        AttachError::Netlink {
            dev: self.dev.clone(),
            action,
            source,
        }
    }

    fn os(&self, action: &'static str, source: io::Error) -> AttachError {
        AttachError::Device {
            dev: self.dev.clone(),
            action,
            source,
        }
    }

    fn already_attached(&self, priority: u16) -> AttachError {
        AttachError::AlreadyAttached {
            dev: self.dev.clone(),
            direction: self.hook.name(),
            priority,
        }
    }
}

/// How to attach.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Where.
    pub target: Target,
    /// The entry program; by default the object's first program of the
    /// type the hook runs.
    pub program: Option<String>,
    /// Prog-array slots to set or clear after the object's `.values`.
    pub tails: Vec<TailSlot>,
    /// Filter priority (tc's `prio`); XDP has none.
    pub priority: u16,
    /// Replace a chain already there, atomically.
    pub replace: bool,
    /// For the TC hooks: a clsact filter, a TCX link, or TCX where the
    /// kernel has it.
    pub mode: Mode,
    /// For the XDP hook: the driver's XDP, generic XDP, offload, or what the
    /// kernel picks.
    pub xdp_mode: XdpMode,
    /// The kernel BTF to relocate against instead of `/sys/kernel/btf/vmlinux`.
    pub target_btf: Option<PathBuf>,
}

impl Default for AttachOptions {
    /// The caller's namespace, no device yet, ingress, the object's first
    /// program of the hook's type, priority 1, no replace, a clsact filter
    /// (or the kernel's choice of XDP mode).
    fn default() -> AttachOptions {
        AttachOptions {
            target: Target::default(),
            program: None,
            tails: Vec::new(),
            priority: 1,
            replace: false,
            mode: Mode::Tc,
            xdp_mode: XdpMode::Auto,
            target_btf: None,
        }
    }
}

/// How the entry program is hooked to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A direct-action cls_bpf filter on the clsact qdisc.
    #[default]
    Tc,
    /// A TCX link (`BPF_LINK_CREATE`, kernel >= 6.6), pinned with the chain.
    Tcx,
    /// TCX if the kernel has it, else tc.
    Auto,
    /// The device's XDP program.
    Xdp,
}

impl Mode {
    /// "tc", "tcx", "auto" or "xdp".
    pub fn name(self) -> &'static str {
        match self {
            Mode::Tc => "tc",
            Mode::Tcx => "tcx",
            Mode::Auto => "auto",
            Mode::Xdp => "xdp",
        }
    }
}

/// Which XDP the device runs the program in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// The driver's if it has XDP, else generic (no mode flag).
    #[default]
    Auto,
    /// In the driver (`XDP_FLAGS_DRV_MODE`).
    Native,
    /// On socket buffers, any device (`XDP_FLAGS_SKB_MODE`).
    Generic,
    /// On the NIC (`XDP_FLAGS_HW_MODE`).
    Offload,
}

impl XdpMode {
    fn flags(self) -> u32 {
        match self {
            XdpMode::Auto => 0,
            XdpMode::Native => xdp_flags::DRV_MODE,
            XdpMode::Generic => xdp_flags::SKB_MODE,
            XdpMode::Offload => xdp_flags::HW_MODE,
        }
    }

    /// The mode flag that removes a program the kernel reports in `mode`.
    fn of_attached(mode: &str) -> u32 {
        match mode {
            "generic" => xdp_flags::SKB_MODE,
            "offload" => xdp_flags::HW_MODE,
            _ => xdp_flags::DRV_MODE,
        }
    }
}

/// What the netns side of attach made.
enum Made {
    Tc { created_qdisc: bool },
    Tcx { link: OwnedFd },
    Xdp { mode: &'static str },
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
    /// The mode used (tc, tcx or xdp).
    pub mode: Mode,
    /// For XDP: the mode the kernel runs it in ("native", "generic", "offload").
    pub xdp_mode: Option<&'static str>,
    /// Where the chain is pinned (`None`: not pinned).
    pub pin_dir: Option<PathBuf>,
    /// The filter's name (`obj:[prog]`).
    pub filter_name: String,
    /// Program names and ids, map names and ids of the chain.
    pub programs: Vec<(String, u32)>,
    /// Maps of the chain.
    pub maps: Vec<(String, u32)>,
    /// Warnings from loading.
    pub warnings: Vec<String>,
    /// Where it is hooked.
    pub target: Target,
    /// The filter priority (XDP: unused).
    pub priority: u16,
    /// An unpinned TCX link ([`attach_loaded`] without pinning): the program
    /// stays hooked while this fd is open. `None` otherwise.
    pub link: Option<OwnedFd>,
}

impl Attached {
    /// Unhooks it: [`detach`] for a pinned chain; for an unpinned one,
    /// deletes the filter or XDP program if the hook still runs this entry
    /// program, or detaches the TCX link.
    pub async fn detach(self) -> Result<Detached, AttachError> {
        if self.pin_dir.is_some() {
            return detach(&self.target, Some(self.priority)).await;
        }
        let target = &self.target;
        if let Some(link) = &self.link {
            crate::sys::link_detach(link.as_fd())
                .map_err(|source| target.os("detaching the TCX link", source))?;
            return Ok(Detached {
                priorities: vec![self.priority],
                ..Detached::default()
            });
        }
        let (tc, ifindex, ()) = target.connect(|_| Ok(()))?;
        let mut view = target.view(&tc, ifindex);
        let slot = target.slot(self.priority);
        let hooked = view.hooked(target.hook, slot).await?;
        if hooked.map(|h| h.prog_id) != Some(self.prog_id) {
            return Err(target.not_attached(Some(self.priority)));
        }
        let mut done = Detached::default();
        match target.hook.direction() {
            Some(direction) => {
                tc.delete_filter(ifindex, direction, self.priority)
                    .await
                    .map_err(|source| target.netlink("deleting the filter", source))?;
                view.filter_deleted(direction, self.priority);
                done.priorities.push(self.priority);
                // The qdisc this attach added, if nothing else uses it now.
                if self.created_qdisc && view.has_filters().await.is_ok_and(|any| !any) {
                    done.deleted_qdisc = tc.delete_clsact(ifindex).await.is_ok();
                }
            }
            None => {
                tc.set_xdp(
                    ifindex,
                    None,
                    XdpMode::of_attached(self.xdp_mode.unwrap_or("")),
                )
                .await
                .map_err(|source| target.netlink("removing the XDP program", source))?;
                done.removed_xdp = true;
            }
        }
        Ok(done)
    }
}

/// The entry program: the one named, or the object's first of the type the
/// hook runs; refuses one of another type, naming the hook it needs.
fn entry_program<'s>(
    spec: &'s ObjectSpec,
    opts: &AttachOptions,
) -> Result<&'s ProgramSpec, AttachError> {
    let hook = opts.target.hook;
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
        None => match spec
            .programs
            .iter()
            .find(|p| p.prog_type == hook.program_type())
        {
            Some(p) => p,
            // Name the first program another hook would take.
            None => spec
                .programs
                .iter()
                .find(|p| Hook::for_program(p.prog_type).is_some())
                .ok_or(AttachError::NoProgramFor { hook })?,
        },
    };
    if entry.prog_type != hook.program_type() {
        return Err(AttachError::WrongProgramType {
            program: entry.name().to_owned(),
            prog_type: entry.prog_type,
            hook,
        });
    }
    Ok(entry)
}

/// A piece of rawbpf's bpffs state that does not match what the kernel
/// runs: left by a rawbpf killed half-way, or by a device's hook changed
/// behind rawbpf's back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The device.
    pub dev: String,
    /// The hook.
    pub hook: Hook,
    /// The directory.
    pub path: PathBuf,
    /// What it is, and what happens to it.
    pub kind: LeftoverKind,
}

/// Kinds of [`Leftover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverKind {
    /// A staged chain the hook runs: its attach stopped between hooking it
    /// and moving its pins into place. It is moved into place.
    StagedAndHooked {
        /// The process that staged it.
        pid: u32,
    },
    /// A staged chain the hook does not run: its attach stopped before
    /// hooking it. It is removed.
    Staged {
        /// The process that staged it.
        pid: u32,
    },
    /// A chain's pins whose programs the hook no longer runs (a detach
    /// stopped after unhooking it, or the hook was changed by another
    /// tool). They are removed.
    Unhooked,
    /// The marker of a clsact qdisc rawbpf added, which is gone. It is
    /// removed.
    QdiscGone,
    /// The clsact qdisc rawbpf added, with no filter left on it (a detach
    /// stopped before deleting it). `detach` deletes it.
    QdiscUnused,
    /// A directory with nothing in it, made by a rawbpf stopped before it
    /// pinned anything. It is removed.
    Empty,
}

impl std::fmt::Display for LeftoverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeftoverKind::StagedAndHooked { pid } => write!(
                f,
                "chain staged by process {pid} (no longer running) and hooked: its pins are moved into place"
            ),
            LeftoverKind::Staged { pid } => write!(
                f,
                "chain staged by process {pid} (no longer running), never hooked: removed"
            ),
            LeftoverKind::Unhooked => {
                f.write_str("pins of a chain the hook no longer runs: removed")
            }
            LeftoverKind::QdiscGone => {
                f.write_str("marker of a clsact qdisc that is gone: removed")
            }
            LeftoverKind::QdiscUnused => f.write_str(
                "the clsact qdisc rawbpf added has no filter left: detach deletes it",
            ),
            LeftoverKind::Empty => f.write_str("empty directory: removed"),
        }
    }
}

/// Compares one hook's pins with what the kernel runs and, unless `dry`,
/// brings them in line: a chain staged by a process that no longer runs is
/// moved into place if the hook runs it, else removed; a hooked chain whose
/// programs the hook no longer runs is removed; the clsact marker goes with
/// the qdisc. Chains staged by running processes are left alone. Returns
/// what it found.
async fn reconcile(
    view: &mut DeviceView<'_>,
    target: &Target,
    dry: bool,
) -> Result<Vec<Leftover>, AttachError> {
    let pins = target.pins();
    let hook = target.hook;
    let mut found = Vec::new();
    let leftover = |path: &Path, kind| Leftover {
        dev: target.dev.clone(),
        hook,
        path: path.to_owned(),
        kind,
    };
    let tree = view.tree().clone();
    if !tree.exists {
        return Ok(found);
    }
    let chains = tree.chains(hook);
    let mut slots: Vec<u16> = chains.iter().map(|c| c.slot).collect();
    slots.dedup();
    for slot in slots {
        let hooked = view.hooked(hook, slot).await?;
        let final_chain = tree.hooked_chain(hook, slot);
        let final_dir = pins.chain(hook, slot);
        let mut final_ok = false;
        for staged in chains.iter().filter(|c| c.slot == slot) {
            let Some(pid) = staged.staged_by else {
                continue;
            };
            if staged.stager_runs() {
                continue;
            }
            let running = view
                .running_for(Some(staged), &hooked)
                .or_else(|| view.running_for(final_chain, &hooked));
            if view.chain_runs(staged, &running) {
                found.push(leftover(
                    &staged.path,
                    LeftoverKind::StagedAndHooked { pid },
                ));
                if !dry {
                    promote(&staged.path, staged.has_link(), final_chain, &final_dir)?;
                }
                final_ok = true;
            } else {
                found.push(leftover(&staged.path, LeftoverKind::Staged { pid }));
                if !dry {
                    staged.remove();
                }
            }
        }
        // A running attach --replace may have hooked its chain and not yet
        // moved it into place: the old pins are its to replace.
        let replacing = chains.iter().any(|c| c.slot == slot && c.stager_runs());
        if let Some(chain) = final_chain.filter(|_| !final_ok && !replacing) {
            let running = view.running_for(Some(chain), &hooked);
            if !view.chain_runs(chain, &running) {
                found.push(leftover(&final_dir, LeftoverKind::Unhooked));
                if !dry {
                    chain.remove();
                }
            }
        }
    }
    let marker = pins.created_clsact();
    // An attach in progress makes the marker before the qdisc.
    let in_progress = tree.attach_in_progress();
    if hook != Hook::Xdp && tree.created_clsact && !in_progress {
        if !view.has_clsact().await? {
            found.push(leftover(&marker, LeftoverKind::QdiscGone));
            if !dry {
                let _ = std::fs::remove_dir(&marker);
            }
        } else if dry
            && tree.chains(Hook::Ingress).is_empty()
            && tree.chains(Hook::Egress).is_empty()
            && !view.has_filters().await?
        {
            found.push(leftover(&marker, LeftoverKind::QdiscUnused));
        }
    }
    if !in_progress {
        // Directories a stopped attach made before it pinned anything.
        let hook_dir = pins.hook_dir(hook);
        for (dir, empty) in [
            (&*hook_dir, tree.hook_dir_empty(hook)),
            (pins.dir(), tree.empty),
        ] {
            if empty {
                found.push(leftover(dir, LeftoverKind::Empty));
                if !dry {
                    let _ = std::fs::remove_dir(dir);
                }
            }
        }
    }
    if !dry && !found.is_empty() {
        view.pins_changed();
        DevicePins::remove_empty_parents(&pins.chain(hook, 0));
    }
    Ok(found)
}

/// Moves a staged chain into place over the final one (`old`, as read
/// before). A TCX link pinned only in the old chain (a replace that updated
/// the link and stopped) is pinned into the new one first, so the hook
/// never loses it.
fn promote(
    staged: &Path,
    staged_link: bool,
    old: Option<&ChainDir>,
    final_dir: &Path,
) -> Result<(), AttachError> {
    if let Some(old) = old {
        if !staged_link {
            if let Some(link) = pinned_link(old) {
                let pin = staged.join(LINK_PIN);
                crate::sys::obj_pin(link.as_fd(), &c_path(&pin)?).map_err(|source| {
                    LoadError::Pin {
                        path: pin.clone(),
                        action: "pinning the TCX link",
                        source,
                    }
                })?;
            }
        }
        old.remove();
    }
    let moved = std::fs::rename(staged, final_dir).or_else(|e| {
        // A chain put in place since `old` was read.
        if final_dir.exists() {
            let _ = std::fs::remove_dir_all(final_dir);
            std::fs::rename(staged, final_dir)
        } else {
            Err(e)
        }
    });
    moved.map_err(|source| {
        AttachError::Load(LoadError::Pin {
            path: final_dir.to_owned(),
            action: "moving the new pins into place",
            source,
        })
    })
}

/// Loads `spec` and hooks its entry program to the target: a direct-action
/// filter or TCX link for the TC hooks, the device's XDP program for XDP.
/// Nothing is left behind on failure: pins are removed and a qdisc rawbpf
/// just created is deleted. A rawbpf killed at any point leaves state the
/// next command on the hook reconciles (see [`crate::pins`]).
///
/// Runs on a tokio runtime (the netlink connection is spawned on it); see
/// [`crate::blocking::attach`] for callers without one.
pub async fn attach(
    file: &Path,
    spec: &ObjectSpec,
    opts: &AttachOptions,
) -> Result<Attached, AttachError> {
    let entry = entry_program(spec, opts)?;
    let mut load_opts = LoadOptions::for_file(file);
    load_opts.tails = opts.tails.clone();
    load_opts.target_btf = opts.target_btf.clone();
    let chain = Collection::load(spec, &load_opts)?;
    let file_name = file.file_name().map_or_else(
        || file.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let filter_name = format!("{file_name}:[{}]", entry.name());
    hook(&chain, entry.name(), &filter_name, opts, true).await
}

/// Hooks program `entry` of a collection the caller loaded. With `pin`, as
/// [`attach`] does: the chain is pinned under [`PIN_ROOT`] and outlives
/// `chain` and the process, and [`detach`] removes it. Without, nothing
/// goes to bpffs: the hook holds the entry program (a TCX link is held by
/// [`Attached::link`]), its prog arrays stay filled while `chain` lives,
/// and [`Attached::detach`] unhooks it.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use rawbpf::attach::{attach_loaded, AttachOptions, Hook, Target};
/// use rawbpf::{Collection, LoadOptions, ObjectSpec};
///
/// let spec = ObjectSpec::from_file("programs/obj/pipeline.bpf.o")?;
/// let chain = Collection::load(&spec, &LoadOptions::default())?;
/// let opts = AttachOptions {
///     target: Target::new("eth0", Hook::Egress),
///     ..AttachOptions::default()
/// };
/// let hooked = attach_loaded(&chain, "mark_packet", &opts, false).await?;
/// // ... packets leaving eth0 run the chain while `chain` lives ...
/// hooked.detach().await?;
/// # Ok(())
/// # }
/// ```
pub async fn attach_loaded(
    chain: &Collection,
    entry: &str,
    opts: &AttachOptions,
    pin: bool,
) -> Result<Attached, AttachError> {
    let program = chain.program(entry)?;
    let hook_type = opts.target.hook.program_type();
    if program.prog_type != hook_type {
        return Err(AttachError::WrongProgramType {
            program: entry.to_owned(),
            prog_type: program.prog_type,
            hook: opts.target.hook,
        });
    }
    let filter_name = format!("{}:[{entry}]", chain.object_name);
    hook(chain, entry, &filter_name, opts, pin).await
}

async fn hook(
    chain: &Collection,
    entry: &str,
    filter_name: &str,
    opts: &AttachOptions,
    pin: bool,
) -> Result<Attached, AttachError> {
    let target = &opts.target;
    let pins = target.pins();
    let slot = target.slot(opts.priority);
    let chain_dir = pins.chain(target.hook, slot);
    let (tc, ifindex, ()) = target.connect(|_| Ok(()))?;
    let mut view = target.view(&tc, ifindex);
    // The chain hooked in this slot now, if rawbpf pinned one.
    let mut existing = None;
    if pin {
        reconcile(&mut view, target, false).await?;
        existing = view.tree().hooked_chain(target.hook, slot).cloned();
        if existing.is_some() && !opts.replace {
            return Err(target.already_attached(opts.priority));
        }
    }
    let program = chain.program(entry)?;

    // Pin into a staging directory first; it takes the final name only once
    // the hook runs the new chain.
    let staging = pins.staging(target.hook, slot);
    // (pin makes the directory; the guard removes it again on failure).
    let staged = StagedDir(pin.then(|| staging.clone()));
    if pin {
        chain.pin(&staging)?;
    }
    let pin = pin.then_some(&staging);
    let replacing = opts.replace && existing.is_some() && pin.is_some();
    let replacing_tcx = replacing && existing.as_ref().is_some_and(|c| c.has_link());
    if replacing && target.hook != Hook::Xdp {
        let wanted_tc = opts.mode == Mode::Tc;
        let wanted_tcx = opts.mode == Mode::Tcx;
        if (wanted_tc && replacing_tcx) || (wanted_tcx && !replacing_tcx) {
            return Err(AttachError::ModeMismatch {
                dev: target.dev.clone(),
                attached: if replacing_tcx { "tcx" } else { "tc" },
            });
        }
    }
    let prog_fd = program.fd();
    let made = match target.hook.direction() {
        None => {
            let mut flags = opts.xdp_mode.flags();
            if !opts.replace {
                flags |= xdp_flags::UPDATE_IF_NOEXIST;
            }
            match tc.set_xdp(ifindex, Some(prog_fd), flags).await {
                Ok(()) => {}
                Err(e) if e.errno() == Some(libc::EBUSY) || e.errno() == Some(libc::EEXIST) => {
                    let held = tc.xdp(ifindex).await.ok().flatten();
                    return Err(match held {
                        Some(h) if !opts.replace => AttachError::XdpBusy {
                            dev: target.dev.clone(),
                            prog_id: h.prog_id,
                            mode: h.mode,
                        },
                        _ => target.netlink("setting the XDP program", e),
                    });
                }
                Err(e) => return Err(target.netlink("setting the XDP program", e)),
            }
            let mode = match tc.xdp(ifindex).await {
                Ok(Some(x)) => x.mode,
                _ => "unknown",
            };
            Made::Xdp { mode }
        }
        Some(_) if replacing_tcx => {
            let old_link = existing.as_ref().map(|c| c.link_pin()).unwrap_or_default();
            let link = crate::sys::obj_get(&c_path(&old_link)?)
                .map_err(|source| target.os("opening the pinned TCX link", source))?;
            crate::sys::link_update(link.as_fd(), prog_fd)
                .map_err(|source| target.os("updating the TCX link", source))?;
            Made::Tcx { link }
        }
        Some(direction) => {
            // A TCX link is made in the namespace: bpf(2) reads the device
            // index there.
            let tcx = if opts.mode != Mode::Tc && !replacing {
                let attach_type = match direction {
                    Direction::Ingress => crate::uapi::AttachType::TCX_INGRESS,
                    Direction::Egress => crate::uapi::AttachType::TCX_EGRESS,
                };
                target.in_ns(|| {
                    match crate::sys::link_create_ifindex(prog_fd, ifindex, attach_type.0, 0) {
                        Ok(link) => Ok(Some(link)),
                        // An older kernel does not know TCX: auto falls back to tc.
                        Err(e)
                            if opts.mode == Mode::Auto
                                && e.raw_os_error() == Some(libc::EINVAL) =>
                        {
                            Ok(None)
                        }
                        Err(source) => Err(target.os("creating the TCX link", source)),
                    }
                })?
            } else {
                None
            };
            match tcx {
                Some(link) => Made::Tcx { link },
                None => {
                    add_filter(&mut view, target, opts, prog_fd, filter_name, pin.is_some()).await?
                }
            }
        }
    };
    drop(view);
    drop(tc);
    let (created_qdisc, mode, xdp_mode, link) = match made {
        Made::Tc { created_qdisc } => (created_qdisc, Mode::Tc, None, None),
        Made::Xdp { mode } => (false, Mode::Xdp, Some(mode), None),
        Made::Tcx { link } => match pin {
            // The link lives as long as a pin of it: pin it with the chain.
            Some(staging) => {
                let pin = staging.join(LINK_PIN);
                if let Err(source) = crate::sys::obj_pin(link.as_fd(), &c_path(&pin)?) {
                    return Err(LoadError::Pin {
                        path: pin,
                        action: "pinning the TCX link",
                        source,
                    }
                    .into());
                }
                (false, Mode::Tcx, None, None)
            }
            None => (false, Mode::Tcx, None, Some(link)),
        },
    };

    // The hook now runs the new chain: its pins replace the old ones.
    if let Some(staging) = pin {
        promote(staging, mode == Mode::Tcx, existing.as_ref(), &chain_dir)?;
    }
    staged.keep();
    Ok(Attached {
        program: entry.to_owned(),
        prog_id: program.id,
        ifindex,
        created_qdisc,
        mode,
        xdp_mode,
        pin_dir: pin.map(|_| chain_dir),
        filter_name: filter_name.to_owned(),
        programs: chain
            .programs
            .iter()
            .map(|p| (p.name.clone(), p.id))
            .collect(),
        maps: chain
            .maps
            .iter()
            .map(|m| (m.name().to_owned(), m.id()))
            .collect(),
        warnings: chain.warnings.clone(),
        target: target.clone(),
        priority: opts.priority,
        link,
    })
}

/// Adds the clsact qdisc if the device has none, then the filter. The
/// marker saying rawbpf added the qdisc is made before the qdisc, so a
/// rawbpf killed in between leaves a marker (which reconciling removes if
/// there is no qdisc) rather than a qdisc nobody knows to remove.
async fn add_filter(
    view: &mut DeviceView<'_>,
    target: &Target,
    opts: &AttachOptions,
    prog_fd: std::os::fd::BorrowedFd<'_>,
    filter_name: &str,
    mark: bool,
) -> Result<Made, AttachError> {
    let direction = target.hook.direction().unwrap_or(Direction::Ingress);
    let (tc, ifindex) = (view.tc, view.ifindex);
    let marker = target.pins().created_clsact();
    let has_clsact = view.has_clsact().await?;
    let mut created = false;
    if !has_clsact {
        if mark {
            std::fs::create_dir_all(&marker).map_err(|source| LoadError::Pin {
                path: marker.clone(),
                action: "marking the clsact qdisc as rawbpf's",
                source,
            })?;
        }
        created = tc
            .ensure_clsact(ifindex)
            .await
            .map_err(|source| target.netlink("adding the clsact qdisc", source))?;
    }
    let added = tc
        .add_bpf_filter(
            ifindex,
            direction,
            opts.priority,
            prog_fd,
            filter_name,
            opts.replace,
        )
        .await;
    if let Err(source) = added {
        if created {
            // Another rawbpf may have put its filter on the qdisc we just
            // made (two attaches racing): delete the qdisc only if it is
            // empty, else leave it (and the marker) to that chain's detach.
            view.hooks_changed();
            if view.has_filters().await.is_ok_and(|any| !any)
                && tc.delete_clsact(ifindex).await.is_ok()
            {
                let _ = std::fs::remove_dir(&marker);
            }
        }
        return Err(match source.errno() {
            Some(libc::EEXIST) => target.already_attached(opts.priority),
            _ => target.netlink("adding the bpf filter", source),
        });
    }
    Ok(Made::Tc {
        created_qdisc: created,
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
            DevicePins::remove_empty_parents(dir);
        }
    }
}

/// What `detach` removed.
#[derive(Debug, Default)]
pub struct Detached {
    /// Priorities whose filters or links were removed (for XDP: none).
    pub priorities: Vec<u16>,
    /// Whether the clsact qdisc rawbpf had created was deleted too.
    pub deleted_qdisc: bool,
    /// For XDP: whether the device's XDP program was removed (`false` when
    /// the device no longer ran rawbpf's program: only its pins went).
    pub removed_xdp: bool,
    /// What was left by a rawbpf stopped half-way, and reconciled first.
    pub reconciled: Vec<Leftover>,
}

/// Removes the chain at `priority` (or, with `None`, every chain rawbpf
/// attached on the hook) and its pins; deletes the clsact qdisc if rawbpf
/// created it and no filter is left on it. For XDP, removes the device's
/// XDP program if it is one rawbpf pinned, and the pins. What a rawbpf
/// stopped half-way left on the hook is reconciled first; `detach` with
/// `None` succeeds if that was all there was.
pub async fn detach(target: &Target, priority: Option<u16>) -> Result<Detached, AttachError> {
    let pins = target.pins();
    let connected = target.connect(|_| Ok(()));
    let (tc, ifindex) = match connected {
        Ok((tc, ifindex, ())) => (tc, ifindex),
        // The device (or its namespace) is gone, and its hooks with it:
        // what is left to remove is our pins.
        Err(AttachError::NoDevice { .. })
        | Err(AttachError::Netns(crate::netns::NetnsError::NotFound { .. })) => {
            let tree = pins.read();
            let ours: Vec<&ChainDir> = tree
                .chains(target.hook)
                .iter()
                .filter(|c| !c.stager_runs())
                .collect();
            let slots: Vec<u16> = ours
                .iter()
                .filter(|c| priority.is_none_or(|p| c.slot == target.slot(p)))
                .map(|c| c.slot)
                .collect();
            if slots.is_empty() {
                return Err(target.not_attached(priority));
            }
            for c in ours.iter().filter(|c| slots.contains(&c.slot)) {
                c.remove();
            }
            let _ = std::fs::remove_dir_all(pins.created_clsact());
            DevicePins::remove_empty_parents(&pins.chain(target.hook, 0));
            return Ok(Detached {
                priorities: if target.hook == Hook::Xdp {
                    Vec::new()
                } else {
                    slots
                },
                ..Detached::default()
            });
        }
        Err(e) => return Err(e),
    };
    let mut view = target.view(&tc, ifindex);
    let reconciled = reconcile(&mut view, target, false).await?;
    let mut done = if target.hook == Hook::Xdp {
        detach_xdp(&mut view, target).await?
    } else {
        detach_tc(&mut view, target, priority).await?
    };
    // Directories a stopped attach made before it pinned anything.
    DevicePins::remove_empty_parents(&pins.chain(target.hook, 0));
    let nothing = done.priorities.is_empty() && !done.removed_xdp && !done.deleted_qdisc;
    if nothing && (priority.is_some() || reconciled.is_empty()) {
        return Err(target.not_attached(priority));
    }
    done.reconciled = reconciled;
    Ok(done)
}

async fn detach_tc(
    view: &mut DeviceView<'_>,
    target: &Target,
    priority: Option<u16>,
) -> Result<Detached, AttachError> {
    let (tc, ifindex) = (view.tc, view.ifindex);
    let pins = target.pins();
    let direction = target.hook.direction().unwrap_or(Direction::Ingress);
    let tree = view.tree().clone();
    let prios: Vec<u16> = match priority {
        Some(p) => vec![p],
        None => tree
            .chains(target.hook)
            .iter()
            .filter(|c| c.staged_by.is_none())
            .map(|c| c.slot)
            .collect(),
    };
    let mut done = Detached::default();
    let mut unhooked = Vec::new();
    for p in prios {
        let Some(chain) = tree.hooked_chain(target.hook, p) else {
            continue;
        };
        // A TCX link goes only when its last reference does, in a kernel
        // work item after the unpin: detach it now, so that when detach
        // returns, packets no longer see the chain.
        if let Some(link) = pinned_link(chain) {
            let _ = crate::sys::link_detach(link.as_fd());
        } else {
            // Only a filter running this chain's programs is rawbpf's to
            // delete (not another tool's, nor one a running attach just
            // added and has not pinned in place yet).
            let hooked = view.hooked(target.hook, p).await?;
            if view.chain_runs(chain, &hooked) {
                tc.delete_filter(ifindex, direction, p)
                    .await
                    .map_err(|source| target.netlink("deleting the filter", source))?;
                view.filter_deleted(direction, p);
            }
        }
        unhooked.push(chain);
        done.priorities.push(p);
    }
    // The qdisc rawbpf added, once no filter is left on it and no attach in
    // progress (which stages its chain before it adds the qdisc) may be
    // about to use it. Before the pins go: the unpin hands the prog arrays'
    // clearing to a kernel work item that patches the programs' code on
    // every CPU, and nothing here needs to wait behind it. A detach stopped
    // between the two leaves unhooked pins, which the next one removes.
    if tree.created_clsact && !tree.attach_in_progress() && !view.has_filters().await? {
        match tc.delete_clsact(ifindex).await {
            Ok(()) => done.deleted_qdisc = true,
            // Gone already (a detach stopped after deleting it).
            Err(e) if matches!(e.errno(), Some(libc::EINVAL) | Some(libc::ENOENT)) => {}
            Err(source) => {
                return Err(target.netlink("deleting the clsact qdisc", source));
            }
        }
        let _ = std::fs::remove_dir(pins.created_clsact());
        view.pins_changed();
    }
    for chain in &unhooked {
        chain.remove();
    }
    if !unhooked.is_empty() {
        view.pins_changed();
    }
    Ok(done)
}

async fn detach_xdp(view: &mut DeviceView<'_>, target: &Target) -> Result<Detached, AttachError> {
    let Some(chain) = view.tree().hooked_chain(Hook::Xdp, 0).cloned() else {
        return Ok(Detached::default());
    };
    let held = view.xdp().await?;
    let mut removed_xdp = false;
    // Another program replaced ours: leave it, remove only our pins.
    let running = held.map(|h| view::Running {
        prog_id: h.prog_id,
        entry: None,
    });
    if let Some(held) = held.filter(|_| view.chain_runs(&chain, &running)) {
        view.tc
            .set_xdp(view.ifindex, None, XdpMode::of_attached(held.mode))
            .await
            .map_err(|source| target.netlink("removing the XDP program", source))?;
        view.xdp_changed();
        removed_xdp = true;
    }
    chain.remove();
    view.pins_changed();
    Ok(Detached {
        removed_xdp,
        priorities: Vec::new(),
        ..Detached::default()
    })
}

/// A BPF program found by `list` on a device hook, with where rawbpf pinned
/// its chain if it did.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The device's name.
    pub dev: String,
    /// The hook.
    pub hook: Hook,
    /// The filter (for TCX and XDP: the program, described like one).
    pub filter: BpfFilter,
    /// The chain's pins, for programs rawbpf attached.
    pub pin_dir: Option<PathBuf>,
    /// tc (a cls_bpf filter), tcx (a link rawbpf pinned) or xdp.
    pub mode: Mode,
    /// For XDP: the mode the kernel runs it in.
    pub xdp_mode: Option<&'static str>,
}

/// What `list` found.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Programs on device hooks.
    pub attached: Vec<Listed>,
    /// rawbpf state that does not match the kernel's, and what the next
    /// command on its hook will do with it.
    pub leftovers: Vec<Leftover>,
}

/// A program by id, described like a filter: its name, id and tag.
fn program_as_filter(
    prog_id: u32,
    ifindex: u32,
    direction: Direction,
    priority: u16,
) -> Option<BpfFilter> {
    use crate::sys;
    let prog = sys::prog_info(sys::prog_get_fd_by_id(prog_id).ok()?.as_fd()).ok()?;
    let end = prog
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(prog.name.len());
    Some(BpfFilter {
        ifindex,
        direction,
        priority,
        handle: 0,
        name: String::from_utf8_lossy(&prog.name[..end]).into_owned(),
        prog_id,
        tag: prog.tag,
        direct_action: true,
    })
}

/// The TCX link pinned for a chain, described like a filter.
fn pinned_tcx(chain: &ChainDir, ifindex: u32, direction: Direction) -> Option<BpfFilter> {
    let link = pinned_link(chain)?;
    let info = crate::sys::link_info(link.as_fd()).ok()?;
    if info.ifindex == 0 {
        return None;
    }
    program_as_filter(info.prog_id, ifindex, direction, chain.slot)
}

/// BPF filters, TCX links and XDP programs on every device (or one) of a
/// namespace, and what rawbpf left half-done there. Changes nothing.
pub async fn list(netns: Option<&str>, dev: Option<&str>) -> Result<Listing, AttachError> {
    let probe = Target {
        netns: netns.map(str::to_owned),
        dev: dev.unwrap_or("").to_owned(),
        hook: Hook::Ingress,
    };
    let tc =
        probe.in_ns(|| Tc::open().map_err(|e| probe.netlink("opening a netlink socket", e)))?;
    let devices = match dev {
        // One request names the device's index and its XDP program.
        Some(d) => match tc.link_by_name(d).await {
            Ok((ifindex, xdp)) => vec![(ifindex, d.to_owned(), xdp)],
            Err(e) if e.errno() == Some(libc::ENODEV) => return Err(probe.no_device()),
            Err(source) => return Err(probe.netlink("reading the device", source)),
        },
        None => tc
            .devices()
            .await
            .map_err(|source| probe.netlink("listing devices", source))?,
    };
    let mut out = Listing::default();
    for (ifindex, name, xdp) in devices {
        let device = Target {
            netns: netns.map(str::to_owned),
            dev: name.clone(),
            hook: Hook::Ingress,
        };
        let mut view = device.view(&tc, ifindex).knowing_xdp(xdp);
        let tree = view.tree().clone();
        for hook in [Hook::Ingress, Hook::Egress, Hook::Xdp] {
            let target = Target {
                hook,
                ..device.clone()
            };
            for l in reconcile(&mut view, &target, true).await? {
                if !out.leftovers.iter().any(|o| o.path == l.path) {
                    out.leftovers.push(l);
                }
            }
            let Some(direction) = hook.direction() else {
                continue;
            };
            for (_, _, bpf) in view.filters(direction).await? {
                let Some(filter) = bpf.clone() else { continue };
                let pin_dir = tree
                    .hooked_chain(hook, filter.priority)
                    .map(|c| c.path.clone());
                out.attached.push(Listed {
                    dev: name.clone(),
                    hook,
                    filter,
                    pin_dir,
                    mode: Mode::Tc,
                    xdp_mode: None,
                });
            }
            for chain in tree.chains(hook).iter().filter(|c| c.staged_by.is_none()) {
                if let Some(filter) = pinned_tcx(chain, ifindex, direction) {
                    out.attached.push(Listed {
                        dev: name.clone(),
                        hook,
                        filter,
                        pin_dir: Some(chain.path.clone()),
                        mode: Mode::Tcx,
                        xdp_mode: None,
                    });
                }
            }
        }
        if let Some(x) = xdp {
            let filter =
                program_as_filter(x.prog_id, ifindex, Direction::Ingress, 0).unwrap_or(BpfFilter {
                    ifindex,
                    direction: Direction::Ingress,
                    priority: 0,
                    handle: 0,
                    name: String::new(),
                    prog_id: x.prog_id,
                    tag: [0; 8],
                    direct_action: true,
                });
            let pin_dir = tree.hooked_chain(Hook::Xdp, 0).map(|c| c.path.clone());
            out.attached.push(Listed {
                dev: name.clone(),
                hook: Hook::Xdp,
                filter,
                pin_dir,
                mode: Mode::Xdp,
                xdp_mode: Some(x.mode),
            });
        }
    }
    Ok(out)
}

/// One stage to put into an attached chain: program `program` of
/// `object` into slot `key` of prog array `map`.
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
            direction: target.hook.name(),
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
    fn pin_layout() {
        let t = Target {
            netns: Some("blue".into()),
            dev: "eth0.100".into(),
            hook: Hook::Egress,
        };
        assert_eq!(
            t.chain_dir(7),
            Path::new("/sys/fs/bpf/rawbpf/ns_blue/eth0_2e100/egress/7")
        );
        let host = Target { netns: None, ..t };
        assert_eq!(
            host.chain_dir(1),
            Path::new("/sys/fs/bpf/rawbpf/host/eth0_2e100/egress/1")
        );
    }
}
