//! Lists: where one is served from ([`ListPlan`]: the replica's watch cache, or the store
//! consistently or at an exact revision), pagination with continue tokens, and the handler.

use std::sync::Arc;

use serde_json::{json, Value};

use super::error::ApiError;
use super::query::{list_options_invalid, Query, RvMatch};
use super::store::ObjKey;
use super::ApiServer;

impl ApiServer {
    /// `GET` on a collection without `watch`: the list, as kube-apiserver answers it.
    pub(super) async fn list(
        &self,
        replica: usize,
        res: usize,
        ns: Option<String>,
        q: &Query,
    ) -> Result<Value, ApiError> {
        self.count(|s| s.lists += 1);
        let (labels, fields) = q.selectors(&self.resource(res).kind)?;
        let plan = ListPlan::from_query(q)?;
        let keep = |o: &Value| labels.matches_object(o) && fields.matches_object(o);
        let ns = ns.as_deref();
        let (rev, items, next) = match plan {
            ListPlan::Cache { not_older_than } => {
                let (rev, items) = self.cache_list(replica, res, ns, not_older_than).await?;
                (rev, items.into_iter().filter(|o| keep(o)).collect(), None)
            }
            ListPlan::Store { rev, start, limit } => {
                let (rev, all) = self.read(|store| {
                    let rev = rev.unwrap_or_else(|| store.revision());
                    store.list_at(res, ns, rev).map(|all| (rev, all))
                })?;
                let (items, next) = paginate(all, &start, limit, keep);
                (
                    rev,
                    items,
                    next.map(|(k, remaining)| (encode_continue(rev, &k), remaining)),
                )
            }
        };
        let kind = self.resource(res);
        let mut meta = json!({"resourceVersion": rev.to_string()});
        if let Some((token, remaining)) = next {
            meta["continue"] = json!(token);
            meta["remainingItemCount"] = json!(remaining);
        }
        let items: Vec<Value> = items.iter().map(|o| (**o).clone()).collect();
        Ok(
            json!({"kind": format!("{}List", kind.kind), "apiVersion": kind.api_version(), "metadata": meta, "items": items}),
        )
    }

    /// A list served from a replica's cache, waiting (bounded) until it is not older than `min`.
    async fn cache_list(
        &self,
        replica: usize,
        res: usize,
        ns: Option<&str>,
        min: u64,
    ) -> Result<(u64, Vec<Arc<Value>>), ApiError> {
        self.wait_for_cache(replica, min).await?;
        Ok(self.with_cache(replica, |cache, _| (cache.synced(), cache.list(res, ns))))
    }

    /// Waits until replica `replica`'s cache reached `min`, at most `not_older_than_wait`;
    /// then 504 with cause `ResourceVersionTooLarge`.
    pub(super) async fn wait_for_cache(&self, replica: usize, min: u64) -> Result<(), ApiError> {
        let mut changed = self.cache_changes(replica);
        let wait = async {
            loop {
                if self.cache_revision(replica) >= min {
                    return;
                }
                changed.changed().await;
            }
        };
        match tokio::time::timeout(self.config().not_older_than_wait, wait).await {
            Ok(()) => Ok(()),
            Err(_) => Err(ApiError::too_large_resource_version(
                min,
                self.cache_revision(replica),
            )),
        }
    }
}

/// Where a list is served from.
#[derive(Debug)]
enum ListPlan {
    /// The replica's watch cache, at least at this revision; `limit` is ignored there, as by
    /// kube-apiserver's watch cache.
    Cache { not_older_than: u64 },
    /// The store: consistent (`rev: None`) or at an exact revision, paginated.
    Store {
        rev: Option<u64>,
        start: Option<ObjKey>,
        limit: Option<usize>,
    },
}

