//! [`Pod`]: how a Rust value becomes the bytes of a map key or value and
//! back, field by field, with no `unsafe` and no byte casts.
//!
//! Numbers are in the host's byte order (the kernel's and the BPF
//! program's). A struct's layout is C's, as the BPF target lays it out:
//! each field at the next multiple of its alignment, the size rounded up to
//! the largest alignment; a primitive's alignment is its size (`u64` is
//! 8-aligned on BPF even where the host aligns it to 4). [`pod_struct!`]
//! (crate::pod_struct) writes the impl for a struct from its fields in
//! order; padding is written as zeros and ignored when read.

/// A plain-data type: a fixed number of bytes, any bit pattern of which
/// [`read`](Pod::read) accepts.
///
/// Implement it for a `#[repr(C)]` struct with [`pod_struct!`]
/// (crate::pod_struct), or by hand (a packed struct, an endianness of
/// your own):
///
/// ```
/// use rawbpf::maps::Pod;
///
/// /// `struct flow { __u32 saddr; __u16 port; __u8 pad[2]; }` in the BPF program.
/// #[derive(Debug, PartialEq)]
/// struct Flow { saddr: u32, port: u16 }
///
/// impl Pod for Flow {
///     const SIZE: usize = 8;
///     const ALIGN: usize = 4;
///     fn write(&self, out: &mut [u8]) {
///         self.saddr.write(&mut out[0..4]);
///         self.port.write(&mut out[4..6]);
///         out[6..8].fill(0); // padding: the kernel compares hash keys byte by byte
///     }
///     fn read(bytes: &[u8]) -> Flow {
///         Flow { saddr: u32::read(&bytes[0..4]), port: u16::read(&bytes[4..6]) }
///     }
/// }
///
/// let mut buf = [0xffu8; 8];
/// Flow { saddr: 1, port: 2 }.write(&mut buf);
/// assert_eq!(Flow::read(&buf), Flow { saddr: 1, port: 2 });
/// assert_eq!(&buf[6..], &[0, 0]);
/// ```
pub trait Pod: Sized {
    /// Bytes it takes in a map (C's `sizeof`, trailing padding included).
    const SIZE: usize;
    /// Its alignment in a C struct (C's `_Alignof` on the BPF target).
    const ALIGN: usize;
    /// Writes exactly `SIZE` bytes at the start of `out` (padding as
    /// zeros: hash maps compare keys byte by byte). Panics if `out` is
    /// shorter than `SIZE`.
    fn write(&self, out: &mut [u8]);
    /// Reads a value from the first `SIZE` bytes of `bytes`. Panics if
    /// `bytes` is shorter than `SIZE`.
    fn read(bytes: &[u8]) -> Self;
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Pod for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const ALIGN: usize = std::mem::size_of::<$t>();
            fn write(&self, out: &mut [u8]) {
                out[..Self::SIZE].copy_from_slice(&self.to_ne_bytes());
            }
            fn read(bytes: &[u8]) -> $t {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(&bytes[..Self::SIZE]);
                <$t>::from_ne_bytes(b)
            }
        }
    )*};
}

numbers!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

/// A C `bool` (`_Bool`): one byte, written 0 or 1; any non-zero byte reads
/// as `true`.
impl Pod for bool {
    const SIZE: usize = 1;
    const ALIGN: usize = 1;
    fn write(&self, out: &mut [u8]) {
        out[0] = u8::from(*self);
    }
    fn read(bytes: &[u8]) -> bool {
        bytes[0] != 0
    }
}

/// A C array: `N` elements, each `T::SIZE` bytes after the last.
impl<T: Pod, const N: usize> Pod for [T; N] {
    const SIZE: usize = T::SIZE * N;
    const ALIGN: usize = T::ALIGN;
    fn write(&self, out: &mut [u8]) {
        for (v, chunk) in self.iter().zip(out[..Self::SIZE].chunks_exact_mut(T::SIZE)) {
            v.write(chunk);
        }
    }
    fn read(bytes: &[u8]) -> [T; N] {
        std::array::from_fn(|i| T::read(&bytes[i * T::SIZE..(i + 1) * T::SIZE]))
    }
}

