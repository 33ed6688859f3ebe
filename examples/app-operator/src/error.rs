//! The reconcile's errors, and how our runtime classifies them.

use kube::runtime::finalizer;
use kube_chaos::controller::{Classify, ErrorClass};

/// Why a reconcile failed (each is retried with a backoff, except where noted).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("api request failed: {0}")]
    Kube(#[from] kube::Error),
    /// The finalizer helper failed: adding or removing the finalizer, or the apply or
    /// cleanup it ran.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
    /// The registry kept changing under every attempt to update it.
    #[error("registry {namespace}/app-registry still conflicting after {attempts} attempts")]
    Conflict {
        /// The registry's namespace.
        namespace: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The App lacks a namespace, name or uid (never from the API server; terminal).
    #[error("app {0:?} has no namespace, name or uid")]
    Unidentified(String),
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Kube(e) => e.class(),
            Error::Finalizer(f) => match f.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.class(),
                finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e) => {
                    e.class()
                }
                finalizer::Error::UnnamedObject | finalizer::Error::InvalidFinalizer => {
                    ErrorClass::Terminal
                }
            },
            Error::Conflict { .. } => ErrorClass::Retryable,
            Error::Unidentified(_) => ErrorClass::Terminal,
        }
    }
}
