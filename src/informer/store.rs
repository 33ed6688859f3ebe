//! The informer's store: a synchronous, read-mostly cache of objects by key with indexes.
//!
//! Keys are client-go's `namespace/name` (`name` for cluster-scoped objects). Writes come only
//! from the reflector, through [`Store::apply`], which returns the notifications the change
//! implies; everything else reads. The `namespace` index is built in; custom index functions
//! map an object to any number of index values.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kube::Resource;

/// The built-in index of objects by namespace.
pub const NAMESPACE_INDEX: &str = "namespace";

/// An index function: the index values of an object.
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// client-go's `MetaNamespaceKeyFunc`: `namespace/name`, or `name` without a namespace.
pub fn object_key<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// The final state of an object whose deletion was not observed (it vanished between two
/// lists): the key and the last state the store held.
#[derive(Debug, PartialEq)]
pub struct DeletedFinalStateUnknown<K> {
    /// `namespace/name`.
    pub key: String,
    /// The last known state.
    pub obj: Arc<K>,
}

impl<K> Clone for DeletedFinalStateUnknown<K> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            obj: self.obj.clone(),
        }
    }
}

/// What `on_delete` receives.
#[derive(Debug, PartialEq)]
pub enum DeletedObject<K> {
    /// The deletion was watched: the object's final state.
    Object(Arc<K>),
    /// The object disappeared between lists: a tombstone with its last known state.
    Unknown(DeletedFinalStateUnknown<K>),
}

impl<K> Clone for DeletedObject<K> {
    fn clone(&self) -> Self {
        match self {
            DeletedObject::Object(o) => DeletedObject::Object(o.clone()),
            DeletedObject::Unknown(t) => DeletedObject::Unknown(t.clone()),
        }
    }
}

impl<K> DeletedObject<K> {
    /// The object (final or last known state).
    pub fn object(&self) -> &Arc<K> {
        match self {
            DeletedObject::Object(o) => o,
            DeletedObject::Unknown(t) => &t.obj,
        }
    }
}

/// A change the reflector applies.
#[derive(Debug)]
pub(crate) enum Change<K> {
    /// A watched ADDED or MODIFIED.
    Upsert(K),
    /// A watched DELETED.
    Delete(K),
    /// A complete list; `initial` marks the informer's first one.
    Replace { items: Vec<K>, initial: bool },
}

/// A notification for handlers.
#[derive(Debug)]
pub(crate) enum Notification<K> {
    Add { obj: Arc<K>, initial: bool },
    Update { old: Arc<K>, new: Arc<K> },
    Delete(DeletedObject<K>),
}

impl<K> Clone for Notification<K> {
    fn clone(&self) -> Self {
        match self {
            Notification::Add { obj, initial } => Notification::Add {
                obj: obj.clone(),
                initial: *initial,
            },
            Notification::Update { old, new } => Notification::Update {
                old: old.clone(),
                new: new.clone(),
            },
            Notification::Delete(d) => Notification::Delete(d.clone()),
        }
    }
}

/// Why an indexer could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an index named {0:?} already exists")]
pub struct IndexExists(pub String);

struct Inner<K> {
    items: BTreeMap<String, Arc<K>>,
    indexers: BTreeMap<String, IndexFn<K>>,
    /// index name -> value -> keys.
    indices: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

/// The informer's cache (cheap to clone; clones share the data).
pub struct Store<K> {
    inner: Arc<RwLock<Inner<K>>>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K> std::fmt::Debug for Store<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("Store")
            .field("len", &inner.items.len())
            .field("indexes", &inner.indexers.keys())
            .finish()
    }
}

impl<K> Store<K> {
    fn read(&self) -> RwLockReadGuard<'_, Inner<K>> {
        self.inner.read().expect("store lock poisoned")
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner<K>> {
        self.inner.write().expect("store lock poisoned")
    }
}

impl<K: Resource + 'static> Default for Store<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Resource + 'static> Store<K> {
    /// An empty store with the `namespace` index.
    pub fn new() -> Self {
        let namespace: IndexFn<K> = Arc::new(|o: &K| o.meta().namespace.iter().cloned().collect());
        let inner = Inner {
            items: BTreeMap::new(),
            indexers: BTreeMap::from([(NAMESPACE_INDEX.to_string(), namespace)]),
            indices: BTreeMap::from([(NAMESPACE_INDEX.to_string(), BTreeMap::new())]),
        };
        Self {
            inner: Arc::new(RwLock::new(inner)),
        }
    }

