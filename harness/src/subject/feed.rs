//! How the mirror controller subjects' informer feeds their queue: `controller` adds each
//! event's keys at once (what `watch_mapped(mirror_keys)` does); `delayed-controller`'s
//! handler asks for a changed source after a delay computed from the object, as a
//! CronJob-style controller calls `AddAfter(key, nextScheduleTime)` from its handler, and a
//! mirror's event adds its source at once. Successive updates of one key then ask for due
//! times in both orders while the first still waits, which is what `add_after`'s "the
//! earliest time wins" is about; each request is recorded (`Record::Enqueued`) for the
//! `add_after_earliest` checker. Either handler takes a `slow_handler` fault's delay per
//! event (its work goes through a [`SlowConsumer`]).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube_chaos::controller::owner_keys;
use kube_chaos::informer::{object_key, HandlerFns};
use kube_chaos::workqueue::WorkQueue;

use super::slow_consumer::SlowConsumer;
use super::Ctx;
use crate::mirror::{is_source, mirror_keys};
use crate::trace::Record;
/// The longest delay asked for, in seconds (delays are 1 s to this).
pub const DELAY_S_MAX: u64 = 45;

/// Whether subject `name` asks for its keys after a delay (its desired state then settles
/// up to [`DELAY_S_MAX`] later than an immediate controller's).
pub fn asks_after(name: &str) -> bool {
    name.starts_with("delayed-controller")
}

/// The delay asked for a source: `1 + (v × 7919) mod 45` seconds of its `data.v` (the
/// workload's serial number), so successive writes of one key ask for unrelated delays.
pub fn delay_of(cm: &ConfigMap) -> Duration {
    let v: u64 = cm
        .data
        .as_ref()
        .and_then(|d| d.get("v"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_secs(1 + v.wrapping_mul(7919) % DELAY_S_MAX)
}

/// How the controller's informer feeds its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Feed {
    /// Every event adds its keys (`mirror_keys` of each state) at once.
    Immediate,
    /// A source's event asks for its key after [`delay_of`] it (`add_after`, recorded); a
    /// mirror's event adds its source at once.
    Delayed,
}

/// What the events of one instance ask of its queue.
struct Enqueue {
    ctx: Ctx,
    queue: WorkQueue<String>,
    feed: Feed,
}

impl Enqueue {
    /// An object's (new) state: its owner's key and its own.
    fn object(&self, cm: &ConfigMap) {
        if self.feed == Feed::Immediate {
            return mirror_keys(cm).into_iter().for_each(|k| self.queue.add(k));
        }
        self.owners(cm);
        let claimed = cm
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| !f.is_empty());
        if is_source(cm) || claimed {
            let (key, after) = (object_key(cm), delay_of(cm));
            self.ctx.record(Record::Enqueued {
                key: key.clone(),
                after,
            });
            self.queue.add_after(key, after);
        }
    }

    /// The state an update replaced: all its keys at once (`Immediate`), or its owner's.
    fn old(&self, cm: &ConfigMap) {
        match self.feed {
            Feed::Immediate => self.object(cm),
            Feed::Delayed => self.owners(cm),
        }
    }

    fn owners(&self, cm: &ConfigMap) {
        for owner in owner_keys(cm, "ConfigMap") {
            self.queue.add(owner);
        }
    }
}

/// The handler: each add, update (the old state, then the new) and delete of a ConfigMap
/// enqueues as [`Feed`] says, one event at a time through the slow lane.
pub(super) fn feed_handler(
    ctx: &Ctx,
    queue: &WorkQueue<String>,
    feed: Feed,
) -> HandlerFns<ConfigMap> {
    let e = Arc::new(Enqueue {
        ctx: ctx.clone(),
        queue: queue.clone(),
        feed,
    });
    let lane = SlowConsumer::new(ctx);
    let (ea, eu, ed) = (e.clone(), e.clone(), e);
    let (la, lu, ld) = (lane.clone(), lane.clone(), lane);
    HandlerFns::new()
        .on_add(move |o: &Arc<ConfigMap>, _| {
            let (e, o) = (ea.clone(), o.clone());
            la.run(move || e.object(&o));
        })
        .on_update(move |old: &Arc<ConfigMap>, new: &Arc<ConfigMap>| {
            let (e, old, new) = (eu.clone(), old.clone(), new.clone());
            lu.run(move || {
                e.old(&old);
                e.object(&new);
            });
        })
        .on_delete(move |d| {
            let (e, o) = (ed.clone(), d.object().clone());
            ld.run(move || e.object(&o));
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_is_one_to_45_seconds_of_the_objects_serial() {
        // A few serials by the formula, then every delay of 200 serials within 1..=45 s.
        let cm = |v: &str| ConfigMap {
            data: Some([("v".to_string(), v.to_string())].into()),
            ..ConfigMap::default()
        };
        assert_eq!(delay_of(&cm("0")), Duration::from_secs(1));
        assert_eq!(delay_of(&cm("1")), Duration::from_secs(1 + 7919 % 45));
        assert_eq!(delay_of(&ConfigMap::default()), Duration::from_secs(1));
        let all: Vec<_> = (0..200).map(|v| delay_of(&cm(&v.to_string()))).collect();
        assert!(all.iter().all(|d| (1..=45).contains(&d.as_secs())));
    }
}
