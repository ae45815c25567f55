//! What goes wrong attaching, detaching, listing and swapping. The fields a
//! caller may act on are typed (the hook, the mode, the errno, why a swap
//! was refused); the messages are the ones the CLI prints.

use super::Mode;
use crate::errno::{denied, if_denied, NEEDS_NET_ADMIN};
use crate::hook::Hook;
use crate::netns::NetnsError;
use crate::tc::NetlinkError;
use crate::uapi::{MapType, ProgramType};
// The crate root's name for the load layer's error, wherever it lives.
use crate::LoadError;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong attaching, detaching or listing.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// Loading the chain failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The network namespace is missing or could not be entered.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// No device of that name.
    #[error("no network device {dev}{}", .netns.as_ref().map_or(String::new(), |n| format!(" in network namespace {n}")))]
    NoDevice {
        /// Device name.
        dev: String,
        /// Namespace.
        netns: Option<String>,
    },
    /// The object has no program the hook runs.
    #[error("the object has no {} program to attach to {}", .hook.program_type(), .hook.describe())]
    NoProgramFor {
        /// The hook.
        hook: Hook,
    },
    /// The chosen entry program is not of the type the hook runs.
    #[error("program {program} is of type {prog_type}{}; {} runs {} programs", Hook::for_program(*prog_type).map_or(String::new(), |h| format!(", which attaches to {}", h.describe())), .hook.describe(), .hook.program_type())]
    WrongProgramType {
        /// Program name.
        program: String,
        /// Its type.
        prog_type: ProgramType,
        /// The hook asked for.
        hook: Hook,
    },
    /// Something is already attached there.
    #[error("{dev} {}: {}", .hook.name(), if *.hook == Hook::Xdp { "rawbpf has a chain attached there".to_owned() } else { format!("a filter is already attached at priority {priority}") })]
    AlreadyAttached {
        /// Device.
        dev: String,
        /// The hook.
        hook: Hook,
        /// Priority (XDP: unused).
        priority: u16,
    },
    /// The device runs an XDP program already.
    #[error("{dev}: an XDP program (id {prog_id}, {mode}) is already attached (detach it, or replace it)")]
    XdpBusy {
        /// Device.
        dev: String,
        /// The attached program's id.
        prog_id: u32,
        /// The mode it runs in.
        mode: &'static str,
    },
    /// Nothing to detach.
    #[error("{dev} {}: nothing attached{}", .hook.name(), .priority.map_or(String::new(), |p| format!(" at priority {p}")))]
    NotAttached {
        /// Device.
        dev: String,
        /// The hook.
        hook: Hook,
        /// Priority (`None`: any; always `None` for XDP).
        priority: Option<u16>,
    },
    /// A replacement in another mode than the chain it replaces.
    #[error("{dev}: the chain attached there is a {} attachment, and a replacement keeps the mode", .attached.name())]
    ModeMismatch {
        /// Device.
        dev: String,
        /// The attached chain's mode ([`Mode::Tc`] or [`Mode::Tcx`]).
        attached: Mode,
    },
    /// A stage swap that cannot be made; nothing was changed.
    #[error("swap {spec}: {reason}; nothing was changed")]
    SwapRefused {
        /// The argument as given (`MAP:KEY=OBJ:PROG`).
        spec: String,
        /// Why.
        reason: SwapRefusal,
    },
    /// A netlink request failed.
    #[error("{dev}: {action}: {source}{}", denied(source.errno(), NEEDS_NET_ADMIN))]
    Netlink {
        /// Device.
        dev: String,
        /// What was being done.
        action: &'static str,
        /// The kernel's answer.
        source: NetlinkError,
    },
    /// A system call on the device's behalf failed (a TCX link, the device's
    /// index).
    #[error("{dev}: {action}: {source}{}", if_denied(source, NEEDS_NET_ADMIN))]
    Device {
        /// Device.
        dev: String,
        /// What was being done.
        action: &'static str,
        /// errno.
        source: io::Error,
    },
    /// Another rawbpf put its chain's pins in place on the same hook while
    /// this one was attaching (their renames met).
    #[error("{}: another rawbpf changed this hook at the same time; its pins are in place and this attach's were dropped (rawbpf list shows what the hook runs; the next attach or detach there reconciles)", .path.display())]
    Concurrent {
        /// The chain's pin directory.
        path: std::path::PathBuf,
    },
    /// Another rawbpf kept changing the device's hooks for as long as this
    /// command waits ([`HOOK_LOCK_WAIT`](super::HOOK_LOCK_WAIT)); this one
    /// gave up before changing anything.
    #[error("{dev} {}: another rawbpf is changing this device (waited {} s); nothing was changed", .hook.name(), .waited.as_secs())]
    Busy {
        /// Device.
        dev: String,
        /// The hook this command was to change.
        hook: Hook,
        /// How long it waited.
        waited: Duration,
    },
    /// The device's lock file could not be made or locked; nothing was
    /// changed.
    #[error("{dev}: {action} the lock file {}: {source}; nothing was changed", .path.display())]
    Lock {
        /// Device.
        dev: String,
        /// The lock file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// errno.
        source: io::Error,
    },
}

/// Why a stage swap was refused (see [`AttachError::SwapRefused`]).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SwapRefusal {
    /// The map's name cannot be a pin's name.
    #[error("the map name is not a valid path")]
    BadMapName,
    /// The attached chain pinned no map of that name.
    #[error("the attached chain has no map {map} ({}: {source})", .pin.display())]
    NoMap {
        /// The map asked for.
        map: String,
        /// Where its pin would be.
        pin: PathBuf,
        /// Why opening it failed.
        source: io::Error,
    },
    /// The pinned map's description cannot be read.
    #[error("reading map {map}: {source}")]
    MapInfo {
        /// The map.
        map: String,
        /// errno.
        source: io::Error,
    },
    /// The map is not a prog array.
    #[error("map {map} is a {map_type}, not a prog_array")]
    NotProgArray {
        /// The map.
        map: String,
        /// Its type.
        map_type: MapType,
    },
    /// The slot is past the prog array's end.
    #[error("key {key} is past max_entries {max_entries} of {map}")]
    KeyPastEnd {
        /// The slot asked for.
        key: u32,
        /// The prog array's size.
        max_entries: u32,
        /// The prog array.
        map: String,
    },
    /// The object has no program of that name.
    #[error("no program {program} in {} (it has: {known})", .object.display())]
    NoProgram {
        /// The program asked for.
        program: String,
        /// The object.
        object: PathBuf,
        /// The programs it has, comma-separated.
        known: String,
    },
    /// The program is of a type the prog array cannot hold.
    #[error("program {program} is a {prog_type} program; this prog array holds {holds} programs")]
    WrongProgramType {
        /// The program.
        program: String,
        /// Its type.
        prog_type: ProgramType,
        /// The type the chain's hook runs.
        holds: ProgramType,
    },
    /// The kernel refused the map update.
    #[error("the kernel refused it for this prog array: {source}")]
    UpdateRefused {
        /// errno.
        source: io::Error,
    },
}

debug_is_display!(AttachError, SwapRefusal);
