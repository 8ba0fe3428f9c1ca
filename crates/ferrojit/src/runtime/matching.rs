//! Structural pattern matching (PEP 634): the helpers for `MATCH_CLASS`, `MATCH_KEYS`,
//! `MATCH_MAPPING`/`MATCH_SEQUENCE` and `GET_LEN`, with the interpreter's semantics and error
//! messages (`match_class` and `match_keys` in Python/ceval.c, 3.11). All of them borrow their
//! operands; object results are new references, NULL with an exception set.

use super::helpers::interned;
use crate::cpython::ffi::{TPFLAGS_MAPPING, TPFLAGS_MATCH_SELF, TPFLAGS_SEQUENCE};
use pyo3_ffi::*;
use std::os::raw::{c_int, c_long};
use std::sync::OnceLock;

/// A new reference to True or False.
unsafe fn new_bool(b: bool) -> *mut PyObject {
    // SAFETY: the GIL is held by generated code's caller.
    unsafe { PyBool_FromLong(c_long::from(b)) }
}

/// `MATCH_MAPPING` (`which` = 0) or `MATCH_SEQUENCE` (1): whether the subject's type says it is
/// one. Cannot fail.
pub unsafe extern "C" fn fj_match_kind(subject: *mut PyObject, which: c_int) -> *mut PyObject {
    // SAFETY: `subject` is a live object; its type is live while it is.
    unsafe {
        let flags = PyType_GetFlags(Py_TYPE(subject)) as u64;
        let flag = if which == 0 {
            TPFLAGS_MAPPING
        } else {
            TPFLAGS_SEQUENCE
        };
        new_bool(flags & flag != 0)
    }
}

/// `GET_LEN`: `len(obj)` as an int.
pub unsafe extern "C" fn fj_get_len(obj: *mut PyObject) -> *mut PyObject {
    // SAFETY: `obj` is a live object.
    unsafe {
        let n = PyObject_Length(obj);
        if n < 0 {
            return std::ptr::null_mut();
        }
        PyLong_FromSsize_t(n)
    }
}

/// `MATCH_KEYS`: the values of `keys` (a tuple) in `subject` as a tuple, None when one is
/// missing. Looked up with `subject.get(key, sentinel)`, so that `__missing__` is not called.
pub unsafe extern "C" fn fj_match_keys(
    subject: *mut PyObject,
    keys: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: `keys` is the compiler's tuple of keys, `subject` a live object; every reference
    // made here is released on each path.
    unsafe {
        let n = PyTuple_Size(keys);
        if n == 0 {
            return PyTuple_New(0);
        }
        static GET: OnceLock<usize> = OnceLock::new();
        let get_name = interned(&GET, c"get");
        if get_name.is_null() {
            return std::ptr::null_mut();
        }
        let get = PyObject_GetAttr(subject, get_name);
        if get.is_null() {
            return std::ptr::null_mut();
        }
        let seen = PySet_New(std::ptr::null_mut());
        let sentinel =
            PyObject_CallNoArgs(std::ptr::addr_of_mut!(PyBaseObject_Type) as *mut PyObject);
        let values = PyTuple_New(n);
        let result = if seen.is_null() || sentinel.is_null() || values.is_null() {
            std::ptr::null_mut()
        } else {
            fill_values(get, keys, seen, sentinel, values)
        };
        Py_DECREF(get);
        Py_XDECREF(seen);
        Py_XDECREF(sentinel);
        if result != values {
            Py_XDECREF(values);
        }
        result
    }
}

/// `match_keys`' loop: `values` when every key is there, None when one is missing, NULL on
/// an error (a duplicate key among them is a ValueError).
unsafe fn fill_values(
    get: *mut PyObject,
    keys: *mut PyObject,
    seen: *mut PyObject,
    sentinel: *mut PyObject,
    values: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: as for `fj_match_keys`; `values` is a fresh tuple whose slots are filled in order.
    unsafe {
        for i in 0..PyTuple_Size(keys) {
            let key = PyTuple_GetItem(keys, i);
            if !first_sighting(seen, key) {
                if PyErr_Occurred().is_null() {
                    PyErr_Format(
                        PyExc_ValueError,
                        c"mapping pattern checks duplicate key (%R)".as_ptr(),
                        key,
                    );
                }
                return std::ptr::null_mut();
            }
            let value =
                PyObject_CallFunctionObjArgs(get, key, sentinel, std::ptr::null_mut::<PyObject>());
            if value.is_null() {
                return std::ptr::null_mut();
            }
            if value == sentinel {
                Py_DECREF(value);
                Py_INCREF(Py_None());
                return Py_None();
            }
            PyTuple_SetItem(values, i, value);
        }
        values
    }
}

/// Adds `key` to `seen`; false if it was there already or the set operation failed.
unsafe fn first_sighting(seen: *mut PyObject, key: *mut PyObject) -> bool {
    // SAFETY: `seen` is a live set and `key` a live object.
    unsafe { PySet_Contains(seen, key) == 0 && PySet_Add(seen, key) == 0 }
}

