//! The garbage collector of kube-controller-manager, in the simulated cluster: objects whose
//! every owner is gone are deleted, and the `orphan` and `foregroundDeletion` finalizers that
//! a delete's propagation policy put on an owner (`propagation.rs`) are worked off.
//!
//! Like the real one (`pkg/controller/garbagecollector`), it learns the cluster from the
//! store's events (its "graph": owner uid -> dependents), acts a little later
//! ([`ClusterConfig::gc_delay`](super::ClusterConfig::gc_delay), its informers' latency) and
//! judges each item with live reads:
//! - an ownerReference is *dangling* when no object of its kind and name exists (in the
//!   dependent's namespace for a namespaced kind) or that object has another uid — so an
//!   owner that never existed counts as gone; *waiting* when the owner is being deleted in
//!   the foreground; *solid* otherwise (also when its kind is not served, or a cluster-scoped
//!   dependent names a namespaced kind: the real collector cannot resolve those and keeps
//!   the dependent);
//! - with a solid owner left, dangling and waiting references are removed; without one,
//!   the dependent is deleted: in the foreground if an owner waits for it and it has
//!   dependents of its own, else as its own GC finalizer says, else in the background.
//!   Finalizers of dependents hold them as any delete does;
//! - an owner being deleted with `orphan` has the references to it removed from its
//!   dependents, then loses the finalizer; one with `foregroundDeletion` loses it once no
//!   dependent with `blockOwnerDeletion` is left.
//!
//! Work is taken in order of when it is due, then of key, so the same seed deletes in the
//! same order at the same times. In the simulation
//! every replica host runs [`ApiServer::run_garbage_collector`] over the one shared graph
//! (whichever wakes first does the work, as the leader of an HA controller-manager would);
//! `kube-chaos serve` runs it on the wall clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::object::after_write;
use super::propagation::{self, Propagation, FOREGROUND, ORPHAN};
use super::store::{EventType, ObjKey, Preconditions, Store, StoreEvent};
use super::ApiServer;

/// The collector's graph and work queue.
#[derive(Debug, Default)]
pub(super) struct Collector {
    /// The store revision observed up to.
    cursor: u64,
    /// Owner uid -> the objects that name it in an ownerReference.
    dependents: BTreeMap<String, BTreeSet<ObjKey>>,
    /// Object -> the owner uids it names.
    owners: BTreeMap<ObjKey, Vec<String>>,
    /// Uid -> key of the objects being deleted in the foreground.
    foreground: BTreeMap<String, ObjKey>,
    /// Items to look at, each when it is due (an event about it plus the delay), in the
    /// order they are taken.
    dirty: BTreeSet<(Duration, ObjKey)>,
    /// The collector's delay (what "due" adds to an event's time).
    delay: Duration,
    /// The time of the event being observed.
    at: Duration,
}

/// How an ownerReference stands.
enum Owner {
    Solid,
    Dangling,
    Waiting,
}

fn uid_of(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or("")
}

fn refs_of(obj: &Value) -> &[Value] {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v == f))
}

fn deleting(obj: &Value) -> bool {
    obj["metadata"].get("deletionTimestamp").is_some()
}

/// Being deleted in the foreground (`isDeletingDependents`).
fn deleting_dependents(obj: &Value) -> bool {
    deleting(obj) && has_finalizer(obj, FOREGROUND)
}

