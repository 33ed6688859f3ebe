//! Which kinds a scenario may write — the built-in kinds plus the CRDs in its `resources` —
//! and the checks on its manifests and object references, each naming its JSON path.

use serde_json::Value;

use super::validate::{bad, object_name, Invalid};
use super::{Fault, ObjectRef, Scenario, Workload};
use crate::apiserver::{invalid_name, ResourceType};

/// The kinds a scenario serves: built-ins, then its CRDs.
pub(super) struct Kinds(Vec<ResourceType>);

impl Kinds {
    /// The built-in kinds plus every CRD of `resources`, or the first malformed CRD.
    pub(super) fn of(s: &Scenario) -> Result<Self, Invalid> {
        let mut kinds = ResourceType::builtins();
        for (i, crd) in s.resources.iter().enumerate() {
            let path = format!("resources[{i}]");
            if crd["apiVersion"] != "apiextensions.k8s.io/v1"
                || crd["kind"] != "CustomResourceDefinition"
            {
                return Err(Invalid {
                    path,
                    message: format!(
                        "expected an apiextensions.k8s.io/v1 CustomResourceDefinition, got apiVersion {} kind {}",
                        crd["apiVersion"], crd["kind"]
                    ),
                });
            }
            let t = ResourceType::from_crd(crd).map_err(|e| Invalid {
                path: path.clone(),
                message: e.message,
            })?;
            if kinds
                .iter()
                .any(|k| k.api_version() == t.api_version() && k.kind == t.kind)
            {
                return Err(Invalid {
                    path,
                    message: format!("{} {} is served twice", t.api_version(), t.kind),
                });
            }
            kinds.push(t);
        }
        Ok(Kinds(kinds))
    }

    fn find(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.0
            .iter()
            .find(|k| k.api_version() == api_version && k.kind == kind)
    }

    /// Checks that `r` names an object of a served kind, in a namespace if it is namespaced;
    /// `fields` are the paths of its kind, name and namespace.
    fn reference(&self, fields: [&str; 3], r: &ObjectRef) -> Result<(), Invalid> {
        let [kind_path, name_path, ns_path] = fields;
        let Some(t) = self.find(&r.api_version, &r.kind) else {
            let known: Vec<String> = self
                .0
                .iter()
                .map(|k| format!("{} {}", k.api_version(), k.kind))
                .collect();
            return bad(
                kind_path,
                format!(
                    "no resource serves apiVersion {:?} kind {:?} (add its CRD to `resources`); served: {}",
                    r.api_version,
                    r.kind,
                    known.join(", ")
                ),
            );
        };
        object_name(name_path, &r.name)?;
        match (&r.namespace, t.namespaced) {
            (Some(ns), true) => match invalid_name(ns) {
                Some(why) => bad(ns_path, format!("invalid namespace {ns:?}: {why}")),
                None => Ok(()),
            },
            (None, _) => Ok(()),
            (Some(ns), false) => bad(
                ns_path,
                format!("{} is cluster-scoped, but the namespace is {ns:?}", r.kind),
            ),
        }
    }

    /// Checks a manifest: an object with apiVersion, kind and metadata.name of a served kind.
    pub(super) fn manifest(&self, path: &str, obj: &Value) -> Result<(), Invalid> {
        if !obj.is_object() {
            return bad(
                path,
                "expected an object manifest (apiVersion, kind, metadata)",
            );
        }
        for field in ["apiVersion", "kind"] {
            if !obj[field].is_string() {
                return bad(format!("{path}.{field}"), "required, a string");
            }
        }
        if !obj["metadata"]["name"].is_string() {
            return bad(format!("{path}.metadata.name"), "required, a string");
        }
        let fields = [
            format!("{path}.kind"),
            format!("{path}.metadata.name"),
            format!("{path}.metadata.namespace"),
        ];
        self.reference(fields.each_ref().map(String::as_str), &ObjectRef::of(obj))
    }

    /// Checks an object reference at `path`.
    fn target(&self, path: &str, r: &ObjectRef) -> Result<(), Invalid> {
        let fields = [
            format!("{path}.kind"),
            format!("{path}.name"),
            format!("{path}.namespace"),
        ];
        self.reference(fields.each_ref().map(String::as_str), r)
    }
}

/// Checks `resources`, `manifests`, every object write of the workload and the targets of
/// `unobserved_state` faults.
pub(super) fn objects(s: &Scenario) -> Result<(), Invalid> {
    let kinds = Kinds::of(s)?;
    for (i, m) in s.manifests.iter().enumerate() {
        kinds.manifest(&format!("manifests[{i}]"), m)?;
    }
    for (i, w) in s.workload.iter().enumerate() {
        workload(&kinds, &format!("workload[{i}].{}", w.tag()), w)?;
    }
    for (i, f) in s.faults.iter().enumerate() {
        if let Fault::UnobservedState { target, .. } = f {
            kinds.target(&format!("faults[{i}].unobserved_state.target"), target)?;
        }
    }
    Ok(())
}

