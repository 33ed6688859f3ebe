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
//! It also defines `pthread_create` and `clock_gettime`, which pass every call on to
//! glibc's (found with `dlsym(RTLD_NEXT)`) and only *count*, on a seeded thread, the
//! threads it starts and its wall-clock (`CLOCK_REALTIME`, i.e. `SystemTime::now`) reads:
//! neither is made deterministic, so a run reports them ([`threads_spawned`],
//! [`wall_clock_reads`]) and the divergence finder names them.
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
    /// Threads this thread started while seeded.
    static SPAWNED: Cell<u64> = const { Cell::new(0) };
    /// `CLOCK_REALTIME` reads by this thread while seeded.
    static WALL_READS: Cell<u64> = const { Cell::new(0) };
}

/// Whether the calling thread is seeded (false while it is being torn down).
fn is_seeded() -> bool {
    STREAM.try_with(|s| s.get().is_some()).unwrap_or(false)
}

/// Adds one to `counter` if the calling thread is seeded.
fn count_if_seeded(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    if is_seeded() {
        let _ = counter.try_with(|c| c.set(c.get() + 1));
    }
}

/// Threads the calling thread started while seeded (with `pthread_create`: std threads,
/// tokio's blocking pool, ...). Their randomness is not seeded.
pub fn threads_spawned() -> u64 {
    SPAWNED.try_with(Cell::get).unwrap_or(0)
}

/// Wall-clock (`CLOCK_REALTIME`: `SystemTime::now`) reads by the calling thread while
/// seeded. They are not made deterministic.
pub fn wall_clock_reads() -> u64 {
    WALL_READS.try_with(Cell::get).unwrap_or(0)
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

/// glibc's definition of `name`, the next one after this binary's (null if none).
fn next_symbol(
    name: &std::ffi::CStr,
    cache: &std::sync::atomic::AtomicPtr<libc::c_void>,
) -> *mut libc::c_void {
    use std::sync::atomic::Ordering;
    let cached = cache.load(Ordering::Acquire);
    if !cached.is_null() {
        return cached;
    }
    #[allow(unsafe_code)]
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name has no preconditions; it
    // returns the next definition in load order (glibc's) or null.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    cache.store(found, Ordering::Release);
    found
}

type ThreadMain = extern "C" fn(*mut libc::c_void) -> *mut libc::c_void;
type PthreadCreate = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    ThreadMain,
    *mut libc::c_void,
) -> libc::c_int;
type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;

/// `pthread_create(3)` for this binary: glibc's, counted on a seeded thread.
///
/// # Safety
///
/// pthread_create(3)'s contract: valid `thread` and `attr` (or null) pointers, and a
/// `start` that may be called with `arg` on a new thread.
#[allow(unsafe_code)]
// Reason: the C symbol itself (no_mangle, extern "C"), so calls from this binary —
// std::thread::spawn included — come here first and are counted.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: ThreadMain,
    arg: *mut libc::c_void,
) -> libc::c_int {
    static REAL: std::sync::atomic::AtomicPtr<libc::c_void> =
        std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
    let real = next_symbol(c"pthread_create", &REAL);
    if real.is_null() {
        return libc::EAGAIN;
    }
    count_if_seeded(&SPAWNED);
    #[allow(unsafe_code)]
    // SAFETY: `real` is glibc's pthread_create (dlsym found it by that name), whose
    // signature is PthreadCreate; the caller's arguments are passed on unchanged.
    unsafe {
        let real = std::mem::transmute::<*mut libc::c_void, PthreadCreate>(real);
        real(thread, attr, start, arg)
    }
}

/// `clock_gettime(2)` for this binary: glibc's (vDSO), `CLOCK_REALTIME` reads counted on a
/// seeded thread.
///
/// # Safety
///
/// clock_gettime(2)'s contract: `tp` points to a writable `timespec`.
#[allow(unsafe_code)]
// Reason: the C symbol itself, so std's SystemTime::now from this binary is counted.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_gettime(
    clock: libc::clockid_t,
    tp: *mut libc::timespec,
) -> libc::c_int {
    static REAL: std::sync::atomic::AtomicPtr<libc::c_void> =
        std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
    let real = next_symbol(c"clock_gettime", &REAL);
    if clock == libc::CLOCK_REALTIME {
        count_if_seeded(&WALL_READS);
    }
    if real.is_null() {
        #[allow(unsafe_code)]
        // SAFETY: the raw syscall with the caller's arguments, the same contract.
        return unsafe { libc::syscall(libc::SYS_clock_gettime, clock, tp) as libc::c_int };
    }
    #[allow(unsafe_code)]
    // SAFETY: `real` is glibc's clock_gettime (found by name), signature ClockGettime; the
    // caller's arguments are passed on unchanged.
    unsafe {
        let real = std::mem::transmute::<*mut libc::c_void, ClockGettime>(real);
        real(clock, tp)
    }
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
    fn threads_and_wall_clock_reads_on_a_seeded_thread_are_counted_and_still_work() {
        // Two threads started and one SystemTime read on a seeded thread; none outside.
        let (threads, reads) = on_seeded_thread(1, || {
            let sum: u32 = (0..2u32)
                .map(|i| std::thread::spawn(move || i + 1))
                .map(|h| h.join().unwrap())
                .sum();
            assert_eq!(sum, 3);
            assert!(std::time::SystemTime::now() > std::time::UNIX_EPOCH);
            (threads_spawned(), wall_clock_reads())
        });
        assert_eq!((threads, reads), (2, 1));
        std::thread::spawn(|| ()).join().unwrap();
        assert_eq!((threads_spawned(), wall_clock_reads()), (0, 0));
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
