//! `FERROJIT_COUNT_INSTRUCTIONS=1`: generated code counts the instructions it executes, for
//! comparing the two ISAs on the same work where time cannot be compared (AArch64 runs under
//! qemu here). The statistics report the sum as `instructions_executed`.
//!
//! The assembler puts a count point at each function's entry, at every label and after every
//! conditional branch (`asm_core::CountPoint`): a short sequence that keeps every register and
//! the flags and adds one to that point's own counter. At install, the backend's `counted` list
//! gives each counter the number of instructions of the straight-line stretch it stands for;
//! the total is the sum of counter x stretch over all code ever installed, counting sequences
//! excluded. Counters live in one zeroed mapping that is never unmapped, so code that is
//! replaced (recompiled) keeps its counts.
//!
//! A measurement mode: the counting sequences make code several times slower, and only code
//! compiled after the variable is read counts.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Counters available to the whole process (a 64 MiB mapping, touched only where used).
const CAPACITY: usize = 1 << 23;

static STARTED: AtomicBool = AtomicBool::new(false);

/// Code compiled from now on counts (`ferrojit.enable(count_instructions=True)`).
pub fn start() {
    STARTED.store(true, Ordering::Relaxed);
}

/// Whether code compiled now counts: `FERROJIT_COUNT_INSTRUCTIONS` set to anything but "" or
/// "0", or [`start`] called.
pub fn enabled() -> bool {
    static FROM_ENV: OnceLock<bool> = OnceLock::new();
    STARTED.load(Ordering::Relaxed)
        || *FROM_ENV.get_or_init(|| {
            std::env::var_os("FERROJIT_COUNT_INSTRUCTIONS")
                .is_some_and(|v| !v.is_empty() && v != "0")
        })
}

/// Where code compiled now takes its count points' counters: [`next_counter`] while counting
/// is [`enabled`], None otherwise (the code does not count).
pub fn counters() -> Option<ferrojit_asm_core::NextCounter> {
    enabled().then_some(next_counter as ferrojit_asm_core::NextCounter)
}

/// The counters' mapping (its address), or None when it could not be made.
fn arena() -> Option<usize> {
    static ARENA: OnceLock<Option<usize>> = OnceLock::new();
    *ARENA.get_or_init(|| {
        // SAFETY: an anonymous private mapping of fresh zeroed pages; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                CAPACITY * 8,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            eprintln!("ferrojit: FERROJIT_COUNT_INSTRUCTIONS: no memory for the counters");
            return None;
        }
        Some(p as usize)
    })
}

static USED: AtomicUsize = AtomicUsize::new(0);

/// A fresh counter for a count point (`asm_core::NextCounter`); None once all are taken
/// (later code then does not count, and `instructions_executed` misses it).
pub fn next_counter() -> Option<usize> {
    let base = arena()?;
    let i = USED.fetch_add(1, Ordering::Relaxed);
    (i < CAPACITY).then(|| base + 8 * i)
}

/// The counters of installed code, each with the instructions of its stretch.
fn stretches() -> &'static Mutex<Vec<(usize, u32)>> {
    static ALL: OnceLock<Mutex<Vec<(usize, u32)>>> = OnceLock::new();
    ALL.get_or_init(|| Mutex::new(Vec::new()))
}

/// Adds the count points of newly installed code.
pub fn register(counted: &[(usize, u32)]) {
    if let Ok(mut all) = stretches().lock() {
        all.extend_from_slice(counted);
    }
}

/// Instructions executed in generated code so far; None when this process does not count.
pub fn instructions_executed() -> Option<u64> {
    if !enabled() {
        return None;
    }
    let all = stretches().lock().ok()?;
    let total = all.iter().fold(0u64, |sum, &(counter, n)| {
        // SAFETY: every registered counter is an aligned word of the arena, which is never
        // unmapped; generated code writes it only with the GIL held, as the caller holds it.
        let runs = unsafe { std::ptr::read_volatile(counter as *const u64) };
        sum.wrapping_add(runs.wrapping_mul(u64::from(n)))
    });
    Some(total)
}
