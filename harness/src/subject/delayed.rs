//! The `delayed-controller`'s feed: the mirror controller's informer handler asks for a
//! changed source after a delay computed from the object, as a CronJob-style controller calls
//! `AddAfter(key, nextScheduleTime)` from its handler. Successive updates of one key ask for
//! due times in both orders while the first still waits, which is what `add_after`'s
//! "the earliest time wins" is about. Each request is recorded (`Record::Enqueued`) for the
//! `add_after_earliest` checker. A mirror's event adds its source at once.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube_chaos::controller::owner_keys;
use kube_chaos::informer::{object_key, HandlerFns};
use kube_chaos::workqueue::WorkQueue;

use super::Ctx;
use crate::mirror::is_source;
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

/// What one event of `cm` asks of the queue.
struct Enqueue {
    ctx: Ctx,
    queue: WorkQueue<String>,
}

impl Enqueue {
    fn object(&self, cm: &ConfigMap) {
        for owner in owner_keys(cm, "ConfigMap") {
            self.queue.add(owner);
        }
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
}

/// The handler: each add, update (its new state; the old one's owner too) and delete of a
/// ConfigMap enqueues as [`Enqueue::object`] says.
pub(super) fn enqueue_handler(ctx: &Ctx, queue: &WorkQueue<String>) -> HandlerFns<ConfigMap> {
    let e = Arc::new(Enqueue {
        ctx: ctx.clone(),
        queue: queue.clone(),
    });
    let (a, u, d) = (e.clone(), e.clone(), e);
    HandlerFns::new()
        .on_add(move |o: &Arc<ConfigMap>, _| a.object(o))
        .on_update(move |old: &Arc<ConfigMap>, new: &Arc<ConfigMap>| {
            for owner in owner_keys(&**old, "ConfigMap") {
                u.queue.add(owner);
            }
            u.object(new)
        })
        .on_delete(move |o| d.object(o.object()))
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
