//! Replacing one stage of an attached chain: one update of its pinned prog
//! array, so packets see either the old stage or the new one. The new
//! stage is loaded with the chain's own maps wherever its object declares
//! a map of the same name (the prog array it tail-calls through, counters,
//! configuration), opened from the chain's pins: a stage that tail-calls
//! on, or counts, goes on doing so in the chain's maps, not in copies that
//! would die with the command.

use super::lock::HookLock;
use super::{AttachError, SwapRefusal, Target};
use crate::load::{Collection, LoadError, LoadOptions, Map, MapReplacement};
use crate::obj::{MapOrigin, ObjectSpec, ProgramSpec};
use crate::sys::{self, ElemSizes};
use crate::uapi::MapType;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

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

impl std::fmt::Display for SwapSpec {
    /// `MAP:KEY=OBJ:PROG`, as the CLI takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}={}:{}",
            self.map,
            self.key,
            self.object.display(),
            self.program
        )
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
/// program the prog array cannot hold ([`AttachError::SwapRefused`] says
/// why, as a [`SwapRefusal`]).
///
/// `load` is how to load the new stage (globals, where maps pinned by
/// name live); the chain's maps are added to its replacements.
///
/// Holds the device's lock (see [`attach`](super::attach)), so the chain it
/// updates is the one in place, not one an `attach --replace` is
/// replacing.
pub fn swap(
    target: &Target,
    priority: u16,
    swap: &SwapSpec,
    spec: &ObjectSpec,
    load: &LoadOptions,
) -> Result<Swapped, AttachError> {
    let chain_dir = target.chain_dir(priority);
    let not_attached = || AttachError::NotAttached {
        dev: target.dev.clone(),
        hook: target.hook,
        priority: Some(priority),
    };
    if !chain_dir.exists() {
        return Err(not_attached());
    }
    let _lock = HookLock::take(target)?;
    // A detach may have removed it while this waited.
    if !chain_dir.exists() {
        return Err(not_attached());
    }
    let refuse = |reason: SwapRefusal| AttachError::SwapRefused {
        spec: swap.to_string(),
        reason,
    };
    let (array, map_id) = open_prog_array(&chain_dir, swap).map_err(refuse)?;
    let new = stage_program(spec, swap, target.hook).map_err(refuse)?;
    let mut load = load.clone();
    load.replace_maps.extend(chain_maps(&chain_dir, spec)?);
    let chain = Collection::load(spec, &load)?;
    let program = chain.program(new.name())?;
    let value = (program.fd().as_raw_fd() as u32).to_le_bytes();
    sys::map_update(
        array.as_fd(),
        ElemSizes { key: 4, value: 4 },
        &swap.key.to_le_bytes(),
        &value,
        0,
    )
    .map_err(|source| refuse(SwapRefusal::UpdateRefused { source }))?;
    Ok(Swapped {
        program: swap.program.clone(),
        prog_id: program.id,
        map_id,
    })
}

/// The chain's pinned prog array and its id, if `swap.key` is a slot of it.
fn open_prog_array(
    chain_dir: &std::path::Path,
    swap: &SwapSpec,
) -> Result<(OwnedFd, u32), SwapRefusal> {
    let map = || swap.map.clone();
    let pin = chain_dir.join(crate::load::pin_name(&swap.map));
    let pin_c = std::ffi::CString::new(pin.as_os_str().as_encoded_bytes())
        .map_err(|_| SwapRefusal::BadMapName)?;
    let array = sys::obj_get(&pin_c).map_err(|source| SwapRefusal::NoMap {
        map: map(),
        pin,
        source,
    })?;
    let info = sys::map_info(array.as_fd())
        .map_err(|source| SwapRefusal::MapInfo { map: map(), source })?;
    if info.map_type != MapType::PROG_ARRAY.0 {
        return Err(SwapRefusal::NotProgArray {
            map: map(),
            map_type: MapType(info.map_type),
        });
    }
    if swap.key >= info.max_entries {
        return Err(SwapRefusal::KeyPastEnd {
            key: swap.key,
            max_entries: info.max_entries,
            map: map(),
        });
    }
    Ok((array, info.id))
}

/// The chain's pinned maps that `spec` declares by name (maps of its own:
/// global data is each object's own), for the new stage's load.
fn chain_maps(
    chain_dir: &std::path::Path,
    spec: &ObjectSpec,
) -> Result<Vec<MapReplacement>, LoadError> {
    let mut out = Vec::new();
    for m in spec
        .maps
        .iter()
        .filter(|m| m.origin != MapOrigin::GlobalData)
    {
        let pin = chain_dir.join(crate::load::pin_name(&m.name));
        if !pin.exists() {
            continue;
        }
        let map = Map::from_pin(&pin)?;
        let replacement = MapReplacement::new(&m.name, &map).map_err(|source| LoadError::Pin {
            path: pin,
            action: "sharing the chain's map",
            source,
        })?;
        out.push(replacement);
    }
    Ok(out)
}

/// The new stage's program, if the prog array can hold it: a program of
/// the type the hook runs.
fn stage_program<'s>(
    spec: &'s ObjectSpec,
    swap: &SwapSpec,
    hook: super::Hook,
) -> Result<&'s ProgramSpec, SwapRefusal> {
    let new = spec
        .program(&swap.program)
        .ok_or_else(|| SwapRefusal::NoProgram {
            program: swap.program.clone(),
            object: swap.object.clone(),
            known: spec
                .programs
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let holds = hook.program_type();
    if new.prog_type != holds {
        return Err(SwapRefusal::WrongProgramType {
            program: swap.program.clone(),
            prog_type: new.prog_type,
            holds,
        });
    }
    Ok(new)
}
