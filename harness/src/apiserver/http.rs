//! The HTTP face of the apiserver: routing, query validation, CRUD and list handlers.
//! Parsing and `Status` errors live here; state changes go through [`super::store`], watch
//! streams through [`super::watch`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, Limited};
use serde_json::{json, Map, Value};

use super::discovery;
use super::error::ApiError;
use super::merge::merge_patch;
use super::meta::metadata_mut;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{ObjKey, Preconditions, Store};
use super::watch::WatchRequest;
use super::ApiServer;
use super::{RequestInfo, Verdict};

/// Response body of the server: a full JSON document or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    ResourceList {
        group: String,
        version: String,
    },
    Collection {
        res: usize,
        ns: Option<String>,
    },
    Object {
        res: usize,
        ns: Option<String>,
        name: String,
    },
}

fn route(server: &ApiServer, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let resources_route = |group: &str, version: &str, rest: &[&str]| {
        let st = server.lock();
        let find = |plural: &str| st.store.resources().find(group, version, plural);
        let (res, ns, name) = match rest {
            ["namespaces", ns, plural, tail @ ..] if tail.len() <= 2 => {
                (find(plural), Some(*ns), tail)
            }
            [plural, tail @ ..] if tail.len() <= 2 => (find(plural), None, tail),
            _ => (None, None, &[][..]),
        };
        let res = res.ok_or_else(|| ApiError::no_route(path))?;
        let namespaced = st.store.resources().get(res).namespaced;
        if ns.is_some() && !namespaced {
            return Err(ApiError::no_route(path));
        }
        let ns = ns.map(str::to_string);
        match name {
            [] => Ok(Route::Collection { res, ns }),
            [name] | [name, "status"] if ns.is_some() || !namespaced => Ok(Route::Object {
                res,
                ns,
                name: name.to_string(),
            }),
            _ => Err(ApiError::no_route(path)),
        }
    };
    match segs.as_slice() {
        ["version"] => Ok(Route::Version),
        ["api"] => Ok(Route::CoreVersions),
        ["api", "v1"] => Ok(Route::ResourceList {
            group: String::new(),
            version: "v1".into(),
        }),
        ["api", "v1", rest @ ..] => resources_route("", "v1", rest),
        ["apis"] => Ok(Route::Groups),
        ["apis", g] => Ok(Route::Group(g.to_string())),
        ["apis", g, v] => Ok(Route::ResourceList {
            group: g.to_string(),
            version: v.to_string(),
        }),
        ["apis", g, v, rest @ ..] => resources_route(g, v, rest),
        _ => Err(ApiError::no_route(path)),
    }
}

/// Query parameters, validated as kube-apiserver does (bad syntax: 400; bad combinations: 422).
#[derive(Debug, Default)]
pub(super) struct Query {
    raw: BTreeMap<String, String>,
}

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let raw = form_urlencoded::parse(q.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self { raw }
    }

    pub(super) fn str(&self, k: &str) -> Option<&str> {
        self.raw.get(k).map(String::as_str)
    }

    pub(super) fn bool(&self, k: &str) -> Result<bool, ApiError> {
        match self.str(k) {
            None | Some("" | "false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value for {k}: {v:?}: expected true or false"
            ))),
        }
    }

    fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.str(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value for {k}: {v:?}: expected an integer"
                    ))
                })
            })
            .transpose()
    }

    /// `resourceVersion`: `None` when unset or empty.
    pub(super) fn resource_version(&self) -> Result<Option<u64>, ApiError> {
        match self.str("resourceVersion") {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid resource version {v:?}: expected an unsigned integer"
                ))
            }),
        }
    }

    pub(super) fn rv_match(&self) -> Result<RvMatch, ApiError> {
        match self.str("resourceVersionMatch") {
            None | Some("") => Ok(RvMatch::Unset),
            Some("NotOlderThan") => Ok(RvMatch::NotOlderThan),
            Some("Exact") => Ok(RvMatch::Exact),
            Some(v) => Err(list_options_invalid(
                "resourceVersionMatch",
                &format!("Unsupported value: {v:?}: supported values: \"Exact\", \"NotOlderThan\""),
            )),
        }
    }

    /// `timeoutSeconds`.
    pub(super) fn timeout_seconds(&self) -> Result<Option<u64>, ApiError> {
        match self.int("timeoutSeconds")? {
            Some(t) if t < 0 => Err(list_options_invalid(
                "timeoutSeconds",
                &format!("Invalid value: {t}: must be greater than or equal to 0"),
            )),
            t => Ok(t.map(|t| t as u64)),
        }
    }

    fn limit(&self) -> Result<Option<usize>, ApiError> {
        match self.int("limit")? {
            Some(l) if l < 0 => Err(list_options_invalid(
                "limit",
                &format!("Invalid value: {l}: must be greater than or equal to 0"),
            )),
            Some(0) | None => Ok(None),
            Some(l) => Ok(Some(l as usize)),
        }
    }

    pub(super) fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(self.str("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid labelSelector: {e}")))?;
        let fields = FieldSelector::parse(self.str("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid fieldSelector: {e}")))?;
        Ok((labels, fields))
    }
}

