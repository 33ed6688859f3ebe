//! Replay files: each shrunk failure as a scenario file that `kube-chaos run` reproduces,
//! with the picture of its run beside it (`{subject}-{checker}.html`).

use std::path::{Path, PathBuf};

use super::Exploration;
use crate::scenario::Checker;

/// The replay file's name for a failure: `{subject}-{checker}.json`.
pub fn replay_file_name(subject: &str, checker: Checker) -> String {
    format!("{subject}-{checker}.json")
}

/// Writes every failure's scenario into `dir` (created if missing), and its page beside it;
/// returns the replay files' paths.
pub fn write_replays(dir: &Path, e: &Exploration) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    for f in &e.failures {
        let path = dir.join(replay_file_name(&e.subject, f.checker));
        std::fs::write(&path, f.scenario.to_json())?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("replay");
        crate::picture::write_page(dir, stem, &f.scenario, &f.report)?;
        paths.push(path);
    }
    Ok(paths)
}