    /// The object under `key` (`namespace/name`).
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.read().items.get(key).cloned()
    }

    /// All objects, in key order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().items.values().cloned().collect()
    }

    /// All keys, in order.
    pub fn keys(&self) -> Vec<String> {
        self.read().items.keys().cloned().collect()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.read().items.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.read().items.is_empty()
    }

    /// Objects whose index `index` contains `value`, in key order (empty for an unknown index).
    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<K>> {
        let inner = self.read();
        let Some(keys) = inner.indices.get(index).and_then(|i| i.get(value)) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| inner.items.get(k).cloned())
            .collect()
    }

    /// The values present in index `index`.
    pub fn index_values(&self, index: &str) -> Vec<String> {
        self.read()
            .indices
            .get(index)
            .map(|i| i.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds an index (also over the objects already stored).
    pub fn add_indexer(
        &self,
        name: &str,
        f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) -> Result<(), IndexExists> {
        let mut inner = self.write();
        if inner.indexers.contains_key(name) {
            return Err(IndexExists(name.to_string()));
        }
        let f: IndexFn<K> = Arc::new(f);
        let mut index: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (key, obj) in &inner.items {
            for v in f(obj) {
                index.entry(v).or_default().insert(key.clone());
            }
        }
        inner.indexers.insert(name.to_string(), f);
        inner.indices.insert(name.to_string(), index);
        Ok(())
    }

    /// Applies a change and returns the notifications it implies, under one write lock.
    #[cfg(test)]
    pub(crate) fn apply(&self, change: Change<K>) -> Vec<Notification<K>> {
        self.apply_then(change, |_| ())
    }

    /// Like [`apply`](Self::apply), and runs `then` while still holding the write lock (so
    /// that dispatch order matches store order for every handler).
    pub(crate) fn apply_then(
        &self,
        change: Change<K>,
        then: impl FnOnce(&[Notification<K>]),
    ) -> Vec<Notification<K>> {
        let mut inner = self.write();
        let out = match change {
            Change::Upsert(obj) => {
                let obj = Arc::new(obj);
                match inner.put(object_key(&*obj), obj.clone()) {
                    Some(old) => vec![Notification::Update { old, new: obj }],
                    None => vec![Notification::Add {
                        obj,
                        initial: false,
                    }],
                }
            }
            Change::Delete(obj) => {
                let obj = Arc::new(obj);
                inner.remove(&object_key(&*obj));
                vec![Notification::Delete(DeletedObject::Object(obj))]
            }
            Change::Replace { items, initial } => inner.replace(items, initial),
        };
        then(&out);
        out
    }

    /// Runs `f` over the current objects under the read lock (synthetic adds for a handler
    /// registered late, resyncs): no change can interleave.
    pub(crate) fn with_items<R>(&self, f: impl FnOnce(&BTreeMap<String, Arc<K>>) -> R) -> R {
        f(&self.read().items)
    }
}

impl<K: Resource> Inner<K> {
    fn put(&mut self, key: String, obj: Arc<K>) -> Option<Arc<K>> {
        let old = self.items.insert(key.clone(), obj.clone());
        if let Some(old) = &old {
            self.unindex(&key, old);
        }
        self.index(&key, &obj);
        old
    }

    fn remove(&mut self, key: &str) -> Option<Arc<K>> {
        let old = self.items.remove(key)?;
        self.unindex(key, &old);
        Some(old)
    }

    fn index(&mut self, key: &str, obj: &K) {
        for (name, f) in &self.indexers {
            let index = self.indices.entry(name.clone()).or_default();
            for v in f(obj) {
                index.entry(v).or_default().insert(key.to_string());
            }
        }
    }

    fn unindex(&mut self, key: &str, obj: &K) {
        for (name, f) in &self.indexers {
            let Some(index) = self.indices.get_mut(name) else {
                continue;
            };
            for v in f(obj) {
                if let Some(keys) = index.get_mut(&v) {
                    keys.remove(key);
                    if keys.is_empty() {
                        index.remove(&v);
                    }
                }
            }
        }
    }

    /// A relist: adds and updates for the listed objects (in list order), then tombstones for
    /// the objects that vanished (in key order).
    fn replace(&mut self, items: Vec<K>, initial: bool) -> Vec<Notification<K>> {
        let mut out = Vec::with_capacity(items.len());
        let mut listed = BTreeSet::new();
        for obj in items {
            let key = object_key(&obj);
            let obj = Arc::new(obj);
            listed.insert(key.clone());
            match self.put(key.clone(), obj.clone()) {
                // The same name, another object: deleted and created again while the watch
                // was down. Handlers see the old one go and the new one come.
                Some(old) if uid(&*old) != uid(&*obj) => {
                    let tombstone = DeletedFinalStateUnknown { key, obj: old };
                    out.push(Notification::Delete(DeletedObject::Unknown(tombstone)));
                    out.push(Notification::Add { obj, initial });
                }
                Some(old) => out.push(Notification::Update { old, new: obj }),
                None => out.push(Notification::Add { obj, initial }),
            }
        }
        let gone: Vec<String> = self
            .items
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            let obj = self.remove(&key).expect("key listed from the map");
            out.push(Notification::Delete(DeletedObject::Unknown(
                DeletedFinalStateUnknown { key, obj },
            )));
        }
        out
    }
}

