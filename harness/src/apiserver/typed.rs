//! Typed wrappers of the direct store helpers (`direct.rs`) for any kind `K` with static
//! type information (k8s-openapi types, `#[derive(CustomResource)]` types): the apiVersion
//! and kind come from `K`, objects are (de)serialised with serde.
//!
//! ```
//! use k8s_openapi::api::core::v1::Secret;
//! use kube_chaos_harness::SimBuilder;
//!
//! let (_sim, server) = SimBuilder::new(1).build()?;
//! let secret: Secret = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "s", "namespace": "default"}, "stringData": {"k": "v"}}))?;
//! let stored = server.put_typed(&secret)?;
//! assert!(stored.metadata.uid.is_some());
//! assert_eq!(server.get_typed::<Secret>("default", "s")?, Some(stored));
//! assert_eq!(server.objects_typed::<Secret>()?.len(), 1);
//! server.delete_typed::<Secret>("default", "s")?;
//! assert_eq!(server.get_typed::<Secret>("default", "s")?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::error::ApiError;
use super::ApiServer;

/// Why a typed store helper failed.
#[derive(Debug, thiserror::Error)]
pub enum TypedError {
    /// The store refused the write (the same rules as the API).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The object does not (de)serialise as `kind`.
    #[error("{kind}: {source}")]
    Json {
        /// The kind, `apiVersion/kind`.
        kind: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
}

fn kind_of<K: kube::Resource<DynamicType = ()>>() -> (String, String) {
    (K::api_version(&()).into_owned(), K::kind(&()).into_owned())
}

fn decode<K: kube::Resource<DynamicType = ()> + DeserializeOwned>(
    v: &Value,
) -> Result<K, TypedError> {
    K::deserialize(v).map_err(|source| {
        let (api_version, kind) = kind_of::<K>();
        TypedError::Json {
            kind: format!("{api_version}/{kind}"),
            source,
        }
    })
}

impl ApiServer {
    /// [`put_object`](Self::put_object) for a typed object: created if absent, replaced
    /// otherwise (a namespaced kind needs `metadata.namespace`). Returns the stored object.
    pub fn put_typed<K>(&self, obj: &K) -> Result<K, TypedError>
    where
        K: kube::Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let (api_version, kind) = kind_of::<K>();
        let mut v = serde_json::to_value(obj).map_err(|source| TypedError::Json {
            kind: format!("{api_version}/{kind}"),
            source,
        })?;
        v["apiVersion"] = Value::String(api_version);
        v["kind"] = Value::String(kind);
        let stored = self.put_object(v)?;
        decode(&stored)
    }

    /// [`get_object`](Self::get_object), typed (`namespace` is `""` for a cluster-scoped kind).
    pub fn get_typed<K>(&self, namespace: &str, name: &str) -> Result<Option<K>, TypedError>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let (api_version, kind) = kind_of::<K>();
        self.get_object(&api_version, &kind, namespace, name)
            .map(|v| decode(&v))
            .transpose()
    }

    /// [`objects`](Self::objects), typed: every live object of kind `K`, in key order.
    pub fn objects_typed<K>(&self) -> Result<Vec<K>, TypedError>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let (api_version, kind) = kind_of::<K>();
        self.objects(&api_version, &kind)
            .iter()
            .map(|v| decode(v))
            .collect()
    }

    /// [`delete_object`](Self::delete_object), typed: returns the deleted (or, held by a
    /// finalizer, deletion-marked) object.
    pub fn delete_typed<K>(&self, namespace: &str, name: &str) -> Result<K, TypedError>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let (api_version, kind) = kind_of::<K>();
        let last = self.delete_object(&api_version, &kind, namespace, name)?;
        decode(&last)
    }
}