/// Checks one workload write's objects against the served kinds (`p` is its path).
fn workload(kinds: &Kinds, p: &str, w: &Workload) -> Result<(), Invalid> {
    match w {
        Workload::CreateObject { object, .. } | Workload::UpdateObject { object, .. } => {
            kinds.manifest(&format!("{p}.object"), object)?
        }
        Workload::PatchObject { target, patch, .. } => {
            kinds.target(&format!("{p}.target"), target)?;
            if !patch.is_object() {
                return bad(format!("{p}.patch"), "a merge patch is a JSON object");
            }
        }
        Workload::DeleteObject { target, .. } => kinds.target(&format!("{p}.target"), target)?,
        Workload::DeleteOwned {
            owner,
            api_version,
            kind,
            ..
        } => {
            kinds.target(&format!("{p}.owner"), owner)?;
            if kinds.find(api_version, kind).is_none() {
                return bad(
                    format!("{p}.kind"),
                    format!("no resource serves apiVersion {api_version:?} kind {kind:?}"),
                );
            }
        }
        Workload::ChurnObjects {
            template, patches, ..
        } => {
            kinds.manifest(&format!("{p}.template"), template)?;
            if let Some(j) = patches.iter().position(|p| !p.is_object()) {
                return bad(
                    format!("{p}.patches[{j}]"),
                    "a merge patch is a JSON object",
                );
            }
        }
        Workload::Create { .. }
        | Workload::Update { .. }
        | Workload::Delete { .. }
        | Workload::Burst { .. }
        | Workload::Churn { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Catalog, Scenario, SubjectKind};

    struct OnlyOperator;

    impl Catalog for OnlyOperator {
        fn kind_of(&self, name: &str) -> Option<SubjectKind> {
            (name == "op").then_some(SubjectKind::Operator)
        }
        fn names(&self) -> Vec<&str> {
            vec!["op"]
        }
    }

    const CRD: &str = r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "apps.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "App", "plural": "apps"},
                 "versions": [{"name": "v1", "served": true, "storage": true}]}}"#;

    fn parse(extra: &str) -> Result<Scenario, (String, String)> {
        let text = format!(
            r#"{{"version": 1, "name": "t", "duration": "10s", "subject": {{"name": "op"}}{extra}}}"#
        );
        Scenario::parse(&text, "f", &OnlyOperator).map_err(|e| (e.path, e.message))
    }

    #[test]
    fn objects_of_a_crd_of_the_scenario_and_of_built_in_kinds_are_accepted() {
        let s = parse(&format!(
            r#", "resources": [{CRD}],
               "manifests": [{{"apiVersion": "example.com/v1", "kind": "App", "metadata": {{"name": "a"}}}}],
               "workload": [{{"patch_object": {{"at": "1s", "patch": {{"spec": {{"x": 1}}}},
                   "target": {{"api_version": "example.com/v1", "kind": "App", "name": "a"}}}}}},
                 {{"delete_object": {{"at": "2s", "target": {{"api_version": "v1", "kind": "Secret", "name": "s"}}}}}}]"#
        ))
        .unwrap();
        assert_eq!(s.resources.len(), 1);
        assert_eq!(s.workload.len(), 2);
    }

    #[test]
    fn a_kind_no_resource_serves_names_its_path_and_says_where_crds_go() {
        let (path, message) = parse(
            r#", "manifests": [{"apiVersion": "example.com/v1", "kind": "App", "metadata": {"name": "a"}}]"#,
        )
        .unwrap_err();
        assert_eq!(path, "manifests[0].kind");
        assert!(message.contains("add its CRD to `resources`"), "{message}");
    }

    #[test]
    fn a_malformed_crd_a_nameless_manifest_and_a_namespaced_cluster_object_are_refused() {
        let (path, message) = parse(
            r#", "resources": [{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "apps.example.com"}, "spec": {"group": "example.com"}}]"#,
        )
        .unwrap_err();
        assert_eq!(path, "resources[0]");
        assert!(message.contains("spec.names.kind"), "{message}");
        let (path, _) =
            parse(r#", "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}]"#)
                .unwrap_err();
        assert_eq!(path, "manifests[0].metadata.name");
        let (path, message) = parse(
            r#", "workload": [{"delete_object": {"at": "1s",
                "target": {"api_version": "v1", "kind": "Namespace", "namespace": "x", "name": "n"}}}]"#,
        )
        .unwrap_err();
        assert_eq!(path, "workload[0].delete_object.target.namespace");
        assert!(message.contains("cluster-scoped"), "{message}");
    }
}
