//! Reading a whole map fast: `BPF_MAP_LOOKUP_BATCH` in chunks where the
//! kernel has it for the map's type (hash and array maps, 5.6+), one
//! `BPF_MAP_GET_NEXT_KEY` and lookup per element where it does not.

use super::error::LoadError;
use super::map::Map;
use crate::sys;
use std::io;

/// Elements per `BPF_MAP_LOOKUP_BATCH` call unless told otherwise.
pub const BATCH_CHUNK: u32 = 8192;

impl Map {
    /// Calls `f` with each (key, value) in the kernel's order, `chunk`
    /// elements per batch lookup (0: [`BATCH_CHUNK`]), until `f` returns
    /// `false` or the map ends. Where the kernel has no batch lookup for
    /// the map (EINVAL, ENOTSUPP), it walks the keys one by one instead.
    /// Values are as [`Map::lookup`] returns them (per CPU for per-CPU
    /// maps; ids for prog arrays and maps of maps). A hash that changes
    /// meanwhile may be seen part before, part after the change.
    pub fn for_each_entry(
        &self,
        chunk: u32,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), LoadError> {
        let chunk = if chunk == 0 { BATCH_CHUNK } else { chunk };
        let mut called = false;
        let walked = self.batch_walk(chunk, &mut |k, v| {
            called = true;
            f(k, v)
        });
        match walked {
            // Fall back only before anything was handed out: never twice.
            Err(e) if !called && no_batch(&e) => self.key_walk(&mut f),
            other => other.map_err(|source| LoadError::MapRead {
                map: self.name().to_owned(),
                source,
            }),
        }
    }

    /// Every (key, value), read with batch lookups where the kernel has
    /// them (see [`Map::for_each_entry`]).
    pub fn entries_batch(&self) -> Result<Vec<super::Entry>, LoadError> {
        let mut out = Vec::new();
        self.for_each_entry(0, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        })?;
        Ok(out)
    }

    /// Batch lookups.
    fn batch_walk(&self, chunk: u32, f: &mut impl FnMut(&[u8], &[u8]) -> bool) -> io::Result<()> {
        let sizes = self.elem_sizes();
        let mut count = chunk.min(self.max_entries().max(1));
        let token = sizes.key.max(8);
        let (mut tok_in, mut tok_out) = (vec![0u8; token], vec![0u8; token]);
        let mut keys = vec![0u8; sizes.key * count as usize];
        let mut values = vec![0u8; sizes.value * count as usize];
        let mut started = false;
        loop {
            let got = sys::map_lookup_batch(
                self.fd(),
                sizes,
                count,
                sys::Batch {
                    in_batch: started.then_some(&tok_in[..]),
                    out_batch: &mut tok_out,
                    keys: &mut keys,
                    values: &mut values,
                },
            );
            let (n, done) = match got {
                // A hash bucket with more elements than `count`: grow.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && count < (1 << 20) => {
                    count *= 2;
                    keys.resize(sizes.key * count as usize, 0);
                    values.resize(sizes.value * count as usize, 0);
                    continue;
                }
                other => other?,
            };
            let pairs = keys
                .chunks(sizes.key.max(1))
                .zip(values.chunks(sizes.value.max(1)))
                .take(n as usize);
            for (k, v) in pairs {
                if !f(k, v) {
                    return Ok(());
                }
            }
            if done {
                return Ok(());
            }
            std::mem::swap(&mut tok_in, &mut tok_out);
            started = true;
        }
    }

    /// One `BPF_MAP_GET_NEXT_KEY` and lookup per element, bounded by
    /// `max_entries` steps (a hash can change under us).
    fn key_walk(&self, f: &mut impl FnMut(&[u8], &[u8]) -> bool) -> Result<(), LoadError> {
        let sizes = self.elem_sizes();
        let mut key: Option<Vec<u8>> = None;
        let mut next = vec![0u8; sizes.key];
        for _ in 0..self.max_entries().max(1) {
            let more = sys::map_next_key(self.fd(), sizes, key.as_deref(), &mut next).map_err(
                |source| LoadError::MapRead {
                    map: self.name().to_owned(),
                    source,
                },
            )?;
            if !more {
                break;
            }
            if let Some(value) = self.lookup(&next)? {
                if !f(&next, &value) {
                    break;
                }
            }
            key = Some(next.clone());
        }
        Ok(())
    }
}

/// Whether a batch lookup's error says the kernel has none for this map.
fn no_batch(e: &io::Error) -> bool {
    sys::is_enotsupp(e)
        || matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS)
        )
}
