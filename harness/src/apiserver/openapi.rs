//! OpenAPI documents: `/openapi/v2` (one Swagger 2.0 JSON document) and `/openapi/v3` (a root
//! listing one OpenAPI 3.0 document per group version), with a schema for every served kind.
//!
//! Built-in schemas come from k8s-openapi's `schemars` derivations; a CRD's schema is its
//! `openAPIV3Schema` with `apiVersion`, `kind` and `metadata` added. Every `PATCH` and `POST`
//! operation declares the `fieldValidation` query parameter and its group-version-kind, which is
//! what kubectl looks for before it hands validation to the server (`fieldValidation=Strict`,
//! `validate.rs`). `/openapi/v2` is served as JSON only: client-go asks for it as
//! protobuf, but kubectl only needs it when `/openapi/v3` lacks the parameter.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

use super::resource::{ResourceType, Resources};

/// Where schemas live in each document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    V2,
    V3,
}

impl Format {
    fn prefix(self) -> &'static str {
        match self {
            Format::V2 => "#/definitions/",
            Format::V3 => "#/components/schemas/",
        }
    }
}

fn generate(format: Format) -> Map<String, Value> {
    let settings = match format {
        Format::V3 => SchemaSettings::openapi3(),
        Format::V2 => {
            SchemaSettings::openapi3().with(|s| s.definitions_path = "/definitions/".into())
        }
    };
    let mut generator: SchemaGenerator = settings.into_generator();
    let _ = generator.subschema_for::<core::Namespace>();
    let _ = generator.subschema_for::<core::Node>();
    let _ = generator.subschema_for::<core::Pod>();
    let _ = generator.subschema_for::<core::ConfigMap>();
    let _ = generator.subschema_for::<core::Secret>();
    let _ = generator.subschema_for::<core::Service>();
    let _ = generator.subschema_for::<core::ServiceAccount>();
    let _ = generator.subschema_for::<core::Event>();
    let _ = generator.subschema_for::<CustomResourceDefinition>();
    generator.take_definitions(true)
}

/// The built-in definitions, generated once per format.
pub(super) fn builtin_definitions(format: Format) -> &'static Map<String, Value> {
    static V2: OnceLock<Map<String, Value>> = OnceLock::new();
    static V3: OnceLock<Map<String, Value>> = OnceLock::new();
    match format {
        Format::V2 => V2.get_or_init(|| generate(Format::V2)),
        Format::V3 => V3.get_or_init(|| generate(Format::V3)),
    }
}

/// The definition name of a type: `io.k8s.api.core.v1.ConfigMap`, or for a CRD its group
/// reversed (`com.example.v1.Widget`).
pub(super) fn definition_name(t: &ResourceType) -> String {
    match t.group.as_str() {
        "" => format!("io.k8s.api.core.v1.{}", t.kind),
        "apiextensions.k8s.io" => format!(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{}.{}",
            t.version, t.kind
        ),
        g => {
            let reversed: Vec<&str> = g.split('.').rev().collect();
            format!("{}.{}.{}", reversed.join("."), t.version, t.kind)
        }
    }
}

fn gvk(t: &ResourceType) -> Value {
    json!({"group": t.group, "version": t.version, "kind": t.kind})
}

/// The schema of a served type, with its group-version-kind extension. A custom type declared
/// without a schema keeps any field (`x-kubernetes-preserve-unknown-fields`), so every path's
/// reference resolves.
pub(super) fn type_schema(t: &ResourceType, format: Format) -> Option<Value> {
    let builtin = builtin_definitions(format).get(&definition_name(t));
    let free = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let mut schema = match (&t.schema, builtin) {
        (Some(s), _) => crd_schema(s, format),
        (None, Some(b)) => b.clone(),
        (None, None) => crd_schema(&free, format),
    };
    schema["x-kubernetes-group-version-kind"] = json!([gvk(t)]);
    Some(schema)
}

fn crd_schema(schema: &Value, format: Format) -> Value {
    let mut s = schema.clone();
    if !s.is_object() {
        s = json!({"type": "object"});
    }
    let props = s
        .as_object_mut()
        .expect("made an object above")
        .entry("properties")
        .or_insert_with(|| json!({}));
    if let Value::Object(p) = props {
        p.insert("apiVersion".into(), json!({"type": "string"}));
        p.insert("kind".into(), json!({"type": "string"}));
        let meta = format!(
            "{}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            format.prefix()
        );
        p.insert("metadata".into(), json!({"$ref": meta}));
    }
    s
}

/// Every definition a document for `types` needs: the built-ins (they hold the shared
/// metadata types) and each type's own schema.
fn definitions<'a>(types: impl Iterator<Item = &'a ResourceType>, format: Format) -> Value {
    let mut defs: BTreeMap<String, Value> = builtin_definitions(format)
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for t in types {
        if let Some(s) = type_schema(t, format) {
            defs.insert(definition_name(t), s);
        }
    }
    json!(defs)
}

