//! Groups: one load of an object, every chosen program attached where its
//! section says, all or nothing, and the links and the maps they share
//! pinned under one bpffs directory so that they outlive the process:
//!
//! ```text
//! /sys/fs/bpf/rawbpf/groups/<NAME>/links/<PROG>[-<N>]   the group's BPF links
//! /sys/fs/bpf/rawbpf/groups/<NAME>/maps/<MAP>           the maps of its load
//! /sys/fs/bpf/rawbpf/groups/<NAME>/tracepoints-<K>     symlinks whose targets
//!                                                       list each perf-event
//!                                                       link's tracepoint and
//!                                                       program ids (for its
//!                                                       detach, see
//!                                                       super::release)
//! /sys/fs/bpf/rawbpf/groups/<NAME>_new_<PID>/           staged by process PID
//!                                                       (attaching, detaching,
//!                                                       or killed doing so)
//! ```
//!
//! NAME is escaped as the TC pins are ([`crate::pins::escape`]): bpffs
//! refuses dots, and an escaped name never ends in `_new_<digits>`, so a
//! staging directory cannot be taken for a group. Program and map names go
//! through [`crate::load::pin_name`].
//!
//! Crash safety. An attach pins everything into its staging directory and
//! renames that into place: a kill leaves nothing (the links die with the
//! process's fds), a staging directory of a dead process (its pinned links
//! still attached), or the complete group. A detach first renames the group
//! to its own staging name, then detaches each link and removes the pins:
//! a kill leaves the complete group or a dead staging directory. Dead
//! staging directories are what [`groups`] reports as half-done; [`detach`]
//! of the name, [`detach_all`] and the next [`attach`] of the name clear
//! them. Two processes on one name: the rename decides (a directory is not
//! renamed over a non-empty one), and the loser gets [`GroupError::Busy`] or
//! [`GroupError::Raced`], with nothing of its own left behind.
//!
//! Attachments that are not BPF links (a perf event with
//! `PERF_EVENT_IOC_SET_BPF` on kernels before 5.15, `BPF_PROG_ATTACH` on a
//! cgroup where cgroup links are missing) cannot be pinned, so they cannot
//! be in a group: [`attach`] refuses them with [`LinkError::NotPinnable`]
//! and attaches nothing. The exception is an sk_msg or sk_skb program put
//! on the object's sockmap with `BPF_PROG_ATTACH` (kernels before 6.10):
//! the sockmap holds it, and the sockmap is pinned with the group's maps,
//! so it lives and goes with them. A caller who can keep the process alive
//! attaches them with [`super::session::attach`] (the same selection,
//! nothing pinned) or [`super::attach_program`], and keeps the [`Link`]s.

use super::{attach_program, net, AttachTargets, Link, LinkError};
use crate::load::{pin_name, Collection, LoadError, LoadOptions};
use crate::obj::ObjectSpec;
use crate::pins::{escape, PIN_ROOT};
use crate::sys;
use crate::uapi::{AttachType, ProgramType};
use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// The directory of every group.
pub fn groups_dir() -> PathBuf {
    Path::new(PIN_ROOT).join("groups")
}

const STAGED: &str = "_new_";
pub(super) const LINKS: &str = "links";
pub(super) const MAPS: &str = "maps";

/// What to attach, under which name.
#[derive(Debug, Clone, Default)]
pub struct GroupOptions {
    /// The group's name (letters, digits, `_`, `-` and `.`).
    pub name: String,
    /// The programs to attach, by name; empty: every program whose section
    /// names a hook (see [`attach`]).
    pub programs: Vec<String>,
    /// What the sections cannot name.
    pub targets: AttachTargets,
}

/// One link of an attached group.
#[derive(Debug, Clone)]
pub struct GroupLink {
    /// The program's name.
    pub program: String,
    /// Its section.
    pub section: String,
    /// The hook, in words.
    pub target: String,
    /// The program's kernel id.
    pub prog_id: u32,
    /// The link's kernel id; `None` for a program attached to the group's
    /// sockmap without a link (kernels before 6.10), which lives as long
    /// as the map.
    pub link_id: Option<u32>,
    /// Its pin (for a sockmap attachment without a link: the map's).
    pub pin: PathBuf,
}

