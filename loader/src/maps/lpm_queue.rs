//! [`LpmTrie`] (longest-prefix match) and the keyless [`Queue`] and
//! [`Stack`].

use super::pod::to_bytes;
use super::{
    check, delete, lookup, sized, take, typed_map, update, Map, MapError, Pod, RawKeys, BPF_ANY,
};
use crate::uapi::MapType;
use std::borrow::Borrow;
use std::marker::PhantomData;

/// An LPM trie key: the first `prefix_len` bits of `data` (the kernel's
/// `struct bpf_lpm_trie_key_u8`: a `u32` then the data bytes, with no
/// padding between). For IPv4, `data` is `[u8; 4]` in network order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key<K> {
    /// How many leading bits of `data` the key matches.
    pub prefix_len: u32,
    /// The bits, most significant first.
    pub data: K,
}

impl<K> Key<K> {
    /// The key for the first `prefix_len` bits of `data`.
    pub fn new(prefix_len: u32, data: K) -> Key<K> {
        Key { prefix_len, data }
    }
}

impl<K: Pod> Pod for Key<K> {
    const SIZE: usize = 4 + K::SIZE;
    const ALIGN: usize = 4;
    fn write(&self, out: &mut [u8]) {
        self.prefix_len.write(&mut out[..4]);
        self.data.write(&mut out[4..]);
    }
    fn read(bytes: &[u8]) -> Key<K> {
        Key {
            prefix_len: u32::read(bytes),
            data: K::read(&bytes[4..]),
        }
    }
}

/// An `lpm_trie` map: prefixes of `K` to values `V`. A lookup gives the
/// value of the longest stored prefix that matches.
pub struct LpmTrie<K, V, M = Map> {
    map: M,
    _types: PhantomData<fn() -> (K, V)>,
}

typed_map!(LpmTrie<K, V>);

impl<K: Pod, V: Pod, M: Borrow<Map>> LpmTrie<K, V, M> {
    fn check(map: &Map) -> Result<(), MapError> {
        check(
            map,
            &[MapType::LPM_TRIE],
            "an lpm_trie",
            sized::<Key<K>>(),
            sized::<V>(),
        )
    }

    /// The value of the longest stored prefix matching `key` (for an
    /// address, `key.prefix_len` is its full length).
    pub fn get(&self, key: &Key<K>) -> Result<Option<V>, MapError> {
        Ok(lookup(self.map(), Some(&to_bytes(key)))?.map(|v| V::read(&v)))
    }

    /// Stores `value` for exactly the prefix `key` (`BPF_ANY`).
    pub fn insert(&self, key: &Key<K>, value: &V) -> Result<(), MapError> {
        update(self.map(), Some(&to_bytes(key)), &to_bytes(value), BPF_ANY)
    }

    /// Removes exactly the prefix `key`; `false` when it was not stored.
    pub fn remove(&self, key: &Key<K>) -> Result<bool, MapError> {
        delete(self.map(), &to_bytes(key))
    }

    /// Every stored prefix, in the kernel's order.
    pub fn keys(&self) -> impl Iterator<Item = Result<Key<K>, MapError>> + '_ {
        RawKeys::new(self.map()).map(|k| k.map(|k| Key::read(&k)))
    }

    /// Every (prefix, value) stored.
    pub fn iter(&self) -> impl Iterator<Item = Result<(Key<K>, V), MapError>> + '_ {
        self.keys().filter_map(|k| {
            let k = match k {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            // The exact prefix is stored, so its longest match is itself.
            self.get(&k).map(|v| v.map(|v| (k, v))).transpose()
        })
    }
}

/// Push, pop and peek, the same for a queue and a stack: only the end
/// they pop from differs, which the kernel decides.
macro_rules! keyless {
    ($name:ident, $ty:expr, $expected:literal, $order:literal) => {
        impl<V: Pod, M: Borrow<Map>> $name<V, M> {
            fn check(map: &Map) -> Result<(), MapError> {
                check(map, &[$ty], $expected, Some(("no key", 0)), sized::<V>())
            }

            /// Adds `value`; fails with E2BIG when full.
            pub fn push(&self, value: &V) -> Result<(), MapError> {
                update(self.map(), None, &to_bytes(value), BPF_ANY)
            }

            /// Adds `value`; when full, drops the oldest element to make
            /// room (`BPF_EXIST`).
            pub fn force_push(&self, value: &V) -> Result<(), MapError> {
                update(self.map(), None, &to_bytes(value), super::BPF_EXIST)
            }

            #[doc = concat!("Removes and returns the ", $order, " element; `None` when empty.")]
            pub fn pop(&self) -> Result<Option<V>, MapError> {
                Ok(take(self.map(), None)?.map(|v| V::read(&v)))
            }

            #[doc = concat!("The ", $order, " element, left in place; `None` when empty.")]
            pub fn peek(&self) -> Result<Option<V>, MapError> {
                Ok(lookup(self.map(), None)?.map(|v| V::read(&v)))
            }
        }
    };
}

/// A `queue` map of `V`: first in, first out.
pub struct Queue<V, M = Map> {
    map: M,
    _types: PhantomData<fn() -> V>,
}

typed_map!(Queue<V>);
keyless!(Queue, MapType::QUEUE, "a queue", "oldest");

/// A `stack` map of `V`: last in, first out.
pub struct Stack<V, M = Map> {
    map: M,
    _types: PhantomData<fn() -> V>,
}

typed_map!(Stack<V>);
keyless!(Stack, MapType::STACK, "a stack", "newest");
