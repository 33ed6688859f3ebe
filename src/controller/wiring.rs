//! Feeding a controller from informers: every event of a watched resource enqueues the
//! object's key (`namespace/name`, [`object_key`]); events of secondary resources enqueue
//! keys computed from the object (e.g. its controller owner's).

use std::fmt::Debug;
use std::sync::Arc;

use kube::Resource;
use serde::de::DeserializeOwned;

use super::health::Source;
use super::Controller;
use crate::informer::{object_key, HandlerFns, HandlerRegistration, Informer};

impl Controller {
    /// Reconciles the key of every object `informer` adds, updates or deletes (tombstones
    /// included). Readiness waits for this handler's initial list; liveness watches the
    /// informer's health.
    pub fn watch<K>(&self, informer: &Informer<K>) -> HandlerRegistration
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.watch_mapped(informer, |o: &K| vec![object_key(o)])
    }

    /// Reconciles the keys `map` computes for each object `informer` sees (for an update,
    /// those of the old and the new state).
    pub fn watch_mapped<K>(
        &self,
        informer: &Informer<K>,
        map: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) -> HandlerRegistration
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let map = Arc::new(map);
        let (q1, q2, q3) = (
            self.queue().clone(),
            self.queue().clone(),
            self.queue().clone(),
        );
        let (m1, m2, m3) = (map.clone(), map.clone(), map);
        let handler = HandlerFns::new()
            .on_add(move |o: &Arc<K>, _| m1(o).into_iter().for_each(|k| q1.add(k)))
            .on_update(move |old: &Arc<K>, new: &Arc<K>| {
                m2(old).into_iter().chain(m2(new)).for_each(|k| q2.add(k))
            })
            .on_delete(move |d| m3(d.object()).into_iter().for_each(|k| q3.add(k)));
        let registration = informer.add_handler(handler);
        let (reg, inf) = (registration.clone(), informer.clone());
        let name = std::any::type_name::<K>();
        self.shared
            .sources
            .lock()
            .expect("sources lock")
            .push(Source {
                name: name.rsplit("::").next().unwrap_or(name).to_string(),
                synced: Box::new(move || reg.has_synced()),
                failing_since: Box::new(move || inf.failing_since()),
            });
        registration
    }

    /// Reconciles the controller owner of each object `informer` sees: the
    /// `namespace/name` of its ownerReference with `controller: true` and kind `owner_kind`.
    pub fn watch_owned<K>(&self, informer: &Informer<K>, owner_kind: &str) -> HandlerRegistration
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let kind = owner_kind.to_string();
        self.watch_mapped(informer, move |o: &K| owner_keys(o, &kind))
    }
}

/// The key of `obj`'s controller owner of kind `kind`, if any.
pub fn owner_keys<K: Resource>(obj: &K, kind: &str) -> Vec<String> {
    let meta = obj.meta();
    let ns = meta.namespace.as_deref().unwrap_or_default();
    meta.owner_references
        .iter()
        .flatten()
        .filter(|r| r.controller == Some(true) && r.kind == kind)
        .map(|r| match ns {
            "" => r.name.clone(),
            ns => format!("{ns}/{}", r.name),
        })
        .collect()
}
