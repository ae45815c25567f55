//! Network namespaces by name (`/run/netns/NAME`, as `ip netns` keeps them).
//!
//! Work inside a namespace runs on the calling thread, which enters it with
//! `setns` and goes back to its own namespace when the work is done (also
//! when it panics), or when the guard [`enter`] returns is dropped; other
//! threads of the caller never change namespace, and no function here
//! leaves the thread in another namespace after it returns.
//! Sockets (netlink included) stay in the namespace they were created in,
//! whatever namespace the thread that uses them is in later. No thread is
//! spawned: that was a tenth of `rawbpf attach`'s time.

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
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

fn failed<'a>(name: &'a str, action: &'static str) -> impl FnOnce(io::Error) -> NetnsError + 'a {
    move |source| NetnsError::Failed {
        name: name.to_owned(),
        action,
        source,
    }
}

/// Moves the calling thread into the network namespace `ns` refers to.
fn setns_net(ns: impl AsFd) -> io::Result<()> {
    setns(ns, CloneFlags::CLONE_NEWNET)?;
    Ok(())
}

/// Holds the calling thread's own namespace and moves the thread back into
/// it when dropped: the guard of every switch this module makes.
struct BackToOwnNamespace(File);

/// The calling thread's namespace, to return to once it has left it.
fn own_namespace(name: &str) -> Result<File, NetnsError> {
    File::open("/proc/thread-self/ns/net").map_err(failed(name, "opening the current namespace"))
}

impl Drop for BackToOwnNamespace {
    fn drop(&mut self) {
        if let Err(e) = setns_net(&self.0) {
            // The thread would go on in the wrong namespace: nothing it does
            // after this could be trusted.
            eprintln!("rawbpf: cannot return to the original network namespace: {e}");
            std::process::abort();
        }
    }
}

thread_local! {
    /// The namespace the thread is in through an [`Entered`] guard.
    static ENTERED: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn entered(name: &str) -> bool {
    ENTERED.with(|e| e.borrow().as_deref() == Some(name))
}

fn open_named(name: &str) -> Result<File, NetnsError> {
    if name.is_empty() || name.contains('/') {
        return Err(NetnsError::NotFound {
            name: name.to_owned(),
            source: io::Error::from(Errno::EINVAL),
        });
    }
    File::open(path_of(name)).map_err(|source| NetnsError::NotFound {
        name: name.to_owned(),
        source,
    })
}

/// The calling thread's stay in a namespace [`enter`] moved it to. Dropping
/// it moves the thread back where it was. It cannot go to another thread:
/// the thread that entered is the one that must leave. Guards nest: drop
/// them in the reverse order of entering, as scopes do.
#[must_use = "dropping the guard moves the thread back at once"]
pub struct Entered {
    /// Held for its `Drop`, which moves the thread back; `None` when the
    /// thread was in the namespace already.
    _back: Option<BackToOwnNamespace>,
    /// What [`run_in`] took for the thread's namespace before.
    previous: Option<String>,
    not_send: PhantomData<*const ()>,
}

impl Entered {
    /// Leaves the namespace now (what dropping the guard does).
    pub fn leave(self) {}
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        ENTERED.with(|e| *e.borrow_mut() = previous);
        // `_back` drops after this: the thread returns.
    }
}

/// Moves the calling thread into the named namespace until the returned
/// guard is dropped: [`run_in`] that namespace meanwhile runs its work right
/// there, with no switching in and out. For work that stays in one
/// namespace (a rawbpf CLI command) instead of entering and leaving it at
/// every step.
///
/// ```no_run
/// let inside = rawbpf::netns::enter("blue")?;
/// // Sockets opened here are blue's.
/// drop(inside); // back in the thread's own namespace
/// # Ok::<(), rawbpf::netns::NetnsError>(())
/// ```
pub fn enter(name: &str) -> Result<Entered, NetnsError> {
    let previous = ENTERED.with(|e| e.borrow().clone());
    if previous.as_deref() == Some(name) {
        return Ok(Entered {
            _back: None,
            previous,
            not_send: PhantomData,
        });
    }
    let ns = open_named(name)?;
    let own = own_namespace(name)?;
    setns_net(&ns).map_err(failed(name, "entering it"))?;
    // Only now is there somewhere to return from.
    let back = BackToOwnNamespace(own);
    ENTERED.with(|e| *e.borrow_mut() = Some(name.to_owned()));
    Ok(Entered {
        _back: Some(back),
        previous,
        not_send: PhantomData,
    })
}

/// Runs `f` in the named namespace (or right here for `None`, or inside an
/// [`Entered`] guard of that namespace), on the calling thread, which
/// returns to its own namespace afterwards, also when `f` panics.
pub fn run_in<T>(netns: Option<&str>, f: impl FnOnce() -> T) -> Result<T, NetnsError> {
    let Some(name) = netns.filter(|n| !entered(n)) else {
        return Ok(f());
    };
    let ns = open_named(name)?;
    let own = own_namespace(name)?;
    setns_net(&ns).map_err(failed(name, "entering it"))?;
    // Only now is there somewhere to return from.
    let back = BackToOwnNamespace(own);
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
    let made = own_namespace(name).and_then(|own| {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| failed(name, "creating it")(e.into()))?;
        let back = BackToOwnNamespace(own);
        // `mount --bind`: the file keeps the namespace alive.
        mount(
            Some("/proc/thread-self/ns/net"),
            &path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| failed(name, "creating it")(e.into()))?;
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
    // `umount -l`.
    umount2(&path, MntFlags::MNT_DETACH).map_err(|e| failed(name, "unmounting it")(e.into()))?;
    std::fs::remove_file(&path).map_err(failed(name, "removing its mount point"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_slashes_are_no_namespace() {
        for bad in ["", "a/b", "../x"] {
            assert!(matches!(enter(bad), Err(NetnsError::NotFound { .. })));
            assert!(matches!(
                run_in(Some(bad), || ()),
                Err(NetnsError::NotFound { .. })
            ));
        }
        assert!(run_in(None, || 7).is_ok_and(|v| v == 7));
    }
}

debug_is_display!(NetnsError);
