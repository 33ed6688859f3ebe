//! Workload writes applied straight to the store, as other clients' writes would land.

use std::collections::BTreeMap;

use serde_json::json;

use crate::apiserver::{ApiError, ApiServer};
use crate::scenario::Write;

/// Applies workload writes straight to the store (as other clients would).
pub fn apply_write(server: &ApiServer, w: &Write, serial: u64) {
    let result = match w {
        Write::Create(name, labels) => write(server, name, Some(labels), serial),
        Write::Update(name) => write(server, name, None, serial),
        Write::Delete(name) => server
            .delete_object("v1", "ConfigMap", "default", name)
            .map(drop),
    };
    match result {
        Ok(()) => {}
        Err(e) if e.code == 404 => {}
        Err(e) => panic!("workload write {w:?} refused by the store: {}", e.message),
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
