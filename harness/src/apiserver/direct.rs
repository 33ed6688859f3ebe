//! Reads and writes that bypass HTTP: initial objects, workload generators, checkers and
//! tests talk to the store directly, with the same rules as the API.

use std::sync::Arc;

use serde_json::Value;

use super::error::ApiError;
use super::store::{ObjKey, Preconditions};
use super::{ApiServer, ResourceType};

impl ApiServer {
    /// Writes an object directly into the store (initial objects, workload generators):
    /// created if absent, replaced otherwise. Returns the stored object.
    pub fn put_object(&self, obj: Value) -> Result<Arc<Value>, ApiError> {
        let now = self.now();
        self.write_and_poke(|store| store.put(obj, now))
    }

    /// Creates an object as a `POST` would (a CRD starts serving its resource), for objects
    /// preloaded by `kube-chaos serve --crd/--objects`. Returns the stored object.
    pub fn create_object(&self, obj: Value) -> Result<Arc<Value>, ApiError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let res = self
            .read(|store| store.resources().find_kind(&api_version, &kind))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "no resource serves apiVersion {api_version:?} kind {kind:?}"
                ))
            })?;
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
        let ns = ns.or_else(|| self.resource(res).namespaced.then(|| "default".to_string()));
        self.create(res, ns, obj, &Default::default())
    }

    /// Deletes an object straight from the store (workload generators, tests), honouring
    /// finalizers like an API delete. Returns the deleted (or deletion-marked) object.
    pub fn delete_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let now = self.now();
        let res = self
            .read(|store| store.resources().find_kind(api_version, kind))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "no resource serves apiVersion {api_version:?} kind {kind:?}"
                ))
            })?;
        let key = ObjKey {
            res,
            ns: namespace.to_string(),
            name: name.to_string(),
        };
        self.write_and_poke(|store| store.delete(&key, &Preconditions::default(), now))
    }

    /// One live object, read from the store (for workload generators and checkers).
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        self.read(|store| {
            let res = store.resources().find_kind(api_version, kind)?;
            let key = ObjKey {
                res,
                ns: namespace.to_string(),
                name: name.to_string(),
            };
            store.get(&key).cloned()
        })
    }

    /// The live objects of a resource, read consistently from the store (for checkers).
    pub fn objects(&self, api_version: &str, kind: &str) -> Vec<Arc<Value>> {
        self.read(|store| {
            let Some(res) = store.resources().find_kind(api_version, kind) else {
                return Vec::new();
            };
            store
                .list_at(res, None, store.revision())
                .expect("the current revision is readable")
                .into_iter()
                .map(|(_, v)| v)
                .collect()
        })
    }

    /// The type serving `api_version` `kind`, if the cluster serves it.
    pub fn served(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        let res = self.read(|store| store.resources().find_kind(api_version, kind))?;
        Some(self.resource(res))
    }

    /// Every live object of every served kind (CRDs and namespaces included), in the order of
    /// the served kinds, then store order (for checkers that judge the whole cluster).
    pub fn all_objects(&self) -> Vec<Arc<Value>> {
        self.read(|store| {
            let rev = store.revision();
            let ids: Vec<usize> = store.resources().ids().collect();
            ids.into_iter()
                .filter_map(|res| store.list_at(res, None, rev).ok())
                .flatten()
                .map(|(_, v)| v)
                .collect()
        })
    }
}
