//! Hints that errors add to an errno: a leaf module (it imports nothing of
//! rawbpf), so that every layer's errors can use it without a circle.

/// `hint` when `e` is `EPERM` or `EACCES`, which usually mean missing
/// privileges; nothing otherwise.
pub(crate) fn if_denied(e: &std::io::Error, hint: &'static str) -> &'static str {
    denied(e.raw_os_error(), hint)
}

/// `hint` when `errno` is `EPERM` or `EACCES`.
pub(crate) fn denied(errno: Option<i32>, hint: &'static str) -> &'static str {
    match errno {
        Some(libc::EPERM) | Some(libc::EACCES) => hint,
        _ => "",
    }
}

/// What bpf(2) needs.
pub(crate) const NEEDS_BPF: &str =
    " (bpf(2) needs root, or CAP_BPF plus CAP_NET_ADMIN for networking programs)";
/// What changing qdiscs, filters and links needs.
pub(crate) const NEEDS_NET_ADMIN: &str = " (needs root or CAP_NET_ADMIN)";
/// What entering or making a network namespace needs.
pub(crate) const NEEDS_SYS_ADMIN: &str = " (needs root, or CAP_SYS_ADMIN)";
