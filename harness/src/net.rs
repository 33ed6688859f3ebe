//! turmoil <-> hyper glue: the server listener on each replica host, and a `kube::Client`
//! whose connections are turmoil TCP streams to a replica chosen per connection.
//!
//! turmoil TCP facts this relies on (turmoil 0.7, read in its `net/tcp` sources and pinned by
//! tests in `tests/apiserver`):
//! - one `write` is one segment with a per-connection sequence number; nothing is
//!   retransmitted, so a segment dropped by a partition is lost and the receiver buffers every
//!   later segment waiting for it: the stream goes silent for good, even after repair, with
//!   no error and no EOF (the "watch that silently dies"). A partition during which nothing
//!   was sent leaves the connection intact;
//! - a connect across a partition is refused at once (`ConnectionRefused`); a connect across
//!   a `hold` hangs until `release`, and one to a crashed host hangs until the host restarts
//!   (and is then refused), which is why the connector has a timeout;
//! - a crashed host's open streams end with a clean EOF at their peers;
//! - `hold` delays segments without loss and `release` delivers them in order;
//! - more pending SYNs than `tcp_capacity` on one listener is an error: raise
//!   `Builder::tcp_capacity` for thundering-herd scenarios.
//!
//! The client has exactly the timeouts a production `kube::Client` built from a
//! `kube::Config` has (kube 5.0.0), in the same place — no more, no less, so the simulation
//! neither hides nor invents hangs:
//! - `Config::new`/`infer` default `connect_timeout` to 30 s, `write_timeout` to 295 s and
//!   `read_timeout` to none (`kube-client/src/config/mod.rs`, `DEFAULT_CONNECT_TIMEOUT`,
//!   `DEFAULT_WRITE_TIMEOUT`); `Client::try_from(Config)` wraps the connector in
//!   `hyper_timeout::TimeoutConnector` with those three values and `reset_reader_on_write`
//!   off (`kube-client/src/client/builder.rs`, `make_generic_builder`). [`ClientConfig`]
//!   has the same defaults and [`client`] wraps [`SimConnector`] the same way;
//! - there is no timeout per request and none per watch in the client: a request whose
//!   segment a partition swallowed waits forever (no read timeout), and so does a watch,
//!   unless the caller bounds it — kube-runtime's `watcher` does, with an idle timeout of
//!   its `timeoutSeconds` (290 s by default) plus 5 s (`kube-runtime/src/watcher.rs`,
//!   `next_with_idle_timeout`), which applies here unchanged since it is the watcher's;
//! - differences kept on purpose: the pool's idle-connection timer is tokio's (kube's
//!   client has none and would read the wall clock), and the client does not add the
//!   `RetryLayer` that `Client::try_from` adds when `Config::default_retry` is on (429, 503,
//!   504 retried with backoff): that is a retry, not a timeout, and the scenarios' HTTP
//!   faults are meant to reach the subject.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use kube::client::middleware::BaseUriLayer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::apiserver::ApiServer;
use crate::watch_log::{Observed, WatchLog};

/// The port every replica listens on.
pub const APISERVER_PORT: u16 = 6443;

/// The turmoil host name of replica `i`.
pub fn replica_host(i: usize) -> String {
    format!("apiserver-{i}")
}

/// Runs replica `replica` on the current turmoil host: its watch-cache pump, the compactor,
/// the garbage collector, and an HTTP/1.1 server on [`APISERVER_PORT`]. Use as a turmoil host's body.
pub async fn serve_replica(server: ApiServer, replica: usize) -> turmoil::Result {
    tokio::spawn(server.clone().run_cache_pump(replica));
    tokio::spawn(server.clone().run_compactor());
    tokio::spawn(server.clone().run_garbage_collector());
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", APISERVER_PORT)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(server.clone().serve_connection(replica, stream));
    }
}

/// How a client picks the replica for each new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaPolicy {
    /// Always the same replica.
    Pinned(usize),
    /// Replicas in turn.
    RoundRobin,
    /// Uniformly at random, from a seeded RNG.
    Random {
        /// The RNG seed.
        seed: u64,
    },
}

#[derive(Debug)]
struct Picker {
    policy: ReplicaPolicy,
    replicas: usize,
    next: usize,
    rng: ChaCha8Rng,
}

