//! The MVCC store ("etcd"): one global, strictly increasing revision shared by all replicas.
//!
//! Synchronous core: every write bumps the revision, records the new version of the object
//! and appends the watch event in one call, under the caller's lock. Old versions stay
//! readable (list at an exact revision, continue tokens) until [`Store::compact`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::meta::{
    carry_server_fields, finalizers, invalid_name, meta_str, metadata_mut, rv_of, same_content,
    spec_changed, timestamp,
};
use super::resource::Resources;

/// Identifies one object: resource index, namespace (`""` when cluster-scoped), name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// Index into [`Resources`].
    pub res: usize,
    /// Namespace, `""` for cluster-scoped objects.
    pub ns: String,
    /// Object name.
    pub name: String,
}

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object changed.
    Modified,
    /// The object was removed.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed write, as the replicas' watch caches receive it.
#[derive(Debug, Clone)]
pub struct StoreEvent {
    /// The revision this write created.
    pub rev: u64,
    /// When it was committed (time since the UNIX epoch, simulated).
    pub at: Duration,
    /// Which object.
    pub key: ObjKey,
    /// What happened.
    pub kind: EventType,
    /// The object after the write (for DELETED: its last state, with the deletion's RV).
    pub object: Arc<Value>,
    /// The object before the write (for label-selector transitions).
    pub prev: Option<Arc<Value>>,
}

#[derive(Debug, Clone)]
struct Version {
    rev: u64,
    obj: Option<Arc<Value>>,
}

/// Preconditions of a delete (`DeleteOptions.preconditions`).
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    /// Required current resourceVersion.
    pub resource_version: Option<String>,
    /// Required uid.
    pub uid: Option<String>,
}

/// The MVCC store.
#[derive(Debug, Clone)]
pub struct Store {
    resources: Resources,
    rev: u64,
    compacted: u64,
    objects: BTreeMap<ObjKey, Vec<Version>>,
    log: VecDeque<Arc<StoreEvent>>,
    /// Every write ever committed, kept through compaction (checkers' ground truth), when on.
    history: Option<Vec<Arc<StoreEvent>>>,
    rng: ChaCha8Rng,
}

/// A write the caller must publish (notify replicas) after releasing its lock.
pub type Written = Arc<Value>;

impl Store {
    /// An empty store at revision 1 (kube-apiserver never hands out RV 0 for an object).
    pub fn new(resources: Resources, rng: ChaCha8Rng) -> Self {
        Self {
            resources,
            rev: 1,
            compacted: 0,
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            history: None,
            rng,
        }
    }

    /// Starts keeping every write from now on, compaction or not (see [`Store::history`]).
    pub fn record_history(&mut self) {
        self.history.get_or_insert_with(Vec::new);
    }

    /// The writes recorded since [`Store::record_history`], oldest first (empty when off).
    pub fn history(&self) -> &[Arc<StoreEvent>] {
        self.history.as_deref().unwrap_or_default()
    }

    /// The resource types served.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// The resource types served, to add or retire CRDs (`crd.rs`).
    pub(super) fn resources_mut(&mut self) -> &mut Resources {
        &mut self.resources
    }

