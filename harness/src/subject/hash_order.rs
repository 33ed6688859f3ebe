//! `hash-order`: a deliberately non-deterministic subject for the divergence finder. Every
//! 5 s it lists the ConfigMaps into a std `HashSet` and "reconciles" them in the set's
//! iteration order, which comes from std's `RandomState`: a function of the scenario seed
//! when the run seeds std's randomness ([`crate::run::StdRandomness::Seeded`], the
//! default), the OS's per-process randomness when it does not.

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
