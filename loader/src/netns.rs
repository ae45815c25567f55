//! Network namespaces by name (`/run/netns/NAME`, as `ip netns` keeps them).
//!
//! Work inside a namespace runs on the calling thread, which enters it with
//! `setns` and goes back to its own namespace when the work is done (also
//! when it panics); other threads of the caller never change namespace.
//! Sockets (netlink included) stay in the namespace they were created in,
//! whatever namespace the thread that uses them is in later. No thread is
//! spawned: that was a tenth of `rawbpf attach`'s time.

use crate::sys;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Where named namespaces live.
pub const NETNS_DIR: &str = "/run/netns";

/// A namespace problem, naming the namespace.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// No such namespace.
    #[error("network namespace {name} does not exist ({NETNS_DIR}/{name}: {source})")]
    NotFound {
        /// The name.
        name: String,
        /// Why opening it failed.
        source: io::Error,
    },
    /// Something else failed.
    #[error(
        "network namespace {name}: {action}: {source}{}",
        crate::errno::if_denied(source, crate::errno::NEEDS_SYS_ADMIN)
    )]
    Failed {
        /// The name.
        name: String,
        /// What was being done.
        action: &'static str,
        /// errno.
        source: io::Error,
    },
}

fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// The namespace's path as a C string, for mount(2).
fn c_path_of(name: &str, path: &Path) -> Result<CString, NetnsError> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| NetnsError::Failed {
        name: name.to_owned(),
        action: "naming it",
        source: io::Error::from_raw_os_error(libc::EINVAL),
    })
}

fn failed<'a>(name: &'a str, action: &'static str) -> impl FnOnce(io::Error) -> NetnsError + 'a {
    move |source| NetnsError::Failed {
        name: name.to_owned(),
        action,
        source,
    }
}

/// The calling thread's own namespace, entered again when dropped.
struct Return(File);

/// The calling thread's namespace, to return to once it has left it.
fn own_namespace(name: &str) -> Result<File, NetnsError> {
    File::open("/proc/thread-self/ns/net").map_err(failed(name, "opening the current namespace"))
}

impl Drop for Return {
    fn drop(&mut self) {
        if let Err(e) = sys::setns_net(self.0.as_fd()) {
            // The thread would go on in the wrong namespace: nothing it does
            // after this could be trusted.
            eprintln!("rawbpf: cannot return to the original network namespace: {e}");
            std::process::abort();
        }
    }
}

thread_local! {
    /// The namespace [`enter`] moved the thread to for good.
    static ENTERED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn entered(name: &str) -> bool {
    ENTERED.with(|e| e.borrow().as_deref() == Some(name))
}

fn open_named(name: &str) -> Result<File, NetnsError> {
    if name.is_empty() || name.contains('/') {
        return Err(NetnsError::NotFound {
            name: name.to_owned(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    File::open(path_of(name)).map_err(|source| NetnsError::NotFound {
        name: name.to_owned(),
        source,
    })
}

/// Moves the calling thread into the named namespace for the rest of its
/// life: [`run_in`] that namespace then runs its work right there, with no
/// switching in and out. For a program that works in one namespace (the
/// rawbpf CLI): switching back costs opening the thread's own namespace in
/// procfs each time.
pub fn enter(name: &str) -> Result<(), NetnsError> {
    if entered(name) {
        return Ok(());
    }
    let ns = open_named(name)?;
    sys::setns_net(ns.as_fd()).map_err(failed(name, "entering it"))?;
    ENTERED.with(|e| *e.borrow_mut() = Some(name.to_owned()));
    Ok(())
}

/// Runs `f` in the named namespace (or right here for `None`, or when the
/// thread [`enter`]ed it), on the calling thread, which returns to its own
/// namespace afterwards.
pub fn run_in<T>(netns: Option<&str>, f: impl FnOnce() -> T) -> Result<T, NetnsError> {
    let Some(name) = netns.filter(|n| !entered(n)) else {
        return Ok(f());
    };
    let ns = open_named(name)?;
    let own = own_namespace(name)?;
    sys::setns_net(ns.as_fd()).map_err(failed(name, "entering it"))?;
    // Only now is there somewhere to return from.
    let back = Return(own);
    let out = f();
    drop(back);
    Ok(out)
}

/// Creates a named namespace, as `ip netns add NAME` does.
pub fn create(name: &str) -> Result<(), NetnsError> {
    std::fs::create_dir_all(NETNS_DIR).map_err(failed(name, "creating /run/netns"))?;
    let path = path_of(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(failed(name, "creating its mount point"))?;
    let target = c_path_of(name, &path)?;
    let made = own_namespace(name).and_then(|own| {
        sys::unshare_net().map_err(failed(name, "creating it"))?;
        let back = Return(own);
        sys::bind_mount(c"/proc/thread-self/ns/net", &target)
            .map_err(failed(name, "creating it"))?;
        drop(back);
        Ok(())
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    made
}

/// Deletes a named namespace, as `ip netns delete NAME` does (the namespace
/// itself goes when nothing else holds it).
pub fn delete(name: &str) -> Result<(), NetnsError> {
    let path = path_of(name);
    let target = c_path_of(name, &path)?;
    sys::umount_detach(&target).map_err(failed(name, "unmounting it"))?;
    std::fs::remove_file(&path).map_err(failed(name, "removing its mount point"))
}

debug_is_display!(NetnsError);
