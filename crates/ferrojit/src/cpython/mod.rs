//! The only room that knows CPython's ABI: the public C API through `pyo3_ffi`, and the internal
//! layouts (frame, code, dict keys, managed-dict pre-header, ...) through facts that the target's
//! C compiler evaluates against the interpreter's own headers at build time (`layout.def`): most
//! are folded into constants then, the rest read from a compiled probe once at import.

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

/// Byte offsets in CPython's list and tuple iterators (`listiterobject`, `tupleiterobject`:
/// private to Objects/listobject.c and Objects/tupleobject.c in 3.11, so not in the headers the
/// layout facts come from): `PyObject_HEAD`, then `Py_ssize_t it_index`, then the sequence
/// `it_seq` (NULL once exhausted). [`seq_iter_layout_holds`] checks them on live iterators
/// before code relies on them.
pub mod seq_iter {
    /// `it_index`.
    pub const INDEX: i64 = 16;
    /// `it_seq`.
    pub const SEQ: i64 = 24;
}

/// Byte offsets in CPython 3.11's `rangeiterobject` (private to Objects/rangeobject.c): after
/// `PyObject_HEAD`, the C longs `index`, `start`, `step` and `len`; `next()` returns
/// `start + index * step` (wrapping, as the C code's unsigned arithmetic does) while
/// `index < len`, then advances `index`. [`range_iter_layout_holds`] checks them on a live
/// iterator before code relies on them.
pub mod range_iter {
    pub const INDEX: i64 = 16;
    pub const START: i64 = 24;
    pub const STEP: i64 = 32;
    pub const LEN: i64 = 40;
}

/// Whether a live `iter(range(3, 100, 7))` has the [`range_iter`] layout, and its `index`
/// goes 0 -> 1 with `next()`, which returns 3. Checked once.
pub fn range_iter_layout_holds() -> bool {
    static HOLDS: OnceLock<bool> = OnceLock::new();
    // SAFETY: GIL held (called while compiling); the objects are made and released here, and
    // the words read lie inside an object of at least `LEN + 8` bytes (checked first).
    *HOLDS.get_or_init(|| unsafe {
        use pyo3_ffi::*;
        let range = PyObject_CallFunction(
            std::ptr::addr_of_mut!(PyRange_Type) as *mut PyObject,
            c"iii".as_ptr(),
            3 as std::os::raw::c_int,
            100 as std::os::raw::c_int,
            7 as std::os::raw::c_int,
        );
        let it = if range.is_null() {
            range
        } else {
            PyObject_GetIter(range)
        };
        let word =
            |o: *mut PyObject, at: i64| *((o as *const u8).offset(at as isize) as *const isize);
        let holds = !it.is_null()
            && Py_TYPE(it) == std::ptr::addr_of_mut!(PyRangeIter_Type)
            && (*Py_TYPE(it)).tp_basicsize >= range_iter::LEN as isize + 8
            && word(it, range_iter::INDEX) == 0
            && word(it, range_iter::START) == 3
            && word(it, range_iter::STEP) == 7
            && word(it, range_iter::LEN) == 14
            && {
                let first = PyIter_Next(it);
                let three = !first.is_null() && PyLong_AsLong(first) == 3;
                Py_XDECREF(first);
                three && word(it, range_iter::INDEX) == 1
            };
        if it.is_null() || !PyErr_Occurred().is_null() {
            PyErr_Clear(); // out of memory: the helper path it is
        }
        Py_XDECREF(it);
        Py_XDECREF(range);
        holds
    })
}

/// Whether live list and tuple iterators have the [`seq_iter`] layout: the sequence at `SEQ`,
/// the index at `INDEX` going 0 -> 1 with `next()`, and `SEQ` cleared at the end. Checked once.
pub fn seq_iter_layout_holds() -> bool {
    static HOLDS: OnceLock<bool> = OnceLock::new();
    // SAFETY: GIL held (called while compiling); the objects are made and released here, and
    // the words read lie inside iterator objects of at least 4 words (checked first).
    *HOLDS.get_or_init(|| unsafe {
        probe_seq_iter(pyo3_ffi::PyList_New(1)) && probe_seq_iter(pyo3_ffi::PyTuple_New(1))
    })
}