/// `resourceVersionMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RvMatch {
    Unset,
    NotOlderThan,
    Exact,
}

/// 422 Invalid for a ListOptions field, as kube-apiserver's ListOptions validation answers.
pub(super) fn list_options_invalid(field: &str, detail: &str) -> ApiError {
    ApiError::invalid("ListOptions.meta.k8s.io", "", field, detail)
}

/// A complete JSON response.
pub(super) fn json_response(code: u16, v: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(v).expect("JSON values serialise");
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed_unsync())
        .expect("valid response parts")
}

/// A `Status` error response.
/// A 200 chunked JSON stream (watch responses).
pub(super) fn json_stream_response(body: Body) -> Response<Body> {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(body)
        .expect("valid response parts")
}

pub(super) fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after_seconds {
        r.headers_mut().insert(header::RETRY_AFTER, s.into());
    }
    r
}

impl ApiServer {
    /// Serves one HTTP request on behalf of replica `replica`.
    pub async fn handle<B>(&self, replica: usize, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let method = req.method().clone();
        let uri = req.uri().to_string();
        let t = self.now();
        self.lock().stats.requests += 1;
        let info = RequestInfo {
            replica,
            method: method.clone(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            is_watch: is_watch_uri(&uri),
            at: t,
        };
        let resp = match self.verdict(&info) {
            Verdict::Respond(e) => error_response(&e),
            Verdict::EmptyWatch if info.is_watch => {
                self.lock().stats.watches += 1;
                json_stream_response(Body::default())
            }
            verdict => {
                if let Verdict::Delay(d) = verdict {
                    tokio::time::sleep(d).await;
                }
                let out = if self.config().access_log {
                    self.dispatch_logged(replica, t, req).await
                } else {
                    self.dispatch(replica, req).await
                };
                out.unwrap_or_else(|e| error_response(&e))
            }
        };
        let (parts, body) = resp.into_parts();
        let body = self
            .log_response(replica, t, &method, &uri, parts.status, body)
            .await;
        Response::from_parts(parts, body)
    }

    async fn log_response(
        &self,
        replica: usize,
        t: std::time::Duration,
        method: &Method,
        uri: &str,
        status: StatusCode,
        body: Body,
    ) -> Body {
        if !self.config().access_log || status == StatusCode::OK && is_watch_uri(uri) {
            if self.config().access_log {
                self.record(|| {
                    format!(
                        "{} r{replica} {method} {uri} -> {}",
                        fmt_time(t),
                        status.as_u16()
                    )
                });
            }
            return body;
        }
        let bytes = body
            .collect()
            .await
            .expect("in-memory bodies do not fail")
            .to_bytes();
        self.record(|| {
            format!(
                "{} r{replica} {method} {uri} -> {} {}",
                fmt_time(t),
                status.as_u16(),
                String::from_utf8_lossy(&bytes)
            )
        });
        Full::new(bytes).boxed_unsync()
    }

    /// [`Self::dispatch`], logging the request body first (access log on): the log then
    /// holds everything a client sent, so two runs with equal logs received equal requests.
    async fn dispatch_logged<B>(
        &self,
        replica: usize,
        t: std::time::Duration,
        req: Request<B>,
    ) -> Result<Response<Body>, ApiError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let bytes = collect_body(body, self.config().max_body_bytes).await?;
        if !bytes.is_empty() {
            self.record(|| {
                format!(
                    "{} r{replica} {} {} <- {}",
                    fmt_time(t),
                    parts.method,
                    parts.uri,
                    String::from_utf8_lossy(&bytes)
                )
            });
        }
        self.dispatch(replica, Request::from_parts(parts, Full::new(bytes)))
            .await
    }

