//! Helpers for instructions the interpreter specialised for one operand type (its
//! `BINARY_OP_*_INT` / `_FLOAT` and `COMPARE_OP_*_JUMP` forms). Generated code guards the exact
//! types before calling them, so each does that type's work without the generic dispatch of
//! `PyNumber_*` / `PyObject_RichCompare`, and a comparison feeding a conditional jump returns a
//! C truth value instead of a bool object to test.

use super::helpers::fj_binary_op;
use crate::cpython::ffi::{read, write};
use crate::cpython::layout;
use crate::cpython::opcodes::*;
use pyo3_ffi::*;
use std::os::raw::c_int;

/// The value of an exact int of at most one digit (as the interpreter's single-digit fast
/// paths), or None.
///
/// # Safety
/// `obj` is a live exact int.
#[inline]
pub(super) unsafe fn small_int(obj: *mut PyObject) -> Option<i64> {
    // SAFETY: an int's ob_size is its signed digit count and at least one digit is allocated.
    unsafe {
        let l = layout();
        let size: isize = read(obj as _, l.varobject_size);
        if !(-1..=1).contains(&size) {
            return None;
        }
        let digit: u32 = read(obj as _, l.long_digits);
        Some(size as i64 * digit as i64)
    }
}

/// # Safety
/// `obj` is a live exact float.
#[inline]
unsafe fn float_value(obj: *mut PyObject) -> f64 {
    // SAFETY: as above.
    unsafe { read(obj as _, layout().float_value) }
}

/// `a op b` for a rich-comparison operator (Py_LT 0, Py_LE 1, Py_EQ 2, Py_NE 3, Py_GT 4,
/// Py_GE 5).
fn compare<T: PartialOrd>(a: T, b: T, op: i64) -> bool {
    match op {
        0 => a < b,
        1 => a <= b,
        2 => a == b,
        3 => a != b,
        4 => a > b,
        _ => a >= b,
    }
}

/// The truth of a rich-comparison result (a bool, since both operands are exact ints),
/// released; -1 for NULL (the comparison's recursion check raised).
unsafe fn truth_of(r: *mut PyObject) -> c_int {
    // SAFETY: `r` is NULL or a new reference to True or False.
    unsafe {
        if r.is_null() {
            return -1;
        }
        let t = (r == Py_True()) as c_int;
        Py_DECREF(r);
        t
    }
}

/// `COMPARE_OP_INT_JUMP`'s test for two exact ints of any size: 1 or 0, or -1 with an
/// exception. Takes nothing. Ints of more than one digit go through `PyObject_RichCompare`, as
/// the interpreter's generic `COMPARE_OP` takes them, with its recursion check (a
/// RecursionError "in comparison" at the limit, as in CPython).
///
/// # Safety
/// `a` and `b` are live exact ints; `op` is a comparison operator (0..=5).
pub unsafe extern "C" fn fj_compare_ints(a: *mut PyObject, b: *mut PyObject, op: i64) -> c_int {
    // SAFETY: as above.
    unsafe {
        if let (Some(x), Some(y)) = (small_int(a), small_int(b)) {
            return compare(x, y, op) as c_int;
        }
        truth_of(PyObject_RichCompare(a, b, op as c_int))
    }
}

/// `COMPARE_OP_FLOAT_JUMP`'s test for two exact floats (IEEE: NaN compares unequal): 1 or 0.
///
/// # Safety
/// `a` and `b` are live exact floats; `op` is a comparison operator.
pub unsafe extern "C" fn fj_compare_floats(a: *mut PyObject, b: *mut PyObject, op: i64) -> c_int {
    // SAFETY: as above.
    unsafe { compare(float_value(a), float_value(b), op) as c_int }
}

/// `COMPARE_OP_STR_JUMP`'s test for two exact strs (== and != only): 1 or 0. As that
/// instruction (`_PyUnicode_Equal`), no recursion check.
///
/// # Safety
/// `a` and `b` are live exact strs; `op` is Py_EQ or Py_NE.
pub unsafe extern "C" fn fj_compare_strs(a: *mut PyObject, b: *mut PyObject, op: i64) -> c_int {
    // SAFETY: as above; comparing two exact strs cannot fail.
    unsafe {
        let equal = a == b || PyUnicode_Compare(a, b) == 0;
        (equal == (op as c_int == Py_EQ)) as c_int
    }
}

