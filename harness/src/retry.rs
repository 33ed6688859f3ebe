//! Writes that ride out the faults a test injects, for any kind: create, replace, patch and
//! delete through a `kube::Api<K>`, retried on transient errors (429, 5xx, connection
//! errors, an attempt that outlived [`Retry::attempt_timeout`]) and, where a retry can
//! succeed, on `409 Conflict` — what a test's writer or a workload needs while the cluster
//! is partitioned, restarting or throttling. The typed store helpers that bypass HTTP are
//! [`ApiServer::put_typed`](crate::ApiServer::put_typed) and its siblings.
//!
//! ```
//! use std::time::Duration;
//! use k8s_openapi::api::core::v1::Secret;
//! use kube::api::{Api, DeleteParams, Patch, PatchParams};
//! use kube_chaos_harness::{client, net::ClientConfig, retry, SimBuilder};
//!
//! let (mut sim, server) = SimBuilder::new(7).duration(Duration::from_secs(60)).build()?;
//! sim.client("writer", async {
//!     let api: Api<Secret> = Api::default_namespaced(client(&ClientConfig::new(1)));
//!     let secret = serde_json::from_value(serde_json::json!({"metadata": {"name": "s"}}))?;
//!     retry::create(&api, &secret).await?;
//!     let labels = serde_json::json!({"metadata": {"labels": {"tier": "db"}}});
//!     retry::patch(&api, "s", &PatchParams::default(), &Patch::Merge(&labels)).await?;
//!     retry::replace_with(&api, "s", |s: &mut Secret| {
//!         s.string_data = Some([("k".to_string(), "v".to_string())].into());
//!     })
//!     .await?;
//!     retry::delete(&api, "s", &DeleteParams::default()).await?;
//!     retry::delete(&api, "s", &DeleteParams::default()).await?; // gone already: done
//!     Ok(())
//! });
//! sim.run().map_err(|e| e.to_string())?;
//! assert!(server.get_typed::<Secret>("default", "s")?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a retried write did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The server refused it for good (an error no retry changes: 400, 403, 404, 422, ...).
    #[error("{op} {name}: refused")]
    Refused {
        /// `create`, `replace`, `patch` or `delete`.
        op: &'static str,
        /// The object's name.
        name: String,
        /// The server's answer.
        #[source]
        source: kube::Error,
    },
    /// Every attempt failed with a transient error or a conflict.
    #[error("{op} {name}: gave up after {attempts} attempts; the last: {last}")]
    GaveUp {
        /// `create`, `replace`, `patch` or `delete`.
        op: &'static str,
        /// The object's name.
        name: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: String,
    },
}

/// How a write is retried: up to `attempts` times, pausing `delay` doubling to `max_delay`
/// between them (simulated time in the simulation), each attempt bounded by
/// `attempt_timeout` (kube's client has no read timeout: without it, a request whose
/// segment a partition swallowed would wait forever).
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts in all (at least one is made).
    pub attempts: u32,
    /// The first pause.
    pub delay: Duration,
    /// The longest pause.
    pub max_delay: Duration,
    /// The longest one attempt may take (`None`: unbounded).
    pub attempt_timeout: Option<Duration>,
}

impl Default for Retry {
    /// 30 attempts, 200 ms doubling to 5 s, 30 s per attempt (about two minutes and a half
    /// of pauses: longer than the faults of the fixtures).
    fn default() -> Self {
        Self {
            attempts: 30,
            delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            attempt_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// What one failed attempt means.
enum Failure {
    /// 429, 5xx, a connection error or a timeout: try again.
    Transient(String),
    /// 409 Conflict: try again from a fresh read.
    Conflict(kube::Error),
    /// Anything else.
    Fatal(kube::Error),
}

fn classify(e: kube::Error) -> Failure {
    match &e {
        kube::Error::Api(s) if s.code == 429 || s.code >= 500 => Failure::Transient(e.to_string()),
        kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict" => Failure::Conflict(e),
        kube::Error::Api(_) | kube::Error::BuildRequest(_) => Failure::Fatal(e),
        _ => Failure::Transient(e.to_string()),
    }
}

fn is_code(e: &kube::Error, code: u16, reason: &str) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code && s.reason == reason)
}

/// The bounds `Api<K>` needs of a kind for the helpers here.
pub trait Kind:
    kube::Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + 'static
{
}

impl<K> Kind for K where
    K: kube::Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + 'static
{
}

impl Retry {
    /// One attempt, bounded by `attempt_timeout`.
    async fn attempt<T>(&self, call: impl Future<Output = kube::Result<T>>) -> Result<T, Failure> {
        let out = match self.attempt_timeout {
            Some(t) => match tokio::time::timeout(t, call).await {
                Ok(out) => out,
                Err(_) => return Err(Failure::Transient(format!("no answer within {t:?}"))),
            },
            None => call.await,
        };
        out.map_err(classify)
    }

    /// The pause after attempt `n` (0-based).
    async fn pause(&self, n: u32) {
        let d = self
            .delay
            .saturating_mul(1 << n.min(16))
            .min(self.max_delay);
        tokio::time::sleep(d).await;
    }

    fn gave_up(&self, op: &'static str, name: &str, last: String) -> RetryError {
        RetryError::GaveUp {
            op,
            name: name.to_string(),
            attempts: self.attempts.max(1),
            last,
        }
    }

