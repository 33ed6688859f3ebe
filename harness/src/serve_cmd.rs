//! `kube-chaos serve` (with `--scenario`, `--report`, `--admin-port`) and `kube-chaos fault`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use kube_chaos_harness::apiserver::ClusterConfig;
use kube_chaos_harness::run::{self, PlayOptions};
use kube_chaos_harness::scenario::{self, Scenario};
use kube_chaos_harness::serve::{self, ServeOptions, Served};
use kube_chaos_harness::subject;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

/// `kube-chaos serve`'s flags.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TCP port (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Address to bind; loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    address: std::net::IpAddr,
    /// CRDs to serve from the start (YAML or JSON; several documents or a List); repeatable.
    #[arg(long = "crd", value_name = "FILE")]
    crds: Vec<PathBuf>,
    /// Objects to create at start, after the CRDs (YAML or JSON); repeatable.
    #[arg(long = "objects", value_name = "FILE")]
    objects: Vec<PathBuf>,
    /// Require `Authorization: Bearer <TOKEN>` on every request (401 otherwise).
    #[arg(long)]
    token: Option<String>,
    /// Apiserver replicas; connections are spread over them in turn.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    replicas: u64,
    /// Events each replica's watch cache keeps.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    watch_cache_capacity: u64,
    /// Seed for uids and watch timeouts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Play this scenario (subject "external") on the wall clock: its cluster (replacing
    /// --replicas and --watch-cache-capacity), objects, workload and faults; then judge the
    /// clients from what the server saw, print the report and exit (0 when met).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Write the scenario's report here instead of stdout.
    #[arg(long, value_name = "FILE", requires = "scenario")]
    report: Option<PathBuf>,
    /// The client's reported cache (`namespace/name resourceVersion` lines), for
    /// `no_event_loss` (overrides the scenario's `subject.external.cache_file`).
    #[arg(long, value_name = "FILE", requires = "scenario")]
    client_cache: Option<PathBuf>,
    /// Serve the admin endpoint (`POST /faults`, `kube-chaos fault`) on this loopback port
    /// (0 picks a free one).
    #[arg(long)]
    admin_port: Option<u16>,
}

