//! Typed maps: keys and values as Rust types, checked against the kernel's
//! map when opened, as aya's `aya::maps` and cilium/ebpf's `Map` give them.
//!
//! Each type wraps a [`Map`] — owned (`HashMap<K, V>`, the default, what
//! `from_pin` and `from_id` give) or borrowed from a
//! [`Collection`](crate::Collection) (`HashMap<K, V, &Map>`) — after
//! checking the map's type and that `K::SIZE` and `V::SIZE` are the
//! kernel's key and value sizes; a mismatch is a [`MapError`] naming the
//! map, what was expected and what the kernel has.
//!
//! | type | kernel map types |
//! |---|---|
//! | [`HashMap<K, V>`] | `hash`, `lru_hash` |
//! | [`PerCpuHashMap<K, V>`] | `percpu_hash`, `lru_percpu_hash` |
//! | [`Array<V>`] | `array` |
//! | [`PerCpuArray<V>`] | `percpu_array` |
//! | [`ProgramArray`] | `prog_array` |
//! | [`ArrayOfMaps`], [`HashOfMaps<K>`] | `array_of_maps`, `hash_of_maps` |
//! | [`LpmTrie<K, V>`] | `lpm_trie` |
//! | [`Queue<V>`], [`Stack<V>`] | `queue`, `stack` |
//!
//! Keys and values are [`Pod`]: numbers, `bool`, arrays, and structs
//! described with [`pod_struct!`](crate::pod_struct). Per-CPU values are a
//! `Vec<V>` with one value per possible CPU
//! ([`possible_cpus`](crate::load::possible_cpus)).
//!
//! ```no_run
//! use rawbpf::maps::{Array, HashMap};
//! use rawbpf::{Collection, LoadOptions, ObjectSpec};
//!
//! let spec = ObjectSpec::from_file("programs/obj/map_types.bpf.o")?;
//! let loaded = Collection::load(&spec, &LoadOptions::default())?;
//! let flows = HashMap::<u32, u64, _>::new(loaded.map("flows")?)?;
//! flows.insert(&6, &0)?;
//! for entry in flows.iter() {
//!     let (protocol, packets) = entry?;
//!     println!("{protocol}: {packets}");
//! }
//! // Owned, from a pin: the map outlives the process that loaded it.
//! let counter = Array::<u64>::from_pin("/sys/fs/bpf/pinned_counter")?;
//! println!("{:?}", counter.get(0)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Ring buffers and perf event arrays are read with the event readers,
//! not here.

mod array;
mod hash;
mod lpm_queue;
mod pod;

pub use array::{Array, ArrayOfMaps, PerCpuArray, ProgramArray};
pub use hash::{HashMap, HashOfMaps, PerCpuHashMap};
pub use lpm_queue::{Key, LpmTrie, Queue, Stack};
pub use pod::{c_layout, Pod};

pub use crate::load::Map;
use crate::load::{hex, LoadError};
use crate::sys;
use crate::uapi::MapType;
use std::io;

/// `BPF_ANY`: create the element or replace it.
pub const BPF_ANY: u64 = 0;
/// `BPF_NOEXIST`: create the element only if it does not exist.
pub const BPF_NOEXIST: u64 = 1;
/// `BPF_EXIST`: replace the element only if it exists (for a queue or
/// stack: push even when full, dropping the oldest element).
pub const BPF_EXIST: u64 = 2;
/// `BPF_F_LOCK`: take the value's `bpf_spin_lock` while writing it.
pub const BPF_F_LOCK: u64 = 4;

