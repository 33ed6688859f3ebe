//! Seeded randomness for code we do not control (DESIGN.md §8): every run happens inside
//! [`seeded`], which makes these a function of the run's seed:
//!
//! - std's `RandomState` (std `HashMap`/`HashSet`, e.g. kube-runtime's pending keys) and
//!   `getrandom`: a fresh thread whose OS randomness `kube_chaos_norandom` draws from the
//!   seed;
//! - fastrand's thread-local generator (backon's jitter, so kube-runtime's default
//!   backoff): reseeded on that thread;
//! - ahash's `RandomState` (kube-runtime's reflector store, walked by `reconcile_all_on`):
//!   its process-wide keys are fixed once per process from a constant seed, and each new
//!   hasher's seed comes from the seeded thread's stream (a `RandomSource` installed once).
//!
//! Not covered (the README says why): wall-clock reads and threads the code under test
//! starts (unseeded; counted on the run's thread and named by the divergence finder, see
//! [`crate::run::Uncontrolled`]), foldhash's per-process seed (hashbrown's default hasher;
//! kube-runtime only looks keys up in it, never iterates), and ahash if something built an
//! ahash hasher before the first run.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

use kube_chaos_norandom as norandom;

/// The seed ahash's process-wide keys come from (the same in every process).
const AHASH_FIXED_SEED: u64 = 0xa4a5_4f1c_ed5e_ed00;
/// Mixed into a run's seed for fastrand's thread-local generator.
const FASTRAND_SALT: u64 = 0xfa57_4a2d_0000_0001;
/// Mixed into a run's seed for its ahash hasher seeds.
const AHASH_SALT: u64 = 0xa4a5_0000_0000_0002;

thread_local! {
    /// The seeded thread's stream of ahash hasher seeds (its own, so that ahash hashers do
    /// not shift std's keys or fastrand's seed); `None` outside [`seeded`].
    static AHASH_STREAM: Cell<Option<u64>> = const { Cell::new(None) };
}

/// ahash hasher seeds: the seeded thread's own stream, else a counter (outside runs).
struct ThreadSeeded(AtomicUsize);

impl ahash::random_state::RandomSource for ThreadSeeded {
    fn gen_hasher_seed(&self) -> usize {
        let seeded = AHASH_STREAM
            .try_with(|s| {
                let mut state = s.get()?;
                let x = norandom::splitmix64(&mut state);
                s.set(Some(state));
                Some(x)
            })
            .ok()
            .flatten();
        match seeded {
            Some(x) => x as usize,
            None => self.0.fetch_add(0x9e37_79b9, Ordering::Relaxed),
        }
    }
}

/// Whether ahash takes its seeds from the seeded thread (false if something created an
/// ahash hasher before the first run and its default source was already in use).
fn seed_ahash_once() -> bool {
    static ONCE: Once = Once::new();
    static AHASH_OK: AtomicBool = AtomicBool::new(false);
    ONCE.call_once(|| {
        let installed = ahash::random_state::set_random_source(ThreadSeeded(AtomicUsize::new(1)));
        // The first hasher fixes ahash's process-wide keys through getrandom: draw them
        // from a constant seed, so they are the same in every process.
        let _fixed = norandom::with_seed(AHASH_FIXED_SEED, ahash::RandomState::new);
        AHASH_OK.store(installed.is_ok(), Ordering::SeqCst);
    });
    AHASH_OK.load(Ordering::SeqCst)
}

/// Whether ahash's hashers are seeded in this process (see the module doc).
pub fn ahash_seeded() -> bool {
    seed_ahash_once()
}

/// Runs `f` on a fresh thread whose std, fastrand and ahash randomness comes from `seed`;
/// a panic in `f` is resumed on the caller's thread.
///
/// The one line a test of your own needs around building and running its `Sim`.
pub fn seeded<T: Send>(seed: u64, f: impl FnOnce() -> T + Send) -> T {
    seed_ahash_once();
    norandom::on_seeded_thread(seed, || {
        // Streams of their own (not drawn from norandom's): std's keys stay the first bytes
        // of the seed's stream whatever else the run seeds.
        let mut state = seed ^ FASTRAND_SALT;
        fastrand::seed(norandom::splitmix64(&mut state));
        AHASH_STREAM.with(|s| s.set(Some(seed ^ AHASH_SALT)));
        f()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastrand_and_ahash_inside_seeded_are_functions_of_the_seed() {
        // Two fresh seeded threads draw the same fastrand numbers and build the same ahash
        // hasher; another seed draws others.
        let draw = |seed| {
            seeded(seed, || {
                let hash = ahash::RandomState::new().hash_one(7u64);
                (fastrand::u64(..), hash)
            })
        };
        assert!(ahash_seeded(), "ahash's random source was already in use");
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }
}
