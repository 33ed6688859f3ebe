//! Connections: HTTP/1.1 on any byte stream, and each request's way in and out — counted,
//! put to the hooks' verdict, dispatched, and written to the access log (request bodies,
//! responses; watch lines are logged by the stream itself).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::body::{collect_body, error_response, json_stream_response, Body};
use super::error::ApiError;
use super::{ApiServer, RequestInfo, Verdict};

impl ApiServer {
    /// Serves HTTP/1.1 on one accepted connection as replica `replica` (any transport). The
    /// `date` header is off: it would read the wall clock.
    pub async fn serve_connection<IO>(self, replica: usize, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut resets = self.connection_resets(replica);
        let svc = service_fn(move |req| {
            let server = self.clone();
            async move { Ok::<_, std::convert::Infallible>(server.handle(replica, req).await) }
        });
        let conn = http1::Builder::new()
            .auto_date_header(false)
            .serve_connection(TokioIo::new(io), svc);
        tokio::select! {
            biased;
            _ = resets.changed() => tracing::debug!(replica, "apiserver connection reset"),
            r = conn => if let Err(e) = r {
                tracing::debug!(replica, error = %e, "apiserver connection ended");
            },
        }
    }

    /// Serves one HTTP request on behalf of replica `replica`.
    pub async fn handle<B>(&self, replica: usize, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let method = req.method().clone();
        let uri = req.uri().to_string();
        let t = self.now();
        self.count(|s| s.requests += 1);
        let info = RequestInfo {
            replica,
            method: method.clone(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            is_watch: is_watch_uri(&uri),
            at: t,
        };
        let authorized = self.shared.config.bearer_token.as_ref().is_none_or(|t| {
            req.headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                == Some(t.as_str())
        });
        let resp = match self.verdict(&info) {
            _ if !authorized => {
                error_response(&ApiError::other(401, "Unauthorized", "Unauthorized"))
            }
            Verdict::Respond(e) => error_response(&e),
            Verdict::EmptyWatch if info.is_watch => {
                self.count(|s| s.watches += 1);
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

    /// Logs a response (access log on): its status and, unless it is a watch stream, its
    /// body, collected for the log and handed on whole.
    async fn log_response(
        &self,
        replica: usize,
        t: Duration,
        method: &Method,
        uri: &str,
        status: StatusCode,
        body: Body,
    ) -> Body {
        if !self.config().access_log || status == StatusCode::OK && is_watch_uri(uri) {
            if self.config().access_log {
                self.log_access(t, replica, || {
                    format!("{method} {uri} -> {}", status.as_u16())
                });
            }
            return body;
        }
        let bytes = body
            .collect()
            .await
            .expect("in-memory bodies do not fail")
            .to_bytes();
        self.log_access(t, replica, || {
            format!(
                "{method} {uri} -> {} {}",
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
        t: Duration,
        req: Request<B>,
    ) -> Result<Response<Body>, ApiError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let bytes = collect_body(body, self.config().max_body_bytes).await?;
        if !bytes.is_empty() {
            self.log_access(t, replica, || {
                format!(
                    "{} {} <- {}",
                    parts.method,
                    parts.uri,
                    String::from_utf8_lossy(&bytes)
                )
            });
        }
        self.dispatch(replica, Request::from_parts(parts, Full::new(bytes)))
            .await
    }
}

fn is_watch_uri(uri: &str) -> bool {
    uri.contains("watch=true") || uri.contains("watch=1")
}
