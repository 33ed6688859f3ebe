//! Handlers of one object: create (`POST` on a collection), get, update (`PUT`), patch
//! (`patch.rs`, server-side apply in `apply.rs`) and delete, on the object or its `status`
//! subresource. They read the body, check it against the URL, honour the write options
//! (`dryRun=All`, `fieldValidation=Strict`, `fieldManager`, `force`) and hand the write to the
//! store; CRD and namespace writes then take effect (`crd.rs`, `namespace.rs`).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use serde_json::{json, Map, Value};

use super::apply::{parse_config, record_update, Apply};
use super::body::{check_body, media_type, read_bytes, read_delete_options, read_json};
use super::error::ApiError;
use super::patch;
use super::propagation::{self, Propagation};
use super::query::{Query, WriteOptions};
use super::resource::ResourceType;
use super::store::{ObjKey, Store, Written};
use super::{crd, namespace, validate, ApiServer};

/// Which part of an object a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// The object (with a status subresource: everything but `.status`).
    Main,
    /// `/status`: only `.status`.
    Status,
    /// `/scale`: the replicas (`scale.rs`).
    Scale,
}

/// One object's path: its key and the part addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) key: ObjKey,
    pub(super) part: Part,
}

impl ApiServer {
    /// A request on one object's path: the status code and object (or `Status`) to answer.
    pub(super) async fn object<B>(
        &self,
        target: Target,
        method: Method,
        query: &Query,
        req: Request<B>,
    ) -> Result<(u16, Value), ApiError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let ty = self.resource(target.key.res);
        let plural = ty.qualified_plural();
        let key = &target.key;
        let now = self.now();
        let limit = self.config().max_body_bytes;
        let mut opts = query.write_options()?;
        let out = match method {
            Method::GET => self.read(|s| {
                s.get(key)
                    .cloned()
                    .ok_or_else(|| ApiError::not_found(&plural, &key.name))
            }),
            Method::PUT => {
                let body = check_body(&ty, &key.ns, read_json(req, limit).await?)?;
                self.write_with(&opts, |s| update(s, &ty, &target, body, &opts, now))
            }
            Method::PATCH => {
                let (ct, bytes) = read_bytes(req, limit).await?;
                self.patch(
                    &ty,
                    &target,
                    ct.as_deref().map(media_type),
                    &bytes,
                    &opts,
                    now,
                )
            }
            Method::DELETE => {
                let (pre, dry_run, body) = read_delete_options(req, limit).await?;
                opts.dry_run |= dry_run;
                let policy = Propagation::of_options(body.as_ref(), query)?;
                let (obj, gone) = self.write_with(&opts, |s| delete(s, key, &pre, policy, now))?;
                return Ok((200, delete_answer(&ty, obj, gone)));
            }
            m => return Err(ApiError::method_not_allowed(m.as_str(), &plural)),
        }?;
        Ok((200, (*out).clone()))
    }

    /// `PATCH`: server-side apply, or a merge, JSON or strategic merge patch.
    fn patch(
        &self,
        ty: &ResourceType,
        target: &Target,
        media: Option<&str>,
        bytes: &[u8],
        opts: &WriteOptions,
        now: Duration,
    ) -> Result<Written, ApiError> {
        let plural = ty.qualified_plural();
        let key = &target.key;
        if media == Some("application/apply-patch+yaml") {
            let manager = opts.field_manager.as_deref().ok_or_else(|| {
                ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
            })?;
            let config = check_body(ty, &key.ns, parse_config(bytes)?)?;
            let apply = Apply {
                config: Value::Object(config),
                manager,
                force: opts.force,
                api_version: ty.api_version(),
                now,
            };
            let applied = WriteOptions {
                field_manager: None,
                ..opts.clone()
            };
            return self.write_with(opts, |s| match s.get(key).cloned() {
                Some(current) => {
                    let next = into_object(apply.result(Some(&current))?)?;
                    update(s, ty, target, next, &applied, now)
                }
                None if target.part == Part::Main => {
                    let obj = into_object(apply.result(None)?)?;
                    create_in(s, ty, key.res, &key.ns, obj, &applied, now)
                }
                None => Err(ApiError::not_found(&plural, &key.name)),
            });
        }
        let patch = patch::parse(media, bytes)?;
        self.write_with(opts, |s| {
            let current = s
                .get(key)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&plural, &key.name))?;
            let next = into_object(patch.apply(&current)?)?;
            update(s, ty, target, next, opts, now)
        })
    }

    /// `POST` on a collection; the namespace comes from the URL or, for a namespaced type
    /// posted to the all-namespaces path, from the body.
    pub(super) fn create(
        &self,
        res: usize,
        ns: Option<String>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let ty = self.resource(res);
        let ns = match (ty.namespaced, ns) {
            (true, None) => {
                let from_body = body["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if from_body.is_empty() {
                    return Err(ApiError::bad_request("the namespace of the object is required: POST to /namespaces/{namespace}/... or set metadata.namespace"));
                }
                from_body
            }
            (_, ns) => ns.unwrap_or_default(),
        };
        let body = check_body(&ty, &ns, body)?;
        let now = self.now();
        self.write_with(opts, |s| create_in(s, &ty, res, &ns, body, opts, now))
    }

    /// Runs a write on the store, or with `dryRun=All` on a copy of it (everything is
    /// checked, nothing is committed or seen by watchers).
    pub(super) fn write_with<T>(
        &self,
        opts: &WriteOptions,
        f: impl FnOnce(&mut Store) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if opts.dry_run {
            let mut copy = self.read(Store::clone);
            f(&mut copy)
        } else {
            self.write(f)
        }
    }
}

