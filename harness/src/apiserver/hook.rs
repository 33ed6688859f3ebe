//! Request hooks: the one place where faults enter the HTTP layer (STYLE.md: "a hook inside
//! the server is a small trait, with closures accepted").
//!
//! Hooks see every request before it is served and return a [`Verdict`]; the first hook that
//! does not pass decides. Scenario faults (HTTP 429/5xx storms, slow responses, dropped
//! watches, 401/403) are hooks; tests use closures.

use std::sync::Arc;
use std::time::Duration;

use http::Method;

use super::ApiError;

/// What a hook sees of a request.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The replica serving it.
    pub replica: usize,
    /// HTTP method.
    pub method: Method,
    /// Path, e.g. `/api/v1/namespaces/default/configmaps`.
    pub path: String,
    /// Raw query string (may be empty).
    pub query: String,
    /// Whether it is a watch (`watch=true`/`watch=1`).
    pub is_watch: bool,
    /// Simulated time since the UNIX epoch.
    pub at: Duration,
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Serve it normally.
    Pass,
    /// Answer with this error instead (its `retry_after_seconds` also sets `Retry-After`).
    Respond(ApiError),
    /// Serve it after this delay (a slow apiserver).
    Delay(Duration),
    /// For a watch: answer 200 and close the stream at once, with no event.
    EmptyWatch,
}

/// A request hook. Closures `Fn(&RequestInfo) -> Verdict` are hooks.
pub trait RequestHook: Send + Sync {
    /// Decides what happens to one request.
    fn on_request(&self, req: &RequestInfo) -> Verdict;
}

impl<F> RequestHook for F
where
    F: Fn(&RequestInfo) -> Verdict + Send + Sync,
{
    fn on_request(&self, req: &RequestInfo) -> Verdict {
        self(req)
    }
}

/// Identifies an installed hook, for removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HookId(pub(super) u64);

/// The installed hooks, in installation order.
#[derive(Default, Clone)]
pub(super) struct Hooks {
    next: u64,
    hooks: Vec<(HookId, Arc<dyn RequestHook>)>,
}

impl Hooks {
    pub(super) fn add(&mut self, hook: Arc<dyn RequestHook>) -> HookId {
        self.next += 1;
        let id = HookId(self.next);
        self.hooks.push((id, hook));
        id
    }

    pub(super) fn remove(&mut self, id: HookId) -> bool {
        let before = self.hooks.len();
        self.hooks.retain(|(i, _)| *i != id);
        self.hooks.len() != before
    }

    /// The first verdict that is not `Pass`.
    pub(super) fn verdict(&self, req: &RequestInfo) -> Verdict {
        self.hooks
            .iter()
            .map(|(_, h)| h.on_request(req))
            .find(|v| !matches!(v, Verdict::Pass))
            .unwrap_or(Verdict::Pass)
    }
}
