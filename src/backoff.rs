//! client-go's exponential backoff manager, seeded: `initial` doubling to `max`, each delay
//! stretched by up to `jitter` × itself at random, and reset to `initial` once `reset_after`
//! has passed since the previous backoff (the reflector's 800 ms → 30 s, 2 min reset).
//!
//! The same seed gives the same delays; kube-runtime's `watcher` takes it as its backoff.
//!
//! ```
//! use std::time::Duration;
//! use kube_chaos::backoff::Backoff;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let now = tokio::time::Instant::now();
//! let mut backoff = Backoff::reflector(Some(42));
//! let first = backoff.next_delay(now);
//! assert!(first >= Duration::from_millis(800) && first < Duration::from_millis(1600));
//! let second = backoff.next_delay(now);
//! assert!(second >= Duration::from_millis(1600) && second < Duration::from_millis(3200));
//! assert_eq!(Backoff::reflector(Some(42)).next_delay(now), first);
//!
//! // As kube-runtime's backoff: `watcher(api, config).backoff(Backoff::reflector(Some(seed)))`.
//! fn takes_kube_backoff(_: impl kube::runtime::utils::Backoff) {}
//! takes_kube_backoff(backoff);
//! # }
//! ```

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

/// A seeded exponential backoff with jitter and reset after a healthy period.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    reset_after: Duration,
    current: Duration,
    last: Option<Instant>,
    rng: ChaCha8Rng,
}

impl Backoff {
    /// A backoff with explicit bounds; `seed: None` draws a seed from process randomness.
    pub fn new(
        initial: Duration,
        max: Duration,
        jitter: f64,
        reset_after: Duration,
        seed: Option<u64>,
    ) -> Self {
        Self {
            initial,
            max,
            jitter,
            reset_after,
            current: initial,
            last: None,
            rng: crate::rng::seeded(seed),
        }
    }

    /// The reflector's backoff: 800 ms doubling to 30 s, jitter 1.0 (each delay in
    /// `[d, 2d)`), reset after 2 minutes without a backoff.
    pub fn reflector(seed: Option<u64>) -> Self {
        Self::new(
            Duration::from_millis(800),
            Duration::from_secs(30),
            1.0,
            Duration::from_secs(120),
            seed,
        )
    }

    /// The next delay, as of `now`.
    pub fn next_delay(&mut self, now: Instant) -> Duration {
        if self
            .last
            .is_some_and(|l| now.saturating_duration_since(l) > self.reset_after)
        {
            self.current = self.initial;
        }
        self.last = Some(now);
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        base + base.mul_f64(self.jitter * self.rng.random::<f64>())
    }

    /// Back to the initial delay.
    pub fn reset(&mut self) {
        self.current = self.initial;
        self.last = None;
    }
}

/// kube-runtime's `watcher` takes any `Iterator<Item = Duration>` with a reset, so the same
/// seeded backoff drives kube-runtime subjects in the harness.
impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay(Instant::now()))
    }
}

impl kube::runtime::utils::Backoff for Backoff {
    fn reset(&mut self) {
        Backoff::reset(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn delays_double_to_the_cap_within_the_jitter_and_reset_after_a_healthy_period() {
        // Each delay lies in [d, 2d) for d = 0.8, 1.6, ... 30 s; after 2 min quiet, d = 0.8 s.
        let mut b = Backoff::reflector(Some(1));
        let mut d = Duration::from_millis(800);
        for _ in 0..10 {
            let got = b.next_delay(Instant::now());
            assert!(
                got >= d && got < d * 2,
                "{got:?} not in [{d:?}, {:?})",
                d * 2
            );
            d = (d * 2).min(Duration::from_secs(30));
        }
        tokio::time::advance(Duration::from_secs(121)).await;
        let got = b.next_delay(Instant::now());
        assert!(got < Duration::from_millis(1600), "reset: {got:?}");
        let same: Vec<_> = (0..5)
            .map(|_| Backoff::reflector(Some(9)).next_delay(Instant::now()))
            .collect();
        assert!(same.windows(2).all(|w| w[0] == w[1]), "seeded: {same:?}");
    }
}
