//! Strict field validation (`fieldValidation=Strict`): a field the served type's schema does
//! not declare is a 400, worded as kube-apiserver's strict decoding error. The schema is the
//! one `/openapi/v3` serves (`openapi.rs`); `x-kubernetes-preserve-unknown-fields` and free-form
//! maps (`additionalProperties`) accept anything below them.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::openapi::{builtin_definitions, type_schema, Format};
use super::resource::ResourceType;

/// 400 BadRequest naming every unknown field of `obj`, if there is one.
pub(super) fn strict(ty: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let Some(schema) = type_schema(ty, Format::V3) else {
        return Ok(());
    };
    let mut unknown = Vec::new();
    walk(
        &schema,
        builtin_definitions(Format::V3),
        obj,
        "",
        &mut unknown,
    );
    if unknown.is_empty() {
        return Ok(());
    }
    let fields: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    Err(ApiError::bad_request(format!(
        "strict decoding error: {}",
        fields.join(", ")
    )))
}

/// Follows `$ref` (and a one-element `allOf`, as schemars wraps references).
fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or("");
        return defs.get(name).map_or(schema, |s| resolve(s, defs));
    }
    match schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([one]) => resolve(one, defs),
        _ => schema,
    }
}

fn walk(schema: &Value, defs: &Map<String, Value>, v: &Value, path: &str, out: &mut Vec<String>) {
    let schema = resolve(schema, defs);
    if schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return;
    }
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties");
            for (k, child) in m {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (props.and_then(|p| p.get(k)), extra) {
                    (Some(s), _) => walk(s, defs, child, &at, out),
                    (None, Some(Value::Bool(false))) | (None, None) if props.is_some() => {
                        out.push(at)
                    }
                    (None, Some(s)) if s.is_object() => walk(s, defs, child, &at, out),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(s, defs, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_of_a_config_map_are_named_with_their_path() {
        let cm = ResourceType::new("", "v1", "ConfigMap", "configmaps", true);
        let ok = json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "v"}});
        assert!(strict(&cm, &ok).is_ok());
        let bad = json!({"metadata": {"name": "a", "nmae": "b"}, "dta": {}});
        let e = strict(&cm, &bad).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(e.message.contains("unknown field \"dta\""), "{}", e.message);
        assert!(
            e.message.contains("unknown field \"metadata.nmae\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_crd_schema_is_enforced_below_its_declared_properties_only() {
        let mut w = ResourceType::new("example.com", "v1", "Widget", "widgets", true);
        w.schema = Some(json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}));
        let ok = json!({"apiVersion": "example.com/v1", "metadata": {"name": "a"}, "spec": {"size": 1}, "free": {"x": 1}});
        assert!(strict(&w, &ok).is_ok());
        let bad = json!({"spec": {"sise": 1}});
        assert!(strict(&w, &bad).unwrap_err().message.contains("spec.sise"));
    }
}
