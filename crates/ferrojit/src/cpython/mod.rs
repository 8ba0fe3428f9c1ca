//! The only room that knows CPython's ABI: the public C API through `pyo3_ffi`, and the internal
//! layouts (frame, code, dict keys, managed-dict pre-header, ...) through a probe compiled at
//! build time against the target interpreter's headers and read here once at import.

pub mod ffi;

pub mod opcodes {
    //! CPython 3.11 opcode numbers, generated from the target's `opcode.h`.
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/opcodes.rs"));
}

include!(concat!(env!("OUT_DIR"), "/layout.rs"));

/// Word indexes (8-byte units from the object's start) of fields of the public object structs,
/// for IR that reads them with `LoadWord`: the same on both 64-bit targets, so taken from
/// `pyo3_ffi`'s definitions of the limited API structs.
pub mod object_words {
    use pyo3_ffi::{PyListObject, PyObject, PyTupleObject, PyVarObject};
    use std::mem::offset_of;

    /// `ob_type`.
    pub const TYPE: u32 = (offset_of!(PyObject, ob_type) / 8) as u32;
    /// `ob_size` of a variable-size object.
    pub const SIZE: u32 = (offset_of!(PyVarObject, ob_size) / 8) as u32;
    /// A tuple's first item (`ob_item` is inline).
    pub const TUPLE_ITEMS: u32 = (offset_of!(PyTupleObject, ob_item) / 8) as u32;
    /// A list's `ob_item` pointer to its item array.
    pub const LIST_ITEMS: u32 = (offset_of!(PyListObject, ob_item) / 8) as u32;
}

use std::sync::OnceLock;

extern "C" {
    fn ferrojit_layout_probe(out: *mut i64);
    fn ferrojit_opcode_tables(caches: *mut u8, deopt: *mut u8);
}

static LAYOUT: OnceLock<Layout> = OnceLock::new();
static TABLES: OnceLock<OpcodeTables> = OnceLock::new();

/// The interpreter's layout facts.
#[inline]
pub fn layout() -> &'static Layout {
    LAYOUT.get_or_init(|| {
        let mut values = vec![0i64; LAYOUT_FIELDS];
        // SAFETY: the probe writes exactly LAYOUT_FIELDS values, the length of `values`.
        unsafe { ferrojit_layout_probe(values.as_mut_ptr()) };
        Layout::from_values(&values)
    })
}

/// The layout facts if they were probed already (the hook's fast path, which must not call
/// anything before it knows where it goes).
#[inline]
pub fn layout_if_probed() -> Option<&'static Layout> {
    LAYOUT.get()
}

/// `_PyOpcode_Caches` and `_PyOpcode_Deopt`, copied from the probe.
pub struct OpcodeTables {
    /// Inline cache units that follow each opcode.
    pub caches: [u8; 256],
    /// The generic (unspecialised) form of each opcode.
    pub deopt: [u8; 256],
}

/// The opcode tables of the target interpreter.
pub fn opcode_tables() -> &'static OpcodeTables {
    TABLES.get_or_init(|| {
        let mut t = OpcodeTables {
            caches: [0; 256],
            deopt: [0; 256],
        };
        // SAFETY: the probe writes 256 bytes into each array, which is their size.
        unsafe { ferrojit_opcode_tables(t.caches.as_mut_ptr(), t.deopt.as_mut_ptr()) };
        t
    })
}
