//! Routing: what a path names ([`Route`]), and the dispatch of a request to discovery, the
//! list and watch handlers, or the object handlers.

use bytes::Bytes;
use http::{Method, Request, Response};
use serde_json::Value;

use super::body::{json_response, object_response, read_json, Body};
use super::error::ApiError;
use super::object::{Part, Target};
use super::query::Query;
use super::resource::Resources;
use super::store::ObjKey;
use super::watch::WatchRequest;
use super::ApiServer;
use super::{discovery, openapi, partial, table};

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    ResourceList { group: String, version: String },
    Collection { res: usize, ns: Option<String> },
    Object(Target),
    OpenApiV2,
    OpenApiV3,
    OpenApiV3GroupVersion(String),
}

fn route(server: &ApiServer, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let resources_route = |group: &str, version: &str, rest: &[&str]| {
        server.read(|store| resource_route(store.resources(), path, group, version, rest))
    };
    match segs.as_slice() {
        ["version"] => Ok(Route::Version),
        ["openapi", "v2"] => Ok(Route::OpenApiV2),
        ["openapi", "v3"] => Ok(Route::OpenApiV3),
        ["openapi", "v3", gv @ ..] => Ok(Route::OpenApiV3GroupVersion(gv.join("/"))),
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

/// The route of `rest`, the segments after `/api/v1` or `/apis/G/V`: a collection or one
/// object of a served resource (optionally in a namespace, optionally its `status`).
fn resource_route(
    resources: &Resources,
    path: &str,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Route, ApiError> {
    let find = |plural: &str| resources.find(group, version, plural);
    let (res, ns, name) = match rest {
        ["namespaces", ns, plural, tail @ ..] if tail.len() <= 2 => (find(plural), Some(*ns), tail),
        [plural, tail @ ..] if tail.len() <= 2 => (find(plural), None, tail),
        _ => (None, None, &[][..]),
    };
    let res = res.ok_or_else(|| ApiError::no_route(path))?;
    let namespaced = resources.get(res).namespaced;
    if ns.is_some() && !namespaced {
        return Err(ApiError::no_route(path));
    }
    let ty = resources.get(res);
    let part = match name {
        [] => {
            return Ok(Route::Collection {
                res,
                ns: ns.map(str::to_string),
            })
        }
        _ if ns.is_none() && namespaced => return Err(ApiError::no_route(path)),
        [_] => Part::Main,
        [_, "status"] if ty.status_subresource => Part::Status,
        [_, "scale"] if ty.scale_subresource.is_some() => Part::Scale,
        _ => return Err(ApiError::no_route(path)),
    };
    let key = ObjKey {
        res,
        ns: ns.unwrap_or_default().to_string(),
        name: name[0].to_string(),
    };
    Ok(Route::Object(Target { key, part }))
}

impl ApiServer {
    /// Serves one request (hooks and the access log are the caller's business).
    pub(super) async fn dispatch<B>(
        &self,
        replica: usize,
        req: Request<B>,
    ) -> Result<Response<Body>, ApiError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let route = route(self, req.uri().path())?;
        let query = Query::parse(req.uri().query());
        let method = req.method().clone();
        let accept = req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let accept = accept.as_deref();
        let ok = |v: Value| Ok(json_response(200, &v));
        let resources = || self.resources();
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
                let mut w = WatchRequest::parse(res, &self.resource(res).kind, ns, &query)?;
                if table::wanted(accept) {
                    let include = query.str("includeObject") == Some("Object");
                    w.table = Some((self.resource(res), include));
                }
                w.partial = partial::wanted(accept);
                self.watch(replica, w).await
            }
            (Route::Collection { res, ns }, Method::GET) => {
                let list = self.list(replica, res, ns, &query).await?;
                ok(self.maybe_table(res, list, accept, &query, true))
            }
            (Route::Collection { res, ns }, Method::POST) => {
                let opts = query.write_options()?;
                let body = read_json(req, self.config().max_body_bytes).await?;
                self.create(res, ns, body, &opts)
                    .map(|v| object_response(201, &v, accept))
            }
            (Route::Object(target), m) if target.part == Part::Scale => {
                ok(self.scale(&target, m, &query, req).await?)
            }
            (Route::Object(target), m) => {
                let (res, get) = (target.key.res, m == Method::GET);
                let (code, v) = self.object(target, m, &query, req).await?;
                if (get && table::wanted(accept)) || partial::wanted(accept).is_some() {
                    let v = self.maybe_table(res, v, accept, &query, false);
                    return Ok(json_response(code, &v));
                }
                Ok(object_response(code, &v, accept))
            }
            (Route::OpenApiV2, Method::GET) => ok(openapi::v2(&resources())),
            (Route::OpenApiV3, Method::GET) => ok(openapi::v3_root(&resources())),
            (Route::OpenApiV3GroupVersion(gv), Method::GET) => {
                openapi::v3_group_version(&resources(), &gv)
                    .map_or_else(|| Err(ApiError::no_route(req.uri().path())), ok)
            }
            (_, m) => Err(ApiError::method_not_allowed(m.as_str(), req.uri().path())),
        }
    }
}

impl ApiServer {
    /// A list (`is_list`) or one object as the client asked: metadata only for
    /// `as=PartialObjectMetadata(List)`, a Table for `as=Table`.
    fn maybe_table(
        &self,
        res: usize,
        v: Value,
        accept: Option<&str>,
        query: &Query,
        is_list: bool,
    ) -> Value {
        if let Some(version) = partial::wanted(accept) {
            return match is_list {
                true => partial::list(&v, &version),
                false => partial::object(&v, &version),
            };
        }
        if !table::wanted(accept) {
            return v;
        }
        let include = query.str("includeObject") == Some("Object");
        let ty = self.resource(res);
        let now = self.now();
        if is_list {
            let items: Vec<&Value> = v["items"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            table::render(&ty, &items, v["metadata"].clone(), include, now)
        } else {
            let meta = serde_json::json!({"resourceVersion": v["metadata"]["resourceVersion"]});
            table::render(&ty, &[&v], meta, include, now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_collections_and_objects_of_served_resources_only() {
        let r = Resources::with_crds(&[]).unwrap();
        let at = |rest: &[&str]| resource_route(&r, "/p", "", "v1", rest);
        let pods = r.find("", "v1", "pods").unwrap();
        let nodes = r.find("", "v1", "nodes").unwrap();
        assert_eq!(
            at(&["namespaces", "a", "pods"]).unwrap(),
            Route::Collection {
                res: pods,
                ns: Some("a".into())
            }
        );
        let target = |res, ns: &str, name: &str, part| {
            Route::Object(Target {
                key: ObjKey {
                    res,
                    ns: ns.into(),
                    name: name.into(),
                },
                part,
            })
        };
        assert_eq!(
            at(&["namespaces", "a", "pods", "p", "status"]).unwrap(),
            target(pods, "a", "p", Part::Status)
        );
        assert_eq!(
            at(&["nodes", "n"]).unwrap(),
            target(nodes, "", "n", Part::Main)
        );
        // ConfigMaps have no status subresource.
        assert_eq!(
            at(&["namespaces", "a", "configmaps", "c", "status"])
                .unwrap_err()
                .code,
            404
        );
        // A namespaced object needs its namespace; a cluster-scoped one has none.
        assert_eq!(at(&["pods", "p"]).unwrap_err().code, 404);
        assert_eq!(at(&["namespaces", "a", "nodes"]).unwrap_err().code, 404);
        assert_eq!(at(&["widgets"]).unwrap_err().code, 404);
    }
}
