//! Protobuf bodies (`application/vnd.kubernetes.protobuf`) for the built-in kinds kubectl's
//! generators send (`kubectl create configmap|secret|namespace|serviceaccount`): the
//! `k8s\0` envelope around a `runtime.Unknown`, decoded and encoded with kube-rs's `k8s-pb`
//! types, converted to and from the JSON the store keeps.
//!
//! Documented subset: ConfigMap, Secret, Namespace and ServiceAccount; of `ObjectMeta`, the
//! name, generateName, namespace, uid, resourceVersion, generation, creationTimestamp,
//! deletionTimestamp, labels, annotations and finalizers. Other kinds answer 415 in protobuf.

use std::collections::BTreeMap;

use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::{json, Map, Value};

use super::error::ApiError;

/// The media type.
pub(super) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

fn unsupported(what: &str) -> ApiError {
    ApiError::unsupported_media_type(&format!("{MEDIA_TYPE} for {what}"))
}

fn bad(e: prost::DecodeError) -> ApiError {
    ApiError::bad_request(format!("the protobuf body does not decode: {e}"))
}

/// A protobuf request body as the JSON object it encodes.
pub(super) fn decode(bytes: &[u8]) -> Result<Value, ApiError> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| ApiError::bad_request("a protobuf body starts with \"k8s\\0\""))?;
    let unknown = Unknown::decode(body).map_err(bad)?;
    let tm = unknown.type_meta.unwrap_or_default();
    let (api_version, kind) = (
        tm.api_version.unwrap_or_default(),
        tm.kind.unwrap_or_default(),
    );
    let raw = unknown.raw.unwrap_or_default();
    let raw = raw.as_slice();
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "ConfigMap") => config_map(pb::ConfigMap::decode(raw).map_err(bad)?),
        ("v1", "Secret") => secret(pb::Secret::decode(raw).map_err(bad)?),
        ("v1", "Namespace") => {
            let ns = pb::Namespace::decode(raw).map_err(bad)?;
            let mut o = with_meta(ns.metadata);
            if let Some(spec) = ns.spec {
                o.insert("spec".into(), json!({"finalizers": spec.finalizers}));
            }
            o
        }
        ("v1", "ServiceAccount") => {
            let sa = pb::ServiceAccount::decode(raw).map_err(bad)?;
            let mut o = with_meta(sa.metadata);
            if let Some(a) = sa.automount_service_account_token {
                o.insert("automountServiceAccountToken".into(), json!(a));
            }
            o
        }
        _ => return Err(unsupported(&format!("{api_version} {kind}"))),
    };
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

fn base64(bytes: Vec<u8>) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(bytes)).expect("bytes serialise")
}

fn config_map(cm: pb::ConfigMap) -> Map<String, Value> {
    let mut o = with_meta(cm.metadata);
    if !cm.data.is_empty() {
        o.insert("data".into(), json!(cm.data));
    }
    if !cm.binary_data.is_empty() {
        let bin: BTreeMap<_, _> = cm
            .binary_data
            .into_iter()
            .map(|(k, v)| (k, base64(v)))
            .collect();
        o.insert("binaryData".into(), json!(bin));
    }
    if let Some(i) = cm.immutable {
        o.insert("immutable".into(), json!(i));
    }
    o
}

fn secret(s: pb::Secret) -> Map<String, Value> {
    let mut o = with_meta(s.metadata);
    if !s.data.is_empty() {
        let data: BTreeMap<_, _> = s.data.into_iter().map(|(k, v)| (k, base64(v))).collect();
        o.insert("data".into(), json!(data));
    }
    if !s.string_data.is_empty() {
        o.insert("stringData".into(), json!(s.string_data));
    }
    if let Some(t) = s.r#type {
        o.insert("type".into(), json!(t));
    }
    if let Some(i) = s.immutable {
        o.insert("immutable".into(), json!(i));
    }
    o
}

fn with_meta(m: Option<meta::ObjectMeta>) -> Map<String, Value> {
    let m = m.unwrap_or_default();
    let mut out = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(k.into(), v);
        }
    };
    put("name", m.name.map(Value::from));
    put("generateName", m.generate_name.map(Value::from));
    put("namespace", m.namespace.map(Value::from));
    put("labels", (!m.labels.is_empty()).then(|| json!(m.labels)));
    put(
        "annotations",
        (!m.annotations.is_empty()).then(|| json!(m.annotations)),
    );
    put(
        "finalizers",
        (!m.finalizers.is_empty()).then(|| json!(m.finalizers)),
    );
    put("resourceVersion", m.resource_version.map(Value::from));
    let mut o = Map::new();
    o.insert("metadata".into(), Value::Object(out));
    o
}

