//! The checkers of external clients — real clients of `kube-chaos serve --scenario`, in any
//! language — judged from what the server saw and nothing else: the [`Access`] record of
//! every request and of every event each watch stream sent, grouped per client (by
//! `User-Agent` or by connection, as the scenario says) and per watched collection.
//!
//! - `stream`: `no_historical_replay` (a watch resumed from a resourceVersion older than one
//!   that client was already sent) and `relist_after_expired` (after a 410 the next request
//!   is a relist, not the same stale resourceVersion again);
//! - `rate`: `watch_rate` and `list_rate`, per client and collection, against bounds;
//! - `backoff`: a failed request (429, 5xx) is retried no sooner than its `Retry-After`,
//!   and never in a tight loop;
//! - `cache`: `no_event_loss` against the cache a client reports (`key rv` lines).

mod backoff;
mod cache;
mod rate;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Verdict, Violation};
use crate::scenario::{Checker, ClientIdentity, Scenario};
use crate::serve::Access;
use crate::trace::{secs, Held};

pub use cache::{parse_cache, CacheFileError};

/// What the checkers of external clients read.
pub struct ServedEvidence<'a> {
    /// The scenario played.
    pub scenario: &'a Scenario,
    /// Every request the server saw, in arrival order.
    pub requests: &'a [Access],
    /// The live ConfigMaps at the end.
    pub objects: &'a [Arc<Value>],
    /// The cache the client reported at the end, if it did.
    pub cache: Option<&'a Held>,
    /// The trace, for the lines around each violation.
    pub trace: &'a [Line],
}

/// One trace line: when, whose (a client, or `None` for the runner and the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Since the scenario started.
    pub at: Duration,
    /// The client it concerns.
    pub client: Option<String>,
    /// The text, time first.
    pub text: String,
}

/// The checkers that judge external clients, in report order (`no_event_loss` when the
/// client reports its cache).
pub fn checkers(cache: bool) -> Vec<Checker> {
    let mut out = vec![
        Checker::NoHistoricalReplay,
        Checker::RelistAfterExpired,
        Checker::WatchRate,
        Checker::ListRate,
        Checker::Backoff,
    ];
    if cache {
        out.push(Checker::NoEventLoss);
    }
    out
}

/// Runs one checker over what the server saw.
pub fn check(checker: Checker, ev: &ServedEvidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    match checker {
        Checker::NoHistoricalReplay => stream::no_historical_replay(ev, &mut found),
        Checker::RelistAfterExpired => stream::relist_after_expired(ev, &mut found),
        Checker::WatchRate => rate::watch_rate(ev, &mut found),
        Checker::ListRate => rate::list_rate(ev, &mut found),
        Checker::Backoff => backoff::backoff(ev, &mut found),
        Checker::NoEventLoss => cache::no_event_loss(ev, &mut found),
        Checker::WatchExact
        | Checker::QueueExclusive
        | Checker::ReconcileCoverage
        | Checker::DeadLetterOnce
        | Checker::RetryBackoff
        | Checker::Convergence
        | Checker::EventuallyStable
        | Checker::Differential
        | Checker::DeletionsComplete
        | Checker::NoDuplicateChildren
        | Checker::NoPanic
        | Checker::WriteRate
        | Checker::NoStuckReconcile
        | Checker::WatchTimeout
        | Checker::BackoffReset
        | Checker::AddAfterEarliest => {}
    }
    found.out
}

/// Every checker that applies, as verdicts.
pub fn run_all(ev: &ServedEvidence<'_>) -> Vec<Verdict> {
    checkers(ev.cache.is_some())
        .into_iter()
        .map(|checker| Verdict {
            checker,
            violations: check(checker, ev),
        })
        .collect()
}

impl ServedEvidence<'_> {
    /// Who sent `a`, as the scenario tells clients apart.
    pub fn client(&self, a: &Access) -> String {
        let by = self
            .scenario
            .subject
            .external
            .as_ref()
            .map(|e| e.identify_by)
            .unwrap_or_default();
        client_name(by, a)
    }

    /// The requests of each (client, collection), in arrival order.
    pub(super) fn streams(&self) -> BTreeMap<(String, String), Vec<&Access>> {
        let mut out: BTreeMap<(String, String), Vec<&Access>> = BTreeMap::new();
        for a in self.requests {
            out.entry((self.client(a), a.stream_key()))
                .or_default()
                .push(a);
        }
        out
    }
}

/// A client's name: its `User-Agent` or its connection.
pub fn client_name(by: ClientIdentity, a: &Access) -> String {
    match by {
        ClientIdentity::UserAgent if !a.user_agent.is_empty() => a.user_agent.clone(),
        ClientIdentity::UserAgent => "(no User-Agent)".into(),
        ClientIdentity::Connection => format!("conn#{}", a.conn),
    }
}