/// [`seq_iter_layout_holds`] for one fresh one-item sequence (taken).
unsafe fn probe_seq_iter(seq: *mut pyo3_ffi::PyObject) -> bool {
    use pyo3_ffi::*;
    // SAFETY: as for `seq_iter_layout_holds`.
    unsafe {
        if seq.is_null() {
            PyErr_Clear();
            return false;
        }
        let item = Py_None();
        Py_INCREF(item);
        if PyList_Check(seq) != 0 {
            PyList_SET_ITEM(seq, 0, item);
        } else {
            PyTuple_SET_ITEM(seq, 0, item);
        }
        let it = PyObject_GetIter(seq);
        let word =
            |o: *mut PyObject, at: i64| *((o as *const u8).offset(at as isize) as *const isize);
        let holds = !it.is_null()
            && (*Py_TYPE(it)).tp_basicsize >= seq_iter::SEQ as isize + 8
            && word(it, seq_iter::SEQ) == seq as isize
            && word(it, seq_iter::INDEX) == 0
            && {
                let first = PyIter_Next(it);
                let advanced = first == item && word(it, seq_iter::INDEX) == 1;
                Py_XDECREF(first);
                let end = PyIter_Next(it);
                advanced && end.is_null() && word(it, seq_iter::SEQ) == 0
            };
        if it.is_null() {
            PyErr_Clear(); // out of memory: the helper path it is
        }
        Py_XDECREF(it);
        Py_DECREF(seq);
        holds
    }
}

use std::sync::OnceLock;

extern "C" {
    fn ferrojit_layout_probe(out: *mut i64);
    fn ferrojit_opcode_tables(caches: *mut u8, deopt: *mut u8);
}

static RUNTIME_LAYOUT: OnceLock<RuntimeLayout> = OnceLock::new();
static TABLES: OnceLock<OpcodeTables> = OnceLock::new();

/// The interpreter's layout facts: compile-time constants, so that `layout().frame_code` is an
/// immediate offset in the code that reads it.
#[inline(always)]
pub fn layout() -> &'static Layout {
    &LAYOUT
}

/// The layout facts known at run time only (read from the probe once).
#[inline]
pub fn runtime_layout() -> &'static RuntimeLayout {
    RUNTIME_LAYOUT.get_or_init(|| {
        let mut values = vec![0i64; RUNTIME_LAYOUT_FIELDS];
        // SAFETY: the probe writes exactly RUNTIME_LAYOUT_FIELDS values, the length of `values`.
        unsafe { ferrojit_layout_probe(values.as_mut_ptr()) };
        RuntimeLayout::from_values(&values)
    })
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

#[cfg(test)]
mod tests {
    use super::layout;
    use pyo3_ffi::{
        PyFloatObject, PyListObject, PyObject, PyTupleObject, PyTypeObject, PyVarObject,
    };
    use std::mem::offset_of;

    /// The facts build.rs read back from the C compiler's assembly are the target's: the ones
    /// that `pyo3_ffi` also defines agree, in layout.def's order (a misread word would shift them).
    #[test]
    fn folded_layout_facts_agree_with_the_public_structs() {
        let l = layout();
        let expected = [
            (
                "object_refcnt",
                l.object_refcnt,
                offset_of!(PyObject, ob_refcnt),
            ),
            ("object_type", l.object_type, offset_of!(PyObject, ob_type)),
            (
                "varobject_size",
                l.varobject_size,
                offset_of!(PyVarObject, ob_size),
            ),
            (
                "type_flags",
                l.type_flags,
                offset_of!(PyTypeObject, tp_flags),
            ),
            (
                "type_version_tag",
                l.type_version_tag,
                offset_of!(PyTypeObject, tp_version_tag),
            ),
            (
                "type_dictoffset",
                l.type_dictoffset,
                offset_of!(PyTypeObject, tp_dictoffset),
            ),
            (
                "type_getattro",
                l.type_getattro,
                offset_of!(PyTypeObject, tp_getattro),
            ),
            (
                "float_value",
                l.float_value,
                offset_of!(PyFloatObject, ob_fval),
            ),
            (
                "tuple_items",
                l.tuple_items,
                offset_of!(PyTupleObject, ob_item),
            ),
            (
                "list_items",
                l.list_items,
                offset_of!(PyListObject, ob_item),
            ),
        ];
        for (name, folded, public) in expected {
            assert_eq!(folded, public as i64, "{name}");
        }
        assert_eq!(l.tpflags_managed_dict, 1 << 4);
        assert_eq!(l.tpflags_long_subclass, 1 << 24);
    }
}
