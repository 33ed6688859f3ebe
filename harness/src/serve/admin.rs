//! The admin endpoint of `kube-chaos serve`: a separate loopback port where a user's own
//! test (or `kube-chaos fault --server URL <kind>`) starts a fault now. `POST /faults` with
//! one fault as a scenario file writes it (`{"expire_watches": {"at": "0s"}}`; its `at` is
//! ignored: the fault starts when it arrives, and ends after its length).

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use crate::scenario::Fault;

/// Why a live fault was refused.
pub fn refused(f: &Fault, replicas: usize) -> Option<String> {
    if f.for_controllers_only() || matches!(f, Fault::CrashSubject { .. } | Fault::Loss { .. }) {
        return Some(format!("{} cannot be applied to external clients", f.tag()));
    }
    if let Some(r) = f.replica().filter(|r| *r >= replicas) {
        return Some(format!(
            "replica {r} does not exist ({replicas} replica(s))"
        ));
    }
    f.invalid_value()
        .map(|(field, m)| format!("{}.{field}: {m}", f.tag()))
}

/// Binds `addr` and hands every accepted fault to `faults`; returns the bound address.
pub async fn serve_admin(
    addr: SocketAddr,
    replicas: usize,
    faults: mpsc::Sender<Fault>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let faults = faults.clone();
            let svc = service_fn(move |req| {
                let faults = faults.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(req, replicas, &faults).await) }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(tcp), svc));
        }
    });
    Ok(bound)
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    replicas: usize,
    faults: &mpsc::Sender<Fault>,
) -> Response<Full<Bytes>> {
    if (req.method(), req.uri().path()) != (&Method::POST, "/faults") {
        return text(
            StatusCode::NOT_FOUND,
            "POST /faults with one fault, e.g. {\"expire_watches\": {\"at\": \"0s\"}}\n".into(),
        );
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading the body: {e}\n")),
    };
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("not a fault: {e}\n")),
    };
    if let Some(why) = refused(&fault, replicas) {
        return text(StatusCode::UNPROCESSABLE_ENTITY, format!("{why}\n"));
    }
    let line = format!("started: {}\n", fault.describe());
    match faults.send(fault).await {
        Ok(()) => text(StatusCode::ACCEPTED, line),
        Err(_) => text(StatusCode::GONE, "the scenario is over\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

/// Posts `fault` (JSON) to the admin endpoint at `url`; returns its status and answer.
pub async fn post_fault(url: &str, fault: &serde_json::Value) -> Result<(u16, String), String> {
    let uri: http::Uri = format!("{}/faults", url.trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let host = uri.host().ok_or(format!("no host in {url:?}"))?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::post(uri)
        .header(http::header::HOST, format!("{host}:{port}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(fault.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_posted_fault_reaches_the_player_and_a_refused_one_says_why() {
        // Proves the round trip over a real loopback port.
        let (tx, mut rx) = mpsc::channel(4);
        let addr = serve_admin(([127, 0, 0, 1], 0).into(), 2, tx)
            .await
            .unwrap();
        let url = format!("http://{addr}");
        let (code, body) = post_fault(&url, &json!({"expire_watches": {"at": "0s", "replica": 1}}))
            .await
            .unwrap();
        assert_eq!(
            (code, body.as_str()),
            (202, "started: expire_watches replica=1\n")
        );
        assert!(matches!(
            rx.recv().await,
            Some(Fault::ExpireWatches {
                replica: Some(1),
                ..
            })
        ));
        let (code, body) = post_fault(&url, &json!({"compact": {"at": "0s"}, "x": 1}))
            .await
            .unwrap();
        assert_eq!(code, 400, "{body}");
        let (code, body) = post_fault(&url, &json!({"drop_watches": {"at": "0s", "replica": 5}}))
            .await
            .unwrap();
        assert_eq!(
            (code, body.as_str()),
            (422, "replica 5 does not exist (2 replica(s))\n")
        );
    }
}
