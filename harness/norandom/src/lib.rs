//! Seeded OS randomness for simulated runs (DESIGN.md §8), the way madsim's
//! `madsim-norandom` does it: this crate defines the C symbols `getrandom` and
//! `getentropy`, so a binary that links it reads its "OS randomness" from here.
//!
//! On a thread inside [`with_seed`] (or [`on_seeded_thread`]) every byte comes from a
//! SplitMix64 stream of the seed; everywhere else the call goes straight to the kernel
//! (`SYS_getrandom`), so code outside simulated runs keeps real randomness.
//!
//! What reads it, and whether the override reaches it (Rust 1.95, Linux, glibc):
//!
//! - std's `RandomState` (every `HashMap`/`HashSet` with the default hasher) draws its
//!   per-thread keys through `getrandom`, which std declares as an **extern-weak** symbol:
//!   the static linker binds it to this crate's definition. std draws the keys **once per
//!   thread**, on the thread's first `RandomState`, and then counts up; so a run is seeded
//!   only on a *fresh* thread whose first `RandomState` comes after the seed is set —
//!   [`on_seeded_thread`] is exactly that.
//! - The `getrandom` crate (rand's `OsRng`, ahash's `runtime-rng`) looks `getrandom` up with
//!   `dlsym(RTLD_DEFAULT)`, which sees an executable's symbol only if it is exported; and
//!   ahash and foldhash keep *process-wide* seeds. Neither is covered (the harness README
//!   says so).
//!
//! A binary links the symbols only if it calls into this crate (an unreferenced rlib
//! object is not pulled in); [`active`] reports whether the override took effect.
#![deny(unsafe_code)]
#![deny(missing_docs)]

use std::cell::Cell;
use std::hash::BuildHasher;

thread_local! {
    /// The calling thread's SplitMix64 state while it runs seeded; `None` outside.
    static STREAM: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The next SplitMix64 output of `state` (the generator behind the seeded stream).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` from the calling thread's seeded stream; `false` if the thread is not
/// seeded (or is being torn down).
fn fill_seeded(buf: &mut [u8]) -> bool {
    STREAM
        .try_with(|stream| {
            let Some(mut state) = stream.get() else {
                return false;
            };
            for chunk in buf.chunks_mut(8) {
                let bytes = splitmix64(&mut state).to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            stream.set(Some(state));
            true
        })
        .unwrap_or(false)
}

/// The next 64 bits of the calling thread's seeded stream, or `None` if it is not seeded
/// (for RNGs that can be handed a source, such as ahash's `RandomSource`).
pub fn seeded_u64() -> Option<u64> {
    let mut bytes = [0u8; 8];
    fill_seeded(&mut bytes).then(|| u64::from_le_bytes(bytes))
}

/// Restores the thread's previous stream when a [`with_seed`] scope ends (even by panic).
struct Restore(Option<u64>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0;
        let _ = STREAM.try_with(|s| s.set(previous));
    }
}

/// Runs `f` with the calling thread's OS randomness drawn from `seed`.
///
/// std's hash keys are drawn once per thread: on a thread that already built a `HashMap`
/// this does not reseed them (use [`on_seeded_thread`]).
pub fn with_seed<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    let _restore = Restore(STREAM.with(|s| s.replace(Some(seed))));
    f()
}

/// Runs `f` on a fresh thread (8 MiB of stack) whose OS randomness — std's hash keys
/// included — is drawn from `seed`; a panic in `f` is resumed on the caller's thread with
/// its payload.
pub fn on_seeded_thread<T: Send>(seed: u64, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("kube-chaos-seeded".into())
            .stack_size(8 << 20)
            .spawn_scoped(scope, || with_seed(seed, f))
            .expect("a thread for the seeded run");
        match handle.join() {
            Ok(out) => out,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    })
}

/// Whether the override took effect in this binary: two fresh threads seeded alike build
/// the same std hasher.
pub fn active() -> bool {
    let keys = || on_seeded_thread(1, || std::hash::RandomState::new().hash_one(0u64));
    keys() == keys()
}

/// Fills `len` bytes at `buf` seeded, or from the kernel; `getrandom(2)`'s contract.
fn getrandom_impl(buf: *mut u8, len: usize, flags: u32) -> isize {
    if len == 0 {
        return 0;
    }
    #[allow(unsafe_code)]
    // SAFETY: the C caller of getrandom/getentropy promises `buf` points to `len` writable
    // bytes, the contract of getrandom(2); the slice lives only for this call.
    let bytes = unsafe { std::slice::from_raw_parts_mut(buf, len) };
    if fill_seeded(bytes) {
        return len as isize;
    }
    #[allow(unsafe_code)]
    // SAFETY: the raw syscall takes the caller's buffer, length and flags unchanged: the
    // same contract the caller asked for, served by the kernel instead of glibc.
    let n = unsafe { libc::syscall(libc::SYS_getrandom, buf, len, flags) };
    n as isize
}

/// `getrandom(2)` for this binary: seeded on a seeded thread, else the kernel's.
///
/// # Safety
///
/// `buf` must point to `len` writable bytes (getrandom(2)).
#[allow(unsafe_code)]
// Reason: a C symbol std (extern-weak) and glibc users resolve to; no_mangle and an
// `unsafe extern "C"` signature are what make it that symbol.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getrandom(buf: *mut libc::c_void, len: libc::size_t, flags: u32) -> isize {
    getrandom_impl(buf.cast(), len, flags)
}

/// `getentropy(3)` for this binary: at most 256 bytes, 0 on success, -1 with `EIO` else.
///
/// # Safety
///
/// `buf` must point to `len` writable bytes (getentropy(3)).
#[allow(unsafe_code)]
// Reason: as for `getrandom` — it is the C symbol itself.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getentropy(buf: *mut libc::c_void, len: libc::size_t) -> libc::c_int {
    if len > 256 {
        return -1;
    }
    let mut filled = 0;
    while filled < len {
        let n = getrandom_impl(buf.cast::<u8>().wrapping_add(filled), len - filled, 0);
        if n <= 0 {
            return -1;
        }
        filled += n as usize;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_hash_keys_on_a_seeded_thread_are_a_function_of_the_seed() {
        // Fresh threads seeded alike build identical hashers; another seed another hasher.
        assert!(active(), "the getrandom override is not linked");
        let hash = |seed| on_seeded_thread(seed, || std::hash::RandomState::new().hash_one(7u64));
        assert_eq!(hash(3), hash(3));
        assert_ne!(hash(3), hash(4));
    }

    #[test]
    fn an_unseeded_thread_gets_the_kernels_bytes() {
        // Two unseeded fills of 32 bytes are equal with probability 2^-256.
        let fill = || {
            let mut b = [0u8; 32];
            // Safe wrapper over the same path std takes.
            assert_eq!(getrandom_impl(b.as_mut_ptr(), b.len(), 0), 32);
            b
        };
        assert_ne!(fill(), fill());
    }

    #[test]
    fn a_seeded_fill_does_not_depend_on_how_it_is_chunked() {
        // 16 bytes at once equal two 8-byte fills: the stream is the seed's, not the calls'.
        let whole = with_seed(9, || {
            let mut b = [0u8; 16];
            assert!(fill_seeded(&mut b));
            b
        });
        let parts = with_seed(9, || {
            let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
            assert!(fill_seeded(&mut a) && fill_seeded(&mut b));
            [a, b].concat()
        });
        assert_eq!(whole.to_vec(), parts);
    }
}
