//! Helpers for `*` and `**` unpacking: into list, set and dict displays (`LIST_EXTEND`,
//! `SET_UPDATE`, `DICT_UPDATE`, `LIST_TO_TUPLE`) and into calls (`DICT_MERGE`,
//! `CALL_FUNCTION_EX`), each with the interpreter's reference effects and its error messages
//! (Python/ceval.c in 3.11: `format_kwargs_error`, `check_args_iterable`).

use crate::cpython::ffi;
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