    async fn dispatch<B>(&self, replica: usize, req: Request<B>) -> Result<Response<Body>, ApiError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let route = route(self, req.uri().path())?;
        let query = Query::parse(req.uri().query());
        let method = req.method().clone();
        let ok = |v: Value| Ok(json_response(200, &v));
        let resources = || self.lock().store.resources().clone();
        match (route, method) {
            (Route::Version, Method::GET) => ok(discovery::version()),
            (Route::CoreVersions, Method::GET) => ok(discovery::core_versions()),
            (Route::Groups, Method::GET) => ok(discovery::group_list(&resources())),
            (Route::Group(g), Method::GET) => discovery::group(&resources(), &g)
                .map_or_else(|| Err(ApiError::no_route(req.uri().path())), ok),
            (Route::ResourceList { group, version }, Method::GET) => {
                discovery::resource_list(&resources(), &group, &version)
                    .map_or_else(|| Err(ApiError::no_route(req.uri().path())), ok)
            }
            (Route::Collection { res, ns }, Method::GET) if query.bool("watch")? => {
                let w = WatchRequest::parse(res, ns, &query)?;
                self.watch(replica, w).await
            }
            (Route::Collection { res, ns }, Method::GET) => {
                self.list(replica, res, ns, &query).await.and_then(ok)
            }
            (Route::Collection { res, ns }, Method::POST) => {
                let body = read_json(self, req).await?;
                self.create(res, ns, body).map(|v| json_response(201, &v))
            }
            (Route::Object { res, ns, name }, m) => self.object(res, ns, name, m, req).await,
            (_, m) => Err(ApiError::method_not_allowed(m.as_str(), req.uri().path())),
        }
    }

    async fn object<B>(
        &self,
        res: usize,
        ns: Option<String>,
        name: String,
        method: Method,
        req: Request<B>,
    ) -> Result<Response<Body>, ApiError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let key = ObjKey {
            res,
            ns: ns.unwrap_or_default(),
            name,
        };
        let plural = self.lock().store.resources().get(res).qualified_plural();
        let now = self.now();
        let out = match method {
            Method::GET => {
                let st = self.lock();
                st.store
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| ApiError::not_found(&plural, &key.name))
            }
            Method::PUT => {
                let body = read_json(self, req).await?;
                let body = check_body(self, res, &key.ns, body)?;
                self.write(|s| s.update(&key, body, now))
            }
            Method::PATCH => {
                let patch = read_patch(self, req).await?;
                self.write(|s| {
                    let current = s
                        .get(&key)
                        .ok_or_else(|| ApiError::not_found(&plural, &key.name))?;
                    let mut merged = (**current).clone();
                    merge_patch(&mut merged, &patch);
                    match merged {
                        Value::Object(m) => s.update(&key, m, now),
                        _ => Err(ApiError::bad_request("a merge patch must be a JSON object")),
                    }
                })
            }
            Method::DELETE => {
                let pre = read_delete_options(self, req).await?;
                self.write(|s| s.delete(&key, &pre, now))
            }
            m => return Err(ApiError::method_not_allowed(m.as_str(), &plural)),
        }?;
        Ok(json_response(200, &out))
    }

    /// Runs a store write and wakes the replicas' cache pumps.
    fn write<T>(&self, f: impl FnOnce(&mut Store) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let out = f(&mut self.lock().store);
        if out.is_ok() {
            self.poke();
        }
        out
    }

    fn create(&self, res: usize, ns: Option<String>, body: Value) -> Result<Arc<Value>, ApiError> {
        let namespaced = self.lock().store.resources().get(res).namespaced;
        let ns = match (namespaced, ns) {
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
        let body = check_body(self, res, &ns, body)?;
        let now = self.now();
        self.write(|s| s.create(res, &ns, body, now))
    }

    async fn list(
        &self,
        replica: usize,
        res: usize,
        ns: Option<String>,
        q: &Query,
    ) -> Result<Value, ApiError> {
        self.lock().stats.lists += 1;
        let (labels, fields) = q.selectors()?;
        let plan = ListPlan::from_query(q)?;
        let keep = |o: &Value| labels.matches_object(o) && fields.matches_object(o);
        let ns = ns.as_deref();
        let (rev, items, next) = match plan {
            ListPlan::Cache { not_older_than } => {
                let (rev, items) = self.cache_list(replica, res, ns, not_older_than).await?;
                (rev, items.into_iter().filter(|o| keep(o)).collect(), None)
            }
            ListPlan::Store { rev, start, limit } => {
                let st = self.lock();
                let rev = rev.unwrap_or_else(|| st.store.revision());
                let all = st.store.list_at(res, ns, rev)?;
                let (items, next) = paginate(all, &start, limit, keep);
                (
                    rev,
                    items,
                    next.map(|(k, remaining)| (encode_continue(rev, &k), remaining)),
                )
            }
        };
        let kind = self.lock().store.resources().get(res).clone();
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
        let st = self.lock();
        let cache = &st.caches[replica];
        Ok((cache.synced(), cache.list(res, ns)))
    }

    /// Waits until replica `replica`'s cache reached `min`, at most `not_older_than_wait`;
    /// then 504 with cause `ResourceVersionTooLarge`.
    pub(super) async fn wait_for_cache(&self, replica: usize, min: u64) -> Result<(), ApiError> {
        let mut changed = self.shared.cache_changed[replica].subscribe();
        let wait = async {
            loop {
                if self.lock().caches[replica].synced() >= min {
                    return;
                }
                changed.changed().await;
            }
        };
        match tokio::time::timeout(self.config().not_older_than_wait, wait).await {
            Ok(()) => Ok(()),
            Err(_) => Err(ApiError::too_large_resource_version(
                min,
                self.lock().caches[replica].synced(),
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

fn is_watch_uri(uri: &str) -> bool {
    uri.contains("watch=true") || uri.contains("watch=1")
}

/// Simulated seconds with millisecond precision, for logs.
pub(super) fn fmt_time(t: std::time::Duration) -> String {
    format!("{}.{:03}", t.as_secs(), t.subsec_millis())
}

async fn read_bytes<B>(
    server: &ApiServer,
    req: Request<B>,
) -> Result<(Option<String>, Bytes), ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limit = server.config().max_body_bytes;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_string());
    Ok((content_type, collect_body(req.into_body(), limit).await?))
}

/// The whole request body, at most `limit` bytes (413 beyond, 400 if the client fails it).
async fn collect_body<B>(body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let body = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.to_string().contains("length limit") {
            ApiError::too_large(limit)
        } else {
            ApiError::bad_request(format!("reading the request body: {e}"))
        }
    })?;
    Ok(body.to_bytes())
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

async fn read_json<B>(server: &ApiServer, req: Request<B>) -> Result<Value, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (ct, bytes) = read_bytes(server, req).await?;
    match ct.as_deref().map(media_type) {
        None | Some("application/json" | "*/*") => parse_json(&bytes),
        Some(other) => Err(ApiError::unsupported_media_type(other)),
    }
}

async fn read_patch<B>(server: &ApiServer, req: Request<B>) -> Result<Value, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (ct, bytes) = read_bytes(server, req).await?;
    match ct.as_deref().map(media_type) {
        Some("application/merge-patch+json" | "application/strategic-merge-patch+json") => {
            let patch = parse_json(&bytes)?;
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            Ok(patch)
        }
        other => Err(ApiError::unsupported_media_type(other.unwrap_or("none"))),
    }
}

