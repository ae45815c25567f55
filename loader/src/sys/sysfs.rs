//! The read-only mapping of a sysfs file the kernel exports (its BTF).

use std::ffi::c_void;
use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

/// A read-only, private mapping of a sysfs file (the kernel's BTF: from
/// 6.16 `/sys/kernel/btf/vmlinux` can be mapped, which spares copying its
/// 5+ MB through thousands of page-sized reads). Unmapped on drop.
pub struct SysfsMap {
    ptr: NonNull<c_void>,
    len: usize,
}

impl SysfsMap {
    /// Maps the first `len` bytes of `file`, if it is on sysfs and the
    /// kernel lets it be mapped (`Ok(None)` otherwise: read it instead).
    /// Only sysfs is mapped: its files that allow mapping (BTF) are the
    /// kernel's own memory and never change or shrink under the mapping,
    /// which is what lets it be borrowed as a plain `&[u8]`.
    pub fn new(file: &std::fs::File, len: usize) -> io::Result<Option<SysfsMap>> {
        use nix::sys::mman::{mmap, MapFlags, ProtFlags};
        use nix::sys::statfs::{fstatfs, SYSFS_MAGIC};
        if fstatfs(file)?.filesystem_type() != SYSFS_MAGIC {
            return Ok(None);
        }
        let Some(length) = NonZeroUsize::new(len) else {
            return Ok(None);
        };
        // SAFETY: a new private read-only mapping chosen by the kernel (no
        // address hint); it aliases no Rust memory. The fd stays open for the call.
        let mapped = unsafe {
            mmap(
                None,
                length,
                ProtFlags::PROT_READ,
                MapFlags::MAP_PRIVATE,
                file,
                0,
            )
        };
        Ok(mapped.ok().map(|ptr| SysfsMap { ptr, len }))
    }
}

impl std::ops::Deref for SysfsMap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable bytes until
        // drop, of sysfs memory that never changes (see `SysfsMap::new`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for SysfsMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, once; no borrow
        // of it outlives `self`.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr, self.len) };
    }
}
