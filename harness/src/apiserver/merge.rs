//! JSON merge patch (RFC 7386), as kube-apiserver applies `application/merge-patch+json`.

use serde_json::Value;

/// Applies `patch` to `target` in place: objects merge recursively, `null` removes a key,
/// anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let map = target.as_object_mut().expect("made an object above");
    for (k, v) in patch {
        if v.is_null() {
            map.remove(k);
        } else {
            merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386_examples() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1]});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}, "l": [2, 3]}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}, "l": [2, 3]}));
    }
}
