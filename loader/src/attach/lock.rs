//! One command at a time on a device's hooks. `attach` (with or without
//! `--replace`), `detach`, `swap` and the reconciling they start with each
//! hold an exclusive `flock(2)` on the device's lock file
//! ([`DevicePins::lock_file`](crate::pins::DevicePins::lock_file)) from
//! before their first change until after their last, so two rawbpf
//! processes never interleave their steps on one device: the second waits,
//! up to [`HOOK_LOCK_WAIT`], then gives up having changed nothing.
//!
//! The kernel drops the lock when its holder dies, whatever instruction it
//! was at, so a killed rawbpf never leaves it held; what it left half-done
//! is the next holder's to reconcile. The lock is per device rather than
//! per hook because ingress and egress share the clsact qdisc and its
//! marker.
//!
//! The holder removes the file as it lets go, so no file is left per device
//! ever used; a waiter that then gets the lock of the removed file sees the
//! path name another file (or none) and starts again on that one.

use super::{AttachError, Target};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a command that changes a device's hooks waits for another
/// rawbpf changing the same device before it gives up, changing nothing
/// ([`AttachError::Busy`]). One command holds the device for milliseconds;
/// a holder that takes longer is stopped (a debugger, `SIGSTOP`) and may
/// take any time.
pub const HOOK_LOCK_WAIT: Duration = Duration::from_secs(2);

/// The longest sleep between two tries of the lock.
const MAX_PAUSE: Duration = Duration::from_millis(10);

/// An exclusive lock on a device's hooks, released (and its file removed)
/// when dropped or when the process dies.
#[derive(Debug)]
pub(super) struct HookLock {
    path: PathBuf,
    _locked: Flock<File>,
}

impl HookLock {
    /// Waits up to [`HOOK_LOCK_WAIT`] for the lock of the target's device.
    /// Blocks the calling thread meanwhile.
    pub(super) fn take(target: &Target) -> Result<HookLock, AttachError> {
        HookLock::take_file(target.pins().lock_file(), target, HOOK_LOCK_WAIT)
    }

    /// Waits up to `wait` for an exclusive lock on `path`, made if missing.
    fn take_file(path: &Path, target: &Target, wait: Duration) -> Result<HookLock, AttachError> {
        let failed = |action: &'static str, source: io::Error| AttachError::Lock {
            dev: target.dev.clone(),
            path: path.to_owned(),
            action,
            source,
        };
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| failed("making the directory of", e))?;
            }
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| failed("opening", e))?;
            // Wait on this file until it is ours or the time is up.
            let locked = loop {
                match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                    Ok(locked) => break locked,
                    Err((f, Errno::EWOULDBLOCK)) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(AttachError::Busy {
                                dev: target.dev.clone(),
                                hook: target.hook,
                                waited: wait,
                            });
                        }
                        std::thread::sleep(pause.min(left));
                        pause = (pause * 2).min(MAX_PAUSE);
                        file = f;
                    }
                    Err((f, Errno::EINTR)) => file = f,
                    Err((_, e)) => return Err(failed("locking", e.into())),
                }
            };
            // The holder before us removed the file as it let go: the lock
            // that counts is on the file the path names now.
            if names_file(path, &locked).map_err(|e| failed("checking", e))? {
                return Ok(HookLock {
                    path: path.to_owned(),
                    _locked: locked,
                });
            }
        }
    }
}

/// Whether `path` names the open file `file` (`false`: it names another
/// file, or none).
fn names_file(path: &Path, file: &File) -> io::Result<bool> {
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

impl Drop for HookLock {
    /// Removes the file, then lets go of the lock (the field's drop): a
    /// waiter that gets it then finds the file gone and starts again.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::Hook;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A lock file of its own in a directory of its own, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("rawbpf-lock-{tag}-{}", std::process::id()));
            Scratch(dir)
        }

        fn file(&self) -> PathBuf {
            self.0.join("dev")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn target() -> Target {
        Target::new("eth9", Hook::Egress)
    }

    #[test]
    fn a_held_lock_makes_the_next_give_up_and_goes_with_its_file() {
        let scratch = Scratch::new("held");
        let (file, t) = (scratch.file(), target());
        let held = HookLock::take_file(&file, &t, HOOK_LOCK_WAIT).unwrap();
        assert!(file.exists());
        let wait = Duration::from_millis(50);
        let started = Instant::now();
        match HookLock::take_file(&file, &t, wait) {
            Err(e @ AttachError::Busy { .. }) => assert_eq!(
                e.to_string(),
                "eth9 egress: another rawbpf is changing this device (waited 0 s); \
                 nothing was changed"
            ),
            other => panic!("took a held lock: {other:?}"),
        }
        assert!(started.elapsed() >= wait);
        drop(held);
        assert!(!file.exists(), "the lock file stayed");
        drop(HookLock::take_file(&file, &t, wait).unwrap());
    }

    #[test]
    fn waiters_take_turns_and_leave_no_file() {
        let scratch = Scratch::new("turns");
        let (file, t) = (scratch.file(), target());
        let inside = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..20 {
                        let _lock = HookLock::take_file(&file, &t, HOOK_LOCK_WAIT).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(!file.exists(), "the lock file stayed");
    }

    #[test]
    fn a_lock_file_that_cannot_be_made_is_named() {
        let scratch = Scratch::new("bad");
        std::fs::create_dir_all(&scratch.0).unwrap();
        // A directory where the file's directory would be made.
        std::fs::write(scratch.0.join("not_a_dir"), b"").unwrap();
        let file = scratch.0.join("not_a_dir").join("dev");
        let err = HookLock::take_file(&file, &target(), HOOK_LOCK_WAIT).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "eth9: making the directory of the lock file {}",
                file.display()
            )) && msg.ends_with("; nothing was changed"),
            "{msg}"
        );
    }
}