fn param(name: &str, format: Format) -> Value {
    match format {
        Format::V2 => json!({"name": name, "in": "query", "type": "string", "uniqueItems": true}),
        Format::V3 => {
            json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
        }
    }
}

fn operation(t: &ResourceType, action: &str, write: bool, format: Format) -> Value {
    let reference = json!({"$ref": format!("{}{}", format.prefix(), definition_name(t))});
    let response = match format {
        Format::V2 => json!({"200": {"description": "OK", "schema": reference}}),
        Format::V3 => {
            json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}})
        }
    };
    let mut op = json!({
        "operationId": format!("{action}{}", t.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(t),
        "responses": response,
    });
    if write {
        op["parameters"] = json!([
            param("dryRun", format),
            param("fieldManager", format),
            param("fieldValidation", format)
        ]);
    }
    op
}

/// The collection and object paths of a type, with their operations.
fn paths(t: &ResourceType, format: Format) -> Vec<(String, Value)> {
    let base = if t.group.is_empty() {
        "/api/v1".to_string()
    } else {
        format!("/apis/{}/{}", t.group, t.version)
    };
    let scope = if t.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let collection = format!("{base}{scope}/{}", t.plural);
    let op = |action: &str, write: bool| operation(t, action, write, format);
    let mut out = vec![
        (
            collection.clone(),
            json!({"get": op("list", false), "post": op("post", true)}),
        ),
        (
            format!("{collection}/{{name}}"),
            json!({"get": op("get", false), "put": op("put", true), "patch": op("patch", true), "delete": op("delete", true)}),
        ),
    ];
    if t.status_subresource {
        out.push((
            format!("{collection}/{{name}}/status"),
            json!({"get": op("get", false), "put": op("put", true), "patch": op("patch", true)}),
        ));
    }
    out
}

/// `/openapi/v2`: every served type in one Swagger 2.0 document.
pub(super) fn v2(resources: &Resources) -> Value {
    let paths: BTreeMap<String, Value> =
        resources.all().flat_map(|t| paths(t, Format::V2)).collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.34.0-kube-chaos"},
        "paths": paths,
        "definitions": definitions(resources.all(), Format::V2),
    })
}

/// The group-version paths of `/openapi/v3` (`api/v1`, `apis/G/V`), in order.
fn group_versions(resources: &Resources) -> BTreeMap<String, Vec<&ResourceType>> {
    let mut out: BTreeMap<String, Vec<&ResourceType>> = BTreeMap::new();
    for t in resources.all() {
        let gv = if t.group.is_empty() {
            "api/v1".to_string()
        } else {
            format!("apis/{}/{}", t.group, t.version)
        };
        out.entry(gv).or_default().push(t);
    }
    out
}

/// `/openapi/v3`: where each group version's document is; the hash changes with the types
/// served (clients cache documents by it).
pub(super) fn v3_root(resources: &Resources) -> Value {
    let paths: BTreeMap<String, Value> = group_versions(resources)
        .into_iter()
        .map(|(gv, types)| {
            let hash = fingerprint(&types);
            let url = format!("/openapi/v3/{gv}?hash={hash}");
            (gv, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({ "paths": paths })
}

fn fingerprint(types: &[&ResourceType]) -> String {
    let text = serde_json::to_string(types).expect("resource types serialise");
    // FNV-1a: a stable cache key, not a security property.
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016X}")
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/G/V`, if served.
pub(super) fn v3_group_version(resources: &Resources, gv: &str) -> Option<Value> {
    let all = group_versions(resources);
    let types = all.get(gv)?;
    let paths: BTreeMap<String, Value> = types.iter().flat_map(|t| paths(t, Format::V3)).collect();
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.34.0-kube-chaos"},
        "paths": paths,
        "components": {"schemas": definitions(types.iter().copied(), Format::V3)},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_kind_has_a_schema_with_its_group_version_kind() {
        let r = Resources::with_crds(&[]).unwrap();
        for t in r.all() {
            let s = type_schema(t, Format::V3).unwrap_or_else(|| panic!("{}", t.kind));
            assert_eq!(s["x-kubernetes-group-version-kind"][0]["kind"], t.kind);
        }
        let doc = v3_group_version(&r, "api/v1").unwrap();
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(
            doc["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"]["properties"]["data"]
                .is_object()
        );
    }

    #[test]
    fn a_crd_without_a_schema_still_has_every_reference_resolved() {
        let w = ResourceType::new("example.com", "v1", "Widget", "widgets", true);
        let r = Resources::with_crds(&[w]).unwrap();
        let doc = v3_group_version(&r, "apis/example.com/v1").unwrap();
        let get =
            &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["get"];
        let reference = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap();
        let name = reference.trim_start_matches("#/components/schemas/");
        let schema = &doc["components"]["schemas"][name];
        assert_eq!(
            schema["x-kubernetes-preserve-unknown-fields"], true,
            "{name}"
        );
    }
}
