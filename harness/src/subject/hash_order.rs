//! `hash-order`: a deliberately non-deterministic subject for the divergence finder. Every
//! 5 s it lists the ConfigMaps into a std `HashSet` and "reconciles" them in the set's
//! iteration order, which comes from std's `RandomState`: a function of the scenario seed
//! when the run seeds std's randomness ([`crate::run::StdRandomness::Seeded`], the
//! default), the OS's per-process randomness when it does not. And `wall-clock`, which
//! reads the wall clock and starts threads: the harness seeds neither, only counts them.

use std::collections::HashSet;
use std::time::Duration;

use kube::api::ListParams;

use super::{key_of, Ctx};
use crate::trace::{Outcome, Record};

/// Lists and records every key in `HashSet` order, every 5 s, until the host stops.
pub(super) async fn run(ctx: Ctx) {
    loop {
        if let Ok(list) = ctx.api().list(&ListParams::default()).await {
            // The point of this subject: iteration order reaches the trace.
            let keys: HashSet<String> = list.items.iter().map(key_of).collect();
            for key in keys {
                ctx.record(Record::ReconcileStart { key: key.clone() });
                let outcome = Outcome::Ok;
                ctx.record(Record::ReconcileEnd { key, outcome });
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// `wall-clock`: every 5 s it reads the wall clock, starts a thread (which does nothing),
/// and "reconciles" a key named by the clock's nanoseconds — non-deterministic even seeded
/// (the harness seeds neither, it counts them), which the divergence finder names.
pub(super) async fn wall_clock(ctx: Ctx) {
    loop {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let nanos = now.map(|d| d.subsec_nanos()).unwrap_or_default();
        let _ = std::thread::spawn(|| ()).join();
        let key = format!("default/t-{nanos}");
        ctx.record(Record::ReconcileStart { key: key.clone() });
        ctx.record(Record::ReconcileEnd {
            key,
            outcome: Outcome::Ok,
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
