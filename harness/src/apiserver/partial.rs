//! Metadata-only responses: `Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1`
//! answers an object as a `meta.k8s.io` `PartialObjectMetadata` (its metadata only), and
//! `as=PartialObjectMetadataList` a list as a `PartialObjectMetadataList`; watch events (and
//! their bookmarks) carry `PartialObjectMetadata` objects. kube-rs asks for these in
//! `Api::get_metadata`, `list_metadata`, `watch_metadata`, `patch_metadata` and
//! kube-runtime's `metadata_watcher` (what `Controller::owns` uses).
//!
//! As kube-apiserver's content negotiation does, only the first media type of the `Accept`
//! header counts and `v` names the version answered (`v1`, or `v1beta1`). Where
//! kube-apiserver answers 406 for the wrong form (a list asked as `PartialObjectMetadata`),
//! this server answers the form that fits the response.

use serde_json::{json, Value};

/// The `meta.k8s.io` version an `Accept` header asks metadata-only responses in, if it does.
pub(super) fn wanted(accept: Option<&str>) -> Option<String> {
    let first = accept?.split(',').next()?;
    let (mut partial, mut group, mut version) = (false, "", "v1");
    for p in first.split(';').skip(1).map(str::trim) {
        match p.split_once('=') {
            Some(("as", "PartialObjectMetadata" | "PartialObjectMetadataList")) => partial = true,
            Some(("g", g)) => group = g,
            Some(("v", v)) => version = v,
            _ => {}
        }
    }
    (partial && group == "meta.k8s.io").then(|| version.to_string())
}

/// `obj` as a `PartialObjectMetadata`; a `Status` (an error, a delete's answer) stays as is.
pub(super) fn object(obj: &Value, version: &str) -> Value {
    if obj["kind"] == "Status" {
        return obj.clone();
    }
    json!({"kind": "PartialObjectMetadata", "apiVersion": format!("meta.k8s.io/{version}"),
           "metadata": obj["metadata"]})
}

/// A list as a `PartialObjectMetadataList`.
pub(super) fn list(list: &Value, version: &str) -> Value {
    let items: Vec<Value> = list["items"]
        .as_array()
        .map(|a| a.iter().map(|o| object(o, version)).collect())
        .unwrap_or_default();
    json!({"kind": "PartialObjectMetadataList", "apiVersion": format!("meta.k8s.io/{version}"),
           "metadata": list["metadata"], "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_first_media_type_asking_meta_k8s_io_for_partial_metadata_counts() {
        let kube = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
        assert_eq!(wanted(Some(kube)).as_deref(), Some("v1"));
        let list = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1";
        assert_eq!(wanted(Some(list)).as_deref(), Some("v1beta1"));
        assert_eq!(wanted(Some("application/json")), None);
        assert_eq!(
            wanted(Some("application/json;as=PartialObjectMetadata;g=other")),
            None
        );
        assert_eq!(wanted(Some(&format!("application/json,{kube}"))), None);
    }

    #[test]
    fn an_object_keeps_only_its_metadata_and_a_list_its_list_metadata() {
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}, "data": {"k": "v"}});
        let p = object(&cm, "v1");
        assert_eq!(
            p,
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "a"}})
        );
        let l = list(
            &json!({"kind": "ConfigMapList", "metadata": {"resourceVersion": "7"}, "items": [cm]}),
            "v1",
        );
        assert_eq!(l["kind"], "PartialObjectMetadataList");
        assert_eq!(l["metadata"]["resourceVersion"], "7");
        assert_eq!(l["items"][0], p);
        let status = json!({"kind": "Status", "status": "Success"});
        assert_eq!(object(&status, "v1"), status);
    }
}
