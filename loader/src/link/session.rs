//! An object's programs attached for as long as a value lives, nothing
//! pinned: what libbpf-tools do (they run in the foreground and detach on
//! exit), and the one way to attach what bpffs cannot pin (a perf event
//! with `PERF_EVENT_IOC_SET_BPF` before 5.15, a cgroup where cgroup links
//! are missing), which a [group](super::group) refuses.
//!
//! The selection is a group's: the programs named, or every program whose
//! section names its hook, all or nothing. Nothing outlives the
//! [`Session`]: dropping it (or the process dying) detaches every link and
//! frees the maps.

use super::group::{self, GroupError, GroupOptions};
use super::Link;
use crate::load::{Collection, LoadOptions};
use crate::obj::ObjectSpec;

/// The programs of one load, attached until this value is dropped.
#[derive(Debug)]
pub struct Session {
    /// The load: its maps are the programs' shared state.
    pub collection: Collection,
    /// The links, in the object's program order (a program with several
    /// sites, such as a USDT probe or a sampling event per CPU, has one
    /// each). Dropping them detaches.
    pub links: Vec<Link>,
    /// Programs a default selection left out, and why.
    pub skipped: Vec<(String, String)>,
}

/// Loads `spec` once and attaches the programs `opts.programs` names (or,
/// with none named, every program whose section names a hook) with
/// `opts.targets`; `opts.name` is not used. All or nothing: on a failure
/// every link made is detached.
pub fn attach(
    spec: &ObjectSpec,
    load: &LoadOptions,
    opts: &GroupOptions,
) -> Result<Session, GroupError> {
    group::check_programs_named(spec, opts)?;
    let collection = Collection::load(spec, load)?;
    let selected = group::attach_selected(spec, &collection, opts)?;
    if selected.links.is_empty() {
        return Err(group::nothing_to_attach(&selected.skipped));
    }
    Ok(Session {
        links: selected.links.into_iter().flat_map(|(_, l)| l).collect(),
        skipped: selected.skipped,
        collection,
    })
}
