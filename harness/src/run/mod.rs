//! Running a scenario: its [`timeline`] of fault starts, ends and workload writes, the fault
//! [`Interpreter`] that applies them to the world, the [`run`]ner that drives the simulation
//! and hands the record to the checkers, and the [`Report`].
//!
//! - `timeline`: faults and workload as one ordered list of [`Step`]s.
//! - `interpreter`: one arm per fault kind to start it and one to heal it (**a new fault
//!   kind** adds its arms here, after its variant in `scenario/fault.rs`).
//! - `writes`: workload writes straight to the store (ConfigMaps and any kind).
//! - `operator`: what a run of a user's controller adds — its CRDs and manifests, its
//!   writes counted at the server, the sampled condition, the `differential` baseline.
//! - `runner`: the simulation loop, subject hosts, evidence and counters.
//! - `report`: verdicts, counters, the trace, rendered as stable text.
//! - `served`: a scenario played on the wall clock against `kube-chaos serve` and real
//!   clients, judged from what the server saw.
//! - `determinism`: the divergence finder — two runs of one seed, the first line where
//!   they differ.

mod determinism;
mod interpreter;
mod operator;
mod pace;
mod report;
mod runner;
mod served;
mod timeline;
mod writes;

use std::time::Duration;

pub use determinism::{
    check_determinism, compare, first_divergence, Determinism, Divergence, DIVERGENCE_CONTEXT_LINES,
};
pub use interpreter::{replicas_of, Interpreter, Link, Target, World};
pub use operator::{WriteLog, CONDITION_EVERY};
pub use report::{Report, Uncontrolled, WatchRequest, TRACE_SHOWN_LINES};
pub use runner::{run, run_with, std_seed, StdRandomness};
pub use served::{play_served, served_cluster, PlayOptions, ServedTarget};
pub use timeline::{timeline, Step};
pub use writes::apply_write;

use crate::apiserver::ClusterError;
use crate::subject::UnknownSubject;

/// Why a run could not happen (the world refused the scenario).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario's subject is `external`: real clients, played by `kube-chaos serve`.
    #[error(
        "subject \"external\" is real clients: play it with `kube-chaos serve --scenario FILE`"
    )]
    External,
    /// The scenario names a subject the registry does not know.
    #[error(transparent)]
    Subject(#[from] UnknownSubject),
    /// The cluster could not be built.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// An initial object was refused by the apiserver.
    #[error("objects[{index}]: {message}")]
    Object {
        /// Index in `objects`.
        index: usize,
        /// The apiserver's message.
        message: String,
    },
    /// A CRD of `resources` or a manifest of `manifests` was refused by the apiserver.
    #[error("{field}[{index}]: {message}")]
    Manifest {
        /// `resources` or `manifests`.
        field: &'static str,
        /// Index in it.
        index: usize,
        /// The apiserver's message.
        message: String,
    },
    /// The simulation failed (a host's software returned an error).
    #[error("simulation failed at {at:?}: {message}")]
    Simulation {
        /// Simulated time.
        at: Duration,
        /// turmoil's error.
        message: String,
    },
}
