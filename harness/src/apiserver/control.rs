//! The server's fault controls (compaction, watch-cache lag / pause / resume / reset, dropped
//! and expired watches, connection resets) and its background tasks: the per-replica cache
//! pump and the periodic compactor.

use std::time::Duration;

use super::ApiServer;

impl ApiServer {
    /// Compacts the store at `rev` (clamped to the current revision); returns the new
    /// compacted revision. Reads and continue tokens below it answer 410.
    pub fn compact(&self, rev: u64) -> u64 {
        self.write_and_poke(|store| store.compact(rev))
    }

    /// Compacts all history up to the current revision.
    pub fn compact_all(&self) -> u64 {
        self.compact(u64::MAX)
    }

    /// Sets a replica's watch-cache lag.
    pub fn set_cache_lag(&self, replica: usize, lag: Duration) {
        self.with_cache(replica, |cache, _| cache.set_lag(lag));
        self.poke();
    }

    /// Pauses a replica's watch cache: it keeps serving its current (aging) state.
    pub fn pause_cache(&self, replica: usize) {
        self.with_cache(replica, |cache, _| cache.pause());
        self.poke();
    }

    /// Resumes a paused replica's watch cache.
    pub fn resume_cache(&self, replica: usize) {
        self.with_cache(replica, |cache, _| cache.resume());
        self.poke();
    }

    /// Re-initialises a replica's watch cache from the store, as after a restart: its window
    /// restarts at the current revision and its open watches end.
    pub fn reset_cache(&self, replica: usize) {
        self.with_cache(replica, |cache, store| cache.reinit(store));
        self.notify_watches(replica);
    }

    /// Ends every open watch on `replica` with a clean end of stream (a dropped watch: clients
    /// resume from their last resourceVersion).
    pub fn drop_watches(&self, replica: usize) {
        self.change_watch_control(replica, |c| c.dropped += 1);
        self.notify_watches(replica);
    }

    /// Ends every open watch on `replica` with an in-stream `ERROR` 410 Expired, as
    /// kube-apiserver does when a watcher falls out of its cache's window.
    pub fn expire_watches(&self, replica: usize) {
        self.change_watch_control(replica, |c| c.expired += 1);
        self.notify_watches(replica);
    }

    /// Ends every open watch on `replica` with an in-stream `ERROR` whose `Status` has
    /// `code` (and `retryAfterSeconds`), as a kube-apiserver does on an internal failure or
    /// an overloaded watch; the stream closes after it.
    pub fn error_watches(&self, replica: usize, code: u16, retry_after_seconds: Option<u32>) {
        self.change_watch_control(replica, |c| {
            c.errored += 1;
            c.error = (code, retry_after_seconds);
        });
        self.notify_watches(replica);
    }

    /// Closes every open connection to `replica` (clients see the connection end mid-request
    /// or mid-stream).
    pub fn reset_connections(&self, replica: usize) {
        self.shared.connections[replica].bump();
    }

    /// Keeps replica `replica`'s watch cache applying store events; runs on the replica's host
    /// for as long as it lives. Starts by re-initialising the cache (a restarted replica has
    /// lost it).
    pub async fn run_cache_pump(self, replica: usize) {
        self.reset_cache(replica);
        let mut store_changed = self.shared.store_rev.subscribe();
        loop {
            let now = self.now();
            let step = self.with_cache(replica, |cache, store| cache.catch_up(store, now));
            if step.changed {
                self.notify_watches(replica);
            }
            let wait = step.next_due.map(|due| due.saturating_sub(now));
            tokio::select! {
                biased;
                _ = store_changed.changed() => {}
                _ = sleep_or_forever(wait) => {}
            }
        }
    }

    /// Compacts the store periodically (if configured): every interval, at the revision seen
    /// one interval earlier, so at least one interval of history stays readable.
    pub async fn run_compactor(self) {
        let Some(every) = self.config().compaction_interval else {
            return std::future::pending().await;
        };
        let mut seen = self.revision();
        loop {
            tokio::time::sleep(every).await;
            self.compact(seen);
            seen = self.revision();
        }
    }
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