async fn read_delete_options<B>(
    server: &ApiServer,
    req: Request<B>,
) -> Result<Preconditions, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (_, bytes) = read_bytes(server, req).await?;
    if bytes.is_empty() {
        return Ok(Preconditions::default());
    }
    let opts = parse_json(&bytes)?;
    let field = |f: &str| opts["preconditions"][f].as_str().map(str::to_string);
    Ok(Preconditions {
        resource_version: field("resourceVersion"),
        uid: field("uid"),
    })
}

fn media_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

/// Checks a create/update body against the URL: a JSON object of the right kind and namespace.
fn check_body(
    server: &ApiServer,
    res: usize,
    ns: &str,
    body: Value,
) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(mut obj) = body else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let ty = server.lock().store.resources().get(res).clone();
    let str_field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (api_version, kind) = (str_field("apiVersion"), str_field("kind"));
    if !api_version.is_empty() && api_version != ty.api_version() {
        return Err(ApiError::bad_request(format!("the API version in the data ({api_version}) does not match the expected API version ({})", ty.api_version())));
    }
    if !kind.is_empty() && kind != ty.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            ty.kind
        )));
    }
    if obj.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(ApiError::bad_request("metadata must be a JSON object"));
    }
    let meta = metadata_mut(&mut obj);
    let body_ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    if ty.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(format!("the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})")));
    }
    if !ty.namespaced {
        meta.remove("namespace");
    }
    Ok(obj)
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
