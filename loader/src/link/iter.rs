//! BPF iterators (`iter/NAME`): a link with attach type `BPF_TRACE_ITER`
//! (5.8+), from which `BPF_ITER_CREATE` opens readable fds; each read runs
//! the program, and what it writes (`bpf_seq_printf`, `bpf_seq_write`) is
//! the text read.

use super::tracing::Ctx;
use super::{Attachment, Link, LinkError};
use crate::sys;
use crate::uapi::AttachType;
use std::io::Read;

/// `iter/NAME`: the iterator link (the iterator target was given at load).
pub(super) fn attach(ctx: &Ctx<'_>) -> Result<Link, LinkError> {
    let target = format!("iter {}", ctx.section_target().unwrap_or_default());
    let fd = sys::link_create_ifindex(ctx.program.fd(), 0, AttachType::TRACE_ITER.0, 0)
        .map_err(|s| ctx.attach_err(&target, "BPF_LINK_CREATE (iter)", s))?;
    Ok(Link::new(ctx.name(), target, Attachment::Bpf(fd)))
}

impl Link {
    /// Runs an iterator link's program over everything it iterates and
    /// returns the text it wrote (a new `BPF_ITER_CREATE` fd, read to its
    /// end). Errors for links that are not iterators.
    pub fn read_iter(&self) -> Result<String, LinkError> {
        let Attachment::Bpf(fd) = &self.attachment else {
            return Err(self.failed(
                "opening an iterator",
                std::io::Error::from_raw_os_error(libc::EINVAL),
            ));
        };
        let iter = sys::iter_create(std::os::fd::AsFd::as_fd(fd))
            .map_err(|s| self.failed("BPF_ITER_CREATE", s))?;
        let mut bytes = Vec::new();
        std::fs::File::from(iter)
            .read_to_end(&mut bytes)
            .map_err(|s| self.failed("reading the iterator", s))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}