/// `MATCH_CLASS(nargs)`: when `subject` is an instance of `cls`, the tuple of its attributes
/// named by `cls.__match_args__` (the first `nargs`) then by `names`; None when it does not
/// match; NULL on an error.
pub unsafe extern "C" fn fj_match_class(
    subject: *mut PyObject,
    cls: *mut PyObject,
    names: *mut PyObject,
    nargs: isize,
) -> *mut PyObject {
    // SAFETY: operands are live (borrowed); `names` is the compiler's tuple of str.
    unsafe {
        let attrs = match_class(subject, cls, names, nargs);
        if attrs.is_null() && PyErr_Occurred().is_null() {
            Py_INCREF(Py_None());
            return Py_None();
        }
        attrs
    }
}

/// The match proper: a tuple on a match, NULL otherwise (an exception set when it is an error).
unsafe fn match_class(
    subject: *mut PyObject,
    cls: *mut PyObject,
    names: *mut PyObject,
    nargs: isize,
) -> *mut PyObject {
    // SAFETY: as for `fj_match_class`.
    unsafe {
        if PyType_Check(cls) == 0 {
            PyErr_SetString(
                PyExc_TypeError,
                c"called match pattern must be a type".as_ptr(),
            );
            return std::ptr::null_mut();
        }
        if PyObject_IsInstance(subject, cls) <= 0 {
            return std::ptr::null_mut();
        }
        let seen = PySet_New(std::ptr::null_mut());
        if seen.is_null() {
            return std::ptr::null_mut();
        }
        let attrs = PyList_New(0);
        let ok = !attrs.is_null()
            && positional_attrs(subject, cls, nargs, seen, attrs)
            && (0..PyTuple_Size(names))
                .all(|i| append_attr(subject, cls, PyTuple_GetItem(names, i), seen, attrs));
        Py_DECREF(seen);
        let result = if ok {
            PyList_AsTuple(attrs)
        } else {
            std::ptr::null_mut()
        };
        Py_XDECREF(attrs);
        result
    }
}

/// Appends the attributes the first `nargs` names of `cls.__match_args__` give (or the
/// subject itself for a self-matching builtin); false on no match or an error.
unsafe fn positional_attrs(
    subject: *mut PyObject,
    cls: *mut PyObject,
    nargs: isize,
    seen: *mut PyObject,
    attrs: *mut PyObject,
) -> bool {
    if nargs == 0 {
        return true;
    }
    // SAFETY: as for `fj_match_class`; `cls` is a type (checked by the caller).
    unsafe {
        let type_name = (*(cls as *mut PyTypeObject)).tp_name;
        let mut match_self = false;
        let mut match_args = PyObject_GetAttrString(cls, c"__match_args__".as_ptr());
        if !match_args.is_null() {
            if PyTuple_CheckExact(match_args) == 0 {
                PyErr_Format(
                    PyExc_TypeError,
                    c"%s.__match_args__ must be a tuple (got %s)".as_ptr(),
                    type_name,
                    (*Py_TYPE(match_args)).tp_name,
                );
                Py_DECREF(match_args);
                return false;
            }
        } else if PyErr_ExceptionMatches(PyExc_AttributeError) != 0 {
            PyErr_Clear();
            // The flag counts only when the class does not define __match_args__.
            match_args = PyTuple_New(0);
            if match_args.is_null() {
                return false;
            }
            match_self = PyType_GetFlags(cls as *mut PyTypeObject) as u64 & TPFLAGS_MATCH_SELF != 0;
        } else {
            return false;
        }
        let allowed = if match_self {
            1
        } else {
            PyTuple_Size(match_args)
        };
        let ok = if allowed < nargs {
            PyErr_Format(
                PyExc_TypeError,
                c"%s() accepts %zd positional sub-pattern%s (%zd given)".as_ptr(),
                type_name,
                allowed,
                if allowed == 1 {
                    c"".as_ptr()
                } else {
                    c"s".as_ptr()
                },
                nargs,
            );
            false
        } else if match_self {
            PyList_Append(attrs, subject) == 0
        } else {
            (0..nargs).all(|i| {
                let name = PyTuple_GetItem(match_args, i);
                if PyUnicode_CheckExact(name) == 0 {
                    PyErr_Format(
                        PyExc_TypeError,
                        c"__match_args__ elements must be strings (got %s)".as_ptr(),
                        (*Py_TYPE(name)).tp_name,
                    );
                    return false;
                }
                append_attr(subject, cls, name, seen, attrs)
            })
        };
        Py_DECREF(match_args);
        ok
    }
}

/// Appends `subject.<name>`; false when the attribute is missing (no match), repeated or
/// raises (an error).
unsafe fn append_attr(
    subject: *mut PyObject,
    cls: *mut PyObject,
    name: *mut PyObject,
    seen: *mut PyObject,
    attrs: *mut PyObject,
) -> bool {
    // SAFETY: as for `fj_match_class`.
    unsafe {
        if !first_sighting(seen, name) {
            if PyErr_Occurred().is_null() {
                PyErr_Format(
                    PyExc_TypeError,
                    c"%s() got multiple sub-patterns for attribute %R".as_ptr(),
                    (*(cls as *mut PyTypeObject)).tp_name,
                    name,
                );
            }
            return false;
        }
        let attr = PyObject_GetAttr(subject, name);
        if attr.is_null() {
            if PyErr_ExceptionMatches(PyExc_AttributeError) != 0 {
                PyErr_Clear();
            }
            return false;
        }
        let ok = PyList_Append(attrs, attr) == 0;
        Py_DECREF(attr);
        ok
    }
}
