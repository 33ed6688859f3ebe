//! The `kube-chaos` command line.

mod serve_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube_chaos_harness::explore::{self, Exploration, Options, Progress, Shard};
use kube_chaos_harness::{demo, scenario, study, subject, suite};

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
        /// Write one HTML page per scenario (an SVG timeline and the trace) into this
        /// directory.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
        /// Run each scenario twice and, if the runs differ, print the first differing line
        /// of each with the lines before it (exit 1).
        #[arg(long)]
        check_determinism: bool,
    },
    /// Generate scenarios for a subject, run them, shrink each distinct failure to a minimal
    /// replay file.
    Explore {
        /// The subject to explore (see `kube-chaos subjects`).
        #[arg(long)]
        subject: String,
        /// Cases to generate.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        cases: u32,
        /// Seed: the same seed generates the same cases and writes the same replay files.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Directory for the replay files (created if missing).
        #[arg(long, default_value = "explore-out")]
        out: std::path::PathBuf,
        /// Cases run in parallel.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
        jobs: u64,
        /// Most simulated runs spent shrinking one failure.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
        shrink_runs: u32,
        /// Stop generating at the first failing case.
        #[arg(long)]
        stop_at_first: bool,
        /// Run only shard K of N of the cases (case i is in shard i % N + 1), for a CI
        /// matrix; the same seed and cases give the same replay files in any shard.
        #[arg(long, default_value = "1/1")]
        shard: Shard,
    },
    /// Studies that measure the apiserver's load at scale.
    Study {
        #[command(subcommand)]
        study: Study,
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
    /// Serve the simulated apiserver on a real loopback port (for kubectl and other clients),
    /// optionally playing a scenario's faults on the wall clock and judging the clients.
    Serve(serve_cmd::ServeArgs),
    /// Start a fault now on a running `kube-chaos serve --admin-port` (its admin URL).
    Fault(serve_cmd::FaultArgs),
}

#[derive(Debug, Subcommand)]
enum Study {
    /// N idle informers per min_watch_timeout: watch requests/s at the apiserver beside
    /// the analytic N / (1.5 × min).
    WatchLoad {
        /// Idle informers.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        informers: u32,
        /// Simulated time per setting.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// The settings: one or more min_watch_timeout values.
        #[arg(long, default_value = "5m,30m", value_delimiter = ',', value_parser = humantime::parse_duration)]
        min_watch_timeout: Vec<std::time::Duration>,
        /// Hosts the informers are spread over.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
        hosts: u32,
        /// Simulation seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write the page (a chart of requests/s over time per setting) into this
        /// directory as `watch-load.html`.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            paths,
            seed,
            trace,
            html,
            check_determinism,
        } => {
            let mode = match check_determinism {
                true => suite::Mode::CheckDeterminism,
                false => suite::Mode::Once,
            };
            run(&paths, seed, trace, mode, html.as_deref())
        }
        Command::Explore {
            subject,
            cases,
            seed,
            out,
            jobs,
            shrink_runs,
            stop_at_first,
            shard,
        } => {
            let opts = Options {
                subject,
                cases,
                seed,
                jobs: jobs as usize,
                stop_at_first,
                shrink_runs,
                shard,
                std_randomness: kube_chaos_harness::run::StdRandomness::Seeded,
            };
            explore(&opts, &out)
        }
        Command::Subjects => subjects(),
        Command::Study { study } => run_study(study),
        Command::Schema => {
            print!("{}", scenario::json_schema());
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve_cmd::serve_command(args),
        Command::Fault(args) => serve_cmd::fault_command(args),
        Command::Demo { seed } => demo(seed),
    }
}

/// `kube-chaos subjects`: the registry, the bug zoo last.
fn subjects() -> ExitCode {
    for zoo in [false, true] {
        println!(
            "{}",
            match zoo {
                false => "subjects:",
                true => "\nbug zoo (each is the runtime with one known bug; explore must find it):",
            }
        );
        for d in subject::registry().all().iter().filter(|d| d.zoo == zoo) {
            println!("  {:<36} {}", d.name, d.about);
        }
    }
    ExitCode::SUCCESS
}

fn run_study(s: Study) -> ExitCode {
    let Study::WatchLoad {
        informers,
        duration,
        min_watch_timeout,
        hosts,
        seed,
        html,
    } = s;
    let settings = min_watch_timeout
        .into_iter()
        .map(|min| study::WatchLoad {
            informers,
            hosts,
            duration,
            min_watch_timeout: min,
            seed,
        })
        .collect::<Vec<_>>();
    watch_load(&settings, html.as_deref())
}

/// `kube-chaos study watch-load`: each setting in turn, then the table.
fn watch_load(settings: &[study::WatchLoad], html: Option<&std::path::Path>) -> ExitCode {
    let mut reports = Vec::new();
    for (i, s) in settings.iter().enumerate() {
        eprintln!(
            "[{}/{}] {} informers on {} hosts, min_watch_timeout {}, {} simulated ...",
            i + 1,
            settings.len(),
            s.informers,
            s.hosts,
            humantime::format_duration(s.min_watch_timeout),
            humantime::format_duration(s.duration)
        );
        match study::watch_load(s) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("kube-chaos study watch-load: {e}");
                return ExitCode::from(2);
            }
        }
    }
    print!("{}", study::table(&reports));
    if let Some(dir) = html {
        let path = dir.join("watch-load.html");
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, study::page(&reports)));
        if let Err(e) = written {
            eprintln!(
                "kube-chaos study watch-load: cannot write {}: {e}",
                path.display()
            );
            return ExitCode::from(2);
        }
        eprintln!("page written to {}", path.display());
    }
    ExitCode::SUCCESS
}

