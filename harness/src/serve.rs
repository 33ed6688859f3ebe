//! `kube-chaos serve`: the same simulated apiserver on a real loopback TCP port, so that
//! kubectl, client-go or any other real client can be pointed at it (DESIGN.md §3).
//!
//! The server code is unchanged; only the transport (tokio's `TcpListener`) and the clock
//! (`Clock::Wall`, for timestamps) differ from the simulation.

use std::io;
use std::net::SocketAddr;

use crate::apiserver::{ApiServer, Clock, ClusterConfig, ClusterError};

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
}

/// A running loopback apiserver.
#[derive(Debug)]
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server, for inspection.
    pub server: ApiServer,
}

/// Binds `addr` and serves the cluster on the current tokio runtime until the runtime stops.
/// Connections are spread over the replicas in turn; each replica has its own watch cache.
pub async fn serve(addr: SocketAddr, config: ClusterConfig) -> Result<Served, ServeError> {
    let replicas = config.replicas;
    let server = ApiServer::new(config, Clock::Wall)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(ServeError::LocalAddr)?;
    for replica in 0..replicas {
        tokio::spawn(server.clone().run_cache_pump(replica));
    }
    tokio::spawn(server.clone().run_compactor());
    let s = server.clone();
    tokio::spawn(async move {
        let mut next = 0usize;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(s.clone().serve_connection(next % replicas, stream));
                    next += 1;
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            }
        }
    });
    Ok(Served { addr, server })
}
