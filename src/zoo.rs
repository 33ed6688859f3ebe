//! Deliberate bugs, for the kube-chaos harness's bug zoo: subjects that are this runtime with
//! one known bug each, which exploration must find (proof that the checkers catch what they
//! claim). Not part of the production API.
//!
//! A component's config carries a [`Zoo`]. Without the `bug-zoo` cargo feature a `Zoo` is an
//! empty value that can only be its default, every check is a constant `false`, and the
//! bug paths compile away. With the feature, [`Zoo::with`] turns one bug on.

/// One known bug (each the mistake a real controller runtime has made or could make).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bug {
    /// RetryWatcher: a reconnect watches from `""` instead of the last delivered RV (the
    /// server answers with the current state as synthetic ADDED events).
    ReconnectFromEmpty,
    /// Reflector: a 410 re-watches from the same RV (after a backoff) instead of relisting.
    NoRelistAfterExpired,
    /// Reflector: a relist replaces the store without telling handlers about objects that
    /// vanished (no `DeletedFinalStateUnknown` tombstones).
    RelistWithoutTombstones,
    /// Informer: a handler added after the first list gets no synthetic adds for the
    /// objects already cached.
    LateHandlerMissesExisting,
    /// Workqueue: no processing set: a key added while a worker holds it is handed to
    /// another worker at once.
    NoProcessingSet,
    /// Workqueue: a key added while a worker holds it is dropped instead of deferred.
    DropReaddDuringProcessing,
    /// Controller: a retryable error requeues the key at once, bypassing the rate limiter.
    UnlimitedRequeue,
    /// Controller: `max_retries` is never reached: retryable errors retry forever, nothing
    /// is dead-lettered.
    NoDeadLetter,
    /// Controller: a terminal error is retried like a retryable one instead of being
    /// dead-lettered at once.
    RetryTerminal,
    /// RetryWatcher: a 5xx (at watch start or as an in-stream `ERROR`) is read as 410
    /// Expired and ends the watch, though the resourceVersion never left the window.
    ServerErrorAsExpired,
    /// Reflector: after an in-stream 410 it relists from `"0"` (any replica's cache) instead
    /// of `""`: a lagging replica hands out older state than was delivered (k/k #59848).
    RelistFromCacheAfterExpired,
    /// Reflector: `timeoutSeconds = min_watch_timeout × rand` (the `1 +` forgotten): watches
    /// shorter than `min_watch_timeout`, below client-go's `[min, 2 × min)`.
    WatchTimeoutWithoutFloor,
    /// Controller: a successful reconcile does not `forget` the key: its next failure is
    /// retried after the grown backoff of the failures before the success.
    NoForgetOnSuccess,
    /// Workqueue: a second `add_after` of a waiting item replaces its time even when later
    /// (a map insert instead of a min): the item comes out at the latest time asked.
    AddAfterLatestWins,
}

/// Which bug (if any) a component runs with. `Zoo::default()` is the correct runtime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Zoo {
    #[cfg(feature = "bug-zoo")]
    bug: Option<Bug>,
}

impl Zoo {
    /// A component with `bug` (only with the `bug-zoo` feature).
    #[cfg(feature = "bug-zoo")]
    pub fn with(bug: Bug) -> Self {
        Self { bug: Some(bug) }
    }

    /// The bug turned on, if any.
    pub fn bug(self) -> Option<Bug> {
        #[cfg(feature = "bug-zoo")]
        return self.bug;
        #[cfg(not(feature = "bug-zoo"))]
        None
    }

    /// Whether `bug` is on.
    #[inline]
    pub(crate) fn has(self, bug: Bug) -> bool {
        self.bug() == Some(bug)
    }
}
