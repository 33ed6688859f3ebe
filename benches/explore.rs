//! Exploration speed: cases per second for the small-scenario profile on one core (one
//! job), and the wall time and simulated runs spent shrinking each bug-zoo failure.
//!
//! `cargo bench -p kube-chaos-harness --bench explore`

use std::time::Instant;

use kube_chaos_harness::explore::{self, generate, Options};
use kube_chaos_harness::run;
use kube_chaos_harness::subject::registry;

/// Cases per second on one core, the target of issue 19.
const TARGET: f64 = 50.0;

fn main() {
    const CASES: u32 = 200;
    println!("cases/s, one job, {CASES} cases from seed 1 (no failures to shrink):");
    for name in ["retry-watcher", "informer", "controller"] {
        let e = explore::explore(&Options::new(name, CASES, 1), &|_| {}).expect("known subject");
        assert!(e.failures.is_empty(), "{name} failed");
        let met = if e.cases_per_sec() >= TARGET {
            "met"
        } else {
            "NOT met"
        };
        println!(
            "  {name:<16} {:>6.1} cases/s ({:.2} s): target {TARGET} cases/s {met}",
            e.cases_per_sec(),
            e.cases_wall.as_secs_f64()
        );
    }
    println!(
        "\nthe same cases with idle_tick and with every step the tick (the peer), interleaved:"
    );
    for name in ["retry-watcher", "informer", "controller"] {
        idle_steps_against_fixed_steps(name, 100);
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

/// Runs cases `0..cases` of `name` twice each, as generated (long steps while nothing is in
/// flight) and with `idle_tick` removed (every step the tick: the stepping before issue 19),
/// alternating so both see the same machine load; prints both rates, their ratio, and how
/// many cases got a different verdict (the set of violated checkers).
fn idle_steps_against_fixed_steps(name: &str, cases: u32) {
    let subject = registry().find(name).expect("known subject");
    let (mut idle, mut fixed, mut differ) = (0.0, 0.0, 0);
    for case in 0..cases {
        let s = generate(subject, 1, case);
        let mut fixed_s = s.clone();
        fixed_s.idle_tick = None;
        let t = Instant::now();
        let a = run::run(&s, None).expect("the case runs");
        idle += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let b = run::run(&fixed_s, None).expect("the case runs");
        fixed += t.elapsed().as_secs_f64();
        if a.violated() != b.violated() {
            differ += 1;
        }
    }
    let n = f64::from(cases);
    println!(
        "  {name:<16} idle_tick {:>6.1} cases/s, fixed steps {:>5.1} cases/s: {:.1}x; verdicts differ in {differ} of {cases}",
        n / idle,
        n / fixed,
        fixed / idle
    );
}