fn uid<K: Resource>(o: &K) -> Option<&str> {
    o.meta().uid.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(ns: &str, name: &str, app: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"app": app}}
        }))
        .unwrap()
    }

    fn kinds(n: &[Notification<ConfigMap>]) -> Vec<String> {
        n.iter()
            .map(|n| match n {
                Notification::Add { obj, initial } => {
                    format!("add {} {initial}", object_key(&**obj))
                }
                Notification::Update { new, .. } => format!("update {}", object_key(&**new)),
                Notification::Delete(DeletedObject::Object(o)) => {
                    format!("delete {}", object_key(&**o))
                }
                Notification::Delete(DeletedObject::Unknown(t)) => format!("tombstone {}", t.key),
            })
            .collect()
    }

    #[test]
    fn upserts_and_deletes_notify_and_keep_the_namespace_index() {
        // Each change returns exactly the notification client-go would deliver.
        let s = Store::new();
        assert_eq!(
            kinds(&s.apply(Change::Upsert(cm("a", "x", "web")))),
            ["add a/x false"]
        );
        assert_eq!(
            kinds(&s.apply(Change::Upsert(cm("a", "x", "db")))),
            ["update a/x"]
        );
        assert_eq!(
            kinds(&s.apply(Change::Upsert(cm("b", "y", "web")))),
            ["add b/y false"]
        );
        assert_eq!(s.by_index(NAMESPACE_INDEX, "a").len(), 1);
        assert_eq!(s.index_values(NAMESPACE_INDEX), ["a", "b"]);
        assert_eq!(
            kinds(&s.apply(Change::Delete(cm("a", "x", "db")))),
            ["delete a/x"]
        );
        assert!(s.by_index(NAMESPACE_INDEX, "a").is_empty());
        assert_eq!(s.keys(), ["b/y"]);
    }

    #[test]
    fn a_replace_adds_updates_and_tombstones_what_vanished() {
        // A relist diffs against the store: vanished keys become DeletedFinalStateUnknown.
        let s = Store::new();
        let first = s.apply(Change::Replace {
            items: vec![cm("a", "x", "1"), cm("a", "y", "1")],
            initial: true,
        });
        assert_eq!(kinds(&first), ["add a/x true", "add a/y true"]);
        let second = s.apply(Change::Replace {
            items: vec![cm("a", "y", "2"), cm("a", "z", "2")],
            initial: false,
        });
        assert_eq!(
            kinds(&second),
            ["update a/y", "add a/z false", "tombstone a/x"]
        );
        match &second[2] {
            Notification::Delete(DeletedObject::Unknown(t)) => {
                assert_eq!(t.obj.metadata.labels.as_ref().unwrap()["app"], "1")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_replace_that_finds_another_uid_under_a_key_tombstones_the_old_and_adds_the_new() {
        // Deleted and re-created while the watch was down: not an update of one object.
        let with_uid = |uid: &str| -> ConfigMap {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "x", "namespace": "a", "uid": uid}
            }))
            .unwrap()
        };
        let s = Store::new();
        s.apply(Change::Replace {
            items: vec![with_uid("u1")],
            initial: true,
        });
        let same = s.apply(Change::Replace {
            items: vec![with_uid("u1")],
            initial: false,
        });
        assert_eq!(kinds(&same), ["update a/x"]);
        let other = s.apply(Change::Replace {
            items: vec![with_uid("u2")],
            initial: false,
        });
        assert_eq!(kinds(&other), ["tombstone a/x", "add a/x false"]);
        match &other[0] {
            Notification::Delete(DeletedObject::Unknown(t)) => {
                assert_eq!(t.obj.metadata.uid.as_deref(), Some("u1"))
            }
            n => panic!("{n:?}"),
        }
        assert_eq!(s.get("a/x").unwrap().metadata.uid.as_deref(), Some("u2"));
    }

    #[test]
    fn custom_indexers_cover_existing_objects_and_follow_changes() {
        // An index added late indexes what is stored; updates move keys between values.
        let s = Store::new();
        s.apply(Change::Upsert(cm("a", "x", "web")));
        let by_app = |o: &ConfigMap| {
            o.metadata
                .labels
                .iter()
                .flat_map(|l| l.get("app").cloned())
                .collect()
        };
        s.add_indexer("app", by_app).unwrap();
        assert_eq!(
            s.add_indexer("app", |_: &ConfigMap| vec![]),
            Err(IndexExists("app".into()))
        );
        assert_eq!(s.by_index("app", "web").len(), 1);
        s.apply(Change::Upsert(cm("a", "x", "db")));
        assert!(s.by_index("app", "web").is_empty());
        assert_eq!(s.by_index("app", "db").len(), 1);
        assert!(s.by_index("nope", "db").is_empty());
    }
}
