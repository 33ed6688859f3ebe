//! The harness end to end: fixtures -> reports -> snapshots, determinism, scenario-file
//! errors, the JSON Schema, and the `kube-chaos` CLI's exit codes.

mod cli;
mod determinism;
mod explore;
mod fixtures;
mod guarantees;
mod operator;
mod pictures;
mod scenario_files;

use std::path::{Path, PathBuf};

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}
