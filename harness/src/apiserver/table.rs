//! Server-side printing: `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` answers a
//! `meta.k8s.io/v1` `Table` (what `kubectl get` prints), for lists, single objects and watch
//! events.
//!
//! Columns, the documented subset of kube-apiserver's printers: Name and Age for every kind,
//! plus Data (ConfigMap), Type/Data (Secret), Status (Namespace), Ready/Status/Restarts (Pod),
//! Status/Version (Node), Type/Cluster-IP/Port(s) (Service), the event columns, and a CRD's
//! `additionalPrinterColumns` for JSON paths of the simple `.a.b.c` form. Rows carry the
//! object's `PartialObjectMetadata` (or the whole object with `includeObject=Object`).

use std::time::Duration;

use serde_json::{json, Value};

use super::resource::ResourceType;

/// Whether an `Accept` header asks for a Table.
pub(super) fn wanted(accept: Option<&str>) -> bool {
    accept
        .and_then(|a| a.split(',').next())
        .is_some_and(|first| first.split(';').any(|p| p.trim() == "as=Table"))
}

/// A column: its name, type, and how to render a cell from an object and now.
type Cell = fn(&Value, Duration) -> Value;

fn age(obj: &Value, now: Duration) -> Value {
    let created = obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    match created {
        Some(c) => json!(human_duration(now.saturating_sub(c))),
        None => json!("<unknown>"),
    }
}

/// apimachinery's `duration.HumanDuration`.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (m, h, days) = (s / 60, s / 3600, s / 86400);
    match s {
        0..120 => format!("{s}s"),
        120..600 if s % 60 != 0 => format!("{m}m{}s", s % 60),
        120..10800 => format!("{m}m"),
        10800..28800 if m % 60 != 0 => format!("{h}h{}m", m % 60),
        10800..172800 => format!("{h}h"),
        172800..691200 if h % 24 != 0 => format!("{days}d{}h", h % 24),
        172800..63072000 => format!("{days}d"),
        _ => format!("{}y", days / 365),
    }
}

fn count(v: &Value) -> usize {
    v.as_object().map_or(0, |m| m.len())
}

fn text(v: &Value) -> Value {
    json!(v.as_str().unwrap_or("<none>"))
}

/// The kind-specific columns between Name and Age (events have their own layout).
fn columns(kind: &str) -> Vec<(&'static str, &'static str, Cell)> {
    match kind {
        "ConfigMap" => vec![("Data", "integer", |o, _| {
            json!(count(&o["data"]) + count(&o["binaryData"]))
        })],
        "Secret" => vec![
            ("Type", "string", |o, _| text(&o["type"])),
            ("Data", "integer", |o, _| json!(count(&o["data"]))),
        ],
        "Namespace" => vec![("Status", "string", |o, _| text(&o["status"]["phase"]))],
        "Pod" => vec![
            ("Ready", "string", pod_ready),
            ("Status", "string", |o, _| {
                json!(o["status"]["phase"].as_str().unwrap_or("Pending"))
            }),
            ("Restarts", "string", |o, _| {
                let n: i64 = o["status"]["containerStatuses"].as_array().map_or(0, |a| {
                    a.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
                });
                json!(n.to_string())
            }),
        ],
        "Node" => vec![
            ("Status", "string", node_status),
            ("Version", "string", |o, _| {
                text(&o["status"]["nodeInfo"]["kubeletVersion"])
            }),
        ],
        "Service" => vec![
            ("Type", "string", |o, _| {
                json!(o["spec"]["type"].as_str().unwrap_or("ClusterIP"))
            }),
            ("Cluster-IP", "string", |o, _| text(&o["spec"]["clusterIP"])),
            ("Port(s)", "string", service_ports),
        ],
        _ => Vec::new(),
    }
}

fn pod_ready(o: &Value, _: Duration) -> Value {
    let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = o["status"]["containerStatuses"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|c| c["ready"] == true).count());
    json!(format!("{ready}/{total}"))
}

fn node_status(o: &Value, _: Duration) -> Value {
    let ready = o["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"].as_str().unwrap_or(""));
    json!(match ready {
        Some("True") => "Ready",
        Some("False") => "NotReady",
        _ => "Unknown",
    })
}

