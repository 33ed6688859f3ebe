//! Rate limiters: how long an item waits before it is retried (client-go's
//! `workqueue.TypedRateLimiter`). Each takes `now` explicitly so it is a pure, synchronous
//! value, tested without a runtime.
//!
//! | limiter | delay | client-go |
//! |---|---|---|
//! | [`ExponentialFailure`] | `base × 2^failures`, capped (5 ms → 1000 s) | `ItemExponentialFailureRateLimiter` |
//! | [`TokenBucket`] | 0 while tokens last, then `1/qps` per item (10/s, burst 100) | `BucketRateLimiter` |
//! | [`MaxOf`] | the largest of several | `MaxOfRateLimiter` |
//! | [`FastSlow`] | `fast` for the first attempts, then `slow` | `ItemFastSlowRateLimiter` |
//! | [`MaxWait`] | another limiter's delay, at most `max_wait` | `WithMaxWaitRateLimiter` |
//!
//! [`default_controller_rate_limiter`] is client-go's `DefaultControllerRateLimiter`.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// Decides how long an item waits before its next attempt.
pub trait RateLimiter<T>: Send + 'static {
    /// The delay before `item` is retried, as of `now`; records one more failure of it.
    fn when(&mut self, item: &T, now: Instant) -> Duration;
    /// How many times `item` has been rate limited since it was last forgotten.
    fn num_requeues(&self, item: &T) -> u32;
    /// Stops tracking `item` (it succeeded): its next failure starts from scratch.
    fn forget(&mut self, item: &T);
}

/// A limiter that was given impossible parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateLimiterError {
    /// The base delay is larger than the cap.
    #[error("base delay {base:?} exceeds the maximum delay {max:?}")]
    BaseAboveMax {
        /// The base delay.
        base: Duration,
        /// The cap.
        max: Duration,
    },
    /// The token rate is not a positive, finite number.
    #[error("token bucket rate must be positive and finite, got {0} per second")]
    BadRate(f64),
    /// A bucket that holds no token never lets anything through.
    #[error("token bucket burst must be at least 1")]
    ZeroBurst,
    /// `MaxOf` needs something to take the maximum of.
    #[error("max-of rate limiter needs at least one limiter")]
    NoLimiters,
}

/// A boxed limiter is a limiter (to pass a chosen one along).
impl<T: 'static> RateLimiter<T> for Box<dyn RateLimiter<T>> {
    fn when(&mut self, item: &T, now: Instant) -> Duration {
        (**self).when(item, now)
    }

    fn num_requeues(&self, item: &T) -> u32 {
        (**self).num_requeues(item)
    }

    fn forget(&mut self, item: &T) {
        (**self).forget(item)
    }
}

/// Per-item exponential backoff: `base × 2^failures`, capped at `max`; never overflows.
#[derive(Debug, Clone)]
pub struct ExponentialFailure<T> {
    base: Duration,
    max: Duration,
    failures: BTreeMap<T, u32>,
}

impl<T: Ord + Clone + Send + 'static> ExponentialFailure<T> {
    /// `base` doubling per failure up to `max`.
    pub fn new(base: Duration, max: Duration) -> Result<Self, RateLimiterError> {
        if base > max {
            return Err(RateLimiterError::BaseAboveMax { base, max });
        }
        Ok(Self {
            base,
            max,
            failures: BTreeMap::new(),
        })
    }

    /// client-go's controller default: 5 ms doubling to 1000 s.
    pub fn controller_default() -> Self {
        Self::new(Duration::from_millis(5), Duration::from_secs(1000))
            .expect("5 ms is below 1000 s")
    }

    /// The delay after `failures` earlier failures.
    fn delay(&self, failures: u32) -> Duration {
        2u32.checked_pow(failures)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.max, |d| d.min(self.max))
    }
}

impl<T: Ord + Clone + Send + 'static> RateLimiter<T> for ExponentialFailure<T> {
    fn when(&mut self, item: &T, _now: Instant) -> Duration {
        let failures = self.failures.entry(item.clone()).or_insert(0);
        let before = *failures;
        *failures = failures.saturating_add(1);
        self.delay(before)
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.failures.get(item).copied().unwrap_or(0)
    }

    fn forget(&mut self, item: &T) {
        self.failures.remove(item);
    }
}

/// An overall token bucket (not per item): `burst` items pass at once, then one every
/// `1/qps`. Exact integer arithmetic (a GCRA clock) rather than floating-point tokens.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    interval: Duration,
    burst: u32,
    /// When the bucket would be full again with no further item.
    full_at: Option<Instant>,
}

impl TokenBucket {
    /// `qps` tokens per second, holding at most `burst`.
    pub fn new(qps: f64, burst: u32) -> Result<Self, RateLimiterError> {
        if !(qps.is_finite() && qps > 0.0) {
            return Err(RateLimiterError::BadRate(qps));
        }
        if burst == 0 {
            return Err(RateLimiterError::ZeroBurst);
        }
        let interval = Duration::from_nanos((1e9 / qps).round().max(1.0) as u64);
        Ok(Self {
            interval,
            burst,
            full_at: None,
        })
    }

