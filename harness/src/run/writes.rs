//! Workload writes applied straight to the store, as other clients' writes would land.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::apiserver::{ApiError, ApiServer};
use crate::scenario::{ObjectRef, ObjectWrite, Write};

/// Applies a workload write straight to the store (as another client would). An object that
/// is already gone is not an error (the workload races the subject); a refusal is returned
/// with what was refused, for the trace.
pub fn apply_write(server: &ApiServer, w: &Write, serial: u64) -> Result<(), String> {
    let result = match w {
        Write::Create(name, labels) => write(server, name, Some(labels), serial),
        Write::Update(name) => write(server, name, None, serial),
        Write::Delete(name) => server
            .delete_object("v1", "ConfigMap", "default", name)
            .map(drop),
        Write::Object(o) => write_object(server, o),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(format!("{w:?} refused ({}): {}", e.code, e.message)),
    }
}

/// Writes ConfigMap `default/name` with fresh data (and `labels`, when given), keeping the
/// rest of its metadata if it exists (e.g. a finalizer holding it), as a client would;
/// creates it otherwise.
fn write(
    server: &ApiServer,
    name: &str,
    labels: Option<&BTreeMap<String, String>>,
    serial: u64,
) -> Result<(), ApiError> {
    let mut obj = match server.get_object("v1", "ConfigMap", "default", name) {
        Some(o) => (*o).clone(),
        None => {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}})
        }
    };
    if let Some(labels) = labels {
        obj["metadata"]["labels"] = json!(labels);
    }
    obj["data"] = json!({"v": serial.to_string()});
    server.put_object(obj).map(drop)
}

/// The namespace `r` lives in: its own, `default` for a namespaced kind, none otherwise.
pub(super) fn namespace_of(server: &ApiServer, r: &ObjectRef) -> String {
    let namespaced = server
        .served(&r.api_version, &r.kind)
        .is_none_or(|t| t.namespaced);
    match (&r.namespace, namespaced) {
        (Some(ns), true) => ns.clone(),
        (None, true) => "default".into(),
        (_, false) => String::new(),
    }
}

/// `obj` with its namespace filled in as the store keys it.
fn placed(server: &ApiServer, obj: &Value) -> Value {
    let mut obj = obj.clone();
    let ns = namespace_of(server, &ObjectRef::of(&obj));
    if !ns.is_empty() {
        obj["metadata"]["namespace"] = json!(ns);
    }
    obj
}

fn write_object(server: &ApiServer, w: &ObjectWrite) -> Result<(), ApiError> {
    let r = w.target();
    let ns = namespace_of(server, &r);
    let current = server.get_object(&r.api_version, &r.kind, &ns, &r.name);
    match w {
        // Another client's create of an object that exists is refused (409 AlreadyExists);
        // the workload moves on, as it does when a delete finds nothing.
        ObjectWrite::Create(_) if current.is_some() => Ok(()),
        ObjectWrite::Create(obj) => server.put_object(placed(server, obj)).map(drop),
        ObjectWrite::Update(obj) => {
            let mut new = placed(server, obj);
            if let Some(cur) = current {
                // Keep the server's and the controllers' metadata (finalizers, owners).
                let mut meta = cur["metadata"].clone();
                for field in ["labels", "annotations"] {
                    if let Some(v) = obj["metadata"].get(field) {
                        meta[field] = v.clone();
                    }
                }
                new["metadata"] = meta;
                if new.get("status").is_none() {
                    if let Some(status) = cur.get("status") {
                        new["status"] = status.clone();
                    }
                }
            }
            server.put_object(new).map(drop)
        }
        ObjectWrite::Patch(_, patch) => {
            let Some(cur) = current else { return Ok(()) };
            let mut new = (*cur).clone();
            json_patch::merge(&mut new, patch);
            server.put_object(new).map(drop)
        }
        ObjectWrite::Delete(_) => server
            .delete_object(&r.api_version, &r.kind, &ns, &r.name)
            .map(drop),
        ObjectWrite::DeleteOwned(_, api_version, kind) => {
            let Some(owner) = current else { return Ok(()) };
            let uid = owner["metadata"]["uid"].as_str().unwrap_or("");
            for child in server.objects(api_version, kind) {
                let owned = child["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|o| o["uid"] == uid));
                let child_ns = child["metadata"]["namespace"].as_str().unwrap_or("");
                let name = child["metadata"]["name"].as_str().unwrap_or("");
                if owned {
                    server.delete_object(api_version, kind, child_ns, name)?;
                }
            }
            Ok(())
        }
    }
}