/// The C layout of a struct with fields of these (size, alignment), in
/// order: each field's offset, the struct's size and its alignment. Used by
/// [`pod_struct!`](crate::pod_struct), at compile time.
pub const fn c_layout<const N: usize>(fields: [(usize, usize); N]) -> ([usize; N], usize, usize) {
    let mut offsets = [0usize; N];
    let mut at: usize = 0;
    let mut align: usize = 1;
    let mut i = 0;
    while i < N {
        let (size, a) = fields[i];
        at = at.next_multiple_of(a);
        offsets[i] = at;
        at += size;
        if a > align {
            align = a;
        }
        i += 1;
    }
    (offsets, at.next_multiple_of(align), align)
}

/// Implements [`Pod`](crate::maps::Pod) for a struct from its fields in
/// declaration order, laid out as C lays out the same struct (the BPF
/// program's): each field aligned, the size rounded up to the largest
/// alignment. Padding is written as zeros. Every field's type must be
/// `Pod`; the Rust struct itself need not be `#[repr(C)]`.
///
/// ```
/// use rawbpf::maps::Pod;
///
/// /// `struct config { __u32 limit; __u16 port; __u64 bytes; bool on; }`: 24 bytes.
/// #[derive(Debug, PartialEq)]
/// struct Config { limit: u32, port: u16, bytes: u64, on: bool }
/// rawbpf::pod_struct!(Config { limit: u32, port: u16, bytes: u64, on: bool });
///
/// assert_eq!(Config::SIZE, 24);
/// let c = Config { limit: 7, port: 80, bytes: 1 << 40, on: true };
/// let mut buf = [0u8; 24];
/// c.write(&mut buf);
/// assert_eq!(&buf[8..16], &(1u64 << 40).to_ne_bytes()); // after 2 bytes of padding
/// assert_eq!(Config::read(&buf), c);
/// ```
#[macro_export]
macro_rules! pod_struct {
    ($ty:ident { $($field:ident : $fty:ty),+ $(,)? }) => {
        impl $crate::maps::Pod for $ty {
            const SIZE: usize =
                $crate::maps::c_layout([$((<$fty as $crate::maps::Pod>::SIZE, <$fty as $crate::maps::Pod>::ALIGN)),+]).1;
            const ALIGN: usize =
                $crate::maps::c_layout([$((<$fty as $crate::maps::Pod>::SIZE, <$fty as $crate::maps::Pod>::ALIGN)),+]).2;
            fn write(&self, out: &mut [u8]) {
                let (offsets, _, _) = const {
                    $crate::maps::c_layout([$((<$fty as $crate::maps::Pod>::SIZE, <$fty as $crate::maps::Pod>::ALIGN)),+])
                };
                out[..<Self as $crate::maps::Pod>::SIZE].fill(0);
                let mut offsets = offsets.iter();
                $(
                    let at = *offsets.next().expect("one offset per field");
                    <$fty as $crate::maps::Pod>::write(&self.$field, &mut out[at..]);
                )+
            }
            fn read(bytes: &[u8]) -> Self {
                let (offsets, _, _) = const {
                    $crate::maps::c_layout([$((<$fty as $crate::maps::Pod>::SIZE, <$fty as $crate::maps::Pod>::ALIGN)),+])
                };
                let mut offsets = offsets.iter();
                $ty {
                    $($field: {
                        let at = *offsets.next().expect("one offset per field");
                        <$fty as $crate::maps::Pod>::read(&bytes[at..])
                    },)+
                }
            }
        }
    };
}