    /// client-go's controller default: 10 per second, burst 100.
    pub fn controller_default() -> Self {
        Self::new(10.0, 100).expect("10/s, burst 100 is valid")
    }

    /// Takes one token as of `now`; the wait until it is available.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let from = self.full_at.map_or(now, |t| t.max(now));
        // Past the end of representable time the debt stops growing (never a panic).
        let full_at = from.checked_add(self.interval).unwrap_or(from);
        self.full_at = Some(full_at);
        let capacity = self
            .interval
            .checked_mul(self.burst)
            .unwrap_or(Duration::MAX);
        full_at
            .saturating_duration_since(now)
            .saturating_sub(capacity)
    }
}

impl<T> RateLimiter<T> for TokenBucket {
    fn when(&mut self, _item: &T, now: Instant) -> Duration {
        self.reserve(now)
    }

    fn num_requeues(&self, _item: &T) -> u32 {
        0
    }

    fn forget(&mut self, _item: &T) {}
}

/// The largest delay of several limiters (each records the failure).
pub struct MaxOf<T> {
    limiters: Vec<Box<dyn RateLimiter<T>>>,
}

impl<T> std::fmt::Debug for MaxOf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxOf")
            .field("limiters", &self.limiters.len())
            .finish()
    }
}

impl<T> MaxOf<T> {
    /// The maximum of `limiters` (at least one).
    pub fn new(limiters: Vec<Box<dyn RateLimiter<T>>>) -> Result<Self, RateLimiterError> {
        if limiters.is_empty() {
            return Err(RateLimiterError::NoLimiters);
        }
        Ok(Self { limiters })
    }
}

impl<T: 'static> RateLimiter<T> for MaxOf<T> {
    fn when(&mut self, item: &T, now: Instant) -> Duration {
        self.limiters
            .iter_mut()
            .map(|l| l.when(item, now))
            .max()
            .unwrap_or_default()
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.limiters
            .iter()
            .map(|l| l.num_requeues(item))
            .max()
            .unwrap_or(0)
    }

    fn forget(&mut self, item: &T) {
        for l in &mut self.limiters {
            l.forget(item);
        }
    }
}

/// `fast` for an item's first `max_fast_attempts` failures, `slow` after.
#[derive(Debug, Clone)]
pub struct FastSlow<T> {
    fast: Duration,
    slow: Duration,
    max_fast_attempts: u32,
    failures: BTreeMap<T, u32>,
}

impl<T: Ord + Clone + Send + 'static> FastSlow<T> {
    /// `fast` for the first `max_fast_attempts` failures of an item, then `slow`.
    pub fn new(fast: Duration, slow: Duration, max_fast_attempts: u32) -> Self {
        Self {
            fast,
            slow,
            max_fast_attempts,
            failures: BTreeMap::new(),
        }
    }
}

impl<T: Ord + Clone + Send + 'static> RateLimiter<T> for FastSlow<T> {
    fn when(&mut self, item: &T, _now: Instant) -> Duration {
        let failures = self.failures.entry(item.clone()).or_insert(0);
        *failures = failures.saturating_add(1);
        if *failures <= self.max_fast_attempts {
            self.fast
        } else {
            self.slow
        }
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.failures.get(item).copied().unwrap_or(0)
    }

    fn forget(&mut self, item: &T) {
        self.failures.remove(item);
    }
}

/// Another limiter's delay, never more than `max_wait`.
pub struct MaxWait<T> {
    inner: Box<dyn RateLimiter<T>>,
    max_wait: Duration,
}

impl<T> std::fmt::Debug for MaxWait<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxWait")
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

impl<T> MaxWait<T> {
    /// `inner`'s delays, capped at `max_wait`.
    pub fn new(inner: Box<dyn RateLimiter<T>>, max_wait: Duration) -> Self {
        Self { inner, max_wait }
    }
}

impl<T: 'static> RateLimiter<T> for MaxWait<T> {
    fn when(&mut self, item: &T, now: Instant) -> Duration {
        self.inner.when(item, now).min(self.max_wait)
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.inner.num_requeues(item)
    }

    fn forget(&mut self, item: &T) {
        self.inner.forget(item);
    }
}