/// An attached group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its links, in the object's program order.
    pub links: Vec<GroupLink>,
    /// The maps of its load: name, kernel id, pin.
    pub maps: Vec<(String, u32, PathBuf)>,
    /// Programs left out of a default selection, and why.
    pub skipped: Vec<(String, String)>,
    /// What the load warned about.
    pub warnings: Vec<String>,
}

/// What went wrong with a group. Each names the group, or the program,
/// section and target at fault.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// Loading the object failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Attaching a program failed; nothing of the group stays.
    #[error("{0}; nothing was attached")]
    Link(#[from] LinkError),
    /// A `--prog` the object does not have.
    #[error("the object has no program {name} (it has: {known})")]
    NoProgram {
        /// The name asked for.
        name: String,
        /// The object's programs.
        known: String,
    },
    /// No program of the object names a hook.
    #[error("no program of the object names a hook it can be attached to{0}")]
    NothingToAttach(String),
    /// A name bpffs or the layout cannot take.
    #[error("group name {0:?}: use letters, digits, '_', '-' and '.' (at most 200)")]
    BadName(String),
    /// The group is attached already.
    #[error("group {0} is attached already: another rawbpf holds that name (rawbpf detach --name {0} removes it); nothing was changed")]
    Exists(String),
    /// Another process is attaching or detaching the group.
    #[error("another rawbpf holds group {name} (pid {pid}, attaching or detaching it); nothing was changed")]
    Busy {
        /// The group.
        name: String,
        /// The other process.
        pid: u32,
    },
    /// Another process attached the group while this one was attaching it.
    #[error("another rawbpf holds group {0} (it attached it meanwhile); nothing was changed")]
    Raced(String),
    /// There is no such group.
    #[error("no group {0}")]
    NoGroup(String),
    /// A bpffs operation failed.
    #[error("{}: {action}: {source}{}", path.display(), crate::errno::if_denied(source, crate::errno::NEEDS_BPF))]
    Pin {
        /// The path.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// errno.
        source: io::Error,
    },
}

debug_is_display!(GroupError);

fn pin_err<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> GroupError + 'a {
    move |source| GroupError::Pin {
        path: path.to_owned(),
        action,
        source,
    }
}

/// Checks a group name.
pub fn check_name(name: &str) -> Result<(), GroupError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(GroupError::BadName(name.to_owned()))
    }
}

/// A group's directory on bpffs.
pub fn group_dir(name: &str) -> PathBuf {
    groups_dir().join(escape(name))
}

fn staging_dir(name: &str, pid: u32) -> PathBuf {
    groups_dir().join(format!("{}{STAGED}{pid}", escape(name)))
}

/// Program types a default selection leaves out without a word, as
/// libbpf's skeleton attach does: their hook is not in the section (a
/// device, a socket, a struct_ops map) or they are not attached at all.
fn never_by_default(t: ProgramType) -> bool {
    use ProgramType as P;
    !matches!(
        t,
        P::TRACEPOINT
            | P::KPROBE
            | P::RAW_TRACEPOINT
            | P::RAW_TRACEPOINT_WRITABLE
            | P::TRACING
            | P::LSM
            | P::PERF_EVENT
            | P::CGROUP_SKB
            | P::CGROUP_SOCK
            | P::CGROUP_SOCK_ADDR
            | P::SOCK_OPS
            | P::CGROUP_DEVICE
            | P::CGROUP_SYSCTL
            | P::CGROUP_SOCKOPT
            | P::SK_LOOKUP
            | P::FLOW_DISSECTOR
            | P::NETFILTER
            | P::SK_MSG
            | P::SK_SKB
    )
}

/// Why a default selection leaves a program of type `t` out.
fn not_by_section(t: ProgramType) -> String {
    match t {
        ProgramType::SCHED_CLS | ProgramType::XDP => {
            format!("a {t} program attaches to a network device (attach it with --dev)")
        }
        ProgramType::SOCKET_FILTER => {
            "a socket filter attaches to a socket its program's owner opens".to_owned()
        }
        ProgramType::STRUCT_OPS => {
            "a struct_ops program runs as a member of its struct_ops map, which the group registers"
                .to_owned()
        }
        _ => format!("a {t} program has no hook its section names"),
    }
}

