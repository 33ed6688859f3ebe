//! The small-scenario profile: bounds of what exploration generates.

use std::time::Duration;

/// Longest generated `duration` (workload and faults happen within it).
pub const MAX_DURATION: Duration = Duration::from_secs(60);
/// Shortest `duration` the shrinker goes down to.
pub const MIN_DURATION: Duration = Duration::from_secs(5);
/// Settle time after `duration`: a correct subject notices a silently dead watch within
/// 60 s (15 s minimum watch timeout, doubled at most, plus 30 s grace), backs off and
/// relists; a controller then settles, and the last half of this must be quiet.
pub const SETTLE: Duration = Duration::from_secs(180);
/// The staleness bound the checkers get (a version may go unobserved this long while a
/// correct subject is still recovering from a fault that ended).
pub const STALENESS: Duration = Duration::from_secs(180);
/// At most this many faults per case.
pub const MAX_FAULTS: usize = 3;
/// At most this many initial objects.
pub const MAX_OBJECTS: usize = 4;
/// The longest step of a generated case while nothing is in flight (`Scenario::idle_tick`).
pub const IDLE_TICK: Duration = Duration::from_millis(500);

/// At most this many single writes.
pub const MAX_WRITES: usize = 8;

/// Longest generated `duration` for a user's controller (its cases also run once without
/// faults, for `differential`).
pub const OPERATOR_DURATION: Duration = Duration::from_secs(30);
/// Settle time for a user's controller: its condition must hold by then, and the second half
/// of it must be quiet (`write_rate`). Long enough for kube-runtime's shared trigger backoff
/// (up to ~75 s after an apiserver restart, `harness/tests/runtime/shared_backoff.rs`) and a
/// 60 s read timeout plus a retry.
pub const OPERATOR_SETTLE: Duration = Duration::from_secs(150);
/// turmoil's step for a user's controller: most of a case's cost is per step (every host's
/// runtime ticks), and a controller's own timers (backoffs from hundreds of milliseconds,
/// requeues, resyncs) need no finer grain than this.
pub const OPERATOR_TICK: Duration = Duration::from_millis(50);