impl ListPlan {
    fn from_query(q: &Query) -> Result<Self, ApiError> {
        let rv = q.resource_version()?;
        let rv_match = q.rv_match()?;
        let limit = q.limit()?;
        if let Some(token) = q.str("continue").filter(|c| !c.is_empty()) {
            if rv.is_some() {
                return Err(list_options_invalid(
                    "resourceVersion",
                    "Forbidden: specifying resource version is not allowed when using continue",
                ));
            }
            let (rev, start) = decode_continue(token)?;
            return Ok(Self::Store {
                rev: Some(rev),
                start: Some(start),
                limit,
            });
        }
        match (rv, rv_match) {
            (None, RvMatch::Unset) => Ok(Self::Store {
                rev: None,
                start: None,
                limit,
            }),
            (None, _) => Err(list_options_invalid(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            )),
            (Some(0), RvMatch::Exact) => Err(list_options_invalid(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            )),
            (Some(n), RvMatch::Exact) => Ok(Self::Store {
                rev: Some(n),
                start: None,
                limit,
            }),
            (Some(n), RvMatch::Unset) if n > 0 && limit.is_some() => Ok(Self::Store {
                rev: Some(n),
                start: None,
                limit,
            }),
            (Some(n), _) => Ok(Self::Cache { not_older_than: n }),
        }
    }
}

/// Items from `start` (exclusive of nothing: the token names the first key of the next page),
/// filtered, at most `limit`; plus the next page's first key and how many items remain.
fn paginate(
    all: Vec<(ObjKey, Arc<Value>)>,
    start: &Option<ObjKey>,
    limit: Option<usize>,
    keep: impl Fn(&Value) -> bool,
) -> (Vec<Arc<Value>>, Option<(ObjKey, usize)>) {
    let mut matching = all
        .into_iter()
        .filter(|(k, _)| start.as_ref().is_none_or(|s| k >= s))
        .filter(|(_, o)| keep(o));
    let limit = limit.unwrap_or(usize::MAX);
    let page: Vec<_> = matching.by_ref().take(limit).map(|(_, o)| o).collect();
    let rest: Vec<_> = matching.collect();
    let next = rest.first().map(|(k, _)| (k.clone(), rest.len()));
    (page, next)
}

fn encode_continue(rev: u64, k: &ObjKey) -> String {
    format!("{rev}/{}/{}/{}", k.res, k.ns, k.name)
}

fn decode_continue(token: &str) -> Result<(u64, ObjKey), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let mut parts = token.splitn(4, '/');
    let rev = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let res = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?.to_string();
    let name = parts.next().ok_or_else(bad)?.to_string();
    Ok((rev, ObjKey { res, ns, name }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_names_with_slashes_in_the_last_field() {
        let k = ObjKey {
            res: 3,
            ns: "default".into(),
            name: "a.b".into(),
        };
        assert_eq!(decode_continue(&encode_continue(42, &k)).unwrap(), (42, k));
        assert_eq!(decode_continue("garbage").unwrap_err().code, 400);
    }

    #[test]
    fn list_plans_follow_the_resource_version_semantics() {
        let plan = |q: &str| ListPlan::from_query(&Query::parse(Some(q)));
        assert!(matches!(
            plan("").unwrap(),
            ListPlan::Store { rev: None, .. }
        ));
        assert!(matches!(
            plan("resourceVersion=0").unwrap(),
            ListPlan::Cache { not_older_than: 0 }
        ));
        assert!(matches!(
            plan("resourceVersion=5").unwrap(),
            ListPlan::Cache { not_older_than: 5 }
        ));
        assert!(matches!(
            plan("resourceVersion=5&limit=2").unwrap(),
            ListPlan::Store { rev: Some(5), .. }
        ));
        assert!(matches!(
            plan("resourceVersion=5&resourceVersionMatch=Exact").unwrap(),
            ListPlan::Store { rev: Some(5), .. }
        ));
        assert_eq!(
            plan("resourceVersion=0&resourceVersionMatch=Exact")
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(plan("resourceVersionMatch=Exact").unwrap_err().code, 422);
        assert_eq!(plan("resourceVersion=abc").unwrap_err().code, 400);
        assert_eq!(plan("limit=-1").unwrap_err().code, 422);
        assert_eq!(plan("limit=x").unwrap_err().code, 400);
        assert_eq!(
            plan("resourceVersionMatch=Sometimes&resourceVersion=1")
                .unwrap_err()
                .code,
            422
        );
    }
}