/// `BINARY_OP_{ADD,SUBTRACT,MULTIPLY}_INT` (and the in-place forms) for two exact ints: single
/// digits computed here, anything larger by `int`'s own number slot, as the interpreter's
/// specialised instruction calls `_PyLong_Add` & co. (not exported) without `PyNumber_Add`'s
/// dispatch over both operands' slots (ints have no in-place slots, so the in-place forms end
/// there too). New reference or NULL.
///
/// # Safety
/// `a` and `b` are live exact ints; `oparg` is one of those operators.
pub unsafe extern "C" fn fj_int_binary(
    a: *mut PyObject,
    b: *mut PyObject,
    oparg: i64,
) -> *mut PyObject {
    // SAFETY: as above; single digits are below 2**30, so no i64 operation overflows.
    unsafe {
        if let (Some(x), Some(y)) = (small_int(a), small_int(b)) {
            let r = match oparg as u8 {
                NB_ADD | NB_INPLACE_ADD => Some(x + y),
                NB_SUBTRACT | NB_INPLACE_SUBTRACT => Some(x - y),
                NB_MULTIPLY | NB_INPLACE_MULTIPLY => Some(x * y),
                _ => None,
            };
            if let Some(r) = r {
                return PyLong_FromLongLong(r);
            }
        }
        if let Some(slot) = int_slot(oparg) {
            return slot(a, b);
        }
        fj_binary_op(a, b, oparg)
    }
}

/// `int`'s number slot for `+`, `-` or `*` (in place or not).
unsafe fn int_slot(oparg: i64) -> Option<binaryfunc> {
    // SAFETY: `PyLong_Type` is a static type whose number methods never change.
    unsafe {
        let number = (*std::ptr::addr_of!(PyLong_Type)).tp_as_number;
        if number.is_null() {
            return None;
        }
        match oparg as u8 {
            NB_ADD | NB_INPLACE_ADD => (*number).nb_add,
            NB_SUBTRACT | NB_INPLACE_SUBTRACT => (*number).nb_subtract,
            NB_MULTIPLY | NB_INPLACE_MULTIPLY => (*number).nb_multiply,
            _ => None,
        }
    }
}

/// `BINARY_OP_{ADD,SUBTRACT,MULTIPLY}_FLOAT` (and the in-place forms) for two exact floats.
/// Takes both operands; as the interpreter does, an operand nobody else holds receives the
/// result in place of a new float. New reference or NULL.
///
/// # Safety
/// `a` and `b` are owned references to exact floats; `oparg` is one of those operators.
pub unsafe extern "C" fn fj_float_binary(
    a: *mut PyObject,
    b: *mut PyObject,
    oparg: i64,
) -> *mut PyObject {
    // SAFETY: as above; an object with reference count 1 is only reachable through the
    // reference given here, so writing its value is unobservable.
    unsafe {
        let (x, y) = (float_value(a), float_value(b));
        let r = match oparg as u8 {
            NB_ADD | NB_INPLACE_ADD => x + y,
            NB_SUBTRACT | NB_INPLACE_SUBTRACT => x - y,
            NB_MULTIPLY | NB_INPLACE_MULTIPLY => x * y,
            _ => {
                let r = fj_binary_op(a, b, oparg);
                Py_DECREF(a);
                Py_DECREF(b);
                return r;
            }
        };
        let offset = layout().float_value;
        if Py_REFCNT(a) == 1 {
            write(a as _, offset, r);
            Py_DECREF(b);
            a
        } else if Py_REFCNT(b) == 1 {
            write(b as _, offset, r);
            Py_DECREF(a);
            b
        } else {
            Py_DECREF(a);
            Py_DECREF(b);
            PyFloat_FromDouble(r)
        }
    }
}

/// A new float holding the double whose bits are `bits` (generated code keeps doubles in
/// general registers). New reference or NULL.
pub extern "C" fn fj_box_float(bits: u64) -> *mut PyObject {
    // SAFETY: called from generated code with the GIL held.
    unsafe { PyFloat_FromDouble(f64::from_bits(bits)) }
}

/// `BINARY_OP` `+ - * /` (and in-place forms) at a site the interpreter left generic: two
/// exact ints of at most one digit add, subtract and multiply in a word (as `long_add` & co.
/// do for them); when one operand is an exact float and the other an exact float or an int of
/// at most one digit (converted exactly), the result is what `float_add`, `float_sub`,
/// `float_mul` and `float_div` compute after their operand conversion; anything else, and a
/// division by zero (whose error the float type raises), goes to `fj_binary_op`. Takes
/// nothing.
///
/// # Safety
/// `a` and `b` are live objects.
pub unsafe extern "C" fn fj_binary_op_numeric(
    a: *mut PyObject,
    b: *mut PyObject,
    oparg: i64,
) -> *mut PyObject {
    // SAFETY: as above; each operand is read only after its exact type is checked.
    unsafe {
        if let Some(r) = compact_int_result(a, b, oparg) {
            return r;
        }
        if let Some((x, y)) = float_operands(a, b) {
            let r = match oparg as u8 {
                NB_ADD | NB_INPLACE_ADD => Some(x + y),
                NB_SUBTRACT | NB_INPLACE_SUBTRACT => Some(x - y),
                NB_MULTIPLY | NB_INPLACE_MULTIPLY => Some(x * y),
                NB_TRUE_DIVIDE | NB_INPLACE_TRUE_DIVIDE if y != 0.0 => Some(x / y),
                _ => None,
            };
            if let Some(r) = r {
                return PyFloat_FromDouble(r);
            }
        }
        fj_binary_op(a, b, oparg)
    }
}

