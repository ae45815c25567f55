//! Arrays: [`Array`], [`PerCpuArray`] and [`ProgramArray`]. Their keys are
//! `u32` indices below `max_entries`; every element of an array exists
//! (zero until written), so reads give a value, not an `Option`.

use super::pod::to_bytes;
use super::{
    check, decode_percpu, delete, encode_percpu, lookup, sized, typed_map, update, Map, MapError,
    Pod, BPF_ANY,
};
use crate::load::Program;
use crate::uapi::MapType;
use std::borrow::Borrow;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Refuses an index past the array's end (the kernel's ENOENT or E2BIG,
/// said plainly).
fn in_bounds(map: &Map, index: u32) -> Result<[u8; 4], MapError> {
    if index >= map.max_entries() {
        return Err(MapError::OutOfBounds {
            map: map.name().to_owned(),
            index,
            max_entries: map.max_entries(),
        });
    }
    Ok(index.to_ne_bytes())
}

/// The bytes at `index`, which an array always has.
fn element(map: &Map, index: u32) -> Result<Vec<u8>, MapError> {
    let key = in_bounds(map, index)?;
    lookup(map, Some(&key))?.ok_or_else(|| MapError::OutOfBounds {
        map: map.name().to_owned(),
        index,
        max_entries: map.max_entries(),
    })
}

/// An `array` map of `V`.
pub struct Array<V, M = Map> {
    map: M,
    _types: PhantomData<fn() -> V>,
}

typed_map!(Array<V>);

impl<V: Pod, M: Borrow<Map>> Array<V, M> {
    fn check(map: &Map) -> Result<(), MapError> {
        check(
            map,
            &[MapType::ARRAY],
            "an array",
            sized::<u32>(),
            sized::<V>(),
        )
    }

    /// The number of elements (`max_entries`).
    pub fn len(&self) -> u32 {
        self.map().max_entries()
    }

    /// Whether it has no elements (never, for a map the kernel made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `index`.
    pub fn get(&self, index: u32) -> Result<V, MapError> {
        Ok(V::read(&element(self.map(), index)?))
    }

    /// Writes `value` at `index`.
    pub fn set(&self, index: u32, value: &V) -> Result<(), MapError> {
        let key = in_bounds(self.map(), index)?;
        update(self.map(), Some(&key), &to_bytes(value), BPF_ANY)
    }

    /// Every value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = Result<V, MapError>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// A `percpu_array` map: each index has one `V` per possible CPU.
pub struct PerCpuArray<V, M = Map> {
    map: M,
    _types: PhantomData<fn() -> V>,
}

typed_map!(PerCpuArray<V>);

impl<V: Pod, M: Borrow<Map>> PerCpuArray<V, M> {
    fn check(map: &Map) -> Result<(), MapError> {
        check(
            map,
            &[MapType::PERCPU_ARRAY],
            "a percpu_array",
            sized::<u32>(),
            sized::<V>(),
        )
    }

    /// The number of elements (`max_entries`).
    pub fn len(&self) -> u32 {
        self.map().max_entries()
    }

    /// Whether it has no elements (never, for a map the kernel made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values at `index`, one per possible CPU (index = CPU number).
    pub fn get(&self, index: u32) -> Result<Vec<V>, MapError> {
        Ok(decode_percpu(&element(self.map(), index)?))
    }

    /// Writes `values`, one per possible CPU, at `index`.
    pub fn set(&self, index: u32, values: &[V]) -> Result<(), MapError> {
        let key = in_bounds(self.map(), index)?;
        let bytes = encode_percpu(self.map(), values)?;
        update(self.map(), Some(&key), &bytes, BPF_ANY)
    }

    /// Every index's per-CPU values, in index order.
    pub fn iter(&self) -> impl Iterator<Item = Result<Vec<V>, MapError>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// A `prog_array`: the programs `bpf_tail_call` jumps to, by slot.
pub struct ProgramArray<M = Map> {
    map: M,
    _types: PhantomData<fn()>,
}

typed_map!(ProgramArray);

impl<M: Borrow<Map>> ProgramArray<M> {
    fn check(map: &Map) -> Result<(), MapError> {
        check(map, &[MapType::PROG_ARRAY], "a prog_array", None, None)
    }

    /// The number of slots (`max_entries`).
    pub fn len(&self) -> u32 {
        self.map().max_entries()
    }

    /// Whether it has no slots (never, for a map the kernel made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts `program` in slot `index`: tail calls to it run it.
    pub fn set(&self, index: u32, program: &Program) -> Result<(), MapError> {
        self.set_fd(index, program.fd())
    }

    /// Puts the program open at `fd` in slot `index`.
    pub fn set_fd(&self, index: u32, fd: BorrowedFd<'_>) -> Result<(), MapError> {
        let key = in_bounds(self.map(), index)?;
        let value = (fd.as_raw_fd() as u32).to_ne_bytes();
        update(self.map(), Some(&key), &value, BPF_ANY)
    }

    /// Empties slot `index` (tail calls to it fall through); `false` when
    /// it was empty.
    pub fn clear(&self, index: u32) -> Result<bool, MapError> {
        let key = in_bounds(self.map(), index)?;
        delete(self.map(), &key)
    }

    /// The id of the program in slot `index`, if one is there.
    pub fn get(&self, index: u32) -> Result<Option<u32>, MapError> {
        let key = in_bounds(self.map(), index)?;
        Ok(lookup(self.map(), Some(&key))?.map(|v| u32::read(&v)))
    }

    /// Every filled slot: (index, program id), in index order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(u32, u32), MapError>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i).map(|id| id.map(|id| (i, id))).transpose())
    }
}

/// An `array_of_maps`: inner maps by slot (`bpf_map_lookup_elem` on it
/// gives a program the inner map).
pub struct ArrayOfMaps<M = Map> {
    map: M,
    _types: PhantomData<fn()>,
}

typed_map!(ArrayOfMaps);

impl<M: Borrow<Map>> ArrayOfMaps<M> {
    fn check(map: &Map) -> Result<(), MapError> {
        check(
            map,
            &[MapType::ARRAY_OF_MAPS],
            "an array_of_maps",
            sized::<u32>(),
            None,
        )
    }

    /// The number of slots (`max_entries`).
    pub fn len(&self) -> u32 {
        self.map().max_entries()
    }

    /// Whether it has no slots (never, for a map the kernel made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts `inner` in slot `index` (the kernel refuses a map unlike the
    /// inner template: another type, size or `max_entries`).
    pub fn set(&self, index: u32, inner: &Map) -> Result<(), MapError> {
        let key = in_bounds(self.map(), index)?;
        let value = (inner.fd().as_raw_fd() as u32).to_ne_bytes();
        update(self.map(), Some(&key), &value, BPF_ANY)
    }

    /// Empties slot `index`; `false` when it was empty.
    pub fn clear(&self, index: u32) -> Result<bool, MapError> {
        let key = in_bounds(self.map(), index)?;
        delete(self.map(), &key)
    }

    /// The id of the map in slot `index`, if one is there.
    pub fn get(&self, index: u32) -> Result<Option<u32>, MapError> {
        let key = in_bounds(self.map(), index)?;
        Ok(lookup(self.map(), Some(&key))?.map(|v| u32::read(&v)))
    }

    /// Every filled slot: (index, map id), in index order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(u32, u32), MapError>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i).map(|id| id.map(|id| (i, id))).transpose())
    }
}
