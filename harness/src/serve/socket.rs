//! Network faults at the served apiserver's own sockets, for real clients: a silent
//! partition stops reading and writing a connection without closing it (the client must
//! notice by itself, and the connection stays dead after the partition heals, like a lost
//! NAT entry), a one-way partition stops one direction, a hold stops both and then lets
//! everything through in order, latency delays every write, and a reset closes the
//! connection with an RST (`SO_LINGER` 0). A crashed replica resets its connections and new
//! connections go to the replicas still up.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::run::Link;
use crate::scenario::Direction;

/// What one connection currently lets through.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Flow {
    /// Client -> server bytes are not read.
    reads_stopped: bool,
    /// Server -> client bytes are not written.
    writes_stopped: bool,
    /// Added before every write.
    latency: Duration,
}

/// One connection's controls, shared by its I/O and the registry.
#[derive(Debug)]
pub struct Control {
    replica: usize,
    flow: Mutex<(Flow, Vec<Waker>)>,
    /// Set once: the connection is dead for good (a partition cut it).
    dead: Mutex<bool>,
    reset: Notify,
}

impl Control {
    fn new(replica: usize, flow: Flow) -> Self {
        Self {
            replica,
            flow: Mutex::new((flow, Vec::new())),
            dead: Mutex::new(false),
            reset: Notify::new(),
        }
    }

    fn flow(&self) -> Flow {
        self.flow.lock().expect("flow lock").0
    }

