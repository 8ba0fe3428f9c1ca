//! Helpers for unpacking: into variables (`UNPACK_SEQUENCE`, `UNPACK_EX`), and `*` and `**`
//! unpacking into list, set and dict displays (`LIST_EXTEND`,
//! `SET_UPDATE`, `DICT_UPDATE`, `LIST_TO_TUPLE`) and into calls (`DICT_MERGE`,
//! `CALL_FUNCTION_EX`), each with the interpreter's reference effects and its error messages
//! (Python/ceval.c in 3.11: `format_kwargs_error`, `check_args_iterable`).

use crate::cpython::{ffi, layout};
use pyo3_ffi::*;
use std::os::raw::c_int;

/// The `tp_name` of `o`'s type, for `%.200s`.
unsafe fn type_name(o: *mut PyObject) -> *const std::os::raw::c_char {
    // SAFETY: `o` is a live object; its type's name is a NUL-terminated C string.
    unsafe { (*Py_TYPE(o)).tp_name }
}

/// Whether `o` can be neither iterated nor indexed as a sequence: the case where the
/// interpreter replaces the error with its own "must be an iterable" message.
unsafe fn not_iterable(o: *mut PyObject) -> bool {
    // SAFETY: `o` is a live object.
    unsafe { (*Py_TYPE(o)).tp_iter.is_none() && PySequence_Check(o) == 0 }
}

/// `LIST_EXTEND`: `list.extend(iterable)`; takes `iterable`. 0 or -1.
pub unsafe extern "C" fn fj_list_extend(list: *mut PyObject, iterable: *mut PyObject) -> c_int {
    // SAFETY: `list` is the exact list BUILD_LIST made, `iterable` an owned reference.
    unsafe {
        let none = ffi::_PyList_Extend(list, iterable);
        if none.is_null() {
            if PyErr_ExceptionMatches(PyExc_TypeError) != 0 && not_iterable(iterable) {
                PyErr_Clear();
                PyErr_Format(
                    PyExc_TypeError,
                    c"Value after * must be an iterable, not %.200s".as_ptr(),
                    type_name(iterable),
                );
            }
            Py_DECREF(iterable);
            return -1;
        }
        Py_DECREF(none);
        Py_DECREF(iterable);
        0
    }
}

/// `SET_UPDATE`: `set.update(iterable)`; takes `iterable`. 0 or -1.
pub unsafe extern "C" fn fj_set_update(set: *mut PyObject, iterable: *mut PyObject) -> c_int {
    // SAFETY: `set` is the exact set BUILD_SET made, `iterable` an owned reference.
    unsafe {
        let r = ffi::_PySet_Update(set, iterable);
        Py_DECREF(iterable);
        r.min(0)
    }
}

/// `DICT_UPDATE`: `dict.update(mapping)` in a `{**m}` display; takes `update`. 0 or -1.
pub unsafe extern "C" fn fj_dict_update(dict: *mut PyObject, update: *mut PyObject) -> c_int {
    // SAFETY: `dict` is the exact dict BUILD_MAP made, `update` an owned reference.
    unsafe {
        let r = PyDict_Update(dict, update);
        if r < 0 && PyErr_ExceptionMatches(PyExc_AttributeError) != 0 {
            PyErr_Format(
                PyExc_TypeError,
                c"'%.200s' object is not a mapping".as_ptr(),
                type_name(update),
            );
        }
        Py_DECREF(update);
        r.min(0)
    }
}

