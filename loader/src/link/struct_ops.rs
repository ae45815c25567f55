//! struct_ops: registering a `BPF_MAP_TYPE_STRUCT_OPS` map of a load, whose
//! value is the kernel's `bpf_struct_ops_<name>` filled with the object's
//! programs (a `tcp_congestion_ops`, a `sched_ext_ops`), as libbpf's
//! `bpf_map__attach_struct_ops`. The steps before, in libbpf's order
//! (`bpf_object__init_struct_ops`, `bpf_map__init_kern_struct_ops`):
//!
//! 1. **The object model** ([`crate::obj::struct_ops`]): each variable of
//!    the `.struct_ops` and `.struct_ops.link` sections is one map, typed
//!    by a local struct; its relocations name the program of each
//!    function-pointer member, its bytes hold the other members' values.
//! 2. **Kernel BTF** ([`crate::kernel_btf::struct_ops`]): the kernel's
//!    struct of that name and its wrapper `bpf_struct_ops_<name>`; the
//!    map's value is the wrapper with the local members copied into
//!    `data` by name, at the kernel's offsets (a member the kernel lacks
//!    must be zero; the error names it).
//! 3. **Loading** ([`crate::load::struct_ops`]): each program a member
//!    points to with `attach_btf_id` = the kernel struct's id and
//!    `expected_attach_type` = the member's index (programs no member
//!    points to are not loaded); the map with `btf_vmlinux_value_type_id`
//!    = the wrapper's id, and `BPF_F_LINK` for `.struct_ops.link` maps
//!    (where the kernel refuses the flag, before 6.4, the map is made
//!    without it and registers as a plain one, with a load warning).
//! 4. **Registering** (here): the value, with each function pointer
//!    replaced by its program's fd, written at key 0. For a `BPF_F_LINK`
//!    map that only prepares it; `BPF_LINK_CREATE` with the map's fd
//!    (attach type `BPF_STRUCT_OPS`, 44) registers it as a BPF link (6.4+),
//!    a [`Link`] like the others: pinnable, unregistered when dropped
//!    unless pinned or kept. A plain map is registered by the write itself
//!    (5.6+) and the kernel keeps it until key 0 is deleted: its [`Link`]
//!    holds the map, cannot be pinned (a group pins the map instead), and
//!    its detach (or drop) deletes key 0.
//!
//! Not done: struct_ops types of kernel modules (6.9+: the map would need
//! `value_type_btf_obj_fd`), `BPF_LINK_UPDATE` of a struct_ops link to
//! another map, and sleepable or kfunc-specific member checks beyond what
//! the kernel's verifier reports.

use super::group::GroupLink;
use super::{Attachment, Link, LinkError};
use crate::load::{pin_name, Collection, StructOpsMap};
use crate::sys;
use crate::uapi::{MapType, BPF_F_LINK};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The hook of a struct_ops map, in words.
fn target(m: &StructOpsMap) -> String {
    format!("struct_ops {} (map {})", m.struct_name, m.name)
}

fn failed(m: &StructOpsMap, action: &'static str, source: io::Error) -> LinkError {
    LinkError::Attach {
        program: format!("struct_ops map {}", m.name),
        section: m.section.clone(),
        target: format!("struct {}", m.struct_name),
        action,
        source,
    }
}