impl Picker {
    fn pick(&mut self) -> usize {
        match self.policy {
            ReplicaPolicy::Pinned(i) => i,
            ReplicaPolicy::RoundRobin => {
                let i = self.next % self.replicas;
                self.next += 1;
                i
            }
            ReplicaPolicy::Random { .. } => self.rng.random_range(0..self.replicas),
        }
    }
}

/// kube 5's `DEFAULT_CONNECT_TIMEOUT` (`kube-client/src/config/mod.rs`).
pub const KUBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// kube 5's `DEFAULT_WRITE_TIMEOUT` (`kube-client/src/config/mod.rs`).
pub const KUBE_WRITE_TIMEOUT: Duration = Duration::from_secs(295);

/// Client-side settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Number of replicas to choose from.
    pub replicas: usize,
    /// Replica choice per connection.
    pub policy: ReplicaPolicy,
    /// Connect timeout (kube's `Config::connect_timeout`, default 30 s; `None`: none).
    pub connect_timeout: Option<Duration>,
    /// Read timeout: how long a read of a response (or of a watch stream) may wait for a
    /// byte (kube's `Config::read_timeout`, default none).
    pub read_timeout: Option<Duration>,
    /// Write timeout: how long a write may wait (kube's `Config::write_timeout`, default
    /// 295 s).
    pub write_timeout: Option<Duration>,
    /// Default namespace of the `kube::Client`.
    pub namespace: String,
    /// Closes this client's connections on demand (before a crash, see [`Kill`]).
    pub kill: Kill,
    /// Keep idle connections for the next request (`false`: one request per connection,
    /// each choosing its replica).
    pub keep_alive: bool,
    /// Record this client's watch connections into the log, as this instance (pictures).
    pub watch_log: Option<(WatchLog, usize)>,
}

/// Closes every connection made with it, in the order they were made.
///
/// Crashing a turmoil host drops its tasks in an order that depends on tokio's process-wide
/// task ids, so the FINs of its open connections would go out in a different order in the
/// second run of a process than in the first. Firing a `Kill` first (and stepping once)
/// closes them in a fixed order; the crash then finds nothing left to close.
#[derive(Debug, Clone, Default)]
pub struct Kill(Arc<Mutex<KillState>>);

#[derive(Debug, Default)]
struct KillState {
    generation: u64,
    next_id: u64,
    /// Streams waiting to read, in the order they first waited.
    wakers: Vec<(u64, std::task::Waker)>,
}

impl Kill {
    /// Fails every open stream's next read or write and wakes them, oldest first.
    pub fn fire(&self) {
        let wakers = {
            let mut st = self.0.lock().expect("kill lock");
            st.generation += 1;
            std::mem::take(&mut st.wakers)
        };
        for (_, w) in wakers {
            w.wake();
        }
    }

    fn register(&self) -> (u64, u64) {
        let mut st = self.0.lock().expect("kill lock");
        st.next_id += 1;
        (st.next_id, st.generation)
    }

    fn killed(&self, generation: u64) -> bool {
        self.0.lock().expect("kill lock").generation != generation
    }

    /// Forgets a dropped stream (its waker would keep a finished task alive and make every
    /// later `wait` scan further).
    fn forget(&self, id: u64) {
        let mut st = self.0.lock().expect("kill lock");
        if let Some(i) = st.wakers.iter().position(|(w, _)| *w == id) {
            st.wakers.remove(i);
        }
    }

    fn wait(&self, id: u64, cx: &Context<'_>) {
        let mut st = self.0.lock().expect("kill lock");
        match st.wakers.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) => w.clone_from(cx.waker()),
            None => st.wakers.push((id, cx.waker().clone())),
        }
    }
}

impl ClientConfig {
    /// Round robin over `replicas`, kube's default timeouts ([`KUBE_CONNECT_TIMEOUT`],
    /// [`KUBE_WRITE_TIMEOUT`], no read timeout), namespace `default`, keep-alive.
    pub fn new(replicas: usize) -> Self {
        Self {
            replicas,
            policy: ReplicaPolicy::RoundRobin,
            connect_timeout: Some(KUBE_CONNECT_TIMEOUT),
            read_timeout: None,
            write_timeout: Some(KUBE_WRITE_TIMEOUT),
            namespace: "default".into(),
            kill: Kill::default(),
            keep_alive: true,
            watch_log: None,
        }
    }

