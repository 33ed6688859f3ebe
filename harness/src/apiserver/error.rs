//! The server's errors: Kubernetes `Status` answers ([`ApiError`], what clients see) and the
//! refusals of a cluster configuration ([`ClusterError`], what the harness sees).

use serde_json::{json, Value};

/// An API error rendered as a `Status` object with the matching HTTP code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code (and `Status.code`).
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`, `Conflict`, `Expired`.
    pub reason: &'static str,
    /// Human-readable message, worded like kube-apiserver's.
    pub message: String,
    /// `details.kind` and `details.name`, when the error is about one object.
    pub subject: Option<Box<(String, String)>>,
    /// `details.causes`: `(reason, message, field)`.
    pub causes: Vec<(String, String, String)>,
    /// `details.retryAfterSeconds` (also sent as the `Retry-After` header).
    pub retry_after_seconds: Option<u32>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            subject: None,
            causes: Vec::new(),
            retry_after_seconds: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 NotFound for `plural "name" not found`.
    pub fn not_found(plural: &str, name: &str) -> Self {
        let mut e = Self::new(404, "NotFound", format!("{plural} \"{name}\" not found"));
        e.subject = Some(Box::new((plural.to_string(), name.to_string())));
        e
    }

    /// 404 NotFound for a path the server does not serve.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &str, what: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource: {method} {what}"
            ),
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(plural: &str, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{plural} \"{name}\" already exists"),
        );
        e.subject = Some(Box::new((plural.to_string(), name.to_string())));
        e
    }

    /// 409 Conflict: a precondition (resourceVersion or uid) did not hold.
    pub fn conflict(plural: &str, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {plural} \"{name}\": {why}"),
        );
        e.subject = Some(Box::new((plural.to_string(), name.to_string())));
        e
    }

    /// An injected failure with `code` (429, 500, 503, 504), named as kube-apiserver names
    /// it.
    pub fn injected(code: u16) -> Self {
        let reason = match code {
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            _ => "Timeout",
        };
        Self::other(code, reason, format!("injected {code} {reason}"))
    }

    /// 410 Expired (Gone).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"),
        )
    }

    /// 422 Invalid with one field cause.
    pub fn invalid(kind: &str, name: &str, field: &str, detail: &str) -> Self {
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {field}: {detail}"),
        );
        e.subject = Some(Box::new((kind.to_string(), name.to_string())));
        e.causes
            .push(("FieldValueInvalid".into(), detail.into(), field.into()));
        e
    }

    /// 422 Invalid because a field may not take this value now (cause `FieldValueForbidden`).
    pub fn forbidden_field(kind: &str, name: &str, field: &str, detail: &str) -> Self {
        let mut e = Self::invalid(kind, name, field, &format!("Forbidden: {detail}"));
        e.causes[0].0 = "FieldValueForbidden".into();
        e
    }

    /// 504 Timeout with cause `ResourceVersionTooLarge` and `retryAfterSeconds: 1`.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        let mut e = Self::new(
            504,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
        );
        e.causes.push((
            "ResourceVersionTooLarge".into(),
            "Too large resource version".into(),
            String::new(),
        ));
        e.retry_after_seconds = Some(1);
        e
    }

    /// Any other code with a reason, e.g. injected 429/500/503 faults.
    pub fn other(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, reason, message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut details = serde_json::Map::new();
        if let Some((kind, name)) = self.subject.as_deref() {
            details.insert("kind".into(), json!(kind));
            details.insert("name".into(), json!(name));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|(reason, message, field)| {
                    json!({"reason": reason, "message": message, "field": field})
                })
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(s) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(s));
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// Why [`super::ApiServer::new`] refused a cluster configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// `replicas` is 0.
    #[error("a cluster needs at least one apiserver replica")]
    NoReplicas,
    /// A CRD repeats the group and plural of a built-in or of an earlier CRD.
    #[error("resource {plural} is declared twice")]
    Crd {
        /// The repeated resource, as `plural.group`.
        plural: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_resource_version_carries_cause_and_retry_after() {
        let s = ApiError::too_large_resource_version(9, 4).to_status();
        assert_eq!(s["code"], 504);
        assert_eq!(
            s["details"]["causes"][0]["reason"],
            "ResourceVersionTooLarge"
        );
        assert_eq!(s["details"]["retryAfterSeconds"], 1);
    }

    #[test]
    fn not_found_names_the_object() {
        let s = ApiError::not_found("configmaps", "a").to_status();
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["details"]["name"], "a");
        assert_eq!(s["message"], "configmaps \"a\" not found");
    }
}
