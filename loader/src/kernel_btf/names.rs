//! The wanted names while streaming a BTF's string section, and the string
//! offsets found to carry them.

use crate::obj::core::essential_name;
use std::collections::BTreeSet;

/// The names to look for while streaming the string section (100k+
/// strings): a string is compared with the wanted names only if its first
/// two bytes are those of one (a 64 Kib table), so most cost a look-up.
pub(super) struct Wanted<'a> {
    pub(super) names: BTreeSet<&'a str>,
    /// The same, to walk.
    pub(super) list: Vec<&'a str>,
    /// Bit `b0 | b1 << 8` is set for the first two bytes of each name
    /// (a one-byte name: followed by NUL or by '_' of a flavor).
    pub(super) pairs: Vec<u64>,
}

impl<'a> Wanted<'a> {
    pub(super) fn new(names: impl IntoIterator<Item = &'a str>) -> Wanted<'a> {
        let names: BTreeSet<&str> = names.into_iter().filter(|n| !n.is_empty()).collect();
        let mut pairs = vec![0u64; 1024];
        let mut set = |pair: usize| pairs[pair / 64] |= 1 << (pair % 64);
        for n in &names {
            let b = n.as_bytes();
            match b.get(1) {
                Some(&second) => set(usize::from(b[0]) | usize::from(second) << 8),
                None => {
                    set(usize::from(b[0]));
                    set(usize::from(b[0]) | usize::from(b'_') << 8);
                }
            }
        }
        let list = names.iter().copied().collect();
        Wanted { names, list, pairs }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether the string starting `rest` may be a wanted name.
    #[inline]
    pub(super) fn may_start(&self, rest: &[u8]) -> bool {
        let pair = match rest.get(..2) {
            Some(b) => usize::from(b[0]) | usize::from(b[1]) << 8,
            None => return false,
        };
        self.pairs[pair / 64] & (1 << (pair % 64)) != 0
    }

    /// Calls `hit(offset, name)` for each string of `region` (whole
    /// NUL-terminated strings, the first at `from`) that is a wanted name
    /// or one with a `___flavor`. Strings start at `from` and after each
    /// NUL, found eight bytes at a time.
    pub(super) fn find(&self, region: &[u8], from: usize, mut hit: impl FnMut(usize, &'a str)) {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let mut at = |p: usize| {
            let rest = region.get(p..).unwrap_or_default();
            if self.may_start(rest) {
                if let Some(name) = self.name_at(rest) {
                    hit(p, name)
                }
            }
        };
        at(from);
        let words = region.get(from..).unwrap_or_default().chunks_exact(8);
        let tail = from + words.len() * 8;
        for (k, word) in words.enumerate() {
            let w = u64::from_le_bytes([
                word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
            ]);
            // The high bit of each zero byte (exact: no borrow between bytes).
            let mut zeros = !(((w & LOW7).wrapping_add(LOW7)) | w | LOW7);
            while zeros != 0 {
                at(from + k * 8 + zeros.trailing_zeros() as usize / 8 + 1);
                zeros &= zeros - 1;
            }
        }
        for (j, &b) in region.iter().enumerate().skip(tail) {
            if b == 0 {
                at(j + 1);
            }
        }
    }

    /// The wanted name the string at the start of `rest` stands for: the
    /// name itself, or it with a `___flavor`.
    pub(super) fn name_at(&self, rest: &[u8]) -> Option<&'a str> {
        let pair = rest.get(..2)?;
        for &name in &self.list {
            let n = name.as_bytes();
            if (n.len() >= 2 && n[..2] != *pair) || rest.len() <= n.len() || !rest.starts_with(n) {
                continue;
            }
            match rest[n.len()] {
                0 => return Some(name),
                b'_' if rest[n.len()..].starts_with(b"___") => {
                    let end = memchr::memchr(0, rest)?;
                    let s = std::str::from_utf8(&rest[..end]).ok()?;
                    if essential_name(s) == name {
                        return Some(name);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// Which wanted name a name offset (into one string section) stands for.
pub(super) enum Names<'s, 'w> {
    /// The section is in memory: the string there is looked at.
    Direct {
        section: &'s [u8],
        wanted: &'s Wanted<'w>,
    },
    /// The offsets a pass over the section found, sorted, behind a quick filter.
    Found {
        list: Vec<(u32, &'w str)>,
        filter: OffsetFilter,
    },
}

impl<'s, 'w> Names<'s, 'w> {
    pub(super) fn found(list: Vec<(u32, &'w str)>) -> Names<'s, 'w> {
        let filter = OffsetFilter::new(list.iter().map(|(off, _)| *off));
        Names::Found { list, filter }
    }

    #[inline]
    pub(super) fn get(&self, off: u32) -> Option<&'w str> {
        match self {
            Names::Direct { section, wanted } => {
                let rest = section.get(off as usize..)?;
                if !wanted.may_start(rest) {
                    return None;
                }
                wanted.name_at(rest)
            }
            Names::Found { list, filter } => {
                if !filter.may_contain(off) {
                    return None;
                }
                let i = list.binary_search_by_key(&off, |(o, _)| *o).ok()?;
                Some(list[i].1)
            }
        }
    }

    /// The same, for the names of `keep` only.
    pub(super) fn only<'k>(&'k self, keep: &'k Wanted<'w>) -> Names<'k, 'w> {
        match self {
            Names::Direct { section, .. } => Names::Direct {
                section,
                wanted: keep,
            },
            Names::Found { list, .. } => Names::found(
                list.iter()
                    .filter(|(_, n)| keep.names.contains(n))
                    .copied()
                    .collect(),
            ),
        }
    }
}

/// A quick "maybe" for a handful of string offsets (a 1024-bit Bloom
/// filter), in front of the binary search, for each of 100k+ types.
pub(super) struct OffsetFilter([u64; 16]);

impl OffsetFilter {
    pub(super) fn new(offsets: impl IntoIterator<Item = u32>) -> OffsetFilter {
        let mut bits = [0u64; 16];
        for off in offsets {
            let h = Self::hash(off);
            bits[h / 64] |= 1 << (h % 64);
        }
        OffsetFilter(bits)
    }

    pub(super) fn hash(off: u32) -> usize {
        (off.wrapping_mul(0x9e37_79b1) >> 22) as usize
    }

    pub(super) fn may_contain(&self, off: u32) -> bool {
        let h = Self::hash(off);
        self.0[h / 64] & (1 << (h % 64)) != 0
    }
}