/// Encodes `v` into a fresh buffer of `T::SIZE` bytes.
pub(crate) fn to_bytes<T: Pod>(v: &T) -> Vec<u8> {
    let mut out = vec![0u8; T::SIZE];
    v.write(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Pod + PartialEq + std::fmt::Debug>(v: T) -> Vec<u8> {
        let bytes = to_bytes(&v);
        assert_eq!(bytes.len(), T::SIZE);
        assert_eq!(T::read(&bytes), v);
        bytes
    }

    #[test]
    fn numbers_in_host_order() {
        assert_eq!(round_trip(0x0102_0304u32), 0x0102_0304u32.to_ne_bytes());
        assert_eq!(round_trip(-2i16), (-2i16).to_ne_bytes());
        assert_eq!(round_trip(u64::MAX), [0xff; 8]);
        assert_eq!(round_trip(1.5f64), 1.5f64.to_ne_bytes());
        round_trip(-0.25f32);
        round_trip(i128::MIN);
        assert_eq!(round_trip(true), [1]);
        assert!(bool::read(&[7]));
        assert_eq!((u8::SIZE, u16::ALIGN, u64::ALIGN), (1, 2, 8));
    }

    #[test]
    fn arrays_are_elements_end_to_end() {
        let mut expected = Vec::new();
        for v in [1u16, 2, 3] {
            expected.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(round_trip([1u16, 2, 3]), expected);
        assert_eq!(<[[u8; 3]; 2]>::SIZE, 6);
        assert_eq!(<[u32; 4]>::ALIGN, 4);
        round_trip([[1u8, 2, 3], [4, 5, 6]]);
        assert_eq!(round_trip(*b"eth0\0\0"), b"eth0\0\0");
    }

    #[derive(Debug, PartialEq)]
    #[repr(C)]
    struct Mixed {
        a: u8,
        b: u32,
        c: u16,
        d: u64,
        e: [u8; 3],
    }
    crate::pod_struct!(Mixed {
        a: u8,
        b: u32,
        c: u16,
        d: u64,
        e: [u8; 3],
    });

    #[derive(Debug, PartialEq)]
    struct Nested {
        m: Mixed,
        tail: u8,
    }
    crate::pod_struct!(Nested { m: Mixed, tail: u8 });

    #[test]
    fn structs_laid_out_as_c_does() {
        // The Rust compiler's own #[repr(C)] layout is the reference (u64
        // is 8-aligned on the hosts rawbpf runs on).
        assert_eq!(Mixed::SIZE, std::mem::size_of::<Mixed>());
        assert_eq!(Mixed::ALIGN, std::mem::align_of::<Mixed>());
        let (offsets, _, _) = c_layout([(1, 1), (4, 4), (2, 2), (8, 8), (3, 1)]);
        assert_eq!(
            offsets,
            [
                std::mem::offset_of!(Mixed, a),
                std::mem::offset_of!(Mixed, b),
                std::mem::offset_of!(Mixed, c),
                std::mem::offset_of!(Mixed, d),
                std::mem::offset_of!(Mixed, e),
            ]
        );
        let m = Mixed {
            a: 0xaa,
            b: 0x1122_3344,
            c: 0x5566,
            d: 0x0102_0304_0506_0708,
            e: [7, 8, 9],
        };
        let bytes = round_trip(Mixed { ..m });
        // Padding is zero, whatever was in the buffer before.
        let mut dirty = vec![0xeeu8; Mixed::SIZE];
        Mixed::read(&bytes).write(&mut dirty);
        assert_eq!(dirty, bytes);
        assert_eq!(&bytes[1..4], &[0, 0, 0]);
        assert_eq!(&bytes[4..8], &0x1122_3344u32.to_ne_bytes());
        assert_eq!(&bytes[10..16], &[0; 6]);
        assert_eq!(&bytes[24..27], &[7, 8, 9]);
        assert_eq!(&bytes[27..32], &[0; 5]);
        // A struct inside a struct: aligned to its largest member.
        assert_eq!((Nested::SIZE, Nested::ALIGN), (40, 8));
        let n = round_trip(Nested { m, tail: 3 });
        assert_eq!(n[32], 3);
    }

    #[test]
    #[should_panic]
    fn short_buffer_panics() {
        let _ = u64::read(&[0u8; 4]);
    }
}
