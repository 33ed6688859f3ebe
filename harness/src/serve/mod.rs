//! `kube-chaos serve`: the same simulated apiserver on a real loopback TCP port, so that
//! kubectl, client-go or any other real client can be pointed at it (DESIGN.md §3).
//!
//! The server code is unchanged; only the transport (tokio's `TcpListener`) and the clock
//! (`Clock::Wall`, for timestamps) differ from the simulation. CRDs and objects can be
//! preloaded from YAML or JSON files (several documents, or `kind: List`), and a bearer token
//! can be required.
//!
//! - `access`: what the server saw of each request and watch stream ([`AccessLog`]), which
//!   is what the checkers of external clients read;
//! - `socket`: network faults at the server's own sockets ([`Connections`]);
//! - `admin`: the loopback endpoint that starts faults live ([`serve_admin`], [`post_fault`]).
//!
//! A scenario is played against it on the wall clock by `run::play_served`.

mod access;
mod admin;
mod socket;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::apiserver::{ApiError, ApiServer, Clock, ClusterConfig, ClusterError};

pub use access::{Access, AccessLog, Sent};
pub use admin::{post_fault, refused, serve_admin};
pub use socket::{Connections, Control, FaultyIo};

/// Why [`serve`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The cluster configuration was refused.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The listener's error.
        #[source]
        source: io::Error,
    },
    /// The bound listener did not tell its address.
    #[error("listener address: {0}")]
    LocalAddr(#[source] io::Error),
    /// A preload file could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A preloaded object was refused by the server.
    #[error("preloading {what}: {source}")]
    Preload {
        /// `Kind namespace/name` of the object.
        what: String,
        /// The server's answer.
        #[source]
        source: ApiError,
    },
}

/// What `serve` adds to a cluster configuration.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Objects created before the first request, in order (CRDs first, then the rest).
    pub preload: Vec<Value>,
    /// Required bearer token (401 without it).
    pub token: Option<String>,
}

/// A running loopback apiserver.
#[derive(Debug)]
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server, for inspection.
    pub server: ApiServer,
    /// Every request it saw.
    pub access: AccessLog,
    /// Its open connections, for network faults.
    pub connections: Connections,
}

/// The objects of a YAML or JSON file: every document, the items of a `kind: List`.
pub fn read_objects(path: &Path) -> Result<Vec<Value>, ServeError> {
    let fail = |message: String| ServeError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc).map_err(|e| fail(e.to_string()))?;
        match v {
            Value::Null => {}
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                out.extend(m["items"].as_array().cloned().unwrap_or_default());
            }
            Value::Object(_) => out.push(v),
            _ => return Err(fail("every document must be an object".into())),
        }
    }
    Ok(out)
}

/// Binds `addr` and serves the cluster on the current tokio runtime until the runtime stops.
/// Connections are spread over the replicas in turn; each replica has its own watch cache.
pub async fn serve(
    addr: SocketAddr,
    mut config: ClusterConfig,
    opts: ServeOptions,
) -> Result<Served, ServeError> {
    let replicas = config.replicas;
    config.bearer_token = opts.token;
    let server = ApiServer::new(config, Clock::Wall)?;
    for obj in opts.preload {
        let what = format!(
            "{} {}/{}",
            obj["kind"].as_str().unwrap_or("?"),
            obj["metadata"]["namespace"].as_str().unwrap_or(""),
            obj["metadata"]["name"].as_str().unwrap_or("?")
        );
        server
            .create_object(obj)
            .map_err(|source| ServeError::Preload { what, source })?;
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(ServeError::LocalAddr)?;
    for replica in 0..replicas {
        tokio::spawn(server.clone().run_cache_pump(replica));
    }
    tokio::spawn(server.clone().run_compactor());
    tokio::spawn(server.clone().run_garbage_collector());
    let served = Served {
        addr,
        server,
        access: AccessLog::new(),
        connections: Connections::new(replicas),
    };
    let s = served.clone_handles();
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(s.clone_handles().serve_connection(stream));
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            }
        }
    });
    Ok(served)
}

impl Served {
    /// Another handle on the same server, log and connections.
    pub fn clone_handles(&self) -> Self {
        Self {
            addr: self.addr,
            server: self.server.clone(),
            access: self.access.clone(),
            connections: self.connections.clone(),
        }
    }

    /// Serves one accepted connection on the replica it is given, recording every request,
    /// until it ends or is reset (RST); with every replica down it is reset at once.
    async fn serve_connection(self, tcp: TcpStream) {
        let (id, ctl) = self.connections.open();
        let Some(ctl) = ctl else {
            socket::reset(&tcp);
            return;
        };
        let replica = ctl.replica();
        let (io, handle) = FaultyIo::new(tcp, ctl.clone());
        let (server, log, c) = (self.server.clone(), self.access.clone(), ctl.clone());
        let svc = service_fn(move |req| {
            let (server, log, c) = (server.clone(), log.clone(), c.clone());
            async move {
                let i = log.arrive(id, &req);
                let resp = server.handle(replica, req).await;
                let resp = log.answer(i, resp, move || c.delivers()).await;
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let conn = http1::Builder::new()
            .auto_date_header(false)
            .serve_connection(TokioIo::new(io), svc);
        tokio::select! {
            biased;
            _ = ctl.reset_requested() => socket::reset(&handle),
            r = conn => if let Err(e) = r {
                tracing::debug!(replica, error = %e, "served connection ended");
            },
        }
        self.connections.close(id);
    }
}
