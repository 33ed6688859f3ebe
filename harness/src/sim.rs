//! A seeded `turmoil::Sim` with a simulated cluster of N apiserver replicas.

use std::time::{Duration, UNIX_EPOCH};

use crate::apiserver::{ApiServer, Clock, ClusterConfig, ClusterError};
use crate::net::{replica_host, serve_replica};

/// The simulated wall clock starts here (2025-01-01T00:00:00Z): timestamps derive from the
/// scenario, never from the machine's clock.
pub const EPOCH_SECS: u64 = 1_735_689_600;

/// Simulated time since the start for a server timestamp (time since the UNIX epoch).
pub fn since_start(at: Duration) -> Duration {
    at.saturating_sub(Duration::from_secs(EPOCH_SECS))
}

/// Builds a seeded simulation hosting the apiserver replicas.
#[derive(Debug, Clone)]
pub struct SimBuilder {
    /// Seed for turmoil's RNG and the server's.
    pub seed: u64,
    /// Cluster knobs (replicas, watch cache, timeouts, ...).
    pub cluster: ClusterConfig,
    /// Simulated-time limit of the run.
    pub duration: Duration,
    /// turmoil's step size.
    pub tick: Duration,
    /// Pending SYNs allowed per listener.
    pub tcp_capacity: usize,
}

impl SimBuilder {
    /// One replica, 10 simulated minutes, 1 ms ticks.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            cluster: ClusterConfig {
                seed,
                ..ClusterConfig::default()
            },
            duration: Duration::from_secs(600),
            tick: Duration::from_millis(1),
            tcp_capacity: 1024,
        }
    }

    /// Sets the number of replicas.
    pub fn replicas(mut self, n: usize) -> Self {
        self.cluster.replicas = n;
        self
    }

    /// Sets the simulated-time limit.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// Sets turmoil's step size (long scenarios raise it).
    pub fn tick(mut self, d: Duration) -> Self {
        self.tick = d;
        self
    }

    /// Edits the cluster configuration.
    pub fn cluster(mut self, f: impl FnOnce(&mut ClusterConfig)) -> Self {
        f(&mut self.cluster);
        self
    }

    /// The simulation (with replica hosts registered) and a handle on the server; fails when
    /// the cluster configuration is refused.
    pub fn build<'a>(&self) -> Result<(turmoil::Sim<'a>, ApiServer), ClusterError> {
        let epoch = Duration::from_secs(EPOCH_SECS);
        let server = ApiServer::new(self.cluster.clone(), Clock::Sim { epoch })?;
        let mut sim = turmoil::Builder::new()
            .rng_seed(self.seed)
            .epoch(UNIX_EPOCH + epoch)
            .simulation_duration(self.duration)
            .tick_duration(self.tick)
            .tcp_capacity(self.tcp_capacity)
            .build();
        for i in 0..self.cluster.replicas {
            let server = server.clone();
            sim.host(replica_host(i), move || serve_replica(server.clone(), i));
        }
        Ok((sim, server))
    }
}

/// Crashes apiserver replica `replica` so that the run stays a pure function of the seed.
///
/// `turmoil::Sim::crash` drops the host's tasks in the order of tokio's task ids, which are
/// process-wide: with other simulations running in the same process (parallel tests, a
/// second run) the connections would end in another order. Closing every connection of the
/// replica first, in the server's own fixed order, and stepping once makes the crash itself
/// find nothing left to close.
pub fn crash_replica(sim: &mut turmoil::Sim<'_>, server: &ApiServer, replica: usize) {
    server.reset_connections(replica);
    // A step error means the simulation is already over; the crash below is then harmless.
    let _ = sim.step();
    sim.crash(replica_host(replica));
}
