//! A seeded exponential backoff with full jitter for kube-runtime's `watcher`: its default
//! backoff is jittered from the clock, which would make runs differ.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Exponential backoff (`initial` doubling to `max`) with full jitter from a seeded RNG.
#[derive(Debug, Clone)]
pub struct SeededBackoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    rng: ChaCha8Rng,
}

impl SeededBackoff {
    /// kube-runtime's defaults (800 ms doubling to 30 s), seeded.
    pub fn new(seed: u64) -> Self {
        Self::with_bounds(seed, Duration::from_millis(800), Duration::from_secs(30))
    }

    /// Custom bounds.
    pub fn with_bounds(seed: u64, initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            current: initial,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl Iterator for SeededBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let cap = self.current;
        self.current = (self.current * 2).min(self.max);
        Some(cap.mul_f64(self.rng.random::<f64>()))
    }
}

impl kube::runtime::utils::Backoff for SeededBackoff {
    fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_delays_within_the_doubling_caps() {
        let a: Vec<_> = SeededBackoff::new(3).take(8).collect();
        let b: Vec<_> = SeededBackoff::new(3).take(8).collect();
        assert_eq!(a, b);
        let caps = [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000];
        for (d, cap) in a.iter().zip(caps) {
            assert!(*d <= Duration::from_millis(cap), "{d:?} > {cap} ms");
        }
    }
}
