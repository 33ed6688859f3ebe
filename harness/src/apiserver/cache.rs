//! A replica's watch cache: a bounded ring of recent store events plus the materialised state
//! at the cache's revision. It applies store events after a configurable lag and can be
//! paused — how real clusters "travel back in time" (kubernetes#59848).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::store::{ObjKey, Store, StoreEvent};

/// The watch cache of one apiserver replica.
#[derive(Debug)]
pub struct WatchCache {
    capacity: usize,
    lag: Duration,
    paused: bool,
    /// Revision up to which store events have been applied.
    synced: u64,
    /// Every event with a revision greater than this is in the ring.
    window_start: u64,
    ring: VecDeque<Arc<StoreEvent>>,
    state: BTreeMap<ObjKey, Arc<Value>>,
    /// Bumped whenever the cache is re-initialised; open watches on it then end.
    generation: u64,
}

/// What [`WatchCache::catch_up`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// Whether anything changed (watchers should look).
    pub changed: bool,
    /// When the next pending store event becomes due (since the epoch), if one is pending.
    pub next_due: Option<Duration>,
}

impl WatchCache {
    /// A cache initialised from the store's current state.
    pub fn new(store: &Store, capacity: usize, lag: Duration) -> Self {
        let mut cache = Self {
            capacity: capacity.max(1),
            lag,
            paused: false,
            synced: 0,
            window_start: 0,
            ring: VecDeque::new(),
            state: BTreeMap::new(),
            generation: 0,
        };
        cache.reinit(store);
        cache
    }

    /// Drops everything and reloads the store's current state (a relist of the cache's
    /// reflector): the window restarts at the current revision.
    pub fn reinit(&mut self, store: &Store) {
        self.state = store.snapshot();
        self.synced = store.revision();
        self.window_start = self.synced;
        self.ring.clear();
        self.generation += 1;
    }

    /// Applies the store events that are due at `now` (unless paused).
    pub fn catch_up(&mut self, store: &Store, now: Duration) -> CatchUp {
        if self.paused {
            return CatchUp {
                changed: false,
                next_due: None,
            };
        }
        let Some(events) = store.events_after(self.synced) else {
            self.reinit(store);
            return CatchUp {
                changed: true,
                next_due: None,
            };
        };
        let mut due = Vec::new();
        let mut next_due = None;
        for e in events {
            if e.at + self.lag > now {
                next_due = Some(e.at + self.lag);
                break;
            }
            due.push(e.clone());
        }
        let changed = !due.is_empty();
        for e in due {
            self.apply(e);
        }
        CatchUp { changed, next_due }
    }

    fn apply(&mut self, e: Arc<StoreEvent>) {
        debug_assert_eq!(e.rev, self.synced + 1, "store revisions are contiguous");
        self.synced = e.rev;
        match e.kind {
            super::store::EventType::Deleted => self.state.remove(&e.key),
            _ => self.state.insert(e.key.clone(), e.object.clone()),
        };
        self.ring.push_back(e);
        while self.ring.len() > self.capacity {
            let dropped = self.ring.pop_front().expect("ring is over capacity");
            self.window_start = dropped.rev;
        }
    }

    /// The revision the cache has applied up to.
    pub fn synced(&self) -> u64 {
        self.synced
    }

    /// The oldest revision a watch can start from: events after it are all in the ring.
    pub fn window_start(&self) -> u64 {
        self.window_start
    }

    /// The re-initialisation counter.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Events with a revision greater than `after`, or `None` if some already left the ring.
    pub fn events_after(&self, after: u64) -> Option<impl Iterator<Item = &Arc<StoreEvent>>> {
        if after < self.window_start {
            return None;
        }
        let skip = usize::try_from(after - self.window_start).expect("ring index fits usize");
        Some(self.ring.iter().skip(skip))
    }

    /// Live objects of a resource (optionally one namespace) at the cache's revision.
    pub fn list(&self, res: usize, ns: Option<&str>) -> Vec<Arc<Value>> {
        let start = ObjKey {
            res,
            ns: ns.unwrap_or("").into(),
            name: String::new(),
        };
        self.state
            .range(start..)
            .take_while(|(k, _)| k.res == res && ns.is_none_or(|ns| k.ns == ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Sets how long store events wait before this cache applies them.
    pub fn set_lag(&mut self, lag: Duration) {
        self.lag = lag;
    }

    /// Stops applying store events (the replica serves an ever older state).
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Resumes applying store events.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Whether the cache is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resource::Resources;
    use rand::SeedableRng;
    use serde_json::json;

    fn store_with(n: usize) -> Store {
        let mut s = Store::new(
            Resources::with_crds(&[]).unwrap(),
            rand_chacha::ChaCha8Rng::seed_from_u64(1),
        );
        let ns = json!({"metadata": {"name": "default"}});
        s.create(0, "", ns.as_object().unwrap().clone(), Duration::ZERO)
            .unwrap();
        for i in 0..n {
            let cm = json!({"metadata": {"name": format!("c{i}")}});
            s.create(
                3,
                "default",
                cm.as_object().unwrap().clone(),
                Duration::from_secs(i as u64),
            )
            .unwrap();
        }
        s
    }

    #[test]
    fn the_ring_keeps_only_the_newest_events_and_moves_the_window() {
        let s0 = store_with(0);
        let mut cache = WatchCache::new(&s0, 2, Duration::ZERO);
        let s = store_with(4);
        cache.catch_up(&s, Duration::from_secs(10));
        assert_eq!(cache.synced(), 6);
        assert_eq!(cache.window_start(), 4);
        assert!(cache.events_after(3).is_none());
        assert_eq!(cache.events_after(4).unwrap().count(), 2);
    }

    #[test]
    fn a_lagging_cache_applies_events_only_when_they_are_due() {
        let s0 = store_with(0);
        let mut cache = WatchCache::new(&s0, 10, Duration::from_secs(5));
        let s = store_with(3);
        let r = cache.catch_up(&s, Duration::from_secs(6));
        assert_eq!(
            cache.synced(),
            4,
            "events committed at 0s and 1s are due at 6s"
        );
        assert_eq!(r.next_due, Some(Duration::from_secs(7)));
        assert_eq!(cache.list(3, None).len(), 2);
    }

    #[test]
    fn a_paused_cache_stays_at_its_revision() {
        let s0 = store_with(0);
        let mut cache = WatchCache::new(&s0, 10, Duration::ZERO);
        cache.pause();
        cache.catch_up(&store_with(3), Duration::from_secs(60));
        assert_eq!(cache.synced(), 2);
        cache.resume();
        cache.catch_up(&store_with(3), Duration::from_secs(60));
        assert_eq!(cache.synced(), 5);
    }
}