/// The trace of what the server saw: one line per request (with what a watch sent), one per
/// 410 a stream sent.
pub fn request_lines(by: ClientIdentity, requests: &[Access]) -> Vec<Line> {
    let mut out = Vec::new();
    for a in requests {
        let client = client_name(by, a);
        let query = match a.query.as_str() {
            "" => String::new(),
            q => format!("?{q}"),
        };
        let mut text = format!(
            "{} {client} (conn {}) {} {}{query} -> {}",
            secs(a.at),
            a.conn,
            a.method,
            a.path,
            a.status
        );
        if let Some(r) = a.retry_after {
            text += &format!(" Retry-After: {r}");
        }
        if let Some(rv) = a.list_rv {
            text += &format!(" list rv={rv}");
        }
        if a.is_watch() && a.status == 200 {
            text += &format!(" sent {} event(s)", a.sent.len());
            if let Some(rv) = a.newest_rv().filter(|rv| *rv > 0) {
                text += &format!(" up to rv={rv}");
            }
        }
        out.push(Line {
            at: a.at,
            client: Some(client.clone()),
            text,
        });
        for e in a.sent.iter().filter(|e| e.kind == "ERROR") {
            out.push(Line {
                at: e.at,
                client: Some(client.clone()),
                text: format!(
                    "{} {client} (conn {}) watch sent ERROR {}",
                    secs(e.at),
                    a.conn,
                    e.code.unwrap_or(0)
                ),
            });
        }
    }
    out.sort_by_key(|l| l.at);
    out
}

/// Builds violations with the trace lines around them (of that client, and the runner's).
pub(super) struct Found<'e> {
    trace: &'e [Line],
    out: Vec<Violation>,
}

impl<'e> Found<'e> {
    fn new(ev: &ServedEvidence<'e>) -> Self {
        Self {
            trace: ev.trace,
            out: Vec::new(),
        }
    }

    /// A violation of `client` about `key` at `at`.
    pub(super) fn add(&mut self, client: &str, key: &str, at: Duration, message: String) {
        let context = match self.out.len() < super::verdict::SHOWN_VIOLATIONS {
            true => around(self.trace, client, at),
            false => Vec::new(),
        };
        self.out.push(Violation {
            key: key.to_string(),
            at,
            message: format!("{client}: {message}"),
            context,
        });
    }
}

/// Up to 4 lines of `client` (and the runner) before `at` and 2 from it on.
fn around(trace: &[Line], client: &str, at: Duration) -> Vec<String> {
    let mine: Vec<&Line> = trace
        .iter()
        .filter(|l| l.client.as_deref().is_none_or(|c| c == client))
        .collect();
    let i = mine.partition_point(|l| l.at < at);
    let (lo, hi) = (i.saturating_sub(4), (i + 2).min(mine.len()));
    mine[lo..hi].iter().map(|l| l.text.clone()).collect()
}

#[cfg(test)]
pub(super) mod testkit {
    //! Hand-built evidence: requests of named clients at given milliseconds.

    use std::time::Duration;

    use super::{check, Line, ServedEvidence};
    use crate::scenario::{Checker, Scenario, EXTERNAL};
    use crate::serve::{Access, Sent};
    use crate::trace::Held;

    pub(in crate::check) const CMS: &str = "/api/v1/namespaces/default/configmaps";

    /// A 10 s external scenario with `extra` JSON (`, "expect": ...`) and its requests.
    pub(in crate::check) struct Served {
        pub scenario: Scenario,
        pub requests: Vec<Access>,
        pub objects: Vec<std::sync::Arc<serde_json::Value>>,
        pub cache: Option<Held>,
    }

    pub(in crate::check) fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    impl Served {
        pub fn new(extra: &str) -> Self {
            let text = format!(
                r#"{{"version": 1, "name": "t", "duration": "10s", "settle": "2s", "subject": {{"name": "{EXTERNAL}"}}{extra}}}"#
            );
            let scenario = Scenario::parse(&text, "t", crate::subject::registry()).expect("valid");
            Self {
                scenario,
                requests: Vec::new(),
                objects: Vec::new(),
                cache: None,
            }
        }

        /// A request of `client` at `at_ms` with `query` on the ConfigMaps, answered `status`.
        pub fn req(&mut self, client: &str, at_ms: u64, query: &str, status: u16) -> &mut Access {
            self.requests.push(Access {
                conn: self.requests.len() as u64 + 1,
                user_agent: client.into(),
                at: ms(at_ms),
                method: "GET".into(),
                path: CMS.into(),
                query: query.into(),
                status,
                retry_after: None,
                list_rv: None,
                sent: Vec::new(),
            });
            self.requests.last_mut().expect("pushed")
        }

        /// A list answered with collection `rv`.
        pub fn list(&mut self, client: &str, at_ms: u64, rv: u64) {
            self.req(client, at_ms, "", 200).list_rv = Some(rv);
        }

        /// A watch from `rv` that sent events of `rvs` (an rv of 0 is an in-stream 410),
        /// 100 ms apart.
        pub fn watch(&mut self, client: &str, at_ms: u64, rv: &str, rvs: &[u64]) {
            let a = self.req(client, at_ms, &format!("watch=1&resourceVersion={rv}"), 200);
            for (i, r) in rvs.iter().enumerate() {
                let at = ms(at_ms + 100 * (i as u64 + 1));
                a.sent.push(match r {
                    0 => Sent {
                        at,
                        kind: "ERROR".into(),
                        key: String::new(),
                        rv: 0,
                        code: Some(410),
                    },
                    r => Sent {
                        at,
                        kind: "MODIFIED".into(),
                        key: "default/a".into(),
                        rv: *r,
                        code: None,
                    },
                });
            }
        }

        pub fn messages(&self, checker: Checker) -> Vec<String> {
            let trace: Vec<Line> = Vec::new();
            let ev = ServedEvidence {
                scenario: &self.scenario,
                requests: &self.requests,
                objects: &self.objects,
                cache: self.cache.as_ref(),
                trace: &trace,
            };
            check(checker, &ev).into_iter().map(|v| v.message).collect()
        }
    }
}
