//! The `/scale` subresource of a CRD that declares one: an `autoscaling/v1` `Scale` view of
//! the object (`spec.replicas` and `status.replicas` at the declared paths); `PUT` and
//! `PATCH` change only the replicas at `specReplicasPath`.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use serde_json::{json, Map, Value};

use super::body::{media_type, read_bytes, read_json};
use super::error::ApiError;
use super::object::{update, Part, Target};
use super::patch;
use super::query::Query;
use super::resource::ResourceType;
use super::ApiServer;

fn pointer(path: &str) -> String {
    format!("/{}", path.trim_start_matches('.').replace('.', "/"))
}

/// The `Scale` of an object.
fn view(ty: &ResourceType, obj: &Value) -> Value {
    let (spec, status) = ty.scale_subresource.clone().unwrap_or_default();
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                     "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": obj.pointer(&pointer(&spec)).cloned().unwrap_or(json!(0))},
        "status": {"replicas": obj.pointer(&pointer(&status)).cloned().unwrap_or(json!(0))},
    })
}

/// `obj` with `replicas` at the spec path.
fn with_replicas(ty: &ResourceType, obj: &Value, replicas: Value) -> Map<String, Value> {
    let (spec, _) = ty.scale_subresource.clone().unwrap_or_default();
    let mut out = obj.clone();
    let mut node = &mut out;
    for part in spec.trim_start_matches('.').split('.') {
        if !node.is_object() {
            *node = json!({});
        }
        node = node
            .as_object_mut()
            .expect("made an object above")
            .entry(part)
            .or_insert(Value::Null);
    }
    *node = replicas;
    match out {
        Value::Object(m) => m,
        _ => unreachable!("stored objects are JSON objects"),
    }
}

impl ApiServer {
    /// A request on `/scale`.
    pub(super) async fn scale<B>(
        &self,
        target: &Target,
        method: Method,
        query: &Query,
        req: Request<B>,
    ) -> Result<Value, ApiError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let ty = self.resource(target.key.res);
        let limit = self.config().max_body_bytes;
        let opts = query.write_options()?;
        let change: Box<dyn FnOnce(Value) -> Result<Value, ApiError>> = match method {
            Method::GET => Box::new(Ok),
            Method::PUT => {
                let body = read_json(req, limit).await?;
                Box::new(move |_| Ok(body))
            }
            Method::PATCH => {
                let (ct, bytes) = read_bytes(req, limit).await?;
                let p = patch::parse(ct.as_deref().map(media_type), &bytes)?;
                Box::new(move |current| p.apply(&current))
            }
            m => return Err(ApiError::method_not_allowed(m.as_str(), "scale")),
        };
        let write = method != Method::GET;
        let now: Duration = self.now();
        let main = Target {
            key: target.key.clone(),
            part: Part::Main,
        };
        let run = |s: &mut super::store::Store| {
            let current = s
                .get(&target.key)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&ty.qualified_plural(), &target.key.name))?;
            let wanted = change(view(&ty, &current))?;
            if !write {
                return Ok(view(&ty, &current));
            }
            let next = with_replicas(&ty, &current, wanted["spec"]["replicas"].clone());
            let written = update(s, &ty, &main, next, &opts, now)?;
            Ok(view(&ty, &written))
        };
        if write {
            self.write_with(&opts, run)
        } else {
            let mut copy = self.read(super::store::Store::clone);
            run(&mut copy)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_reads_and_writes_the_declared_replica_paths() {
        let mut t = ResourceType::new("example.com", "v1", "Widget", "widgets", true);
        t.scale_subresource = Some((".spec.replicas".into(), ".status.replicas".into()));
        let obj =
            json!({"metadata": {"name": "w"}, "spec": {"replicas": 2}, "status": {"replicas": 1}});
        let v = view(&t, &obj);
        assert_eq!(
            (
                v["spec"]["replicas"].clone(),
                v["status"]["replicas"].clone()
            ),
            (json!(2), json!(1))
        );
        let next = with_replicas(&t, &obj, json!(5));
        assert_eq!(next["spec"]["replicas"], 5);
        assert_eq!(next["status"]["replicas"], 1);
    }
}