/// Whether an `Accept` header prefers protobuf over JSON.
pub(super) fn preferred(accept: Option<&str>) -> bool {
    accept
        .and_then(|a| a.split(',').next())
        .is_some_and(|first| first.split(';').next().unwrap_or("").trim() == MEDIA_TYPE)
}

/// The protobuf encoding of a stored object, if its kind is in the subset.
pub(super) fn encode(obj: &Value) -> Option<Vec<u8>> {
    let kind = obj["kind"].as_str()?;
    let metadata = Some(to_meta(&obj["metadata"]));
    let strings = |v: &Value| -> BTreeMap<String, String> {
        serde_json::from_value(v.clone()).unwrap_or_default()
    };
    let bytes = |v: &Value| -> BTreeMap<String, Vec<u8>> {
        let m: BTreeMap<String, k8s_openapi::ByteString> =
            serde_json::from_value(v.clone()).unwrap_or_default();
        m.into_iter().map(|(k, v)| (k, v.0)).collect()
    };
    let raw = match (obj["apiVersion"].as_str()?, kind) {
        ("v1", "ConfigMap") => pb::ConfigMap {
            metadata,
            immutable: obj["immutable"].as_bool(),
            data: strings(&obj["data"]),
            binary_data: bytes(&obj["binaryData"]),
        }
        .encode_to_vec(),
        ("v1", "Secret") => pb::Secret {
            metadata,
            immutable: obj["immutable"].as_bool(),
            data: bytes(&obj["data"]),
            string_data: BTreeMap::new(),
            r#type: obj["type"].as_str().map(str::to_string),
        }
        .encode_to_vec(),
        ("v1", "Namespace") => pb::Namespace {
            metadata,
            spec: Some(pb::NamespaceSpec {
                finalizers: serde_json::from_value(obj["spec"]["finalizers"].clone())
                    .unwrap_or_default(),
            }),
            status: Some(pb::NamespaceStatus {
                phase: obj["status"]["phase"].as_str().map(str::to_string),
                conditions: Vec::new(),
            }),
        }
        .encode_to_vec(),
        ("v1", "ServiceAccount") => pb::ServiceAccount {
            metadata,
            automount_service_account_token: obj["automountServiceAccountToken"].as_bool(),
            ..Default::default()
        }
        .encode_to_vec(),
        _ => return None,
    };
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    Some(out)
}

fn time(v: &Value) -> Option<meta::Time> {
    let t = humantime::parse_rfc3339(v.as_str()?).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(meta::Time {
        seconds: i64::try_from(secs).ok(),
        nanos: Some(0),
    })
}

fn to_meta(m: &Value) -> meta::ObjectMeta {
    let s = |k: &str| m[k].as_str().map(str::to_string);
    let map = |k: &str| serde_json::from_value(m[k].clone()).unwrap_or_default();
    meta::ObjectMeta {
        name: s("name"),
        generate_name: s("generateName"),
        namespace: s("namespace"),
        uid: s("uid"),
        resource_version: s("resourceVersion"),
        generation: m["generation"].as_i64(),
        creation_timestamp: time(&m["creationTimestamp"]),
        deletion_timestamp: time(&m["deletionTimestamp"]),
        labels: map("labels"),
        annotations: map("annotations"),
        finalizers: serde_json::from_value(m["finalizers"].clone()).unwrap_or_default(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_map_round_trips_through_the_protobuf_envelope() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "default", "labels": {"x": "y"}},
            "data": {"k": "v"}, "binaryData": {"b": "AAE="}});
        let wire = encode(&cm).unwrap();
        assert!(wire.starts_with(b"k8s\0"));
        assert_eq!(decode(&wire).unwrap(), cm);
    }

    #[test]
    fn an_unsupported_kind_is_415_and_garbage_is_400() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert!(encode(&pod).is_none());
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
            }),
            ..Default::default()
        };
        let mut wire = MAGIC.to_vec();
        wire.extend(unknown.encode_to_vec());
        assert_eq!(decode(&wire).unwrap_err().code, 415);
        assert_eq!(decode(b"k8s\0\xff\xff").unwrap_err().code, 400);
    }
}
