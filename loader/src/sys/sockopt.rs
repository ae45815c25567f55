//! `SO_ATTACH_BPF` and `SO_DETACH_BPF`: a socket filter program on a socket
//! (neither nix nor libc names these options).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `SO_ATTACH_BPF` (asm-generic/socket.h; every architecture but alpha,
/// mips, parisc and sparc).
const SO_ATTACH_BPF: libc::c_int = 50;
/// `SO_DETACH_BPF`, the same option as `SO_DETACH_FILTER`.
const SO_DETACH_BPF: libc::c_int = 27;

fn set_int(socket: BorrowedFd<'_>, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is an initialised c_int that lives across the call,
    // and the length given is its size; the kernel only reads it. `socket`
    // is a live fd (borrowed for the call).
    let ret = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `setsockopt(SOL_SOCKET, SO_ATTACH_BPF, prog)`: the program filters what
/// the socket receives, replacing any filter it had.
pub fn attach_socket_filter(socket: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    set_int(socket, SO_ATTACH_BPF, prog.as_raw_fd())
}

/// `setsockopt(SOL_SOCKET, SO_DETACH_BPF)`: removes the socket's filter
/// (`ENOENT` when it has none).
pub fn detach_socket_filter(socket: BorrowedFd<'_>) -> io::Result<()> {
    set_int(socket, SO_DETACH_BPF, 0)
}