/// `+ - *` of two exact ints of at most one digit (below 2**30: no result overflows a word),
/// boxed by `PyLong_FromLongLong` as `long_add` & co. box theirs; None for anything else.
///
/// # Safety
/// `a` and `b` are live objects.
#[inline]
unsafe fn compact_int_result(
    a: *mut PyObject,
    b: *mut PyObject,
    oparg: i64,
) -> Option<*mut PyObject> {
    // SAFETY: as above; each operand is read only after its exact type is checked.
    unsafe {
        let int = std::ptr::addr_of_mut!(PyLong_Type);
        if Py_TYPE(a) != int || Py_TYPE(b) != int {
            return None;
        }
        let (x, y) = (small_int(a)?, small_int(b)?);
        let r = match oparg as u8 {
            NB_ADD | NB_INPLACE_ADD => x + y,
            NB_SUBTRACT | NB_INPLACE_SUBTRACT => x - y,
            NB_MULTIPLY | NB_INPLACE_MULTIPLY => x * y,
            _ => return None,
        };
        Some(PyLong_FromLongLong(r))
    }
}

/// Both operands as doubles when at least one is an exact float and the other an exact float
/// or a one-digit int (below 2**30, so exactly a double).
///
/// # Safety
/// `a` and `b` are live objects.
#[inline]
unsafe fn float_operands(a: *mut PyObject, b: *mut PyObject) -> Option<(f64, f64)> {
    // SAFETY: as above.
    unsafe {
        let float = std::ptr::addr_of_mut!(PyFloat_Type);
        let (ta, tb) = (Py_TYPE(a), Py_TYPE(b));
        if ta != float && tb != float {
            return None;
        }
        let value = |o: *mut PyObject, t: *mut PyTypeObject| {
            if t == float {
                Some(float_value(o))
            } else if t == std::ptr::addr_of_mut!(PyLong_Type) {
                small_int(o).map(|i| i as f64)
            } else {
                None
            }
        };
        Some((value(a, ta)?, value(b, tb)?))
    }
}

/// The index an exact int gives when it is a single non-negative digit (as the interpreter's
/// `*_LIST_INT` / `*_TUPLE_INT` forms require), or None.
///
/// # Safety
/// `sub` is a live exact int.
unsafe fn small_index(sub: *mut PyObject) -> Option<isize> {
    // SAFETY: as above.
    unsafe { small_int(sub).filter(|&i| i >= 0).map(|i| i as isize) }
}

/// `BINARY_SUBSCR_LIST_INT`: `list[sub]` for an exact list and an exact int. New reference or
/// NULL; takes nothing.
///
/// # Safety
/// `list` is a live exact list, `sub` a live exact int.
pub unsafe extern "C" fn fj_list_getitem(list: *mut PyObject, sub: *mut PyObject) -> *mut PyObject {
    // SAFETY: as above; the index is checked against the list's size before the read.
    unsafe {
        if let Some(i) = small_index(sub) {
            if i < PyList_GET_SIZE(list) {
                let item = PyList_GET_ITEM(list, i);
                Py_INCREF(item);
                return item;
            }
        }
        PyObject_GetItem(list, sub)
    }
}

/// `BINARY_SUBSCR_TUPLE_INT`: `tuple[sub]` for an exact tuple and an exact int.
///
/// # Safety
/// `tuple` is a live exact tuple, `sub` a live exact int.
pub unsafe extern "C" fn fj_tuple_getitem(
    tuple: *mut PyObject,
    sub: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: as above.
    unsafe {
        if let Some(i) = small_index(sub) {
            if i < PyTuple_GET_SIZE(tuple) {
                let item = PyTuple_GET_ITEM(tuple, i);
                Py_INCREF(item);
                return item;
            }
        }
        PyObject_GetItem(tuple, sub)
    }
}

/// `STORE_SUBSCR_LIST_INT`: `list[sub] = v` for an exact list and an exact int; takes nothing
/// (the list gets its own reference to `v`). 0, or -1 with an exception set.
///
/// # Safety
/// `list` is a live exact list, `sub` a live exact int, `v` live.
pub unsafe extern "C" fn fj_list_setitem(
    list: *mut PyObject,
    sub: *mut PyObject,
    v: *mut PyObject,
) -> c_int {
    // SAFETY: as above; the old item is released after the new one is in place, as
    // `PyList_SetItem` does.
    unsafe {
        if let Some(i) = small_index(sub) {
            if i < PyList_GET_SIZE(list) {
                Py_INCREF(v);
                let items: *mut *mut PyObject = read(list as _, layout().list_items);
                let slot = items.offset(i);
                let old = *slot;
                *slot = v;
                Py_DECREF(old);
                return 0;
            }
        }
        PyObject_SetItem(list, sub, v)
    }
}