fn into_object(v: Value) -> Result<Map<String, Value>, ApiError> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request(
            "the patched object is not a JSON object",
        )),
    }
}

/// Creates an object (CRDs: checked, then accepted and served in the same write).
fn create_in(
    s: &mut Store,
    ty: &ResourceType,
    res: usize,
    ns: &str,
    mut obj: Map<String, Value>,
    opts: &WriteOptions,
    now: Duration,
) -> Result<Written, ApiError> {
    if opts.strict {
        validate::strict(ty, &Value::Object(obj.clone()))?;
    }
    if ty.group.is_empty() && ty.kind == "Secret" {
        // kube-apiserver's defaulting.
        let t = obj.entry("type").or_insert_with(|| json!("Opaque"));
        if t.as_str() == Some("") {
            *t = json!("Opaque");
        }
    }
    let is_crd = res == s.resources().crds();
    if is_crd {
        crd::resource_type(&Value::Object(obj.clone()))?;
        obj.insert("status".into(), crd::accepted_status(&obj, now));
    } else if ty.status_subresource && !ty.group.is_empty() {
        // A custom resource's status is written through /status only.
        obj.remove("status");
    }
    if let Some(manager) = &opts.field_manager {
        obj = record_update(None, obj, manager, &ty.api_version(), now);
    }
    let written = s.create(res, ns, obj, now)?;
    if is_crd {
        crd::sync(s, &written, false, now);
    }
    Ok(written)
}

/// Replaces an object (`PUT`, and the result of a patch or an apply), as the part addressed
/// allows: the main endpoint keeps `.status` of a type with a status subresource, `/status`
/// keeps everything else.
pub(super) fn update(
    s: &mut Store,
    ty: &ResourceType,
    target: &Target,
    mut next: Map<String, Value>,
    opts: &WriteOptions,
    now: Duration,
) -> Result<Written, ApiError> {
    let key = &target.key;
    let current = s
        .get(key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&ty.qualified_plural(), &key.name))?;
    if opts.strict {
        validate::strict(ty, &Value::Object(next.clone()))?;
    }
    if target.part == Part::Status {
        let Value::Object(mut kept) = (*current).clone() else {
            unreachable!("stored objects are JSON objects")
        };
        let rv = next["metadata"].get("resourceVersion").cloned();
        match next.remove("status") {
            Some(status) => kept.insert("status".into(), status),
            None => kept.remove("status"),
        };
        kept["metadata"]["resourceVersion"] = rv.unwrap_or(Value::Null);
        if kept["metadata"]["resourceVersion"].is_null() {
            kept["metadata"]
                .as_object_mut()
                .map(|m| m.remove("resourceVersion"));
        }
        next = kept;
    } else if ty.status_subresource {
        match current.get("status") {
            Some(status) => next.insert("status".into(), status.clone()),
            None => next.remove("status"),
        };
    }
    if crd::is_crd(s, key) {
        crd::resource_type(&Value::Object(next.clone()))?;
    }
    if let Some(manager) = &opts.field_manager {
        next = record_update(Some(&current), next, manager, &ty.api_version(), now);
    }
    let written = s.update(key, next, now)?;
    after_write(s, key, &written, now);
    Ok(written)
}

/// Deletes an object with a propagation policy (namespaces: see `namespace.rs`); returns
/// its last state and whether it is gone.
fn delete(
    s: &mut Store,
    key: &ObjKey,
    pre: &super::store::Preconditions,
    policy: Option<Propagation>,
    now: Duration,
) -> Result<(Written, bool), ApiError> {
    let written = if key.res == s.resources().namespaces() {
        namespace::delete(s, key, pre, now)?
    } else {
        propagation::delete(s, key, pre, policy, now)?
    };
    after_write(s, key, &written, now);
    Ok((written, s.get(key).is_none()))
}

/// What a write of `key` sets off: a CRD starts or stops serving; a terminating namespace
/// whose last object went goes too.
pub(super) fn after_write(s: &mut Store, key: &ObjKey, written: &Value, now: Duration) {
    let gone = s.get(key).is_none();
    if crd::is_crd(s, key) {
        crd::sync(s, written, gone, now);
    }
    if gone {
        namespace::finish_if_empty(s, &key.ns, now);
    }
}

/// kube-apiserver answers a delete with the object while it lingers (finalizers, namespace
/// termination) and for the kinds whose storage returns it (pods, services, namespaces);
/// otherwise with a `Success` status naming it.
fn delete_answer(ty: &ResourceType, obj: Written, gone: bool) -> Value {
    let returns_object =
        ty.group.is_empty() && matches!(ty.kind.as_str(), "Pod" | "Service" | "Namespace");
    if !gone || returns_object {
        return (*obj).clone();
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": obj["metadata"]["name"],
            "group": ty.group,
            "kind": ty.plural,
            "uid": obj["metadata"]["uid"],
        },
    })
}
