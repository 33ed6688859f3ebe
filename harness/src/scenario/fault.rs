//! Fault kinds (DESIGN.md §5): the data a scenario file writes, and everything the harness
//! knows of each kind that is not how to apply it — its name, its window, the replica it
//! targets, which subjects it applies to and which values are valid — each an exhaustive
//! match, so a new kind is this enum's variant plus one arm in each accessor here, one
//! interpreter arm (`run/interpreter.rs`) and one generator line (`explore/faults.rs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Dur, ObjectRef};

/// Which requests an HTTP fault applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Requests {
    /// Every request.
    #[default]
    All,
    /// Watch requests.
    Watch,
    /// Non-watch reads (get, list).
    Read,
    /// Writes (create, update, patch, delete).
    Write,
}

/// Whose packets a one-way partition drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Subject -> apiserver packets are lost (requests vanish).
    ToApiserver,
    /// Apiserver -> subject packets are lost (responses and watch events vanish).
    FromApiserver,
}

/// How a reconcile error is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Requeued with backoff until `max_retries`, then dead-lettered.
    Retryable,
    /// Dead-lettered at once.
    Terminal,
}

impl ErrorClass {
    /// The text of the error a `reconcile_errors` fault injects (what the controller
    /// subjects fail with, and what the checkers recognise it by).
    pub fn injected_message(self) -> String {
        format!("injected {self:?} error")
    }
}