/// Registers struct_ops map `name` of `collection`: a BPF link for a
/// `.struct_ops.link` map, the map update itself for a `.struct_ops` one.
/// The [`Link`]'s program is `struct_ops map NAME`.
pub fn register(collection: &Collection, name: &str) -> Result<Link, LinkError> {
    let m = collection
        .struct_ops
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| LinkError::Unsupported {
            program: name.to_owned(),
            section: String::new(),
            what: format!(
                "a map that is not one of the object's struct_ops maps ({})",
                collection
                    .struct_ops
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
    let map = collection
        .map(&m.name)
        .map_err(|e| failed(m, "finding its map", io::Error::other(e.to_string())))?;
    let value = m
        .value(&collection.programs)
        .map_err(|e| failed(m, "filling its value", io::Error::other(e.to_string())))?;
    sys::map_update(map.fd(), map.elem_sizes(), &0u32.to_le_bytes(), &value, 0).map_err(|e| {
        failed(
            m,
            if m.link {
                "writing its value (preparing it)"
            } else {
                "writing its value (registering it)"
            },
            e,
        )
    })?;
    let program = format!("{PROGRAM_PREFIX}{}", m.name);
    if m.link {
        let fd = sys::link_create_struct_ops(map.fd()).map_err(|e| {
            let action = if e.raw_os_error() == Some(libc::EEXIST) {
                "registering it (BPF_LINK_CREATE; the kernel has one of that name already)"
            } else {
                "registering it (BPF_LINK_CREATE)"
            };
            failed(m, action, e)
        })?;
        return Ok(Link::new(&program, target(m), Attachment::Bpf(fd)));
    }
    let held = map
        .fd()
        .try_clone_to_owned()
        .map_err(|e| failed(m, "holding its map", e))?;
    Ok(Link::new(
        &program,
        target(m),
        Attachment::StructOpsMap {
            map: held,
            value_size: value.len(),
        },
    ))
}

/// Registers every struct_ops map of `collection`, all or nothing: on a
/// failure those registered so far are unregistered.
pub fn register_all(collection: &Collection) -> Result<Vec<Link>, LinkError> {
    register_where(collection, |_| true)
}

/// Registers the struct_ops maps `pick` chooses, all or nothing.
fn register_where(
    collection: &Collection,
    pick: impl Fn(&StructOpsMap) -> bool,
) -> Result<Vec<Link>, LinkError> {
    let mut links = Vec::with_capacity(collection.struct_ops.len());
    for m in collection.struct_ops.iter().filter(|m| pick(m)) {
        match register(collection, &m.name) {
            Ok(l) => links.push(l),
            Err(e) => {
                for l in links {
                    let _ = l.detach();
                }
                return Err(e);
            }
        }
    }
    Ok(links)
}

/// A group's struct_ops maps that register through a BPF link, all or
/// nothing (a kill before their pins leaves nothing: the links die with
/// the process).
pub(super) fn register_links(collection: &Collection) -> Result<Vec<Link>, LinkError> {
    register_where(collection, |m| m.link)
}

/// Whether `collection` has a struct_ops map that its map holds
/// registered (no link): [`register_held`] registers those.
pub(super) fn has_held(collection: &Collection) -> bool {
    collection.struct_ops.iter().any(|m| !m.link)
}

/// Registers a group's struct_ops maps that have no link, once the group
/// has pinned its maps in its staging directory: a kill from then on
/// leaves that directory, whose clearing ([`unregister_pinned`])
/// unregisters them. The [`Link`]s unregister when dropped: the caller
/// keeps them once the group is in place. `group_dir` is the group's
/// final directory, where their maps' pins will be.
pub(super) fn register_held(
    collection: &Collection,
    group_dir: &Path,
) -> Result<Vec<(GroupLink, Link)>, LinkError> {
    let made = register_where(collection, |m| !m.link)?;
    let described = pin_in_group(collection, &made, group_dir, group_dir)?;
    Ok(described.into_iter().zip(made).collect())
}

/// Unregisters a plain struct_ops map: deletes key 0.
pub(super) fn unregister(map: &OwnedFd, value_size: usize) -> io::Result<()> {
    let sizes = sys::ElemSizes {
        key: 4,
        value: value_size,
    };
    sys::map_delete(map.as_fd(), sizes, &0u32.to_le_bytes()).map(drop)
}

/// The prefix of a struct_ops registration's [`Link::program`].
const PROGRAM_PREFIX: &str = "struct_ops map ";

/// Pins a group's struct_ops registrations: a link in `links_dir` under
/// its map's name; a registration without a link is held by its map,
/// which the group pins with its maps (under `group_dir`).
pub(super) fn pin_in_group(
    collection: &Collection,
    made: &[Link],
    links_dir: &Path,
    group_dir: &Path,
) -> Result<Vec<GroupLink>, LinkError> {
    let mut out = Vec::with_capacity(made.len());
    for link in made {
        let name = link.program().trim_start_matches(PROGRAM_PREFIX);
        let Some(m) = collection.struct_ops.iter().find(|m| m.name == name) else {
            continue;
        };
        // The program of its first member stands for it.
        let prog_id = m
            .programs()
            .next()
            .and_then(|(_, p)| collection.program(p).ok())
            .map_or(0, |p| p.id);
        let file = pin_name(name);
        let (link_id, pin) = match link.fd() {
            Some(fd) => {
                let pin = links_dir.join(&file);
                let pin_err = |source| LinkError::Pin {
                    path: pin.clone(),
                    action: "pinning the link",
                    source,
                };
                let c = CString::new(pin.as_os_str().as_encoded_bytes())
                    .map_err(|_| pin_err(io::Error::from_raw_os_error(libc::EINVAL)))?;
                sys::obj_pin(fd, &c).map_err(pin_err)?;
                let info =
                    sys::link_info(fd).map_err(|e| failed(m, "reading its link's info", e))?;
                (Some(info.id), group_dir.join("links").join(&file))
            }
            None => (None, group_dir.join("maps").join(&file)),
        };
        out.push(GroupLink {
            program: link.program().to_owned(),
            section: m.section.clone(),
            target: link.target().to_owned(),
            prog_id,
            link_id,
            pin,
        });
    }
    Ok(out)
}

/// Unregisters every plain struct_ops map pinned in `maps_dir` (a group's
/// maps): deletes key 0 of each. Errors are ignored: a map someone else
/// unregistered has nothing at key 0. Returns the names of every pin it
/// saw there, for the detach to remove.
pub(super) fn unregister_pinned(maps_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maps_dir) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for e in entries.flatten() {
        if let Ok(name) = e.file_name().into_string() {
            names.push(name);
        }
        let Ok(path) = CString::new(e.path().as_os_str().as_encoded_bytes()) else {
            continue;
        };
        let Ok(fd) = sys::obj_get(&path) else {
            continue;
        };
        let Ok(info) = sys::map_info(fd.as_fd()) else {
            continue;
        };
        if info.map_type == MapType::STRUCT_OPS.0 && info.map_flags & BPF_F_LINK == 0 {
            let _ = unregister(&fd, info.value_size as usize);
        }
    }
    names
}