    /// Sets the replica policy.
    pub fn policy(mut self, policy: ReplicaPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets whether idle connections are reused.
    pub fn keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }
}

/// A `tower::Service<Uri>` that opens turmoil TCP streams to a replica chosen per connection
/// (its timeouts come from the `hyper_timeout::TimeoutConnector` around it, as in kube).
#[derive(Debug, Clone)]
pub struct SimConnector {
    picker: Arc<Mutex<Picker>>,
    kill: Kill,
}

impl SimConnector {
    /// A connector for the given client settings.
    pub fn new(config: &ClientConfig) -> Self {
        let seed = match config.policy {
            ReplicaPolicy::Random { seed } => seed,
            _ => 0,
        };
        Self {
            picker: Arc::new(Mutex::new(Picker {
                policy: config.policy.clone(),
                replicas: config.replicas.max(1),
                next: 0,
                rng: ChaCha8Rng::seed_from_u64(seed),
            })),
            kill: config.kill.clone(),
        }
    }
}

impl tower::Service<http::Uri> for SimConnector {
    type Response = TokioIo<SimStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let replica = self.picker.lock().expect("picker lock").pick();
        let kill = self.kill.clone();
        Box::pin(async move {
            let host = replica_host(replica);
            match turmoil::net::TcpStream::connect((host.as_str(), APISERVER_PORT)).await {
                Ok(s) => Ok(TokioIo::new(SimStream::new(s, kill))),
                Err(e) => Err(io::Error::new(
                    e.kind(),
                    format!("connect to {host}:{APISERVER_PORT}: {}", e.kind()),
                )),
            }
        })
    }
}

/// A turmoil TCP stream that hyper-util's client accepts (the orphan rule forbids
/// implementing its `Connection` trait on turmoil's type directly), closed by its [`Kill`].
#[derive(Debug)]
pub struct SimStream {
    inner: Option<turmoil::net::TcpStream>,
    kill: Kill,
    id: u64,
    generation: u64,
}

impl SimStream {
    fn new(inner: turmoil::net::TcpStream, kill: Kill) -> Self {
        let (id, generation) = kill.register();
        Self {
            inner: Some(inner),
            kill,
            id,
            generation,
        }
    }

    /// The open stream, or a reset error once killed (the stream is dropped then: its FIN
    /// goes out now, in wake order).
    fn open(&mut self) -> io::Result<Pin<&mut turmoil::net::TcpStream>> {
        if self.kill.killed(self.generation) {
            self.inner = None;
        }
        match &mut self.inner {
            Some(s) => Ok(Pin::new(s)),
            None => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection closed by the harness (process crash)",
            )),
        }
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        self.kill.forget(self.id);
    }
}

impl Connection for SimStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let out = match this.open() {
            Ok(s) => s.poll_read(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if out.is_pending() {
            this.kill.wait(this.id, cx);
        }
        out
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.open() {
            Ok(s) => s.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.open() {
            Ok(s) => s.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.open() {
            Ok(s) => s.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// A `kube::Client` wired to the simulated cluster. Call it *inside* a turmoil host (the
/// client spawns its buffer worker and connection tasks on the current runtime).
pub fn client(config: &ClientConfig) -> kube::Client {
    let mut builder = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new());
    if !config.keep_alive {
        builder.pool_max_idle_per_host(0);
    }
    // As kube-client's `make_generic_builder` does with a `Config`'s timeouts.
    let mut connector = hyper_timeout::TimeoutConnector::new(SimConnector::new(config));
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(false);
    let http = builder.build(connector);
    let base = BaseUriLayer::new(http::Uri::from_static("http://apiserver"));
    match &config.watch_log {
        Some((log, instance)) => {
            let observed = Observed::new(http, log.clone(), *instance);
            let svc = tower::ServiceBuilder::new().layer(base).service(observed);
            kube::Client::new(svc, config.namespace.clone())
        }
        None => {
            let svc = tower::ServiceBuilder::new().layer(base).service(http);
            kube::Client::new(svc, config.namespace.clone())
        }
    }
}