/// One fault (DESIGN.md §5). `replica` absent means every replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Silent partition between the subject hosts and the apiserver: packets are dropped.
    Partition {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// Packets in one direction only are dropped.
    PartitionOneway {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Which direction is cut.
        direction: Direction,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// Packets are held, then delivered in order at the end.
    Hold {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// Every packet takes exactly `latency`.
    Latency {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Per-packet latency.
        latency: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// The link flaps: each step it breaks with probability `rate` (turmoil's fail rate).
    Loss {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Probability per step, in [0, 1].
        rate: f64,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// The apiserver closes every open connection.
    ConnectionReset {
        /// When.
        at: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// A replica crashes (its watch cache is lost) and restarts.
    CrashReplica {
        /// When.
        at: Dur,
        /// Which replica.
        replica: usize,
        /// Downtime.
        restart_after: Dur,
    },
    /// A replica's watch cache trails the store by `lag`.
    CacheLag {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// How far behind.
        lag: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// A replica's watch cache freezes (it serves old state: time travel).
    CachePause {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// The store compacts all history: older resourceVersions answer 410.
    Compact {
        /// When.
        at: Dur,
    },
    /// Every open watch gets an in-stream 410 Expired.
    ExpireWatches {
        /// When.
        at: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// Every open watch stream ends cleanly mid-way.
    DropWatches {
        /// When.
        at: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// A fraction of requests fail with `code` (429, 500, 503 or 504).
    HttpErrors {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// HTTP status.
        code: u16,
        /// Fraction of matching requests that fail, in [0, 1].
        rate: f64,
        /// `Retry-After` (and `retryAfterSeconds`) sent with the error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<Dur>,
        /// Which requests.
        #[serde(default)]
        requests: Requests,
    },
    /// Matching requests are answered after `delay`.
    SlowResponses {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Added delay.
        delay: Dur,
        /// Which requests.
        #[serde(default)]
        requests: Requests,
    },
    /// Reconciles (of `key`, or all) take `delay` longer.
    SlowReconcile {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Added time per reconcile.
        delay: Dur,
        /// Only this key (`namespace/name`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// The next `times` reconciles (of `key`, or any) fail with a `class` error.
    ReconcileErrors {
        /// From when.
        at: Dur,
        /// How many failures.
        times: u32,
        /// Retryable or terminal.
        class: ErrorClass,
        /// Only this key (`namespace/name`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// The subject's process crashes (caches and queue lost) and restarts.
    CrashSubject {
        /// When.
        at: Dur,
        /// Downtime.
        restart_after: Dur,
    },
    /// Intermediate state (Sieve): counting from `at`, the subject crashes right after the
    /// server received its `writes`-th write request (before it sees the response), and
    /// restarts `restart_after` later.
    CrashAfterWrite {
        /// When counting starts.
        at: Dur,
        /// Which write the crash follows (1: the first).
        writes: u32,
        /// Downtime.
        restart_after: Dur,
    },
    /// Stale state (Sieve): the subject restarts while the replica's watch cache (every
    /// replica's, without `replica`) is frozen, so it rebuilds its caches from old state.
    StaleRestart {
        /// When the cache freezes and the subject crashes.
        at: Dur,
        /// How long the cache stays frozen.
        #[serde(rename = "for")]
        for_: Dur,
        /// The subject's downtime (when not shorter than `for`, it comes back to a cache that
        /// already resumed: a plain restart).
        restart_after: Dur,
        /// Only this replica's cache.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// Unobserved state (Sieve): every watch cache is held while `target` is deleted and
    /// created again; then the history is compacted and the caches rebuilt, so the subject
    /// only sees the coalesced result (a new object under the old name). A target with
    /// finalizers is not deleted (its deletion cannot go unobserved); the caches are still
    /// held, compacted and rebuilt.
    UnobservedState {
        /// When the caches are held and `target` deleted.
        at: Dur,
        /// When it is back (and the caches rebuilt).
        #[serde(rename = "for")]
        for_: Dur,
        /// The object deleted and created again.
        target: ObjectRef,
    },
    /// Every open watch gets an in-stream `ERROR` event whose `Status` has `code` (429,
    /// 500, 503 or 504), then its stream closes: the RV is still in the window, so a
    /// client must resume, not relist or give up.
    WatchErrors {
        /// When.
        at: Dur,
        /// The `Status` code.
        code: u16,
        /// `retryAfterSeconds` sent in the `Status`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<Dur>,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// While it lasts, each reconcile (of `key`, or any) fails with a retryable error with
    /// probability `rate`: a flaky dependency, so failures and successes of one key mix.
    FlakyReconciles {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Probability that a reconcile fails, in [0, 1].
        rate: f64,
        /// Only this key (`namespace/name`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// The subject's handler (its event consumer: a RetryWatcher's reader, an informer's
    /// handler) takes `delay` per event delivered during the window.
    SlowHandler {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Time spent per event.
        delay: Dur,
    },
}

impl Fault {
    /// The variant's name as written in scenario files.
    pub fn tag(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::PartitionOneway { .. } => "partition_oneway",
            Fault::Hold { .. } => "hold",
            Fault::Latency { .. } => "latency",
            Fault::Loss { .. } => "loss",
            Fault::ConnectionReset { .. } => "connection_reset",
            Fault::CrashReplica { .. } => "crash_replica",
            Fault::CacheLag { .. } => "cache_lag",
            Fault::CachePause { .. } => "cache_pause",
            Fault::Compact { .. } => "compact",
            Fault::ExpireWatches { .. } => "expire_watches",
            Fault::DropWatches { .. } => "drop_watches",
            Fault::HttpErrors { .. } => "http_errors",
            Fault::SlowResponses { .. } => "slow_responses",
            Fault::SlowReconcile { .. } => "slow_reconcile",
            Fault::ReconcileErrors { .. } => "reconcile_errors",
            Fault::CrashSubject { .. } => "crash_subject",
            Fault::CrashAfterWrite { .. } => "crash_after_write",
            Fault::StaleRestart { .. } => "stale_restart",
            Fault::UnobservedState { .. } => "unobserved_state",
            Fault::WatchErrors { .. } => "watch_errors",
            Fault::SlowHandler { .. } => "slow_handler",
            Fault::FlakyReconciles { .. } => "flaky_reconciles",
        }
    }

    /// When it starts, to edit.
    pub fn at_mut(&mut self) -> &mut Dur {
        match self {
            Fault::Partition { at, .. }
            | Fault::PartitionOneway { at, .. }
            | Fault::Hold { at, .. }
            | Fault::Latency { at, .. }
            | Fault::Loss { at, .. }
            | Fault::ConnectionReset { at, .. }
            | Fault::CrashReplica { at, .. }
            | Fault::CacheLag { at, .. }
            | Fault::CachePause { at, .. }
            | Fault::Compact { at }
            | Fault::ExpireWatches { at, .. }
            | Fault::DropWatches { at, .. }
            | Fault::HttpErrors { at, .. }
            | Fault::SlowResponses { at, .. }
            | Fault::SlowReconcile { at, .. }
            | Fault::ReconcileErrors { at, .. }
            | Fault::CrashSubject { at, .. }
            | Fault::CrashAfterWrite { at, .. }
            | Fault::StaleRestart { at, .. }
            | Fault::UnobservedState { at, .. }
            | Fault::WatchErrors { at, .. }
            | Fault::SlowHandler { at, .. }
            | Fault::FlakyReconciles { at, .. } => at,
        }
    }

    /// How long it lasts (`for`, or `restart_after` for crashes), to edit; `None` for
    /// instant faults.
    pub fn length_mut(&mut self) -> Option<&mut Dur> {
        match self {
            Fault::Partition { for_, .. }
            | Fault::PartitionOneway { for_, .. }
            | Fault::Hold { for_, .. }
            | Fault::Latency { for_, .. }
            | Fault::Loss { for_, .. }
            | Fault::CacheLag { for_, .. }
            | Fault::CachePause { for_, .. }
            | Fault::HttpErrors { for_, .. }
            | Fault::SlowResponses { for_, .. }
            | Fault::SlowReconcile { for_, .. }
            | Fault::StaleRestart { for_, .. }
            | Fault::UnobservedState { for_, .. }
            | Fault::SlowHandler { for_, .. }
            | Fault::FlakyReconciles { for_, .. } => Some(for_),
            Fault::CrashReplica { restart_after, .. }
            | Fault::CrashSubject { restart_after, .. } => Some(restart_after),
            // Its crash happens when the write arrives, not at a time of the timeline.
            Fault::CrashAfterWrite { .. }
            | Fault::ConnectionReset { .. }
            | Fault::Compact { .. }
            | Fault::ExpireWatches { .. }
            | Fault::DropWatches { .. }
            | Fault::ReconcileErrors { .. }
            | Fault::WatchErrors { .. } => None,
        }
    }

    /// The field [`Self::length_mut`] edits, as scenario files name it.
    pub fn length_field(&self) -> Option<&'static str> {
        match self {
            Fault::CrashReplica { .. } | Fault::CrashSubject { .. } => Some("restart_after"),
            f => f.clone().length_mut().map(|_| "for"),
        }
    }

    /// When it starts, and when it ends (`None` for instant faults).
    pub fn window(&self) -> (Dur, Option<Dur>) {
        let mut f = self.clone();
        let at = *f.at_mut();
        (at, f.length_mut().map(|len| Dur(at.0 + len.0)))
    }

    /// The replica it targets, to edit: `Some(None)` for a fault that may target one replica
    /// but targets all; `None` for faults that have no replica.
    pub fn replica_mut(&mut self) -> Option<ReplicaMut<'_>> {
        match self {
            Fault::Partition { replica, .. }
            | Fault::PartitionOneway { replica, .. }
            | Fault::Hold { replica, .. }
            | Fault::Latency { replica, .. }
            | Fault::Loss { replica, .. }
            | Fault::ConnectionReset { replica, .. }
            | Fault::CacheLag { replica, .. }
            | Fault::CachePause { replica, .. }
            | Fault::ExpireWatches { replica, .. }
            | Fault::DropWatches { replica, .. }
            | Fault::StaleRestart { replica, .. } => Some(ReplicaMut::Optional(replica)),
            Fault::WatchErrors { replica, .. } => Some(ReplicaMut::Optional(replica)),
            Fault::CrashReplica { replica, .. } => Some(ReplicaMut::One(replica)),
            Fault::Compact { .. }
            | Fault::HttpErrors { .. }
            | Fault::SlowResponses { .. }
            | Fault::SlowReconcile { .. }
            | Fault::ReconcileErrors { .. }
            | Fault::CrashSubject { .. }
            | Fault::CrashAfterWrite { .. }
            | Fault::UnobservedState { .. }
            | Fault::SlowHandler { .. }
            | Fault::FlakyReconciles { .. } => None,
        }
    }

    /// The replica it targets, if one.
    pub fn replica(&self) -> Option<usize> {
        match self.clone().replica_mut()? {
            ReplicaMut::Optional(r) => *r,
            ReplicaMut::One(r) => Some(*r),
        }
    }

    /// Whether it acts on a controller's reconciles (and so applies to controllers only).
    pub fn for_controllers_only(&self) -> bool {
        match self {
            Fault::SlowReconcile { .. }
            | Fault::ReconcileErrors { .. }
            | Fault::FlakyReconciles { .. } => true,
            Fault::Partition { .. }
            | Fault::PartitionOneway { .. }
            | Fault::Hold { .. }
            | Fault::Latency { .. }
            | Fault::Loss { .. }
            | Fault::ConnectionReset { .. }
            | Fault::CrashReplica { .. }
            | Fault::CacheLag { .. }
            | Fault::CachePause { .. }
            | Fault::Compact { .. }
            | Fault::ExpireWatches { .. }
            | Fault::DropWatches { .. }
            | Fault::HttpErrors { .. }
            | Fault::SlowResponses { .. }
            | Fault::CrashSubject { .. }
            | Fault::CrashAfterWrite { .. }
            | Fault::StaleRestart { .. }
            | Fault::UnobservedState { .. }
            | Fault::WatchErrors { .. }
            | Fault::SlowHandler { .. } => false,
        }
    }

    /// The first invalid value (field, message), judged on the fault alone; the window and
    /// replica are checked against the scenario by validation.
    pub fn invalid_value(&self) -> Option<(&'static str, String)> {
        match self {
            Fault::Loss { rate, .. }
            | Fault::HttpErrors { rate, .. }
            | Fault::FlakyReconciles { rate, .. }
                if !(0.0..=1.0).contains(rate) =>
            {
                Some(("rate", format!("must be between 0 and 1, got {rate}")))
            }
            Fault::HttpErrors { code, .. } | Fault::WatchErrors { code, .. }
                if ![429, 500, 503, 504].contains(code) =>
            {
                Some(("code", format!("must be 429, 500, 503 or 504, got {code}")))
            }
            Fault::ReconcileErrors { times: 0, .. } => Some(("times", "must be at least 1".into())),
            Fault::CrashAfterWrite { writes: 0, .. } => {
                Some(("writes", "must be at least 1 (the first write)".into()))
            }
            Fault::Partition { .. }
            | Fault::PartitionOneway { .. }
            | Fault::Hold { .. }
            | Fault::Latency { .. }
            | Fault::Loss { .. }
            | Fault::ConnectionReset { .. }
            | Fault::CrashReplica { .. }
            | Fault::CacheLag { .. }
            | Fault::CachePause { .. }
            | Fault::Compact { .. }
            | Fault::ExpireWatches { .. }
            | Fault::DropWatches { .. }
            | Fault::HttpErrors { .. }
            | Fault::SlowResponses { .. }
            | Fault::SlowReconcile { .. }
            | Fault::ReconcileErrors { .. }
            | Fault::CrashSubject { .. }
            | Fault::CrashAfterWrite { .. }
            | Fault::StaleRestart { .. }
            | Fault::UnobservedState { .. }
            | Fault::WatchErrors { .. }
            | Fault::SlowHandler { .. }
            | Fault::FlakyReconciles { .. } => None,
        }
    }

    /// A one-line description for traces: the tag and every field but `at`.
    pub fn describe(&self) -> String {
        let mut s = serde_json::to_value(self).expect("a fault serialises")[self.tag()].clone();
        if let Some(m) = s.as_object_mut() {
            m.remove("at");
        }
        let fields = s.as_object().map(|m| {
            m.iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        });
        format!("{} {}", self.tag(), fields.unwrap_or_default())
            .trim_end()
            .to_string()
    }
}

/// A fault's replica field, to edit (see [`Fault::replica_mut`]).
#[derive(Debug)]
pub enum ReplicaMut<'a> {
    /// `replica` of a fault that targets every replica when it is absent.
    Optional(&'a mut Option<usize>),
    /// `replica` of a fault that always targets one.
    One(&'a mut usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(replica: Option<usize>) -> Fault {
        Fault::Partition {
            at: Dur::secs(5),
            for_: Dur::secs(10),
            replica,
        }
    }

    #[test]
    fn a_window_ends_after_its_length_and_an_instant_fault_has_none() {
        assert_eq!(
            partition(None).window(),
            (Dur::secs(5), Some(Dur::secs(15)))
        );
        let crash = Fault::CrashSubject {
            at: Dur::secs(3),
            restart_after: Dur::secs(4),
        };
        assert_eq!(crash.window(), (Dur::secs(3), Some(Dur::secs(7))));
        assert_eq!(crash.length_field(), Some("restart_after"));
        let compact = Fault::Compact { at: Dur::secs(2) };
        assert_eq!(compact.window(), (Dur::secs(2), None));
        assert_eq!(compact.length_field(), None);
    }

    #[test]
    fn replicas_are_read_and_edited_through_one_accessor() {
        assert_eq!(partition(Some(1)).replica(), Some(1));
        assert_eq!(partition(None).replica(), None);
        let mut crash = Fault::CrashReplica {
            at: Dur::secs(1),
            replica: 4,
            restart_after: Dur::secs(1),
        };
        if let Some(ReplicaMut::One(r)) = crash.replica_mut() {
            *r %= 3;
        }
        assert_eq!(crash.replica(), Some(1));
        assert!(Fault::Compact { at: Dur::secs(1) }.replica_mut().is_none());
    }

    #[test]
    fn values_outside_their_range_name_their_field() {
        let storm = |code, rate| Fault::HttpErrors {
            at: Dur::secs(1),
            for_: Dur::secs(1),
            code,
            rate,
            retry_after: None,
            requests: Requests::All,
        };
        assert_eq!(storm(503, 0.5).invalid_value(), None);
        assert_eq!(storm(418, 0.5).invalid_value().unwrap().0, "code");
        assert_eq!(storm(503, 1.5).invalid_value().unwrap().0, "rate");
    }

    #[test]
    fn a_description_lists_every_field_but_the_start() {
        assert_eq!(partition(Some(0)).describe(), "partition for=10s replica=0");
        assert_eq!(Fault::Compact { at: Dur::secs(1) }.describe(), "compact");
    }
}
