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
//! the caller's tokio runtime. [`crate::blocking::Netlink`] runs them for
//! callers without one.
//!
//! Commands that change a device's hooks ([`attach`], [`attach_loaded`],
//! [`detach`], [`swap`]) take turns: each holds the device's lock (a
//! `flock(2)` on a file under `/run/rawbpf/locks`, see [`crate::pins`]) from
//! before its first change to after its last, in this process and across
//! rawbpf processes; one that waits longer than [`HOOK_LOCK_WAIT`] fails
//! with [`AttachError::Busy`] having changed nothing. `list` takes no lock.
//!
//! The rooms: [`target`](Target) (a device's hook and its pins), `hooking`
//! (hooking a chain), [`detach`], [`list`], [`swap`], `reconcile` (what a
//! rawbpf stopped half-way left), `lock` (one command at a time on a
//! device), `view` (what one command read of a device), and the errors
//! ([`AttachError`]).

mod detach;
mod error;
mod hooking;
mod list;
mod lock;
mod reconcile;
mod swap;
mod target;
mod view;

pub use crate::hook::{Direction, Hook};
pub use crate::pins::PIN_ROOT;
pub use detach::{detach, Detached};
pub use error::{AttachError, SwapRefusal};
pub use list::{list, Listed, Listing, Slot};
pub use lock::HOOK_LOCK_WAIT;
pub use reconcile::{Leftover, LeftoverKind};
pub use swap::{swap, SwapSpec, Swapped};
pub use target::Target;

use crate::load::{Collection, LoadOptions};
use crate::obj::{ObjectSpec, ProgramSpec};
use crate::uapi::xdp_flags;
use crate::LoadError;
use std::io;
use std::os::fd::OwnedFd;
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

/// How to attach: where, which program, and how to hook it. How to load
/// the object is [`LoadOptions`]' business, given to [`attach`] beside it.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Where.
    pub target: Target,
    /// The entry program; by default the object's first program of the
    /// type the hook runs.
    pub program: Option<String>,
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
}

impl Default for AttachOptions {
    /// The caller's namespace, no device yet, ingress, the object's first
    /// program of the hook's type, priority 1, no replace, a clsact filter
    /// (or the kernel's choice of XDP mode).
    fn default() -> AttachOptions {
        AttachOptions {
            target: Target::default(),
            program: None,
            priority: 1,
            replace: false,
            mode: Mode::Tc,
            xdp_mode: XdpMode::Auto,
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
    pub(crate) fn flags(self) -> u32 {
        match self {
            XdpMode::Auto => 0,
            XdpMode::Native => xdp_flags::DRV_MODE,
            XdpMode::Generic => xdp_flags::SKB_MODE,
            XdpMode::Offload => xdp_flags::HW_MODE,
        }
    }

    /// The mode flag that removes a program the kernel reports in `mode`.
    pub(crate) fn of_attached(mode: &str) -> u32 {
        match mode {
            "generic" => xdp_flags::SKB_MODE,
            "offload" => xdp_flags::HW_MODE,
            _ => xdp_flags::DRV_MODE,
        }
    }
}

/// Whether [`attach_loaded`] pins the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pinning {
    /// As [`attach`] does: the chain is pinned under [`PIN_ROOT`] and
    /// outlives its [`Collection`] and the process; [`detach`] removes it.
    #[default]
    Pinned,
    /// Nothing goes to bpffs: the hook holds the entry program (a TCX link
    /// is held by [`Attached::link`]), the prog arrays stay filled while
    /// the [`Collection`] lives, and [`Attached::detach`] unhooks it.
    Unpinned,
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
    /// An unpinned TCX link ([`attach_loaded`] with [`Pinning::Unpinned`]): the program
    /// stays hooked while this fd is open. `None` otherwise.
    pub link: Option<OwnedFd>,
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

/// Loads `spec` with `load` and hooks its entry program to the target: a
/// direct-action filter or TCX link for the TC hooks, the device's XDP
/// program for XDP. The chain is pinned ([`Pinning::Pinned`]). `file` is
/// the object's file: the filter is named after it, as tc names its
/// filters (`pipeline.bpf.o:[mark_packet]`); `LoadOptions::for_file(file)`
/// names the object's maps as libbpf does.
///
/// Nothing is left behind on failure: pins are removed and a qdisc rawbpf
/// just created is deleted. A rawbpf killed at any point leaves state the
/// next command on the hook reconciles (see [`crate::pins`]).
///
/// Loading happens first; hooking then waits for other rawbpf commands
/// changing the same device (in this process or another) to finish, up to
/// [`HOOK_LOCK_WAIT`], blocking the calling thread meanwhile (then
/// [`AttachError::Busy`], nothing changed).
///
/// Runs on a tokio runtime (the netlink connection is spawned on it); see
/// [`crate::blocking::Netlink::attach`] for callers without one.
pub async fn attach(
    file: &Path,
    spec: &ObjectSpec,
    load: &LoadOptions,
    opts: &AttachOptions,
) -> Result<Attached, AttachError> {
    let entry = entry_program(spec, opts)?;
    let chain = Collection::load(spec, load)?;
    let file_name = file.file_name().map_or_else(
        || file.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let filter_name = format!("{file_name}:[{}]", entry.name());
    hooking::hook_chain(&chain, entry.name(), &filter_name, opts, Pinning::Pinned).await
}

/// Hooks program `entry` of a collection the caller loaded. With
/// [`Pinning::Pinned`], as [`attach`] does: the chain is pinned under
/// [`PIN_ROOT`] and outlives `chain` and the process, and [`detach`] removes
/// it. With [`Pinning::Unpinned`], nothing goes to bpffs: the hook holds
/// the entry program (a TCX link is held by [`Attached::link`]), its prog
/// arrays stay filled while `chain` lives, and [`Attached::detach`] unhooks
/// it.
///
/// It serializes with other rawbpf processes (and other calls in this
/// process) changing the same device, as [`attach`] and [`detach`] do: it
/// holds the device's lock from its reconciling to its last step, waiting
/// for it up to [`HOOK_LOCK_WAIT`] and blocking the calling thread
/// meanwhile; after that it returns [`AttachError::Busy`] having changed
/// nothing. Two such calls on one device polled on one thread (two futures
/// of a current-thread runtime) wait for each other until the second gives
/// up.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use rawbpf::attach::{attach_loaded, AttachOptions, Hook, Pinning, Target};
/// use rawbpf::{Collection, LoadOptions, ObjectSpec};
///
/// let spec = ObjectSpec::from_file("programs/obj/pipeline.bpf.o")?;
/// let chain = Collection::load(&spec, &LoadOptions::default())?;
/// let opts = AttachOptions {
///     target: Target::new("eth0", Hook::Egress),
///     ..AttachOptions::default()
/// };
/// let hooked = attach_loaded(&chain, "mark_packet", &opts, Pinning::Unpinned).await?;
/// // ... packets leaving eth0 run the chain while `chain` lives ...
/// hooked.detach().await?;
/// # Ok(())
/// # }
/// ```
pub async fn attach_loaded(
    chain: &Collection,
    entry: &str,
    opts: &AttachOptions,
    pinning: Pinning,
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
    hooking::hook_chain(chain, entry, &filter_name, opts, pinning).await
}