/// `kube-chaos fault`'s flags: a fault kind and its fields.
#[derive(Debug, clap::Args)]
pub struct FaultArgs {
    /// The admin URL `kube-chaos serve --admin-port` printed.
    #[arg(long)]
    server: String,
    /// The fault kind, as scenario files name it (`expire-watches` or `expire_watches`).
    kind: String,
    /// How long it lasts (faults with a window).
    #[arg(long = "for", value_name = "DURATION")]
    for_: Option<String>,
    /// Only this replica.
    #[arg(long)]
    replica: Option<usize>,
    /// More fields as `name=value` (`code=429`, `rate=1`, `retry_after=2s`, `latency=300ms`,
    /// `restart_after=2s`, `direction=from_apiserver`, `requests=watch`); repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

/// Exit 2 for bad input (a scenario or preload file), 1 for an unmet scenario.
pub fn serve_command(args: ServeArgs) -> ExitCode {
    let scenario = match args.scenario.as_deref().map(load_external).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-chaos serve: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match &scenario {
        Some(s) => run::served_cluster(s),
        None => ClusterConfig {
            replicas: args.replicas as usize,
            watch_cache_capacity: args.watch_cache_capacity as usize,
            seed: args.seed,
            ..Default::default()
        },
    };
    let mut preload = Vec::new();
    for path in args.crds.iter().chain(&args.objects) {
        match serve::read_objects(path) {
            Ok(objs) => preload.extend(objs),
            Err(e) => {
                eprintln!("kube-chaos serve: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let opts = ServeOptions {
        preload,
        token: args.token.clone(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kube-chaos serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(serve_async(args, config, opts, scenario))
}

/// Reads a scenario whose subject must be `external`.
fn load_external(path: &std::path::Path) -> Result<Scenario, String> {
    let s = Scenario::load(path, subject::registry()).map_err(|e| e.to_string())?;
    if !s.subject.is_external() {
        return Err(format!(
            "{}: subject.name: serve plays scenarios of the {:?} subject, not {:?}",
            path.display(),
            scenario::EXTERNAL,
            s.subject.name
        ));
    }
    Ok(s)
}

async fn serve_async(
    args: ServeArgs,
    config: ClusterConfig,
    opts: ServeOptions,
    scenario: Option<Scenario>,
) -> ExitCode {
    let replicas = config.replicas;
    let token = opts.token.is_some();
    let served = match serve::serve((args.address, args.port).into(), config, opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-chaos serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (tx, rx) = mpsc::channel(16);
    let admin = match args.admin_port {
        None => None,
        Some(port) => match serve::serve_admin(([127, 0, 0, 1], port).into(), replicas, tx).await {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("kube-chaos serve: cannot listen for the admin endpoint: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    announce(&served, token, scenario.as_ref(), admin);
    // Live faults without a scenario: an endless one with no faults of its own.
    let scenario = match scenario {
        Some(s) => s,
        None if admin.is_some() => endless(),
        None => return std::future::pending::<ExitCode>().await,
    };
    let play = PlayOptions {
        cache_file: args.client_cache.clone(),
    };
    match run::play_served(&scenario, &served, rx, &play).await {
        Ok(report) => write_report(&report, args.report.as_deref()),
        Err(e) => {
            eprintln!("kube-chaos serve: {e}");
            ExitCode::from(2)
        }
    }
}

/// The scenario of `serve --admin-port` without `--scenario`: six hours, nothing planned.
fn endless() -> Scenario {
    let text = format!(
        r#"{{"version": 1, "name": "live", "duration": "5h", "settle": "1h", "subject": {{"name": "{}"}}}}"#,
        scenario::EXTERNAL
    );
    Scenario::parse(&text, "live", subject::registry()).expect("a valid scenario")
}

/// The first lines: the URL (tests and users read it), the scenario, the admin URL.
fn announce(
    served: &Served,
    token: bool,
    s: Option<&Scenario>,
    admin: Option<std::net::SocketAddr>,
) {
    let url = format!("http://{}", served.addr);
    let auth = if token { " --token <TOKEN>" } else { "" };
    // `serve | head -1` closes stdout: the server must keep serving, not panic.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "kube-chaos serve: simulated apiserver on {url} (Ctrl-C stops it)"
    );
    let _ = writeln!(
        out,
        "  try: kubectl --server {url}{auth} get configmaps -n default"
    );
    if let Some(s) = s {
        let _ = writeln!(
            out,
            "  scenario {}: {} fault(s) over {}, then the report",
            s.name,
            s.faults.len(),
            humantime::format_duration(s.end())
        );
    }
    if let Some(a) = admin {
        let _ = writeln!(
            out,
            "  admin: http://{a} (kube-chaos fault --server http://{a} expire-watches)"
        );
    }
    let _ = out.flush();
}

fn write_report(report: &run::Report, path: Option<&std::path::Path>) -> ExitCode {
    let text = report.render();
    match path {
        Some(p) => {
            if let Err(e) = std::fs::write(p, &text) {
                eprintln!("kube-chaos serve: cannot write {}: {e}", p.display());
                return ExitCode::from(2);
            }
            let verdict = if report.met() { "met" } else { "UNMET" };
            println!(
                "scenario {}: {verdict}; report written to {}",
                report.scenario,
                p.display()
            );
        }
        None => print!("{text}"),
    }
    let _ = std::io::stdout().flush();
    if report.met() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `kube-chaos fault`: exit 0 when the server started it, 1 when it refused, 2 when it
/// could not be reached.
pub fn fault_command(args: FaultArgs) -> ExitCode {
    let fault = match fault_json(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kube-chaos fault: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let answer = match rt {
        Ok(rt) => rt.block_on(serve::post_fault(&args.server, &fault)),
        Err(e) => Err(format!("cannot start the runtime: {e}")),
    };
    match answer {
        Ok((202, body)) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Ok((code, body)) => {
            eprint!("kube-chaos fault: refused ({code}): {body}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("kube-chaos fault: {e}");
            ExitCode::from(2)
        }
    }
}

/// The fault as scenario JSON: `{"kind": {"at": "0s", ...fields}}`.
fn fault_json(args: &FaultArgs) -> Result<Value, String> {
    let mut fields = Map::new();
    fields.insert("at".into(), json!("0s"));
    if let Some(d) = &args.for_ {
        fields.insert("for".into(), json!(d));
    }
    if let Some(r) = args.replica {
        fields.insert("replica".into(), json!(r));
    }
    for kv in &args.set {
        let (k, v) = kv
            .split_once('=')
            .ok_or(format!("--set {kv:?}: expected NAME=VALUE"))?;
        // Numbers stay numbers; everything else (durations, names) is a string.
        let value = serde_json::from_str::<Value>(v)
            .ok()
            .filter(Value::is_number)
            .unwrap_or_else(|| json!(v));
        fields.insert(k.replace('-', "_"), value);
    }
    Ok(json!({ args.kind.replace('-', "_"): fields }))
}
