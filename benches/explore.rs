//! Exploration speed: cases per second for the small-scenario profile on one core (one
//! job), and the wall time and simulated runs spent shrinking each bug-zoo failure.
//!
//! `cargo bench -p kube-chaos-harness --bench explore`

use std::time::Instant;

use kube_chaos_harness::explore::{self, Options};
use kube_chaos_harness::subject::registry;

fn main() {
    const CASES: u32 = 200;
    println!("cases/s, one job, {CASES} cases from seed 1 (no failures to shrink):");
    for name in ["retry-watcher", "informer", "controller"] {
        let e = explore::explore(&Options::new(name, CASES, 1), &|_| {}).expect("known subject");
        assert!(e.failures.is_empty(), "{name} failed");
        println!(
            "  {name:<16} {:>6.1} cases/s ({:.2} s)",
            e.cases_per_sec(),
            e.cases_wall.as_secs_f64()
        );
    }
    println!("\nshrinking, one job, seed 1, first failure of each bug-zoo subject:");
    let (mut total_wall, mut total_runs, mut n) = (0.0, 0, 0);
    for d in registry().all().iter().filter(|d| d.zoo) {
        let opts = Options {
            stop_at_first: true,
            ..Options::new(d.name, 300, 1)
        };
        let started = Instant::now();
        let e = explore::explore(&opts, &|_| {}).expect("known subject");
        let f = e.failures.first().expect("the zoo subject is found");
        total_wall += f.shrink_wall.as_secs_f64();
        total_runs += f.shrink_runs;
        n += 1;
        println!(
            "  {:<36} case {:>3} {:<20} shrink {:>5.2} s / {:>3} runs ({:>4.1} ms/run), {} -> {} faults; total {:.2} s",
            d.name,
            f.case,
            f.checker,
            f.shrink_wall.as_secs_f64(),
            f.shrink_runs,
            f.shrink_wall.as_secs_f64() * 1000.0 / f64::from(f.shrink_runs.max(1)),
            f.original.faults.len(),
            f.scenario.faults.len(),
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "  mean shrink: {:.2} s, {:.0} runs per failure",
        total_wall / f64::from(n),
        f64::from(total_runs) / f64::from(n)
    );
}