/// Tracing kinds whose bare section (`SEC("kprobe")`, `SEC("uprobe")`)
/// names no hook: a default selection skips them, as libbpf does.
fn hook_only_in_section(t: ProgramType) -> bool {
    use ProgramType as P;
    matches!(
        t,
        P::TRACEPOINT | P::KPROBE | P::RAW_TRACEPOINT | P::RAW_TRACEPOINT_WRITABLE | P::EXT
    )
}

/// Attaches one program of the collection: sockmap kinds onto the object's
/// sockmap, the others where their section says.
fn attach_one(
    collection: &Collection,
    spec: &crate::obj::ProgramSpec,
    targets: &AttachTargets,
) -> Result<Vec<Link>, GroupError> {
    let program = collection.program(spec.name())?;
    if matches!(spec.prog_type, ProgramType::SK_MSG | ProgramType::SK_SKB) {
        let map = net::sockmap_of(spec, &collection.maps)?;
        return Ok(vec![net::attach_to_sockmap(program, spec, map)?]);
    }
    Ok(attach_program(program, spec, targets)?)
}

/// Detaches links made so far, now (dropping them would too, a moment
/// later for links the kernel releases lazily).
fn undo(links: Vec<(usize, Vec<Link>)>) {
    for (_, group) in links {
        for link in group {
            let _ = link.detach();
        }
    }
}

/// Attaches a group: loads `spec` once, attaches the programs `opts` names
/// (or, with none named, every program whose section names a hook; kinds
/// whose hook comes from a target in `opts.targets`, such as cgroups, are
/// included and fail without it), and pins the links and every map of the
/// load under the group's directory. All or nothing: on any failure every
/// link made is detached and no pin stays.
pub fn attach(
    spec: &ObjectSpec,
    load: &LoadOptions,
    opts: &GroupOptions,
) -> Result<Group, GroupError> {
    check_name(&opts.name)?;
    prepare(&opts.name)?;
    check_programs_named(spec, opts)?;
    let collection = Collection::load(spec, load)?;
    let SelectedLinks { mut links, skipped } = attach_selected(spec, &collection, opts)?;
    // struct_ops maps register with the default selection, as libbpf's
    // skeleton attach does: those with a link here, last, under index
    // usize::MAX; those their map holds in pin_group, once it is pinned.
    let struct_ops = opts.programs.is_empty() && !collection.struct_ops.is_empty();
    if struct_ops {
        match super::struct_ops::register_links(&collection) {
            Ok(made) if made.is_empty() => {}
            Ok(made) => links.push((usize::MAX, made)),
            Err(e) => {
                undo(links);
                return Err(e.into());
            }
        }
    }
    if links.is_empty() && !(struct_ops && super::struct_ops::has_held(&collection)) {
        return Err(nothing_to_attach(&skipped));
    }
    if let Some(e) = unpinnable(&links) {
        undo(links);
        return Err(e.into());
    }
    match pin_group(spec, &collection, &links, opts) {
        Ok(group) => {
            for (_, made) in links {
                made.into_iter().for_each(Link::keep);
            }
            Ok(Group {
                skipped,
                warnings: collection.warnings.clone(),
                ..group
            })
        }
        Err(e) => {
            undo(links);
            Err(e)
        }
    }
}