impl Collector {
    /// A collector acting `delay` after each event.
    pub(super) fn new(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// Reads the store's events since the last look (rebuilding the graph at `now` when
    /// compaction dropped some); true if they gave it work.
    pub(super) fn observe(&mut self, s: &Store, now: Duration) -> bool {
        if self.cursor == s.revision() {
            return false;
        }
        let queued = self.dirty.len();
        let events: Option<Vec<Arc<StoreEvent>>> =
            s.events_after(self.cursor).map(|e| e.cloned().collect());
        match events {
            Some(events) => events.iter().for_each(|ev| {
                self.at = ev.at;
                self.observe_event(s, ev);
            }),
            None => self.resync(s, now),
        }
        self.cursor = s.revision();
        self.dirty.len() > queued
    }

    /// When the earliest pending item is due.
    pub(super) fn next_due(&self) -> Option<Duration> {
        self.dirty.first().map(|(due, _)| *due)
    }

    /// Rebuilds the graph from the store's current state (a relist).
    fn resync(&mut self, s: &Store, now: Duration) {
        *self = Self::new(self.delay);
        self.at = now;
        for (key, object) in s.snapshot() {
            self.observe_event(
                s,
                &StoreEvent {
                    rev: 0,
                    at: Duration::ZERO,
                    key,
                    kind: EventType::Added,
                    object,
                    prev: None,
                },
            );
        }
    }

    /// Updates the graph for one event and queues what it may have made garbage: dependents
    /// of an owner that went, a dependent whose owners are not all solid now, an owner
    /// being deleted with a GC finalizer (and its dependents).
    fn observe_event(&mut self, s: &Store, ev: &StoreEvent) {
        let (key, obj) = (&ev.key, &*ev.object);
        let gone = ev.kind == EventType::Deleted;
        let uid = uid_of(obj).to_string();
        let named: Vec<String> = match gone {
            true => Vec::new(),
            false => refs_of(obj)
                .iter()
                .filter_map(|r| r["uid"].as_str().map(str::to_string))
                .collect(),
        };
        let old = self.owners.remove(key).unwrap_or_default();
        for u in &old {
            if let Some(deps) = self.dependents.get_mut(u) {
                deps.remove(key);
                if deps.is_empty() {
                    self.dependents.remove(u);
                }
            }
        }
        // An owner waiting in the foreground looks again when a dependent changes or goes.
        let waiting: Vec<ObjKey> = old
            .iter()
            .chain(&named)
            .filter_map(|u| self.foreground.get(u).cloned())
            .collect();
        waiting.iter().for_each(|owner| self.mark(owner));
        if !named.is_empty() {
            for u in &named {
                self.dependents
                    .entry(u.clone())
                    .or_default()
                    .insert(key.clone());
            }
            self.owners.insert(key.clone(), named);
            let live = s.get(key).is_some_and(|o| uid_of(o) == uid);
            if live
                && refs_of(obj)
                    .iter()
                    .any(|r| !matches!(classify(s, key, r), Owner::Solid))
            {
                self.mark(key);
            }
        }
        if gone {
            self.foreground.remove(&uid);
            self.mark_dependents(&uid);
            return;
        }
        if deleting_dependents(obj) {
            self.foreground.insert(uid.clone(), key.clone());
            self.mark(key);
            self.mark_dependents(&uid);
        } else {
            self.foreground.remove(&uid);
        }
        if deleting(obj) && has_finalizer(obj, ORPHAN) {
            self.mark(key);
        }
    }

    /// Queues `key`, due `delay` after the event being observed.
    fn mark(&mut self, key: &ObjKey) {
        self.dirty.insert((self.at + self.delay, key.clone()));
    }

    fn mark_dependents(&mut self, uid: &str) {
        for dep in self.dependents_of(uid) {
            self.mark(&dep);
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<ObjKey> {
        self.dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Works off every item due by `now`, in (due, key) order; true if anything was written.
    pub(super) fn collect(&mut self, s: &mut Store, now: Duration) -> bool {
        let before = s.revision();
        while let Some((due, key)) = self.dirty.first().cloned() {
            if due > now {
                break;
            }
            self.dirty.pop_first();
            self.attempt(s, &key, now);
        }
        s.revision() != before
    }

    /// One item (`attemptToDeleteItem`, and the orphan and foreground finalizers).
    fn attempt(&self, s: &mut Store, key: &ObjKey, now: Duration) {
        let Some(obj) = s.get(key).cloned() else {
            return;
        };
        if deleting(&obj) {
            if has_finalizer(&obj, ORPHAN) {
                self.orphan_dependents(s, key, &obj, now);
            } else if has_finalizer(&obj, FOREGROUND) {
                self.finish_foreground(s, key, &obj, now);
            }
            return;
        }
        let refs = refs_of(&obj);
        if refs.is_empty() {
            return;
        }
        let (mut solid, mut gone) = (false, BTreeSet::new());
        let mut waiting = false;
        for r in refs {
            match classify(s, key, r) {
                Owner::Solid => solid = true,
                Owner::Dangling => {
                    gone.insert(r["uid"].as_str().unwrap_or("").to_string());
                }
                Owner::Waiting => {
                    waiting = true;
                    gone.insert(r["uid"].as_str().unwrap_or("").to_string());
                }
            }
        }
        if solid {
            if !gone.is_empty() {
                edit(s, key, &obj, now, |m| {
                    retain_refs(m, |r| !gone.contains(r["uid"].as_str().unwrap_or("")));
                });
            }
            return;
        }
        let policy = if waiting && !self.dependents_of(uid_of(&obj)).is_empty() {
            self.unblock_if_circular(s, key, &obj, now);
            Propagation::Foreground
        } else if has_finalizer(&obj, ORPHAN) {
            Propagation::Orphan
        } else if has_finalizer(&obj, FOREGROUND) {
            Propagation::Foreground
        } else {
            Propagation::Background
        };
        let pre = Preconditions {
            uid: Some(uid_of(&obj).to_string()),
            ..Default::default()
        };
        if let Ok(written) = propagation::delete(s, key, &pre, Some(policy), now) {
            after_write(s, key, &written, now);
        }
    }

    /// A dependent waiting owner's item whose own dependent is also deleting in the
    /// foreground would wait for each other forever: its references stop blocking (the real
    /// collector's circle breaker).
    fn unblock_if_circular(&self, s: &mut Store, key: &ObjKey, obj: &Value, now: Duration) {
        let circular = self
            .dependents_of(uid_of(obj))
            .iter()
            .any(|d| s.get(d).is_some_and(|d| deleting_dependents(d)));
        if circular {
            edit(s, key, obj, now, |m| {
                if let Some(refs) = m["metadata"]["ownerReferences"].as_array_mut() {
                    for r in refs {
                        r["blockOwnerDeletion"] = Value::Bool(false);
                    }
                }
            });
        }
    }

    /// `orphan`: the dependents lose their references to the owner, then the finalizer goes.
    fn orphan_dependents(&self, s: &mut Store, key: &ObjKey, obj: &Value, now: Duration) {
        let uid = Value::String(uid_of(obj).to_string());
        for dep in self.dependents_of(uid_of(obj)) {
            if let Some(d) = s.get(&dep).cloned() {
                edit(s, &dep, &d, now, |m| retain_refs(m, |r| r["uid"] != uid));
            }
        }
        remove_finalizer(s, key, obj, ORPHAN, now);
    }

    /// `foregroundDeletion`: the finalizer goes once no dependent blocks the owner.
    fn finish_foreground(&self, s: &mut Store, key: &ObjKey, obj: &Value, now: Duration) {
        let uid = uid_of(obj);
        let blocked = self.dependents_of(uid).iter().any(|dep| {
            s.get(dep).is_some_and(|d| {
                refs_of(d)
                    .iter()
                    .any(|r| r["uid"] == uid && r["blockOwnerDeletion"] == true)
            })
        });
        if !blocked {
            remove_finalizer(s, key, obj, FOREGROUND, now);
        }
    }
}

/// How dependent `dep`'s reference `r` stands, by live reads (`isDangling`).
fn classify(s: &Store, dep: &ObjKey, r: &Value) -> Owner {
    let api_version = r["apiVersion"].as_str().unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = r["kind"].as_str().unwrap_or("");
    let Some(res) = s.resources().find_group_kind(group, kind) else {
        return Owner::Solid;
    };
    let ns = match s.resources().get(res).namespaced {
        true if dep.ns.is_empty() => return Owner::Solid,
        true => dep.ns.clone(),
        false => String::new(),
    };
    let name = r["name"].as_str().unwrap_or("").to_string();
    match s.get(&ObjKey { res, ns, name }) {
        Some(o) if uid_of(o) == r["uid"].as_str().unwrap_or("") => {
            if deleting_dependents(o) {
                Owner::Waiting
            } else {
                Owner::Solid
            }
        }
        _ => Owner::Dangling,
    }
}

fn retain_refs(m: &mut Value, keep: impl Fn(&Value) -> bool) {
    let meta = &mut m["metadata"];
    if let Some(refs) = meta["ownerReferences"].as_array_mut() {
        refs.retain(|r| keep(r));
        if refs.is_empty() {
            meta.as_object_mut().map(|o| o.remove("ownerReferences"));
        }
    }
}

fn remove_finalizer(s: &mut Store, key: &ObjKey, obj: &Value, f: &str, now: Duration) {
    edit(s, key, obj, now, |m| {
        if let Some(fins) = m["metadata"]["finalizers"].as_array_mut() {
            fins.retain(|v| v != f);
        }
    });
}

/// Updates `key` (currently `obj`) as `change` says, as the collector's patches do.
fn edit(s: &mut Store, key: &ObjKey, obj: &Value, now: Duration, change: impl FnOnce(&mut Value)) {
    let mut next = obj.clone();
    change(&mut next);
    let Value::Object(map) = next else {
        unreachable!("stored objects are JSON objects")
    };
    if let Ok(written) = s.update(key, map, now) {
        after_write(s, key, &written, now);
    }
}

impl ApiServer {
    /// Runs the garbage collector for as long as the host lives: works off what each write
    /// set off [`ClusterConfig::gc_delay`](super::ClusterConfig::gc_delay) after it (each
    /// level of a cascade is one more delay).
    pub async fn run_garbage_collector(self) {
        let mut work = self.shared.gc_work.subscribe();
        loop {
            let now = self.now();
            let due = self.lock().gc.next_due();
            match due {
                Some(due) if due <= now => {
                    self.collect_garbage();
                }
                Some(due) => tokio::time::sleep(due - now).await,
                None => work.changed().await,
            }
        }
    }

    /// One pass of the garbage collector over what is due now; true if it wrote anything.
    fn collect_garbage(&self) -> bool {
        let now = self.now();
        let wrote = {
            let mut st = self.lock();
            let st = &mut *st;
            st.gc.collect(&mut st.store, now)
        };
        if wrote {
            self.poke();
        }
        wrote
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resource::Resources;
    use rand::SeedableRng;
    use serde_json::json;

    const MS: Duration = Duration::from_millis(1);

    fn store() -> Store {
        let mut s = Store::new(
            Resources::with_crds(&[]).unwrap(),
            rand_chacha::ChaCha8Rng::seed_from_u64(7),
        );
        let ns = json!({"metadata": {"name": "default"}});
        s.create(0, "", ns.as_object().unwrap().clone(), Duration::ZERO)
            .unwrap();
        s
    }

    fn key(name: &str) -> ObjKey {
        ObjKey {
            res: 3,
            ns: "default".into(),
            name: name.into(),
        }
    }

    /// Creates ConfigMap `name` owned by `owners` (blocking); returns its uid.
    fn cm(s: &mut Store, name: &str, owners: &[(&str, &str)]) -> String {
        let refs: Vec<Value> = owners
            .iter()
            .map(|(n, uid)| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": uid, "blockOwnerDeletion": true}))
            .collect();
        let mut obj = json!({"metadata": {"name": name}});
        if !refs.is_empty() {
            obj["metadata"]["ownerReferences"] = Value::Array(refs);
        }
        let v = s
            .create(
                3,
                "default",
                obj.as_object().unwrap().clone(),
                Duration::ZERO,
            )
            .unwrap();
        uid_of(&v).to_string()
    }

    /// Runs the collector to quiescence, one `delay` per round; the names removed per round.
    fn rounds(gc: &mut Collector, s: &mut Store) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut now = Duration::ZERO;
        gc.observe(s, now);
        while let Some(due) = gc.next_due() {
            now = now.max(due);
            let before = s.revision();
            gc.collect(s, now);
            let gone = s
                .events_after(before)
                .unwrap()
                .filter(|e| e.kind == EventType::Deleted)
                .map(|e| e.key.name.clone())
                .collect();
            out.push(gone);
            gc.observe(s, now);
            assert!(out.len() < 20, "the collector does not settle");
        }
        out
    }

    #[test]
    fn a_background_cascade_goes_one_level_per_delay() {
        let mut s = store();
        let a = cm(&mut s, "a", &[]);
        let b = cm(&mut s, "b", &[("a", &a)]);
        cm(&mut s, "c", &[("b", &b)]);
        cm(&mut s, "d", &[("b", &b)]);
        let mut gc = Collector::new(100 * MS);
        gc.observe(&s, Duration::ZERO);
        s.delete(&key("a"), &Preconditions::default(), Duration::ZERO)
            .unwrap();
        assert_eq!(rounds(&mut gc, &mut s), [vec!["b"], vec!["c", "d"]]);
    }

    #[test]
    fn a_foreground_cycle_is_broken_instead_of_waiting_forever() {
        // a and b own each other, both blocking: deleting a in the foreground must end with
        // both gone (the real collector's circle breaker), not with a held forever.
        let mut s = store();
        let a = cm(&mut s, "a", &[]);
        let b = cm(&mut s, "b", &[("a", &a)]);
        let mut obj = (**s.get(&key("a")).unwrap()).clone();
        obj["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": b, "blockOwnerDeletion": true}]);
        s.update(&key("a"), obj.as_object().unwrap().clone(), Duration::ZERO)
            .unwrap();
        let mut gc = Collector::new(100 * MS);
        gc.observe(&s, Duration::ZERO);
        propagation::delete(
            &mut s,
            &key("a"),
            &Preconditions::default(),
            Some(Propagation::Foreground),
            Duration::ZERO,
        )
        .unwrap();
        rounds(&mut gc, &mut s);
        assert!(s.get(&key("a")).is_none() && s.get(&key("b")).is_none());
    }
}