/// The interpreter's `format_kwargs_error`: after merging `kwargs` for a call of `func`
/// failed, an AttributeError (not a mapping) or a one-key KeyError (a keyword given twice)
/// becomes the TypeError Python programs see.
unsafe fn kwargs_error(func: *mut PyObject, kwargs: *mut PyObject) {
    // SAFETY: an exception is set; `func` and `kwargs` are live objects.
    unsafe {
        if PyErr_ExceptionMatches(PyExc_AttributeError) != 0 {
            PyErr_Clear();
            let name = ffi::_PyObject_FunctionStr(func);
            if !name.is_null() {
                PyErr_Format(
                    PyExc_TypeError,
                    c"%U argument after ** must be a mapping, not %.200s".as_ptr(),
                    name,
                    type_name(kwargs),
                );
                Py_DECREF(name);
            }
        } else if PyErr_ExceptionMatches(PyExc_KeyError) != 0 {
            let (mut ty, mut value, mut tb) = (
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            PyErr_Fetch(&mut ty, &mut value, &mut tb);
            if !value.is_null() && PyTuple_Check(value) != 0 && PyTuple_GET_SIZE(value) == 1 {
                let name = ffi::_PyObject_FunctionStr(func);
                if !name.is_null() {
                    PyErr_Format(
                        PyExc_TypeError,
                        c"%U got multiple values for keyword argument '%S'".as_ptr(),
                        name,
                        PyTuple_GET_ITEM(value, 0),
                    );
                    Py_DECREF(name);
                }
                Py_XDECREF(ty);
                Py_XDECREF(value);
                Py_XDECREF(tb);
            } else {
                PyErr_Restore(ty, value, tb);
            }
        }
    }
}

/// `DICT_MERGE`: merges `update` into the keyword dict of a call of `func`, a key given twice
/// being an error; takes `update`. 0 or -1.
pub unsafe extern "C" fn fj_dict_merge(
    dict: *mut PyObject,
    update: *mut PyObject,
    func: *mut PyObject,
) -> c_int {
    // SAFETY: `dict` is the exact dict BUILD_MAP made, `update` an owned reference, `func` the
    // callable below them on the stack.
    unsafe {
        let r = ffi::_PyDict_MergeEx(dict, update, 2);
        if r < 0 {
            kwargs_error(func, update);
        }
        Py_DECREF(update);
        r.min(0)
    }
}

/// `CALL_FUNCTION_EX`: `func(*callargs, **kwargs)` (`kwargs` NULL without `**`); takes all
/// three. The result, or NULL with an exception set.
pub unsafe extern "C" fn fj_call_function_ex(
    func: *mut PyObject,
    callargs: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: owned references (kwargs may be NULL); every path releases each exactly once.
    unsafe {
        let release = |args: *mut PyObject, kw: *mut PyObject| {
            Py_DECREF(func);
            Py_XDECREF(args);
            Py_XDECREF(kw);
        };
        let mut kwargs = kwargs;
        if !kwargs.is_null() && PyDict_CheckExact(kwargs) == 0 {
            let d = PyDict_New();
            if d.is_null() || ffi::_PyDict_MergeEx(d, kwargs, 2) < 0 {
                if !d.is_null() {
                    Py_DECREF(d);
                    kwargs_error(func, kwargs);
                }
                release(callargs, kwargs);
                return std::ptr::null_mut();
            }
            Py_DECREF(kwargs);
            kwargs = d;
        }
        let mut callargs = callargs;
        if PyTuple_CheckExact(callargs) == 0 {
            if not_iterable(callargs) {
                PyErr_Clear();
                let name = ffi::_PyObject_FunctionStr(func);
                if !name.is_null() {
                    PyErr_Format(
                        PyExc_TypeError,
                        c"%U argument after * must be an iterable, not %.200s".as_ptr(),
                        name,
                        type_name(callargs),
                    );
                    Py_DECREF(name);
                }
                release(callargs, kwargs);
                return std::ptr::null_mut();
            }
            let t = PySequence_Tuple(callargs);
            Py_DECREF(callargs);
            callargs = t;
            if t.is_null() {
                release(t, kwargs);
                return std::ptr::null_mut();
            }
        }
        let result = PyObject_Call(func, callargs, kwargs);
        release(callargs, kwargs);
        result
    }
}

/// `LIST_TO_TUPLE`: the list as a tuple; takes `list`.
pub unsafe extern "C" fn fj_list_to_tuple(list: *mut PyObject) -> *mut PyObject {
    // SAFETY: `list` is an owned reference to the list a display built.
    unsafe {
        let t = PyList_AsTuple(list);
        Py_DECREF(list);
        t
    }
}

/// `UNPACK_SEQUENCE before` (`after` = -1) and `UNPACK_EX` (`a, *rest, b = seq`): the items of
/// `seq` as new references into `out`, the first item in the highest slot, as the interpreter
/// leaves its stack (`unpack_iterable` in 3.11's ceval.c, with its error messages). An exact
/// tuple or list of the right length is read directly. Takes nothing; 0, or -1 with an
/// exception set and nothing left in `out`.
pub unsafe extern "C" fn fj_unpack_sequence(
    seq: *mut PyObject,
    before: i64,
    after: i64,
    out: *mut *mut PyObject,
) -> c_int {
    // SAFETY: `seq` is live; `out` points at the stack slots the unpacked values take.
    unsafe {
        let n = before as isize;
        if after < 0 {
            let items: *mut *mut PyObject =
                if PyTuple_CheckExact(seq) != 0 && PyTuple_GET_SIZE(seq) == n {
                    (seq as *mut u8).offset(layout().tuple_items as isize) as *mut *mut PyObject
                } else if PyList_CheckExact(seq) != 0 && PyList_GET_SIZE(seq) == n {
                    ffi::read(seq as _, layout().list_items)
                } else {
                    return unpack_iterable(seq, before as i32, after as i32, out);
                };
            for i in 0..n {
                let item = *items.offset(i);
                Py_INCREF(item);
                *out.offset(n - 1 - i) = item;
            }
            return 0;
        }
        unpack_iterable(seq, before as i32, after as i32, out)
    }
}

/// The general case: iterate. `out` gets `before` items (+ the rest as a list and `after`
/// items when `after` >= 0), written downwards from the top.
unsafe fn unpack_iterable(
    seq: *mut PyObject,
    before: i32,
    after: i32,
    out: *mut *mut PyObject,
) -> c_int {
    // SAFETY: as for fj_unpack_sequence; `written` counts the slots below `top` filled so far,
    // which the error path releases.
    unsafe {
        let total = if after < 0 {
            before
        } else {
            before + 1 + after
        } as usize;
        let top = out.add(total);
        let mut written = 0usize;
        let mut push = |v: *mut PyObject| {
            written += 1;
            *top.sub(written) = v;
        };
        let it = PyObject_GetIter(seq);
        if it.is_null() {
            if PyErr_ExceptionMatches(PyExc_TypeError) != 0 && not_iterable(seq) {
                PyErr_Format(
                    PyExc_TypeError,
                    c"cannot unpack non-iterable %.200s object".as_ptr(),
                    type_name(seq),
                );
            }
            return -1;
        }
        let mut failed = false;
        for i in 0..before {
            let w = PyIter_Next(it);
            if w.is_null() {
                if PyErr_Occurred().is_null() {
                    if after < 0 {
                        PyErr_Format(
                            PyExc_ValueError,
                            c"not enough values to unpack (expected %d, got %d)".as_ptr(),
                            before,
                            i,
                        );
                    } else {
                        PyErr_Format(
                            PyExc_ValueError,
                            c"not enough values to unpack (expected at least %d, got %d)".as_ptr(),
                            before + after,
                            i,
                        );
                    }
                }
                failed = true;
                break;
            }
            push(w);
        }
        if !failed && after < 0 {
            let w = PyIter_Next(it);
            if w.is_null() {
                failed = !PyErr_Occurred().is_null();
            } else {
                Py_DECREF(w);
                PyErr_Format(
                    PyExc_ValueError,
                    c"too many values to unpack (expected %d)".as_ptr(),
                    before,
                );
                failed = true;
            }
        } else if !failed {
            let rest = PySequence_List(it);
            if rest.is_null() {
                failed = true;
            } else {
                push(rest);
                let len = PyList_GET_SIZE(rest);
                if len < after as isize {
                    PyErr_Format(
                        PyExc_ValueError,
                        c"not enough values to unpack (expected at least %d, got %zd)".as_ptr(),
                        before + after,
                        before as isize + len,
                    );
                    failed = true;
                } else {
                    for j in (1..=after as isize).rev() {
                        push(PyList_GET_ITEM(rest, len - j));
                    }
                    // The items taken from the end now belong to the stack, not the list.
                    (*(rest as *mut PyVarObject)).ob_size = len - after as isize;
                }
            }
        }
        Py_DECREF(it);
        if failed {
            for k in 1..=written {
                Py_DECREF(*top.sub(k));
            }
            return -1;
        }
        0
    }
}