/// `kube-chaos demo`: exit 0 iff the client converged.
fn demo(seed: u64) -> ExitCode {
    match demo::run(seed) {
        Ok(out) => {
            println!(
                "kube-chaos demo (seed {seed}): a watch through a 40 s partition, then a 410\n"
            );
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

/// Exit 0 iff every scenario met its expectation, 1 otherwise, 2 for bad input.
fn run(
    paths: &[std::path::PathBuf],
    seed: Option<u64>,
    trace: bool,
    mode: suite::Mode,
    html: Option<&std::path::Path>,
) -> ExitCode {
    let scenarios = match suite::load(paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-chaos run: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("running {} scenario(s)", scenarios.len());
    let outcomes = suite::run_all(&scenarios, seed, mode, |o| {
        if trace {
            if let Ok(r) = &o.report {
                println!("{}", r.render());
            }
        }
        println!("{}", suite::verdict_line(o));
    });
    println!("\n{}", suite::table(&outcomes));
    if let Some(dir) = html {
        if let Err(e) = suite::write_pages(dir, &scenarios, &outcomes) {
            eprintln!(
                "kube-chaos run: cannot write pages into {}: {e}",
                dir.display()
            );
            return ExitCode::from(2);
        }
        eprintln!("pages written to {}", dir.display());
    }
    if outcomes.iter().all(suite::Outcome::met) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Exit 0 when nothing was found, 1 when something was, 2 for bad input.
fn explore(opts: &Options, out: &std::path::Path) -> ExitCode {
    // Checked before anything is created or run (explore checks it again).
    if let Err(e) = subject::registry().get(&opts.subject) {
        eprintln!("kube-chaos explore: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("kube-chaos explore: cannot create {}: {e}", out.display());
        return ExitCode::from(2);
    }
    let shard = match opts.shard {
        Shard::WHOLE => String::new(),
        s => format!(", shard {s}"),
    };
    eprintln!(
        "exploring {}: {} case(s) from seed {} on {} job(s){shard}",
        opts.subject, opts.cases, opts.seed, opts.jobs
    );
    let bar = progress_bar(opts.shard.cases(opts.cases).len() as u32);
    let progress = |p: Progress| match p {
        Progress::Case { done, failures } => {
            bar.set_position(u64::from(done));
            bar.set_message(format!("{failures} failing case(s)"));
        }
        Progress::Shrinking {
            checker,
            runs,
            faults,
        } => bar.set_message(format!(
            "shrinking {checker}: {runs} run(s), {faults} fault(s) left"
        )),
    };
    let found = explore::explore(opts, &progress);
    bar.finish_and_clear();
    let found = match found {
        Ok(e) => e,
        Err(e) => {
            eprintln!("kube-chaos explore: {e}");
            return ExitCode::from(2);
        }
    };
    let paths = match explore::write_replays(out, &found) {
        Ok(p) => p,
        Err(e) => {
            let dir = out.display();
            eprintln!("kube-chaos explore: cannot write replay files into {dir}: {e}");
            return ExitCode::from(2);
        }
    };
    print_exploration(&found, &paths);
    if found.failures.is_empty() && found.broken.is_empty() && found.unreproduced.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn progress_bar(cases: u32) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressStyle};
    let bar = ProgressBar::new(u64::from(cases));
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} cases, {per_sec}, {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message("0 failures");
    bar
}

/// The summary, each failure with its first violation and replay command, broken cases.
fn print_exploration(found: &Exploration, paths: &[std::path::PathBuf]) {
    let mut also = String::new();
    if !found.unreproduced.is_empty() {
        also += &format!(
            ", {} failing case(s) not reproduced",
            found.unreproduced.len()
        );
    }
    if !found.broken.is_empty() {
        also += &format!(", {} case(s) could not run", found.broken.len());
    }
    println!(
        "{}: {} case(s) in {:.1} s ({:.1} cases/s), {} distinct failure(s){also}",
        found.subject,
        found.cases_run,
        found.cases_wall.as_secs_f64(),
        found.cases_per_sec(),
        found.failures.len()
    );
    for (f, path) in found.failures.iter().zip(paths) {
        let s = &f.scenario;
        println!(
            "\n{} violated (case {}); shrunk in {} run(s), {:.1} s, to {} fault(s), {} object(s), {} write(s), duration {}",
            f.checker,
            f.case,
            f.shrink_runs,
            f.shrink_wall.as_secs_f64(),
            s.faults.len(),
            s.objects.len(),
            s.workload.len(),
            s.duration
        );
        if let Some(v) = f
            .report
            .verdict(f.checker)
            .and_then(|v| v.violations.first())
        {
            println!("  {}", v.message);
        }
        println!("  replay: kube-chaos run {}", path.display());
    }
    for u in &found.unreproduced {
        println!("\n{}", u.render());
    }
    for b in &found.broken {
        println!(
            "\ncase {} could not run (a harness bug): {}\n{}",
            b.case,
            b.error,
            b.scenario.to_json()
        );
    }
}
