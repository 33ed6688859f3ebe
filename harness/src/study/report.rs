//! What a watch-load run saw, reduced to the figures of the study, and the table that puts
//! them beside the analytic model.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Seen, WatchLoad};

/// The distribution of the watch durations requested (`timeoutSeconds`): with no fault the
/// server closes each watch exactly then, so these are the watches' lifetimes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Durations {
    /// Shortest.
    pub min: Duration,
    /// Median.
    pub median: Duration,
    /// Mean.
    pub mean: Duration,
    /// Longest.
    pub max: Duration,
}

/// One setting's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchLoadReport {
    /// The setting.
    pub setting: WatchLoad,
    /// Wall time of the run.
    pub wall: Duration,
    /// List requests.
    pub lists: u64,
    /// Watch requests.
    pub watches: u64,
    /// Watch requests in the first 10 s (the cold-start herd).
    pub herd: u64,
    /// Watch requests in each simulated minute.
    pub per_minute: Vec<u64>,
    /// Watch requests per second from [`WatchLoad::steady_from`] to the end.
    pub steady_rate: f64,
    /// The watch durations asked for.
    pub durations: Durations,
}

impl WatchLoadReport {
    pub(super) fn new(setting: WatchLoad, seen: &[Seen], wall: Duration) -> Self {
        let watches: Vec<(Duration, u64)> = seen
            .iter()
            .filter_map(|s| s.watch_timeout.map(|t| (s.at, t)))
            .collect();
        let minutes = setting.duration.as_secs().div_ceil(60) as usize;
        let last = minutes.max(1) - 1;
        let mut per_minute = vec![0u64; last + 1];
        for (at, _) in &watches {
            per_minute[((at.as_secs() / 60) as usize).min(last)] += 1;
        }
        let from = setting.steady_from();
        let steady = watches.iter().filter(|(at, _)| *at >= from).count();
        let window = (setting.duration - from).as_secs_f64().max(1e-9);
        Self {
            lists: (seen.len() - watches.len()) as u64,
            watches: watches.len() as u64,
            herd: watches.iter().filter(|(at, _)| at.as_secs() < 10).count() as u64,
            per_minute,
            steady_rate: steady as f64 / window,
            durations: durations(watches.iter().map(|(_, t)| *t).collect()),
            setting,
            wall,
        }
    }

    /// Steady-state rate relative to the analytic one: `measured / expected - 1`.
    pub fn relative_error(&self) -> f64 {
        self.steady_rate / self.setting.expected_rate() - 1.0
    }
}

fn durations(mut secs: Vec<u64>) -> Durations {
    secs.sort_unstable();
    let d = |s: u64| Duration::from_secs(s);
    if secs.is_empty() {
        let z = Duration::ZERO;
        return Durations {
            min: z,
            median: z,
            mean: z,
            max: z,
        };
    }
    let mean = secs.iter().sum::<u64>() as f64 / secs.len() as f64;
    Durations {
        min: d(secs[0]),
        median: d(secs[secs.len() / 2]),
        mean: Duration::from_secs_f64(mean),
        max: d(secs[secs.len() - 1]),
    }
}

fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// The study's table (one row per setting) and each setting's watch requests/s over time
/// (5-minute buckets).
pub fn table(reports: &[WatchLoadReport]) -> String {
    rows(reports, true)
}

/// The table without wall times (for the page: the same seed gives the same bytes).
pub fn table_without_wall(reports: &[WatchLoadReport]) -> String {
    rows(reports, false)
}

fn rows(reports: &[WatchLoadReport], wall: bool) -> String {
    let mut out = String::from(
        "min_watch_timeout  informers  simulated  wall     lists   watches  herd(10s)  steady from  steady req/s  expected N/(1.5 min)  error    watch lifetime min/median/mean/max\n",
    );
    for r in reports {
        let s = &r.setting;
        let d = &r.durations;
        let _ = writeln!(
            out,
            "{:<18} {:>9}  {:<9}  {:>7}  {:>6}  {:>8}  {:>9}  {:<11}  {:>12.3}  {:>20.3}  {:>+6.2}%  {} / {} / {} / {}",
            human(s.min_watch_timeout),
            s.informers,
            human(s.duration),
            match wall {
                true => format!("{:.1}s", r.wall.as_secs_f64()),
                false => "-".into(),
            },
            r.lists,
            r.watches,
            r.herd,
            human(s.steady_from()),
            r.steady_rate,
            s.expected_rate(),
            r.relative_error() * 100.0,
            human(d.min),
            human(d.median),
            human(d.mean),
            human(d.max),
        );
    }
    for r in reports.iter().filter(|r| !r.setting.is_steady()) {
        let s = &r.setting;
        let _ = writeln!(
            out,
            "\nmin_watch_timeout {}: {} is shorter than 6 × min_watch_timeout, so the rate is still \
             the first renewal waves (N / min = {:.3}/s over [min, 2 × min)), not the steady state: \
             run with --duration {} or more",
            human(s.min_watch_timeout),
            human(s.duration),
            f64::from(s.informers) / s.min_watch_timeout.as_secs_f64(),
            human(s.min_watch_timeout * 6),
        );
    }
    for r in reports {
        let buckets: Vec<String> = r
            .per_minute
            .chunks(5)
            .map(|c| {
                format!(
                    "{:.1}",
                    c.iter().sum::<u64>() as f64 / (60.0 * c.len() as f64)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "\nwatch requests/s per 5 min, min_watch_timeout {}: {}",
            human(r.setting.min_watch_timeout),
            buckets.join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(at: u64, timeout: Option<u64>) -> Seen {
        Seen {
            at: Duration::from_secs(at),
            watch_timeout: timeout,
        }
    }

    #[test]
    fn the_steady_rate_counts_watches_from_two_minimum_timeouts_on() {
        // 10 informers, min 60 s over 600 s: the steady window is [120 s, 600 s).
        let setting = WatchLoad {
            informers: 10,
            hosts: 1,
            duration: Duration::from_secs(600),
            min_watch_timeout: Duration::from_secs(60),
            seed: 0,
        };
        let mut log = vec![seen(0, None), seen(1, Some(60)), seen(5, Some(100))];
        log.extend((0..48).map(|i| seen(120 + i * 10, Some(90))));
        let r = WatchLoadReport::new(setting, &log, Duration::ZERO);
        assert_eq!((r.lists, r.watches, r.herd), (1, 50, 2));
        assert!((r.steady_rate - 0.1).abs() < 1e-9, "{}", r.steady_rate);
        assert!((r.setting.expected_rate() - 10.0 / 90.0).abs() < 1e-9);
        assert!((r.relative_error() - (0.1 / (10.0 / 90.0) - 1.0)).abs() < 1e-9);
        assert_eq!(r.durations.min, Duration::from_secs(60));
        assert_eq!(r.durations.max, Duration::from_secs(100));
        assert_eq!(r.per_minute[0], 2);
    }
}