/// Every program `opts` names is one of the object's.
pub(super) fn check_programs_named(
    spec: &ObjectSpec,
    opts: &GroupOptions,
) -> Result<(), GroupError> {
    for want in &opts.programs {
        if !spec.programs.iter().any(|p| p.name() == want) {
            return Err(GroupError::NoProgram {
                name: want.clone(),
                known: spec
                    .programs
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// What attaching a group's programs made: the links, by the program's
/// index in the object, and the programs a default selection left out,
/// each with why.
pub(super) struct SelectedLinks {
    pub(super) links: Vec<(usize, Vec<Link>)>,
    pub(super) skipped: Vec<(String, String)>,
}

/// Attaches the programs `opts` names, or by default every program whose
/// section names a hook. On a failure the links made so far are detached.
pub(super) fn attach_selected(
    spec: &ObjectSpec,
    collection: &Collection,
    opts: &GroupOptions,
) -> Result<SelectedLinks, GroupError> {
    let explicit = !opts.programs.is_empty();
    let mut links: Vec<(usize, Vec<Link>)> = Vec::new();
    let mut skipped = Vec::new();
    for (i, p) in spec.programs.iter().enumerate() {
        if explicit && !opts.programs.iter().any(|w| w == p.name()) {
            continue;
        }
        if !explicit && never_by_default(p.prog_type) {
            skipped.push((p.name().to_owned(), not_by_section(p.prog_type)));
            continue;
        }
        match attach_one(collection, p, &opts.targets) {
            Ok(made) => links.push((i, made)),
            Err(GroupError::Link(LinkError::NoTarget { needs, .. }))
                if !explicit && hook_only_in_section(p.prog_type) =>
            {
                skipped.push((
                    p.name().to_owned(),
                    format!("its section names no hook ({needs})"),
                ));
            }
            Err(e) => {
                undo(links);
                return Err(e);
            }
        }
    }
    Ok(SelectedLinks { links, skipped })
}

/// The error for a selection that attached nothing, naming each program
/// left out and why.
pub(super) fn nothing_to_attach(skipped: &[(String, String)]) -> GroupError {
    let why: Vec<String> = skipped.iter().map(|(p, w)| format!("{p}: {w}")).collect();
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({})", why.join("; "))
    };
    GroupError::NothingToAttach(why)
}

/// A link that cannot be pinned (it has no fd, and no sockmap holds it),
/// as the error that refuses the group.
fn unpinnable(links: &[(usize, Vec<Link>)]) -> Option<LinkError> {
    let l = links
        .iter()
        .flat_map(|(_, l)| l)
        .find(|l| l.fd().is_none() && !on_sockmap(l))?;
    Some(LinkError::NotPinnable {
        program: l.program().to_owned(),
        target: l.target().to_owned(),
    })
}

/// Whether a link is a program put on a sockmap with `BPF_PROG_ATTACH`:
/// the map holds it.
fn on_sockmap(link: &Link) -> bool {
    matches!(
        &link.attachment,
        super::Attachment::ProgAttach { attach_type, .. } if matches!(
            *attach_type,
            AttachType::SK_MSG_VERDICT
                | AttachType::SK_SKB_STREAM_PARSER
                | AttachType::SK_SKB_STREAM_VERDICT
                | AttachType::SK_SKB_VERDICT
        )
    )
}

/// Refuses a name that is attached or being worked on, and clears what a
/// killed rawbpf left under it.
fn prepare(name: &str) -> Result<(), GroupError> {
    for dir in named(name)? {
        match dir.staged_by {
            None => return Err(GroupError::Exists(name.to_owned())),
            Some(pid) if dir.stager_runs() => {
                return Err(GroupError::Busy {
                    name: name.to_owned(),
                    pid,
                })
            }
            Some(_) => {
                super::release::clear(&dir.path);
            }
        }
    }
    Ok(())
}

fn obj_pin(fd: std::os::fd::BorrowedFd<'_>, path: &Path) -> Result<(), GroupError> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| pin_err(path, "using the path")(io::Error::from_raw_os_error(libc::EINVAL)))?;
    sys::obj_pin(fd, &c).map_err(pin_err(path, "pinning"))
}

/// The pin name of link `n` of a program's `count` links.
fn link_file(program: &str, count: usize, n: usize) -> String {
    match count {
        1 => pin_name(program),
        _ => format!("{}-{n}", pin_name(program)),
    }
}

/// Pins the links and maps into a staging directory and renames it into
/// place; on failure removes the staging directory.
fn pin_group(
    spec: &ObjectSpec,
    collection: &Collection,
    links: &[(usize, Vec<Link>)],
    opts: &GroupOptions,
) -> Result<Group, GroupError> {
    let staging = staging_dir(&opts.name, std::process::id());
    let final_dir = group_dir(&opts.name);
    let result = (|| {
        crate::load::pin::ensure_bpffs_dir(&staging.join(LINKS))?;
        crate::load::pin::ensure_bpffs_dir(&staging.join(MAPS))?;
        // The tracepoint ids first: a kill between the pins then leaves
        // every pinned perf-event link recorded for a quick detach.
        let mut tracepoints = Vec::new();
        for (i, made) in links {
            let Some(p) = spec.programs.get(*i) else {
                continue;
            };
            for (n, link) in made.iter().enumerate() {
                if let Some(tracepoint) = link.tracepoint {
                    tracepoints.push(super::release::OnTracepoint {
                        pin: link_file(p.name(), made.len(), n),
                        tracepoint,
                        prog_id: collection.program(p.name())?.id,
                    });
                }
            }
        }
        super::release::record_tracepoints(&staging, &tracepoints);
        let mut out = Vec::new();
        for (i, made) in links {
            let Some(p) = spec.programs.get(*i) else {
                out.extend(super::struct_ops::pin_in_group(
                    collection,
                    made,
                    &staging.join(LINKS),
                    &final_dir,
                )?);
                continue;
            };
            let prog_id = collection.program(p.name())?.id;
            for (n, link) in made.iter().enumerate() {
                let file = link_file(p.name(), made.len(), n);
                let Some(fd) = link.fd() else {
                    // On the sockmap (see on_sockmap), pinned with the maps.
                    let map = net::sockmap_of(p, &collection.maps)?;
                    out.push(GroupLink {
                        program: p.name().to_owned(),
                        section: p.section().to_owned(),
                        target: link.target().to_owned(),
                        prog_id,
                        link_id: None,
                        pin: final_dir.join(MAPS).join(pin_name(map.name())),
                    });
                    continue;
                };
                obj_pin(fd, &staging.join(LINKS).join(&file))?;
                let info = sys::link_info(fd).map_err(|source| LinkError::Link {
                    program: p.name().to_owned(),
                    target: link.target().to_owned(),
                    action: "reading its info",
                    source,
                })?;
                out.push(GroupLink {
                    program: p.name().to_owned(),
                    section: p.section().to_owned(),
                    target: link.target().to_owned(),
                    prog_id,
                    link_id: Some(info.id),
                    pin: final_dir.join(LINKS).join(file),
                });
            }
        }
        let mut maps = Vec::new();
        for m in &collection.maps {
            let file = pin_name(m.name());
            obj_pin(m.fd(), &staging.join(MAPS).join(&file))?;
            maps.push((m.name().to_owned(), m.id(), final_dir.join(MAPS).join(file)));
        }
        let held = match opts.programs.is_empty() {
            true => super::struct_ops::register_held(collection, &final_dir)?,
            false => Vec::new(),
        };
        out.extend(held.iter().map(|(g, _)| g.clone()));
        match std::fs::rename(&staging, &final_dir) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                Err(GroupError::Raced(opts.name.clone()))
            }
            r => r.map_err(pin_err(&final_dir, "moving the staged pins into place")),
        }?;
        held.into_iter().for_each(|(_, l)| l.keep());
        Ok(Group {
            name: opts.name.clone(),
            dir: final_dir.clone(),
            links: out,
            maps,
            skipped: Vec::new(),
            warnings: Vec::new(),
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// A group directory found on bpffs: attached, or staged by a process.
#[derive(Debug, Clone)]
pub struct GroupDir {
    /// The group's name (unescaped).
    pub name: String,
    /// The directory.
    pub path: PathBuf,
    /// `None` for an attached group; the staging process's pid otherwise.
    pub staged_by: Option<u32>,
    /// Its pinned links: pin name and the link's id (`None` if it cannot
    /// be opened).
    pub links: Vec<(String, Option<u32>)>,
    /// Its pinned maps' pin names.
    pub maps: Vec<String>,
}

impl GroupDir {
    /// Whether the process that staged it still runs.
    pub fn stager_runs(&self) -> bool {
        self.staged_by
            .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists())
    }

    /// A staging directory whose process is gone: what a killed rawbpf left.
    pub fn half_done(&self) -> bool {
        self.staged_by.is_some() && !self.stager_runs()
    }
}

/// The inverse of [`escape`], read left to right.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('_') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("__") {
            out.push('_');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("_2e") {
            out.push('.');
            rest = t;
        } else {
            out.push('_');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

pub(super) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// Every group directory, attached or staged, by name, with its pinned
/// links (each opened for its id: what `list` shows) and maps.
pub fn groups() -> Result<Vec<GroupDir>, GroupError> {
    let mut out = group_dirs()?;
    for g in &mut out {
        let links = g.path.join(LINKS);
        g.links = names(&links)
            .into_iter()
            .map(|l| {
                let id = CString::new(links.join(&l).as_os_str().as_encoded_bytes())
                    .ok()
                    .and_then(|c| sys::obj_get(&c).ok())
                    .and_then(|fd| sys::link_info(fd.as_fd()).ok())
                    .map(|i| i.id);
                (l, id)
            })
            .collect();
        g.maps = names(&g.path.join(MAPS));
    }
    Ok(out)
}

/// The group directories, attached or staged, without their contents
/// (what attach and detach need; no link is opened here, `clear` opens
/// those it detaches), sorted by name, the attached one first.
fn group_dirs() -> Result<Vec<GroupDir>, GroupError> {
    let root = groups_dir();
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(pin_err(&root, "reading the groups")(e)),
    };
    let mut out: Vec<GroupDir> = entries
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name().into_string().ok()?;
            let (escaped, staged_by) = match file.rsplit_once(STAGED) {
                Some((n, pid)) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
                    (n, pid.parse().ok())
                }
                _ => (file.as_str(), None),
            };
            Some(GroupDir {
                name: unescape(escaped),
                path: root.join(&file),
                staged_by,
                links: Vec::new(),
                maps: Vec::new(),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.name, a.staged_by).cmp(&(&b.name, b.staged_by)));
    Ok(out)
}

/// The directories of group `name` alone, attached or staged.
fn named(name: &str) -> Result<Vec<GroupDir>, GroupError> {
    let mut out = group_dirs()?;
    out.retain(|g| g.name == name);
    Ok(out)
}

/// What [`detach`] did.
#[derive(Debug, Clone)]
pub struct Detached {
    /// The group.
    pub name: String,
    /// Whether an attached group was removed.
    pub removed: bool,
    /// Links detached (those of the group and of half-done directories).
    pub links: usize,
    /// Staging directories a killed rawbpf left, cleared.
    pub reconciled: Vec<PathBuf>,
}

/// Detaches group `name` and removes its pins, clearing as well what a
/// killed rawbpf left under the name. [`GroupError::NoGroup`] when there
/// was nothing; [`GroupError::Busy`] when another process is working on it
/// and there is no attached group.
pub fn detach(name: &str) -> Result<Detached, GroupError> {
    check_name(name)?;
    let mut done = Detached {
        name: name.to_owned(),
        removed: false,
        links: 0,
        reconciled: Vec::new(),
    };
    let mut busy = None;
    for dir in named(name)? {
        match dir.staged_by {
            None => {
                // Ours alone once renamed: a concurrent detach gets ENOENT.
                let mine = staging_dir(name, std::process::id());
                match std::fs::rename(&dir.path, &mine) {
                    Ok(()) => {
                        done.links += super::release::clear(&mine);
                        done.removed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(pin_err(&dir.path, "taking the group to remove it")(e)),
                }
            }
            Some(pid) if dir.stager_runs() => busy = Some(pid),
            Some(_) => {
                done.links += super::release::clear(&dir.path);
                done.reconciled.push(dir.path);
            }
        }
    }
    if !done.removed && done.reconciled.is_empty() {
        return Err(match busy {
            Some(pid) => GroupError::Busy {
                name: name.to_owned(),
                pid,
            },
            None => GroupError::NoGroup(name.to_owned()),
        });
    }
    Ok(done)
}

/// Detaches every group and clears every half-done one (those another
/// running rawbpf is working on are left to it).
pub fn detach_all() -> Result<Vec<Detached>, GroupError> {
    let mut names: Vec<String> = group_dirs()?
        .into_iter()
        .filter(|g| !g.stager_runs())
        .map(|g| g.name)
        .collect();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        match detach(&name) {
            Ok(d) => out.push(d),
            Err(GroupError::NoGroup(_) | GroupError::Busy { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

pub use super::kernel_links::{link_type_name, list_links, KernelLink};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_staging_dirs_do_not_mix() {
        for name in [
            "a",
            "a_new_5",
            "x.y_new_12",
            "a__new__5",
            "A-b.c",
            "a_2e",
            "_._",
        ] {
            check_name(name).unwrap();
            let dir = group_dir(name);
            let file = dir.file_name().unwrap().to_str().unwrap();
            assert!(!file.contains('.'));
            // A group's directory never reads as a staging directory.
            let staged = file
                .rsplit_once(STAGED)
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
            assert!(!staged, "{name}");
            assert_eq!(unescape(file), name);
            let s = staging_dir(name, 42);
            let (n, pid) = s
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .rsplit_once(STAGED)
                .unwrap();
            assert_eq!((unescape(n).as_str(), pid), (name, "42"));
        }
        for bad in ["", "a/b", "a b", "..x/"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
