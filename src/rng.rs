//! Seeded randomness. Every delay the runtime draws comes from a ChaCha8 RNG seeded by the
//! caller, so a simulation is a pure function of its seed; production code may leave the
//! seed unset and get one from the process's hash randomness.

use std::hash::{BuildHasher, RandomState};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// An RNG from `seed`, or from process randomness when `None`.
pub(crate) fn seeded(seed: Option<u64>) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.unwrap_or_else(|| RandomState::new().hash_one(0u8)))
}