/// What a typed map refuses, naming the map at fault.
#[derive(thiserror::Error)]
pub enum MapError {
    /// The map is of another type than the Rust type reads.
    #[error("map {map}: its type is {actual}, not {expected}")]
    WrongType {
        /// Map name.
        map: String,
        /// The kernel map types the Rust type reads, in words.
        expected: &'static str,
        /// The map's type.
        actual: MapType,
    },
    /// The Rust key or value type is not as long as the kernel's.
    #[error("map {map}: its {what} is {actual} bytes, but {rust_type} is {expected} bytes")]
    WrongSize {
        /// Map name.
        map: String,
        /// "key" or "value".
        what: &'static str,
        /// The Rust type.
        rust_type: &'static str,
        /// The Rust type's size.
        expected: usize,
        /// The kernel's size.
        actual: u32,
    },
    /// An index past an array's end.
    #[error("map {map}: index {index} is past its {max_entries} entries")]
    OutOfBounds {
        /// Map name.
        map: String,
        /// The index asked for.
        index: u32,
        /// The array's size.
        max_entries: u32,
    },
    /// Per-CPU values for another number of CPUs than the kernel's.
    #[error("map {map}: {given} per-CPU values given, the system has {cpus} possible CPUs")]
    CpuCount {
        /// Map name.
        map: String,
        /// Values given.
        given: usize,
        /// Possible CPUs.
        cpus: usize,
    },
    /// `bpf(2)` failed on an element.
    #[error("map {map}: {what}: {source}")]
    Syscall {
        /// Map name.
        map: String,
        /// What was done, with the key in hex.
        what: String,
        /// errno.
        source: io::Error,
    },
    /// Opening the map (its pin, its id) failed.
    #[error(transparent)]
    Open(#[from] LoadError),
}

debug_is_display!(MapError);

/// Refuses `map` unless its type is one of `types` and its key and value
/// sizes are `key` and `value` (`None`: not checked).
fn check(
    map: &Map,
    types: &[MapType],
    expected: &'static str,
    key: Option<(&'static str, usize)>,
    value: Option<(&'static str, usize)>,
) -> Result<(), MapError> {
    if !types.contains(&map.map_type()) {
        return Err(MapError::WrongType {
            map: map.name().to_owned(),
            expected,
            actual: map.map_type(),
        });
    }
    for (what, want, actual) in [
        ("key", key, map.key_size()),
        ("value", value, map.value_size()),
    ] {
        if let Some((rust_type, size)) = want {
            if size != actual as usize {
                return Err(MapError::WrongSize {
                    map: map.name().to_owned(),
                    what,
                    rust_type,
                    expected: size,
                    actual,
                });
            }
        }
    }
    Ok(())
}

/// `(type name, size)` of a Pod type, for [`check`].
fn sized<T: Pod>() -> Option<(&'static str, usize)> {
    Some((std::any::type_name::<T>(), T::SIZE))
}

fn syscall_err(map: &Map, what: &str, key: Option<&[u8]>, source: io::Error) -> MapError {
    MapError::Syscall {
        map: map.name().to_owned(),
        what: match key {
            Some(k) => format!("{what} key {}", hex(k)),
            None => what.to_owned(),
        },
        source,
    }
}

/// `BPF_MAP_LOOKUP_ELEM` (no key: a queue's or stack's peek).
fn lookup(map: &Map, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
    let mut value = vec![0u8; map.value_len()];
    let found = sys::map_lookup_opt(map.fd(), map.elem_sizes(), key, &mut value)
        .map_err(|e| syscall_err(map, "reading", key, e))?;
    Ok(found.then_some(value))
}

/// `BPF_MAP_UPDATE_ELEM` (no key: a push).
fn update(map: &Map, key: Option<&[u8]>, value: &[u8], flags: u64) -> Result<(), MapError> {
    sys::map_update_flags(map.fd(), map.elem_sizes(), key, value, flags)
        .map_err(|e| syscall_err(map, "writing", key, e))
}

/// `BPF_MAP_DELETE_ELEM`; `false` when the key was not there.
fn delete(map: &Map, key: &[u8]) -> Result<bool, MapError> {
    sys::map_delete(map.fd(), map.elem_sizes(), key)
        .map_err(|e| syscall_err(map, "deleting", Some(key), e))
}

/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (no key: a pop).
fn take(map: &Map, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
    let mut value = vec![0u8; map.value_len()];
    let found = sys::map_lookup_and_delete(map.fd(), map.elem_sizes(), key, &mut value)
        .map_err(|e| syscall_err(map, "taking", key, e))?;
    Ok(found.then_some(value))
}

/// Bytes between per-CPU values: the value size rounded up to 8.
fn percpu_stride<V: Pod>() -> usize {
    V::SIZE.next_multiple_of(8)
}

/// One value per possible CPU, from a per-CPU lookup's bytes.
fn decode_percpu<V: Pod>(bytes: &[u8]) -> Vec<V> {
    bytes
        .chunks_exact(percpu_stride::<V>())
        .map(V::read)
        .collect()
}

/// A per-CPU value's bytes: `values` must have one value per possible CPU.
fn encode_percpu<V: Pod>(map: &Map, values: &[V]) -> Result<Vec<u8>, MapError> {
    let stride = percpu_stride::<V>();
    let cpus = map.value_len() / stride;
    if values.len() != cpus {
        return Err(MapError::CpuCount {
            map: map.name().to_owned(),
            given: values.len(),
            cpus,
        });
    }
    let mut out = vec![0u8; map.value_len()];
    for (v, slot) in values.iter().zip(out.chunks_exact_mut(stride)) {
        v.write(slot);
    }
    Ok(out)
}

/// The keys of a map, raw, in the kernel's order (`BPF_MAP_GET_NEXT_KEY`).
/// Never more than `max_entries`: a hash changing under the walk can
/// restart it.
struct RawKeys<'a> {
    map: &'a Map,
    prev: Option<Vec<u8>>,
    left: u32,
}

impl<'a> RawKeys<'a> {
    fn new(map: &'a Map) -> RawKeys<'a> {
        RawKeys {
            map,
            prev: None,
            left: map.max_entries(),
        }
    }
}

impl Iterator for RawKeys<'_> {
    type Item = Result<Vec<u8>, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let sizes = self.map.elem_sizes();
        let mut next = vec![0u8; sizes.key];
        match sys::map_next_key(self.map.fd(), sizes, self.prev.as_deref(), &mut next) {
            Ok(true) => {
                self.left -= 1;
                self.prev = Some(next.clone());
                Some(Ok(next))
            }
            Ok(false) => {
                self.left = 0;
                None
            }
            Err(e) => {
                self.left = 0;
                Some(Err(syscall_err(self.map, "walking", None, e)))
            }
        }
    }
}

/// The constructors every typed map has: `new` (from an owned or borrowed
/// [`Map`], checked), `map`, `into_inner`, `from_pin`, `from_id` and
/// `TryFrom<Map>` / `TryFrom<&Map>`.
macro_rules! typed_map {
    ($name:ident $(< $($g:ident),* >)?) => {
        impl<$($($g: Pod,)*)? M: std::borrow::Borrow<Map>> $name<$($($g,)*)? M> {
            /// Wraps `map` (owned, or `&Map`), after checking its type and
            /// sizes against the Rust types.
            pub fn new(map: M) -> Result<Self, MapError> {
                Self::check(map.borrow())?;
                Ok($name { map, _types: std::marker::PhantomData })
            }

            /// The map underneath.
            pub fn map(&self) -> &Map {
                self.map.borrow()
            }

            /// The map given to [`new`](Self::new), back.
            pub fn into_inner(self) -> M {
                self.map
            }
        }

        impl<$($($g: Pod,)*)?> $name<$($($g,)*)? Map> {
            /// The map pinned at `path`, checked as [`new`](Self::new) checks it.
            pub fn from_pin(path: impl AsRef<std::path::Path>) -> Result<Self, MapError> {
                Self::new(Map::from_pin(path)?)
            }

            /// The map with this kernel id, checked as [`new`](Self::new) checks it.
            pub fn from_id(id: u32) -> Result<Self, MapError> {
                Self::new(Map::from_id(id)?)
            }
        }

        impl<$($($g: Pod,)*)?> TryFrom<Map> for $name<$($($g,)*)? Map> {
            type Error = MapError;
            fn try_from(map: Map) -> Result<Self, MapError> {
                Self::new(map)
            }
        }

        impl<'a, $($($g: Pod,)*)?> TryFrom<&'a Map> for $name<$($($g,)*)? &'a Map> {
            type Error = MapError;
            fn try_from(map: &'a Map) -> Result<Self, MapError> {
                Self::new(map)
            }
        }

        impl<$($($g,)*)? M: std::borrow::Borrow<Map>> std::fmt::Debug for $name<$($($g,)*)? M> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let map: &Map = self.map.borrow();
                f.debug_struct(stringify!($name))
                    .field("name", &map.name())
                    .field("id", &map.id())
                    .finish()
            }
        }
    };
}
use typed_map;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percpu_values_are_8_aligned() {
        assert_eq!(percpu_stride::<u32>(), 8);
        assert_eq!(percpu_stride::<[u8; 12]>(), 16);
        let mut bytes = vec![0u8; 16];
        bytes[0] = 1;
        bytes[8] = 2;
        assert_eq!(decode_percpu::<u32>(&bytes), vec![1, 2]);
    }

    #[test]
    fn errors_name_the_map_and_both_sizes() {
        let e = MapError::WrongSize {
            map: "flows".into(),
            what: "key",
            rust_type: "u64",
            expected: 8,
            actual: 4,
        };
        assert_eq!(
            e.to_string(),
            "map flows: its key is 4 bytes, but u64 is 8 bytes"
        );
        let e = MapError::WrongType {
            map: "flows".into(),
            expected: "an array",
            actual: MapType::HASH,
        };
        assert_eq!(e.to_string(), "map flows: its type is hash, not an array");
    }
}
