//! The table of compiled callees (`callee-table`).
//!
//! A direct call must find its callee's native code: function -> code object -> `co_extra`
//! array -> code state -> native code, five dependent loads on every call, and the profile of
//! richards put a quarter of the direct-call helper's time on them. The table remembers, for
//! a few hundred recently called functions, the code object and native code that chase found,
//! in slots chosen by hashing the function's address: a call then costs one hash, one slot
//! read and three compares (function, code, epoch).
//!
//! A slot holds plain addresses, no references: it keeps nothing alive and never changes when
//! an object dies. It stays right because of what it is compared with:
//! - the function's current `func_code` (assigning `__code__` makes the slot miss);
//! - the table's epoch, which moves whenever any code's native code is installed, retired, or
//!   freed with its code object ([`changed`]). A slot is therefore only believed while every
//!   native code it names is the current one of a live code object: a function freed and
//!   another allocated at its address either has the same code object (whose native code the
//!   slot names correctly) or another one, which the code compare catches unless that one
//!   reuses the old code's address, and the old code's death moved the epoch.

use super::compile::NativeCode;
use super::GilCell;
use pyo3_ffi::PyObject;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots in the table (a power of two).
const SLOTS: usize = 256;

/// What the chase found for one function.
#[derive(Clone, Copy)]
struct Slot {
    function: *mut PyObject,
    code: *mut PyObject,
    native: *const NativeCode,
    epoch: u64,
}

const EMPTY: Slot = Slot {
    function: std::ptr::null_mut(),
    code: std::ptr::null_mut(),
    native: std::ptr::null(),
    epoch: 0,
};

static TABLE: GilCell<[Slot; SLOTS]> = GilCell::new([EMPTY; SLOTS]);

/// Moves whenever a slot may have gone stale; starts above the empty slots' 0.
static EPOCH: AtomicU64 = AtomicU64::new(1);

/// Some code's native code was installed, retired or freed: every slot is stale.
pub fn changed() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// The slot of `function`: the address's bits mixed by a multiplication (function objects
/// sit at a fixed stride within 4 KiB pools, so their low bits alone would use a few slots).
#[inline(always)]
fn slot_of(function: *mut PyObject) -> usize {
    let mixed = (function as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The native code the table remembers for `function` running `code`, if that is still the
/// code's current native code.
///
/// # Safety
/// GIL held.
#[inline(always)]
pub unsafe fn get(function: *mut PyObject, code: *mut PyObject) -> Option<&'static NativeCode> {
    // SAFETY: the GIL serialises access to the table; a slot that matches names native code
    // that is current and alive (see the module's comment), which lives as long as its code.
    unsafe {
        let slot = TABLE.get()[slot_of(function)];
        let hit = slot.function == function
            && slot.code == code
            && slot.epoch == EPOCH.load(Ordering::Relaxed);
        hit.then(|| &*slot.native)
    }
}

/// Remembers that `function` running `code` has `native` as its current native code.
///
/// # Safety
/// GIL held; `native` is `code`'s current native code.
#[inline(always)]
pub unsafe fn put(function: *mut PyObject, code: *mut PyObject, native: &NativeCode) {
    // SAFETY: the GIL serialises access to the table.
    unsafe {
        TABLE.get()[slot_of(function)] = Slot {
            function,
            code,
            native,
            epoch: EPOCH.load(Ordering::Relaxed),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_at_a_pool_stride_spread_over_many_slots() {
        // Function objects are 160-byte blocks in 4 KiB pools: 25 to a pool.
        let mut used = std::collections::BTreeSet::new();
        for pool in 0..16u64 {
            for i in 0..25u64 {
                let address = 0x7f00_0000_0000 + pool * 4096 + 48 + i * 160;
                used.insert(slot_of(address as *mut PyObject));
            }
        }
        // 400 functions: with the low bits alone they would share 25 slots.
        assert!(used.len() > 150, "only {} slots used", used.len());
    }
}
