//! The runtime syncs run on in a server: worker threads at a lower CPU
//! priority than the API's, so a sync (connector calls, JSON, hashing)
//! takes the CPU the API leaves and never makes callers wait behind it.
//! On a busy server a sync takes longer; it never takes API capacity.

use std::sync::Arc;

use tokio::runtime::{Handle, Runtime};

/// How much lower syncs run: a nice value (0 is normal, 19 the lowest).
/// At 10 the kernel gives the API's threads about 10 times their share
/// when both want the CPU.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const NICE: i32 = 10;

/// A runtime for background syncs; shut down without waiting when the
/// last handle goes (a server interrupts running syncs at shutdown
/// anyway, and they resume from their checkpoints).
#[derive(Clone)]
pub struct Background(Arc<Owned>);

struct Owned(Option<Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            // Dropping a runtime blocks, which an async caller may not do.
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Background")
    }
}

impl Background {
    /// A runtime with a worker per core, each at a lower priority.
    pub fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("mdmhub-sync")
            .on_thread_start(lower_priority)
            .build()?;
        Ok(Self(Arc::new(Owned(Some(rt)))))
    }

    /// Where to spawn syncs.
    pub fn handle(&self) -> &Handle {
        self.0.0.as_ref().expect("present until dropped").handle()
    }
}

/// Lowers the calling thread's priority (threads it starts inherit it).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority only reads its integer arguments. On Linux the
        // nice value is per thread and `who = 0` names the calling thread.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "lowering a sync thread's priority");
        }
    }
}