    fn set(&self, f: impl FnOnce(&mut Flow)) {
        let wakers = {
            let mut g = self.flow.lock().expect("flow lock");
            if *self.dead.lock().expect("dead lock") {
                return;
            }
            f(&mut g.0);
            std::mem::take(&mut g.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    fn park(&self, cx: &Context<'_>) {
        self.flow
            .lock()
            .expect("flow lock")
            .1
            .push(cx.waker().clone());
    }

    /// The replica the connection is served by.
    pub fn replica(&self) -> usize {
        self.replica
    }

    /// Whether what is written now reaches the client (not on a connection a partition
    /// cut: those bytes are lost for good).
    pub fn delivers(&self) -> bool {
        !(*self.dead.lock().expect("dead lock") && self.flow().writes_stopped)
    }

    /// Waits until the connection is to be reset.
    pub async fn reset_requested(&self) {
        self.reset.notified().await
    }
}

/// Which replica a new connection goes to, and what the links let through for it.
#[derive(Debug, Default)]
struct Links {
    next: usize,
    down: Vec<bool>,
    flow: Vec<Flow>,
    conns: BTreeMap<u64, Arc<Control>>,
    next_conn: u64,
}

/// Every open connection of a served apiserver, by replica.
#[derive(Debug, Clone)]
pub struct Connections {
    inner: Arc<Mutex<Links>>,
}

impl Connections {
    /// No connection yet, `replicas` replicas up.
    pub fn new(replicas: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Links {
                down: vec![false; replicas],
                flow: vec![Flow::default(); replicas],
                ..Links::default()
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Links> {
        self.inner.lock().expect("connections lock")
    }

    /// A new connection: its number, and its replica with its controls; `None` when every
    /// replica is down (the caller resets it).
    pub fn open(&self) -> (u64, Option<Arc<Control>>) {
        let mut l = self.lock();
        l.next_conn += 1;
        let id = l.next_conn;
        let n = l.down.len();
        let Some(replica) = (0..n).map(|k| (l.next + k) % n).find(|r| !l.down[*r]) else {
            return (id, None);
        };
        l.next = replica + 1;
        let ctl = Arc::new(Control::new(replica, l.flow[replica]));
        l.conns.insert(id, ctl.clone());
        (id, Some(ctl))
    }

    /// Forgets a closed connection.
    pub fn close(&self, id: u64) {
        self.lock().conns.remove(&id);
    }

    fn on_replica(&self, replica: usize) -> Vec<Arc<Control>> {
        let l = self.lock();
        l.conns
            .values()
            .filter(|c| c.replica == replica)
            .cloned()
            .collect()
    }

    /// Open connections to `replica`.
    pub fn count(&self, replica: usize) -> usize {
        self.on_replica(replica).len()
    }

    /// Starts a network fault on `replica`'s connections, open and new.
    pub fn cut(&self, replica: usize, link: Link) {
        let change = |f: &mut Flow| match link {
            Link::Partition | Link::Hold => {
                f.reads_stopped = true;
                f.writes_stopped = true;
            }
            Link::Oneway(Direction::ToApiserver) => f.reads_stopped = true,
            Link::Oneway(Direction::FromApiserver) => f.writes_stopped = true,
            Link::Latency(d) => f.latency = d,
            Link::Loss(_) => tracing::warn!("loss is not emulated at a real socket"),
        };
        change(&mut self.lock().flow[replica]);
        for c in self.on_replica(replica) {
            c.set(change);
            if matches!(link, Link::Partition | Link::Oneway(_)) {
                *c.dead.lock().expect("dead lock") = true;
            }
        }
    }

    /// Heals what [`Self::cut`] started on `replica`: held connections let everything
    /// through, latency goes; the connections a partition cut stay dead, new ones work.
    pub fn heal(&self, replica: usize) {
        self.lock().flow[replica] = Flow::default();
        for c in self.on_replica(replica) {
            // A connection a partition cut is dead: `set` leaves it as it is.
            c.set(|f| *f = Flow::default());
        }
    }

    /// Resets (RST) every open connection to `replica`.
    pub fn reset(&self, replica: usize) {
        for c in self.on_replica(replica) {
            c.reset.notify_one();
        }
    }

    /// Replica `replica` goes down (its connections reset) or comes back up.
    pub fn set_down(&self, replica: usize, down: bool) {
        self.lock().down[replica] = down;
        if down {
            self.reset(replica);
        }
    }
}

/// A TCP stream whose reads and writes obey its [`Control`].
#[derive(Debug)]
pub struct FaultyIo {
    tcp: Arc<TcpStream>,
    ctl: Arc<Control>,
    delay: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl FaultyIo {
    /// Wraps `tcp`; the returned handle is what `reset` closes with an RST.
    pub fn new(tcp: TcpStream, ctl: Arc<Control>) -> (Self, Arc<TcpStream>) {
        let tcp = Arc::new(tcp);
        let io = Self {
            tcp: tcp.clone(),
            ctl,
            delay: None,
        };
        (io, tcp)
    }
}

/// Closes the connection with an RST once its last handle is dropped.
pub fn reset(tcp: &TcpStream) {
    if let Err(e) = tcp.set_zero_linger() {
        tracing::debug!(error = %e, "SO_LINGER 0 refused");
    }
}

impl AsyncRead for FaultyIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.ctl.flow().reads_stopped {
            self.ctl.park(cx);
            return Poll::Pending;
        }
        loop {
            std::task::ready!(self.tcp.poll_read_ready(cx))?;
            match self.tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for FaultyIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let flow = self.ctl.flow();
        if flow.writes_stopped {
            self.ctl.park(cx);
            return Poll::Pending;
        }
        if !flow.latency.is_zero() {
            let latency = flow.latency;
            let delay = self
                .delay
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(latency)));
            std::task::ready!(delay.as_mut().poll(cx));
        }
        loop {
            std::task::ready!(self.tcp.poll_write_ready(cx))?;
            match self.tcp.try_write(buf) {
                Ok(n) => {
                    self.delay = None;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let sock = socket2::SockRef::from(&*self.tcp);
        Poll::Ready(match sock.shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connected pair: the client's end, and the server's wrapped with its control.
    async fn pair(conns: &Connections) -> (TcpStream, FaultyIo, Arc<TcpStream>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        let (_, ctl) = conns.open();
        let (io, handle) = FaultyIo::new(server, ctl.unwrap());
        (client, io, handle)
    }

    #[tokio::test]
    async fn a_hold_stops_both_directions_and_its_end_delivers_in_order() {
        // Proves the flow control on a real socket pair: written during the hold, read after.
        let conns = Connections::new(1);
        let (mut client, mut io, _h) = pair(&conns).await;
        conns.cut(0, Link::Hold);
        assert!(io.ctl.delivers(), "held bytes arrive later");
        let writer = tokio::spawn(async move {
            io.write_all(b"late").await.unwrap();
            io
        });
        let mut buf = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(100), client.read(&mut buf)).await;
        assert!(early.is_err(), "nothing gets through a hold");
        conns.heal(0);
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"late");
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_partitioned_connection_stays_dead_after_the_partition_heals() {
        let conns = Connections::new(1);
        let (_client, mut io, _h) = pair(&conns).await;
        assert!(io.ctl.delivers());
        conns.cut(0, Link::Partition);
        assert!(!io.ctl.delivers(), "what is written now is lost");
        conns.heal(0);
        let write = tokio::time::timeout(Duration::from_millis(100), io.write_all(b"x")).await;
        assert!(write.is_err(), "the old connection never writes again");
        let (_c2, mut fresh, _h2) = pair(&conns).await;
        fresh.write_all(b"x").await.expect("a new connection works");
    }

    #[tokio::test]
    async fn a_reset_closes_with_rst_and_a_down_replica_takes_no_connection() {
        // Proves SO_LINGER 0: the client's read fails with ConnectionReset, not a clean EOF.
        let conns = Connections::new(2);
        let (mut client, io, handle) = pair(&conns).await;
        reset(&handle);
        drop((io, handle));
        let mut buf = [0u8; 1];
        let err = client.read(&mut buf).await.expect_err("an RST, not EOF");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        conns.set_down(0, true);
        conns.set_down(1, true);
        assert!(conns.open().1.is_none(), "every replica is down");
        conns.set_down(1, false);
        assert_eq!(conns.open().1.unwrap().replica, 1);
    }
}
