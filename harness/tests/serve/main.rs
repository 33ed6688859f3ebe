//! `kube-chaos serve`: the simulated apiserver on a real loopback port, reached by real
//! clients — a stock `kube::Client`, kubectl, the Python `kubernetes` client and kopf
//! (`scripts/pyenv.sh`), and @kubernetes/client-node's informer (`scripts/nodeenv.sh`). A
//! client that cannot be installed makes its tests print `SKIPPED: <why>` and return; they
//! never pass silently otherwise.

mod chaos;
mod chaos_operators;
mod chaos_server;
mod cli;
mod kube_client;
mod kubectl;
mod node;
mod python;

use std::io::Write;
use std::process::{Command, Stdio};

use kube_chaos_harness::apiserver::ClusterConfig;
use kube_chaos_harness::serve::{serve, ServeOptions};

/// Starts a server on a free loopback port; returns its URL.
pub async fn start() -> String {
    start_with(ServeOptions::default()).await
}

/// Starts a server with options on a free loopback port; returns its URL.
pub async fn start_with(opts: ServeOptions) -> String {
    let served = serve(([127, 0, 0, 1], 0).into(), ClusterConfig::default(), opts)
        .await
        .expect("serves");
    format!("http://{}", served.addr)
}

/// Runs `program args` with `stdin`; returns (success, stdout + stderr).
pub fn run_process(mut cmd: Command, stdin: Option<&str>) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("the program finishes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
