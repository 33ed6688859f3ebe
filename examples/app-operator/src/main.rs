//! app-operator on a real cluster: `app-operator [VARIANT] [--ours]`.
//!
//! Uses the kubeconfig or in-cluster configuration (`kube::Config::infer`, with a read
//! timeout), runs on
//! kube-runtime's `Controller` (or kube-chaos's with `--ours`) until Ctrl-C. Install the CRD
//! first: `app-operator --crd | kubectl apply -f -`.
//!
//! The workspace builds kube without a TLS stack (the simulation needs none), so this binary
//! speaks plain HTTP: point its kubeconfig at `kubectl proxy` (`http://127.0.0.1:8001`) or
//! at `kube-chaos serve`.

use std::process::ExitCode;

/// The cluster's client, with [`app_operator::READ_TIMEOUT`]: kube's default is none, and a
/// response lost on a connection that stays open would be waited for forever (the harness's
/// exploration finds exactly that without it).
async fn client() -> Result<kube::Client, Box<dyn std::error::Error>> {
    let mut config = kube::Config::infer().await?;
    config.read_timeout = Some(app_operator::READ_TIMEOUT);
    Ok(kube::Client::try_from(config)?)
}

use app_operator::{App, Variant};
use kube::CustomResourceExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--crd") {
        let crd = serde_json::to_string_pretty(&App::crd()).expect("the CRD serialises");
        println!("{crd}");
        return ExitCode::SUCCESS;
    }
    let ours = args.iter().any(|a| a == "--ours");
    let variant = match args.iter().find(|a| !a.starts_with("--")) {
        None => Variant::Correct,
        Some(name) => match name.parse::<Variant>() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("app-operator: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let client = match client().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("app-operator: no cluster configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tracing::info!(variant = variant.name(), ours, "starting app-operator");
    match ours {
        true => app_operator::run_ours(client, variant, shutdown).await,
        false => app_operator::run(client, variant, shutdown).await,
    }
    ExitCode::SUCCESS
}