/// client-go's `DefaultControllerRateLimiter`: the max of per-item exponential (5 ms → 1000 s)
/// and an overall token bucket (10/s, burst 100).
pub fn default_controller_rate_limiter<T: Ord + Clone + Send + 'static>() -> MaxOf<T> {
    MaxOf::new(vec![
        Box::new(ExponentialFailure::controller_default()),
        Box::new(TokenBucket::controller_default()),
    ])
    .expect("two limiters")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn delays<L: RateLimiter<&'static str>>(
        l: &mut L,
        item: &'static str,
        n: usize,
    ) -> Vec<Duration> {
        let now = Instant::now();
        (0..n).map(|_| l.when(&item, now)).collect()
    }

    #[test]
    fn exponential_doubles_from_5ms_to_the_1000s_cap_and_never_overflows() {
        // 5 ms × 2^n for n = 0..18 is below 1000 s; n = 18 (1310.72 s) is capped; a
        // counter pushed to u32::MAX still answers the cap.
        let mut l = ExponentialFailure::controller_default();
        let got = delays(&mut l, "a", 40);
        for (n, d) in got.iter().enumerate().take(18) {
            assert_eq!(*d, ms(5) * 2u32.pow(n as u32), "failure {n}");
        }
        assert_eq!(got[17], ms(655_360));
        assert!(got[18..].iter().all(|d| *d == Duration::from_secs(1000)));
        assert_eq!(RateLimiter::<&str>::num_requeues(&l, &"a"), 40);
        l.failures.insert("a", u32::MAX - 1);
        assert_eq!(delays(&mut l, "a", 3), [Duration::from_secs(1000); 3]);
        assert_eq!(l.num_requeues(&"a"), u32::MAX, "saturates");
        assert_eq!(l.delay(u32::MAX), Duration::from_secs(1000));
    }

    #[test]
    fn exponential_tracks_items_separately_and_forget_resets_one() {
        // Two items fail twice each; forgetting one restarts it at the base delay.
        let mut l = ExponentialFailure::new(ms(1), ms(100)).unwrap();
        assert_eq!(delays(&mut l, "a", 2), [ms(1), ms(2)]);
        assert_eq!(delays(&mut l, "b", 2), [ms(1), ms(2)]);
        l.forget(&"a");
        assert_eq!((l.num_requeues(&"a"), l.num_requeues(&"b")), (0, 2));
        assert_eq!(delays(&mut l, "a", 1), [ms(1)]);
        assert_eq!(delays(&mut l, "b", 1), [ms(4)]);
    }

    #[test]
    fn token_bucket_lets_a_burst_of_100_through_then_one_per_100ms() {
        // At one instant: 100 zero delays, then 100 ms, 200 ms, ...; after 1 s of quiet,
        // 10 tokens have come back.
        let mut b = TokenBucket::controller_default();
        let t0 = Instant::now();
        let got: Vec<Duration> = (0..103).map(|_| b.reserve(t0)).collect();
        assert!(got[..100].iter().all(|d| d.is_zero()), "{got:?}");
        assert_eq!(got[100..], [ms(100), ms(200), ms(300)]);
        // The bucket owes 300 ms; 1.3 s later it holds 10 tokens again.
        let t1 = t0 + ms(1300);
        let later: Vec<Duration> = (0..11).map(|_| b.reserve(t1)).collect();
        assert!(later[..10].iter().all(|d| d.is_zero()), "{later:?}");
        assert_eq!(later[10], ms(100));
    }

    #[test]
    fn max_of_takes_the_larger_delay_and_forgets_in_every_limiter() {
        // The default limiter: exponential wins until the bucket's debt is larger.
        let mut l = default_controller_rate_limiter::<&str>();
        let now = Instant::now();
        let first: Vec<Duration> = (0..3).map(|_| l.when(&"a", now)).collect();
        assert_eq!(first, [ms(5), ms(10), ms(20)]);
        for _ in 0..97 {
            l.when(&"x", now);
        }
        // 101st token overall at the same instant: the bucket wants 100 ms, exp wants 5 ms.
        assert_eq!(l.when(&"fresh", now), ms(100));
        assert_eq!(l.num_requeues(&"a"), 3);
        l.forget(&"a");
        assert_eq!(l.num_requeues(&"a"), 0);
    }

    #[test]
    fn fast_slow_switches_after_the_fast_attempts_and_max_wait_caps() {
        // 3 fast attempts then slow; MaxWait caps an exponential at 30 ms.
        let mut fs = FastSlow::new(ms(10), ms(1000), 3);
        assert_eq!(
            delays(&mut fs, "a", 5),
            [ms(10), ms(10), ms(10), ms(1000), ms(1000)]
        );
        fs.forget(&"a");
        assert_eq!(delays(&mut fs, "a", 1), [ms(10)]);
        let exp = ExponentialFailure::new(ms(10), ms(1000)).unwrap();
        let mut mw = MaxWait::new(Box::new(exp), ms(30));
        assert_eq!(delays(&mut mw, "a", 4), [ms(10), ms(20), ms(30), ms(30)]);
        assert_eq!(mw.num_requeues(&"a"), 4);
    }

    #[test]
    fn impossible_parameters_are_errors_not_panics() {
        // Each bad constructor argument names itself in the message.
        let e = ExponentialFailure::<u8>::new(ms(2), ms(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "base delay 2ms exceeds the maximum delay 1ms"
        );
        for qps in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                TokenBucket::new(qps, 1),
                Err(RateLimiterError::BadRate(_))
            ));
        }
        assert_eq!(
            TokenBucket::new(1.0, 0).unwrap_err(),
            RateLimiterError::ZeroBurst
        );
        assert_eq!(
            MaxOf::<u8>::new(vec![]).unwrap_err(),
            RateLimiterError::NoLimiters
        );
        // A tiny rate with a huge burst saturates instead of overflowing.
        let mut b = TokenBucket::new(1e-9, u32::MAX).unwrap();
        assert_eq!(b.reserve(Instant::now()), Duration::ZERO);
    }
}