fn service_ports(o: &Value, _: Duration) -> Value {
    let ports: Vec<String> = o["spec"]["ports"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect()
        })
        .unwrap_or_default();
    json!(if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    })
}

fn event_columns() -> Vec<(&'static str, &'static str, Cell)> {
    vec![
        ("Last Seen", "string", |o, now| {
            let mut at = o.clone();
            if let Some(t) = o.get("lastTimestamp").filter(|t| t.is_string()) {
                at["metadata"]["creationTimestamp"] = t.clone();
            }
            age(&at, now)
        }),
        ("Type", "string", |o, _| text(&o["type"])),
        ("Reason", "string", |o, _| text(&o["reason"])),
        ("Object", "string", |o, _| {
            let i = &o["involvedObject"];
            let kind = i["kind"].as_str().unwrap_or("").to_lowercase();
            json!(format!("{kind}/{}", i["name"].as_str().unwrap_or("")))
        }),
        ("Message", "string", |o, _| text(&o["message"])),
    ]
}

/// `.a.b.c` of `obj`, as a cell (other JSON path forms are not evaluated).
fn json_path(obj: &Value, path: &str) -> Value {
    let pointer = path.trim_start_matches('.').replace('.', "/");
    obj.pointer(&format!("/{pointer}"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Renders `objects` of type `ty` as a Table.
pub(super) fn render(
    ty: &ResourceType,
    objects: &[&Value],
    list_meta: Value,
    include_object: bool,
    now: Duration,
) -> Value {
    let name: (&str, &str, Cell) = ("Name", "string", |o, _| text(&o["metadata"]["name"]));
    let age_col: (&str, &str, Cell) = ("Age", "date", age);
    let fixed = match ty.kind.as_str() {
        "Event" if ty.group.is_empty() => event_columns(),
        k => [vec![name], columns(k), vec![age_col]].concat(),
    };
    let printer = ty.printer_columns.clone();
    let mut defs: Vec<Value> = fixed
        .iter()
        .map(|(n, t, _)| column_definition(n, t))
        .collect();
    let at = if printer.is_empty() { defs.len() } else { 1 };
    for (i, (n, t, _)) in printer.iter().enumerate() {
        defs.insert(at + i, column_definition(n, t));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells: Vec<Value> = fixed.iter().map(|(_, _, f)| f(o, now)).collect();
            for (i, (_, _, path)) in printer.iter().enumerate() {
                cells.insert(at + i, json_path(o, path));
            }
            json!({"cells": cells, "object": row_object(o, include_object)})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
           "columnDefinitions": defs, "rows": rows})
}

fn column_definition(name: &str, ty: &str) -> Value {
    let (ty, format) = match ty {
        "date" => ("string", "date"),
        t => (t, if name == "Name" { "name" } else { "" }),
    };
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": 0})
}

fn row_object(o: &Value, include_object: bool) -> Value {
    if include_object {
        return o.clone();
    }
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_map_row_has_name_data_count_and_age() {
        let cm = ResourceType::new("", "v1", "ConfigMap", "configmaps", true);
        let obj = json!({"metadata": {"name": "a", "creationTimestamp": "1970-01-01T00:00:00Z"},
                         "data": {"x": "1", "y": "2"}});
        let t = render(&cm, &[&obj], json!({}), false, Duration::from_secs(330));
        let names: Vec<_> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(names, [json!("Name"), json!("Data"), json!("Age")]);
        assert_eq!(t["rows"][0]["cells"], json!(["a", 2, "5m30s"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn human_durations_follow_apimachinery() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(
            (d(5), d(150), d(900), d(4 * 3600 + 60), d(3 * 86400)),
            (
                "5s".into(),
                "2m30s".into(),
                "15m".into(),
                "4h1m".into(),
                "3d".into()
            )
        );
    }

    #[test]
    fn only_a_table_first_accept_asks_for_one() {
        assert!(wanted(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        )));
        assert!(!wanted(Some("application/json")));
    }
}