    /// Creates `obj`. A retry that finds it already there (an earlier attempt landed, its
    /// answer was lost) returns the stored object; `AlreadyExists` on the first attempt is
    /// [`RetryError::Refused`].
    pub async fn create<K: Kind>(&self, api: &Api<K>, obj: &K) -> Result<K, RetryError> {
        let name = obj.name_any();
        let refused = |source| RetryError::Refused {
            op: "create",
            name: name.clone(),
            source,
        };
        let mut last = String::new();
        for n in 0..self.attempts.max(1) {
            match self.attempt(api.create(&PostParams::default(), obj)).await {
                Ok(created) => return Ok(created),
                Err(Failure::Fatal(e)) if n > 0 && is_code(&e, 409, "AlreadyExists") => {
                    return self.get(api, &name, "create").await;
                }
                Err(Failure::Fatal(e) | Failure::Conflict(e)) => return Err(refused(e)),
                Err(Failure::Transient(why)) => last = why,
            }
            self.pause(n).await;
        }
        Err(self.gave_up("create", &name, last))
    }

    async fn get<K: Kind>(
        &self,
        api: &Api<K>,
        name: &str,
        op: &'static str,
    ) -> Result<K, RetryError> {
        let mut last = String::new();
        for n in 0..self.attempts.max(1) {
            match self.attempt(api.get(name)).await {
                Ok(obj) => return Ok(obj),
                Err(Failure::Fatal(e) | Failure::Conflict(e)) => {
                    return Err(RetryError::Refused {
                        op,
                        name: name.to_string(),
                        source: e,
                    })
                }
                Err(Failure::Transient(why)) => last = why,
            }
            self.pause(n).await;
        }
        Err(self.gave_up(op, name, last))
    }

    /// Reads `name`, changes it with `change` and replaces it; a conflict (someone wrote in
    /// between) starts again from a fresh read, as client-go's `RetryOnConflict` does.
    pub async fn replace_with<K: Kind>(
        &self,
        api: &Api<K>,
        name: &str,
        mut change: impl FnMut(&mut K),
    ) -> Result<K, RetryError> {
        let mut last = String::new();
        for n in 0..self.attempts.max(1) {
            let mut obj = self.get(api, name, "replace").await?;
            change(&mut obj);
            match self
                .attempt(api.replace(name, &PostParams::default(), &obj))
                .await
            {
                Ok(replaced) => return Ok(replaced),
                Err(Failure::Fatal(e)) => {
                    return Err(RetryError::Refused {
                        op: "replace",
                        name: name.to_string(),
                        source: e,
                    })
                }
                Err(Failure::Conflict(e)) => last = e.to_string(),
                Err(Failure::Transient(why)) => last = why,
            }
            self.pause(n).await;
        }
        Err(self.gave_up("replace", name, last))
    }

    /// Patches `name` (any patch type), retrying transient errors and conflicts.
    pub async fn patch<K: Kind, P: Serialize + Debug>(
        &self,
        api: &Api<K>,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, RetryError> {
        let mut last = String::new();
        for n in 0..self.attempts.max(1) {
            match self.attempt(api.patch(name, params, patch)).await {
                Ok(patched) => return Ok(patched),
                Err(Failure::Fatal(e)) => {
                    return Err(RetryError::Refused {
                        op: "patch",
                        name: name.to_string(),
                        source: e,
                    })
                }
                Err(Failure::Conflict(e)) => last = e.to_string(),
                Err(Failure::Transient(why)) => last = why,
            }
            self.pause(n).await;
        }
        Err(self.gave_up("patch", name, last))
    }

    /// Deletes `name`; an object already gone (`404`) counts as deleted. Returns once the
    /// delete was accepted (finalizers may still hold the object).
    pub async fn delete<K: Kind>(
        &self,
        api: &Api<K>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<(), RetryError> {
        let mut last = String::new();
        for n in 0..self.attempts.max(1) {
            match self.attempt(api.delete(name, params)).await {
                Ok(_) => return Ok(()),
                Err(Failure::Fatal(e)) if is_code(&e, 404, "NotFound") => return Ok(()),
                Err(Failure::Fatal(e)) => {
                    return Err(RetryError::Refused {
                        op: "delete",
                        name: name.to_string(),
                        source: e,
                    })
                }
                Err(Failure::Conflict(e)) => last = e.to_string(),
                Err(Failure::Transient(why)) => last = why,
            }
            self.pause(n).await;
        }
        Err(self.gave_up("delete", name, last))
    }
}

/// [`Retry::create`] with the default policy.
pub async fn create<K: Kind>(api: &Api<K>, obj: &K) -> Result<K, RetryError> {
    Retry::default().create(api, obj).await
}

/// [`Retry::replace_with`] with the default policy.
pub async fn replace_with<K: Kind>(
    api: &Api<K>,
    name: &str,
    change: impl FnMut(&mut K),
) -> Result<K, RetryError> {
    Retry::default().replace_with(api, name, change).await
}

/// [`Retry::patch`] with the default policy.
pub async fn patch<K: Kind, P: Serialize + Debug>(
    api: &Api<K>,
    name: &str,
    params: &PatchParams,
    patch: &Patch<P>,
) -> Result<K, RetryError> {
    Retry::default().patch(api, name, params, patch).await
}

/// [`Retry::delete`] with the default policy.
pub async fn delete<K: Kind>(
    api: &Api<K>,
    name: &str,
    params: &DeleteParams,
) -> Result<(), RetryError> {
    Retry::default().delete(api, name, params).await
}
