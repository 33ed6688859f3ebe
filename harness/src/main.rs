//! The `kube-chaos` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Deterministic chaos testing for Kubernetes controllers.
#[derive(Debug, Parser)]
#[command(name = "kube-chaos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenario files (or directories of them) and check what the subject did.
    Run {
        /// Scenario files or directories of `*.json` scenarios.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        /// Override every scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Print each scenario's full report and trace.
        #[arg(long)]
        trace: bool,
    },
    /// List the subjects a scenario can name.
    Subjects,
    /// Print the JSON Schema of scenario files.
    Schema,
    /// Print the timeline of a client watching through a partition and a 410.
    Demo {
        /// Simulation seed: the same seed prints the same timeline.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Serve the simulated apiserver on a real loopback port (for kubectl and other clients).
    Serve {
        /// TCP port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 6443)]
        port: u16,
        /// Apiserver replicas; connections are spread over them in turn.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
        replicas: u64,
        /// Events each replica's watch cache keeps.
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
        watch_cache_capacity: u64,
        /// Seed for uids and watch timeouts.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { paths, seed, trace } => run(&paths, seed, trace),
        Command::Subjects => {
            for d in kube_chaos_harness::subject::all() {
                println!("{:<32} {}", d.name, d.about);
            }
            ExitCode::SUCCESS
        }
        Command::Schema => {
            print!("{}", kube_chaos_harness::scenario::json_schema());
            ExitCode::SUCCESS
        }
        Command::Serve {
            port,
            replicas,
            watch_cache_capacity,
            seed,
        } => {
            let config = kube_chaos_harness::apiserver::ClusterConfig {
                replicas: replicas as usize,
                watch_cache_capacity: watch_cache_capacity as usize,
                seed,
                ..Default::default()
            };
            serve(port, config)
        }
        Command::Demo { seed } => {
            match kube_chaos_harness::demo::run(seed) {
                Ok(out) => {
                    println!("kube-chaos demo (seed {seed}): a watch through a 40 s partition, then a 410\n");
                    for line in &out.lines {
                        println!("{line}");
                    }
                    if out.converged {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("kube-chaos demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Exit 0 iff every scenario met its expectation, 1 otherwise, 2 for bad input.
fn run(paths: &[std::path::PathBuf], seed: Option<u64>, trace: bool) -> ExitCode {
    use kube_chaos_harness::{scenario::Scenario, suite};
    let loaded = suite::collect(paths).and_then(|files| {
        files
            .into_iter()
            .map(|f| Scenario::load(&f).map(|s| (f, s)))
            .collect::<Result<Vec<_>, _>>()
    });
    let scenarios = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-chaos run: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("running {} scenario(s)", scenarios.len());
    let outcomes = suite::run_all(&scenarios, seed, |o| {
        if trace {
            if let Ok(r) = &o.report {
                println!("{}", r.render());
            }
        }
        println!("{}", suite::verdict_line(o));
    });
    println!("\n{}", suite::table(&outcomes));
    if outcomes.iter().all(suite::Outcome::met) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn serve(port: u16, config: kube_chaos_harness::apiserver::ClusterConfig) -> ExitCode {
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
    rt.block_on(async move {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match kube_chaos_harness::serve::serve(addr, config).await {
            Ok(served) => {
                let url = format!("http://{}", served.addr);
                println!("kube-chaos serve: simulated apiserver on {url} (Ctrl-C stops it)");
                println!("  try: kubectl --server {url} get configmaps -n default");
                std::future::pending::<ExitCode>().await
            }
            Err(e) => {
                eprintln!("kube-chaos serve: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
