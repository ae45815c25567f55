//! Global variables set by [`LoadOptions::globals`](super::LoadOptions):
//! written into a copy of the spec's global-data maps before they are
//! created (the pure part, finding and encoding them, is
//! [`crate::obj::globals`]).

use crate::obj::{GlobalError, GlobalValue, ObjectSpec};

/// The spec with every global set, in order (a later setting of the same
/// variable wins). Only called when there are globals to set: the copy
/// costs the object's size.
pub fn apply(
    spec: &ObjectSpec,
    globals: &[(String, GlobalValue)],
) -> Result<ObjectSpec, GlobalError> {
    let mut copy = spec.clone();
    for (name, value) in globals {
        copy.set_global(name, value)?;
    }
    Ok(copy)
}

/// Checks every global against the spec without loading anything: what
/// [`Collection::load`](super::Collection::load) would refuse.
pub fn check(spec: &ObjectSpec, globals: &[(String, GlobalValue)]) -> Result<(), GlobalError> {
    for (name, value) in globals {
        spec.encode_global(name, value)?;
    }
    Ok(())
}