    /// Keys of the live objects of resource `res` (any namespace), or of every resource in
    /// namespace `ns`, in key order.
    pub(super) fn live_keys(&self, res: Option<usize>, ns: Option<&str>) -> Vec<ObjKey> {
        self.objects
            .iter()
            .filter(|(k, v)| {
                res.is_none_or(|r| k.res == r)
                    && ns.is_none_or(|n| k.ns == n)
                    && v.last().is_some_and(|v| v.obj.is_some())
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Commits `obj` as the new version of a live object, bypassing update rules (the
    /// server's own writes: namespace termination, CRD status).
    pub(super) fn commit_modified(
        &mut self,
        key: &ObjKey,
        obj: Map<String, Value>,
        now: Duration,
    ) -> Written {
        self.commit(key.clone(), Some(obj), EventType::Modified, now)
    }

    /// Removes a live object at once, finalizers or not; `None` if absent.
    pub(super) fn remove_now(&mut self, key: &ObjKey, now: Duration) -> Option<Written> {
        let Value::Object(obj) = (**self.get(key)?).clone() else {
            unreachable!("stored objects are JSON objects")
        };
        Some(self.remove(key, obj, now))
    }

    /// The current revision.
    pub fn revision(&self) -> u64 {
        self.rev
    }

    /// The compacted revision: reads below it answer 410.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Events with a revision greater than `after`, or `None` if compaction already dropped
    /// some of them (the reader must re-initialise from the current state).
    pub fn events_after(&self, after: u64) -> Option<impl Iterator<Item = &Arc<StoreEvent>>> {
        let base = self.log.front().map_or(self.rev, |e| e.rev - 1);
        if after < base {
            return None;
        }
        let skip = usize::try_from(after - base).expect("log index fits usize");
        Some(self.log.iter().skip(skip))
    }

    /// The live object, if any.
    pub fn get(&self, key: &ObjKey) -> Option<&Arc<Value>> {
        self.objects
            .get(key)
            .and_then(|v| v.last())
            .and_then(|v| v.obj.as_ref())
    }

    /// Live objects of a resource (optionally one namespace) as of `rev`, in key order.
    pub fn list_at(
        &self,
        res: usize,
        ns: Option<&str>,
        rev: u64,
    ) -> Result<Vec<(ObjKey, Arc<Value>)>, ApiError> {
        if rev < self.compacted {
            return Err(ApiError::expired(format!(
                "The resourceVersion for the provided list is too old: {rev} < compacted {}",
                self.compacted
            )));
        }
        if rev > self.rev {
            return Err(ApiError::too_large_resource_version(rev, self.rev));
        }
        Ok(self
            .range(res, ns)
            .filter_map(|(k, versions)| {
                let v = versions.iter().rev().find(|v| v.rev <= rev)?;
                Some((k.clone(), v.obj.clone()?))
            })
            .collect())
    }

    /// The current state of every live object (for a replica's cache initialisation).
    pub fn snapshot(&self) -> BTreeMap<ObjKey, Arc<Value>> {
        self.objects
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.last()?.obj.clone()?)))
            .collect()
    }

    fn range<'a>(
        &'a self,
        res: usize,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Vec<Version>)> + 'a {
        let start = ObjKey {
            res,
            ns: ns.unwrap_or("").to_string(),
            name: String::new(),
        };
        self.objects
            .range(start..)
            .take_while(move |(k, _)| k.res == res && ns.is_none_or(|ns| k.ns == ns))
    }

    /// Drops history below `rev` (clamped to the current revision); returns the new compacted
    /// revision.
    pub fn compact(&mut self, rev: u64) -> u64 {
        let rev = rev.min(self.rev);
        if rev <= self.compacted {
            return self.compacted;
        }
        self.compacted = rev;
        self.objects.retain(|_, versions| {
            let keep_from = versions.iter().rposition(|v| v.rev <= rev).unwrap_or(0);
            versions.drain(..keep_from);
            !(versions.len() == 1 && versions[0].obj.is_none())
        });
        while self.log.front().is_some_and(|e| e.rev <= rev) {
            self.log.pop_front();
        }
        rev
    }

    /// Creates an object; `obj` is the request body (already checked to be a JSON object).
    pub fn create(
        &mut self,
        res: usize,
        ns: &str,
        mut obj: Map<String, Value>,
        now: Duration,
    ) -> Result<Written, ApiError> {
        let kind = self.resources.get(res).kind.clone();
        super::meta::merge_string_data(self.resources.get(res), &mut obj);
        let name = self.object_name(&kind, &mut obj)?;
        let key = ObjKey {
            res,
            ns: ns.to_string(),
            name: name.clone(),
        };
        if self.get(&key).is_some() {
            return Err(ApiError::already_exists(&self.plural(res), &name));
        }
        self.check_namespace(ns)?;
        let uid = self.uid();
        let meta = metadata_mut(&mut obj);
        meta.insert("name".into(), json!(name));
        if !ns.is_empty() {
            meta.insert("namespace".into(), json!(ns));
        }
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(timestamp(now)));
        if self.resources.get(res).generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("generateName");
        Ok(self.commit(key, Some(obj), EventType::Added, now))
    }

    /// Replaces an object (PUT, and the result of a merge patch).
    pub fn update(
        &mut self,
        key: &ObjKey,
        mut obj: Map<String, Value>,
        now: Duration,
    ) -> Result<Written, ApiError> {
        let plural = self.plural(key.res);
        let current = self
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&plural, &key.name))?;
        let body_name = meta_str(&obj, "name");
        if body_name != key.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                key.name
            )));
        }
        let wanted_rv = meta_str(&obj, "resourceVersion").to_string();
        if !wanted_rv.is_empty() && wanted_rv != rv_of(&current) {
            return Err(ApiError::conflict(
                &plural,
                &key.name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        carry_server_fields(&current, &mut obj);
        super::meta::merge_string_data(self.resources.get(key.res), &mut obj);
        let finalizing = current["metadata"].get("deletionTimestamp").is_some();
        if finalizing {
            // kube-apiserver's ValidateObjectMetaUpdate: a finalizer added now could hold
            // the object forever, so an object being deleted only ever loses finalizers.
            let old = finalizers(
                current
                    .as_object()
                    .expect("stored objects are JSON objects"),
            );
            let added: Vec<_> = finalizers(&obj)
                .into_iter()
                .filter(|f| !old.contains(f))
                .collect();
            if !added.is_empty() {
                return Err(ApiError::forbidden_field(
                    &self.resources.get(key.res).kind,
                    &key.name,
                    "metadata.finalizers",
                    &format!(
                        "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                        Value::Array(added)
                    ),
                ));
            }
        }
        if finalizing && finalizers(&obj).is_empty() {
            return Ok(self.remove(key, obj, now));
        }
        if same_content(&current, &obj) {
            return Ok(current);
        }
        if self.resources.get(key.res).generation && spec_changed(&current, &obj) {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            metadata_mut(&mut obj).insert("generation".into(), json!(generation));
        }
        Ok(self.commit(key.clone(), Some(obj), EventType::Modified, now))
    }

    /// Creates or replaces an object given with apiVersion/kind/namespace (harness-side
    /// writes: initial objects, workload generators). A replace keeps the server-owned fields
    /// (uid, creationTimestamp, ...) and ignores the given resourceVersion.
    pub fn put(&mut self, obj: Value, now: Duration) -> Result<Written, ApiError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let res = self
            .resources
            .find_kind(&api_version, &kind)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "no resource serves apiVersion {api_version:?} kind {kind:?}"
                ))
            })?;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let namespaced = self.resources.get(res).namespaced;
        if namespaced == ns.is_empty() {
            return Err(ApiError::bad_request(if namespaced {
                format!("{kind} is namespaced: metadata.namespace is required")
            } else {
                format!("{kind} is cluster-scoped: metadata.namespace must be empty")
            }));
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let Value::Object(mut map) = obj else {
            return Err(ApiError::bad_request("an object must be a JSON object"));
        };
        let key = ObjKey {
            res,
            ns: ns.clone(),
            name,
        };
        if self.get(&key).is_some() {
            metadata_mut(&mut map).remove("resourceVersion");
            self.update(&key, map, now)
        } else {
            self.create(res, &ns, map, now)
        }
    }

    /// Deletes an object, or marks it for deletion when it has finalizers.
    pub fn delete(
        &mut self,
        key: &ObjKey,
        pre: &Preconditions,
        now: Duration,
    ) -> Result<Written, ApiError> {
        let plural = self.plural(key.res);
        let current = self
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&plural, &key.name))?;
        check_preconditions(&current, pre, &plural, &key.name)?;
        let Value::Object(mut obj) = (*current).clone() else {
            unreachable!("stored objects are JSON objects")
        };
        if finalizers(&obj).is_empty() {
            return Ok(self.remove(key, obj, now));
        }
        if current["metadata"].get("deletionTimestamp").is_some() {
            return Ok(current);
        }
        let meta = metadata_mut(&mut obj);
        meta.insert("deletionTimestamp".into(), json!(timestamp(now)));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        Ok(self.commit(key.clone(), Some(obj), EventType::Modified, now))
    }

    fn remove(&mut self, key: &ObjKey, obj: Map<String, Value>, now: Duration) -> Written {
        let last = self.commit(key.clone(), Some(obj), EventType::Deleted, now);
        self.objects
            .get_mut(key)
            .expect("just committed")
            .last_mut()
            .expect("just committed")
            .obj = None;
        last
    }

    fn commit(
        &mut self,
        key: ObjKey,
        obj: Option<Map<String, Value>>,
        kind: EventType,
        now: Duration,
    ) -> Written {
        self.rev += 1;
        let rev = self.rev;
        let mut obj = obj.expect("commit of an object");
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rev.to_string()));
        let ty = self.resources.get(key.res);
        obj.insert("apiVersion".into(), json!(ty.api_version()));
        obj.insert("kind".into(), json!(ty.kind));
        let obj = Arc::new(Value::Object(obj));
        let prev = self.get(&key).cloned();
        self.objects.entry(key.clone()).or_default().push(Version {
            rev,
            obj: Some(obj.clone()),
        });
        let event = Arc::new(StoreEvent {
            rev,
            at: now,
            key,
            kind,
            object: obj.clone(),
            prev,
        });
        if let Some(history) = &mut self.history {
            history.push(event.clone());
        }
        self.log.push_back(event);
        obj
    }

    fn plural(&self, res: usize) -> String {
        self.resources.get(res).qualified_plural()
    }

    fn check_namespace(&self, ns: &str) -> Result<(), ApiError> {
        if ns.is_empty() {
            return Ok(());
        }
        let key = ObjKey {
            res: self.resources.namespaces(),
            ns: String::new(),
            name: ns.to_string(),
        };
        match self.get(&key) {
            None => Err(ApiError::not_found("namespaces", ns)),
            Some(n) if n["metadata"].get("deletionTimestamp").is_some() => Err(ApiError::other(
                403,
                "Forbidden",
                format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    fn object_name(
        &mut self,
        kind: &str,
        obj: &mut Map<String, Value>,
    ) -> Result<String, ApiError> {
        let meta = metadata_mut(obj);
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = match (name.is_empty(), generate.is_empty()) {
            (false, _) => name,
            (true, false) => format!("{generate}{}", self.suffix()),
            (true, true) => {
                return Err(ApiError::invalid(
                    kind,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ))
            }
        };
        if let Some(why) = invalid_name(&name) {
            return Err(ApiError::invalid(
                kind,
                &name,
                "metadata.name",
                &format!("Invalid value: {name:?}: {why}"),
            ));
        }
        Ok(name)
    }

    fn suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| ALPHABET[(self.rng.next_u32() as usize) % ALPHABET.len()] as char)
            .collect()
    }

    fn uid(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

pub(super) fn check_preconditions(
    current: &Value,
    pre: &Preconditions,
    plural: &str,
    name: &str,
) -> Result<(), ApiError> {
    if let Some(rv) = &pre.resource_version {
        if rv != rv_of(current) {
            return Err(ApiError::conflict(plural, name, &format!("the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified", rv_of(current))));
        }
    }
    if let Some(uid) = &pre.uid {
        let have = current["metadata"]["uid"].as_str().unwrap_or("");
        if uid != have {
            return Err(ApiError::conflict(plural, name, &format!("the UID in the precondition ({uid}) does not match the UID in record ({have}). The object might have been deleted and then recreated")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn store() -> Store {
        let mut s = Store::new(
            Resources::with_crds(&[]).unwrap(),
            ChaCha8Rng::seed_from_u64(7),
        );
        let ns = json!({"metadata": {"name": "default"}});
        s.create(0, "", ns.as_object().unwrap().clone(), Duration::ZERO)
            .unwrap();
        s
    }

    fn cm(name: &str, v: &str) -> Map<String, Value> {
        json!({"metadata": {"name": name}, "data": {"k": v}})
            .as_object()
            .unwrap()
            .clone()
    }

    fn key(name: &str) -> ObjKey {
        ObjKey {
            res: 3,
            ns: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn every_write_bumps_the_single_global_revision() {
        let mut s = store();
        let a = s
            .create(3, "default", cm("a", "1"), Duration::ZERO)
            .unwrap();
        let b = s
            .create(3, "default", cm("b", "1"), Duration::ZERO)
            .unwrap();
        assert_eq!(rv_of(&a), "3");
        assert_eq!(rv_of(&b), "4");
        assert_eq!(s.revision(), 4);
    }

    #[test]
    fn list_at_an_old_revision_sees_the_old_version_until_compacted() {
        let mut s = store();
        s.create(3, "default", cm("a", "1"), Duration::ZERO)
            .unwrap();
        let mut next = cm("a", "2");
        next["metadata"]["resourceVersion"] = json!("3");
        s.update(&key("a"), next, Duration::ZERO).unwrap();
        let old = s.list_at(3, Some("default"), 3).unwrap();
        assert_eq!(old[0].1["data"]["k"], "1");
        s.compact(4);
        assert_eq!(s.list_at(3, Some("default"), 3).unwrap_err().code, 410);
        assert_eq!(
            s.list_at(3, Some("default"), 4).unwrap()[0].1["data"]["k"],
            "2"
        );
    }

    #[test]
    fn update_with_a_stale_resource_version_is_a_conflict() {
        let mut s = store();
        s.create(3, "default", cm("a", "1"), Duration::ZERO)
            .unwrap();
        let mut stale = cm("a", "2");
        stale["metadata"]["resourceVersion"] = json!("2");
        assert_eq!(
            s.update(&key("a"), stale, Duration::ZERO)
                .unwrap_err()
                .reason,
            "Conflict"
        );
    }

    #[test]
    fn a_secrets_string_data_is_stored_in_data_base64_encoded() {
        let mut s = store();
        let secrets = s.resources().find_kind("v1", "Secret").unwrap();
        let body =
            json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "pw"}});
        let Value::Object(body) = body else {
            unreachable!()
        };
        let w = s.create(secrets, "default", body, Duration::ZERO).unwrap();
        let stored = &w;
        assert_eq!(stored["data"], json!({"a": "eA==", "b": "cHc="}));
        assert!(stored.get("stringData").is_none());
    }

    #[test]
    fn a_no_op_update_does_not_bump_the_revision() {
        let mut s = store();
        s.create(3, "default", cm("a", "1"), Duration::ZERO)
            .unwrap();
        s.update(&key("a"), cm("a", "1"), Duration::ZERO).unwrap();
        assert_eq!(s.revision(), 3);
    }

    #[test]
    fn finalizers_hold_deletion_until_the_last_one_is_removed() {
        let mut s = store();
        let mut obj = cm("a", "1");
        obj["metadata"]["finalizers"] = json!(["x/y"]);
        s.create(3, "default", obj, Duration::ZERO).unwrap();
        let marked = s
            .delete(&key("a"), &Preconditions::default(), Duration::from_secs(5))
            .unwrap();
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert!(s.get(&key("a")).is_some());
        let Value::Object(mut cleared) = (*marked).clone() else {
            panic!()
        };
        cleared["metadata"]["finalizers"] = json!([]);
        s.update(&key("a"), cleared, Duration::from_secs(6))
            .unwrap();
        assert!(s.get(&key("a")).is_none());
        let kinds: Vec<_> = s.events_after(3).unwrap().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventType::Modified, EventType::Deleted]);
    }

    #[test]
    fn create_in_a_missing_namespace_is_not_found() {
        let mut s = store();
        let e = s
            .create(3, "nope", cm("a", "1"), Duration::ZERO)
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (404, "namespaces \"nope\" not found")
        );
    }

    #[test]
    fn generation_moves_only_when_non_metadata_content_changes() {
        // Pods keep a generation (kube-apiserver 1.34); a label change leaves it, a spec
        // change bumps it.
        let mut s = store();
        let pod = |image: &str| {
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": image}]}})
                .as_object()
                .unwrap()
                .clone()
        };
        s.create(2, "default", pod("a"), Duration::ZERO).unwrap();
        let pod_key = ObjKey { res: 2, ..key("p") };
        let mut labelled = pod("a");
        labelled["metadata"]["labels"] = json!({"x": "y"});
        let v = s.update(&pod_key, labelled, Duration::ZERO).unwrap();
        assert_eq!(v["metadata"]["generation"], 1);
        let v = s.update(&pod_key, pod("b"), Duration::ZERO).unwrap();
        assert_eq!(v["metadata"]["generation"], 2);
    }

    #[test]
    fn config_maps_have_no_generation_as_in_kube_apiserver() {
        let mut s = store();
        let v = s
            .create(3, "default", cm("a", "1"), Duration::ZERO)
            .unwrap();
        assert!(v["metadata"].get("generation").is_none());
        let v = s.update(&key("a"), cm("a", "2"), Duration::ZERO).unwrap();
        assert!(v["metadata"].get("generation").is_none());
    }

    #[test]
    fn put_creates_then_replaces_keeping_the_uid() {
        // A put of an absent object creates it; a second put replaces it in place, with the
        // server-owned uid carried over and the stale resourceVersion of the body ignored.
        let mut s = store();
        let cm = |v: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "a", "namespace": "default", "resourceVersion": "1"},
                   "data": {"k": v}})
        };
        let created = s.put(cm("1"), Duration::ZERO).unwrap();
        let replaced = s.put(cm("2"), Duration::ZERO).unwrap();
        assert_eq!(replaced["data"]["k"], "2");
        assert_eq!(replaced["metadata"]["uid"], created["metadata"]["uid"]);
        assert_eq!(
            (rv_of(&created), rv_of(&replaced), s.revision()),
            ("3", "4", 4)
        );
    }

    #[test]
    fn put_of_a_namespaced_kind_without_namespace_names_the_problem() {
        let mut s = store();
        let e = s
            .put(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
                Duration::ZERO,
            )
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                400,
                "ConfigMap is namespaced: metadata.namespace is required"
            )
        );
        assert_eq!(s.revision(), 2, "nothing was written");
    }
}
