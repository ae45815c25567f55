//! Hash maps: [`HashMap`] (`hash`, `lru_hash`) and [`PerCpuHashMap`]
//! (`percpu_hash`, `lru_percpu_hash`).

use super::pod::to_bytes;
use super::{
    check, decode_percpu, delete, encode_percpu, lookup, sized, take, typed_map, update, Map,
    MapError, Pod, RawKeys, BPF_ANY,
};
use crate::uapi::MapType;
use std::borrow::Borrow;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;

/// A `hash` or `lru_hash` map with keys `K` and values `V`.
pub struct HashMap<K, V, M = Map> {
    map: M,
    _types: PhantomData<fn() -> (K, V)>,
}

typed_map!(HashMap<K, V>);

impl<K: Pod, V: Pod, M: Borrow<Map>> HashMap<K, V, M> {
    fn check(map: &Map) -> Result<(), MapError> {
        check(
            map,
            &[MapType::HASH, MapType::LRU_HASH],
            "a hash or lru_hash",
            sized::<K>(),
            sized::<V>(),
        )
    }

    /// The value of `key`, if it is there.
    pub fn get(&self, key: &K) -> Result<Option<V>, MapError> {
        Ok(lookup(self.map(), Some(&to_bytes(key)))?.map(|v| V::read(&v)))
    }

    /// Sets `key` to `value` (`BPF_ANY`).
    pub fn insert(&self, key: &K, value: &V) -> Result<(), MapError> {
        self.insert_with_flags(key, value, BPF_ANY)
    }

    /// Sets `key` to `value` with `flags` ([`BPF_NOEXIST`](super::BPF_NOEXIST),
    /// [`BPF_EXIST`](super::BPF_EXIST), [`BPF_F_LOCK`](super::BPF_F_LOCK)).
    pub fn insert_with_flags(&self, key: &K, value: &V, flags: u64) -> Result<(), MapError> {
        update(self.map(), Some(&to_bytes(key)), &to_bytes(value), flags)
    }

    /// Removes `key`; `false` when it was not there.
    pub fn remove(&self, key: &K) -> Result<bool, MapError> {
        delete(self.map(), &to_bytes(key))
    }

    /// Reads and removes `key` in one step (`BPF_MAP_LOOKUP_AND_DELETE_ELEM`,
    /// Linux 5.14 for hashes).
    pub fn take(&self, key: &K) -> Result<Option<V>, MapError> {
        Ok(take(self.map(), Some(&to_bytes(key)))?.map(|v| V::read(&v)))
    }

    /// Every key, in the kernel's order.
    pub fn keys(&self) -> impl Iterator<Item = Result<K, MapError>> + '_ {
        RawKeys::new(self.map()).map(|k| k.map(|k| K::read(&k)))
    }

    /// Every (key, value), in the kernel's order; a key removed while the
    /// walk runs is skipped.
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V), MapError>> + '_ {
        RawKeys::new(self.map()).filter_map(|k| {
            let k = match k {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            match lookup(self.map(), Some(&k)) {
                Ok(Some(v)) => Some(Ok((K::read(&k), V::read(&v)))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        })
    }
}

/// A `percpu_hash` or `lru_percpu_hash` map: each key has one `V` per
/// possible CPU.
pub struct PerCpuHashMap<K, V, M = Map> {
    map: M,
    _types: PhantomData<fn() -> (K, V)>,
}

typed_map!(PerCpuHashMap<K, V>);

impl<K: Pod, V: Pod, M: Borrow<Map>> PerCpuHashMap<K, V, M> {
    fn check(map: &Map) -> Result<(), MapError> {
        check(
            map,
            &[MapType::PERCPU_HASH, MapType::LRU_PERCPU_HASH],
            "a percpu_hash or lru_percpu_hash",
            sized::<K>(),
            sized::<V>(),
        )
    }

    /// The values of `key`, one per possible CPU (index = CPU number).
    pub fn get(&self, key: &K) -> Result<Option<Vec<V>>, MapError> {
        Ok(lookup(self.map(), Some(&to_bytes(key)))?.map(|v| decode_percpu(&v)))
    }

    /// Sets `key` to `values`, one per possible CPU (`BPF_ANY`).
    pub fn insert(&self, key: &K, values: &[V]) -> Result<(), MapError> {
        self.insert_with_flags(key, values, BPF_ANY)
    }

    /// Sets `key` to `values` with `flags`.
    pub fn insert_with_flags(&self, key: &K, values: &[V], flags: u64) -> Result<(), MapError> {
        let bytes = encode_percpu(self.map(), values)?;
        update(self.map(), Some(&to_bytes(key)), &bytes, flags)
    }

    /// Removes `key`; `false` when it was not there.
    pub fn remove(&self, key: &K) -> Result<bool, MapError> {
        delete(self.map(), &to_bytes(key))
    }

    /// Every key, in the kernel's order.
    pub fn keys(&self) -> impl Iterator<Item = Result<K, MapError>> + '_ {
        RawKeys::new(self.map()).map(|k| k.map(|k| K::read(&k)))
    }

    /// Every (key, per-CPU values), in the kernel's order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, Vec<V>), MapError>> + '_ {
        RawKeys::new(self.map()).filter_map(|k| {
            let k = match k {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            match lookup(self.map(), Some(&k)) {
                Ok(Some(v)) => Some(Ok((K::read(&k), decode_percpu(&v)))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        })
    }
}

/// A `hash_of_maps`: inner maps by key `K`.
pub struct HashOfMaps<K, M = Map> {
    map: M,
    _types: PhantomData<fn() -> K>,
}

typed_map!(HashOfMaps<K>);

impl<K: Pod, M: Borrow<Map>> HashOfMaps<K, M> {
    fn check(map: &Map) -> Result<(), MapError> {
        check(
            map,
            &[MapType::HASH_OF_MAPS],
            "a hash_of_maps",
            sized::<K>(),
            None,
        )
    }

    /// The id of the map at `key`, if one is there.
    pub fn get(&self, key: &K) -> Result<Option<u32>, MapError> {
        Ok(lookup(self.map(), Some(&to_bytes(key)))?.map(|v| u32::read(&v)))
    }

    /// Puts `inner` at `key` (the kernel refuses a map unlike the inner
    /// template).
    pub fn insert(&self, key: &K, inner: &Map) -> Result<(), MapError> {
        let value = (inner.fd().as_raw_fd() as u32).to_ne_bytes();
        update(self.map(), Some(&to_bytes(key)), &value, BPF_ANY)
    }

    /// Removes `key`; `false` when it was not there.
    pub fn remove(&self, key: &K) -> Result<bool, MapError> {
        delete(self.map(), &to_bytes(key))
    }

    /// Every (key, map id), in the kernel's order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, u32), MapError>> + '_ {
        RawKeys::new(self.map()).filter_map(|k| {
            let k = match k {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            match lookup(self.map(), Some(&k)) {
                Ok(Some(v)) => Some(Ok((K::read(&k), u32::read(&v)))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        })
    }
}
