//! Calls of C functions the way the interpreter's specialised `PRECALL`s make them
//! (`c-calls`): a builtin function taking one object or a fast-call vector (`len`, `id`,
//! `isinstance`, `abs`...), a method descriptor of a builtin type called on an instance of
//! exactly that type (`list.append`, `dict.get`, `str.join`...), `type(x)`, `str(x)`,
//! `tuple(x)`, and a class with a vectorcall of its own (`list(x)`, `range(n)`...). The C function
//! is called straight from its `PyMethodDef`, skipping `PyObject_Vectorcall`, the
//! `cfunction_vectorcall_*`/`method_vectorcall_*` layer and its result check, as CPython 3.11's
//! `PRECALL_NO_KW_*` instructions do; the recursion check is kept where they keep it (one
//! object or no arguments). Anything else takes the generic call.
//!
//! The builder emits `fj_call_c` only where the interpreter specialised the `PRECALL` for one
//! of these forms, so the checks here nearly always pass; when they do not (another callable
//! at the same site), the call is the ordinary one.

use super::helpers::fj_call;
use crate::cpython::layout;
use pyo3_ffi::*;
use std::os::raw::c_int;

/// `PRECALL` + `CALL` where the interpreter specialised the call of a C function: as
/// [`fj_call`] (same arguments, same references taken), through [`call_c_function`] when the
/// callable is still such a function.
///
/// # Safety
/// As for [`fj_call`].
pub unsafe extern "C" fn fj_call_c(
    base: *mut *mut PyObject,
    oparg: i64,
    kwnames: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: `base` points at oparg + 2 stack slots of the running frame, filled by the
    // caller; the builder passes no keyword names here.
    unsafe {
        let is_meth = !(*base).is_null();
        let total = oparg as usize + is_meth as usize;
        let args = base.add(2 - is_meth as usize);
        let function = *args.sub(1);
        if kwnames.is_null() {
            if let Some(res) = call_c_function(function, args, total) {
                Py_DECREF(function);
                for i in 0..total {
                    Py_DECREF(*args.add(i));
                }
                return res;
            }
        }
        fj_call(base, oparg, kwnames)
    }
}

/// Calls `function` with the `n` positional arguments at `args` when it is one of the C
/// functions described in the module header; None (nothing done) otherwise. Takes no
/// references.
///
/// # Safety
/// `function` and the arguments are live.
#[inline]
unsafe fn call_c_function(
    function: *mut PyObject,
    args: *mut *mut PyObject,
    n: usize,
) -> Option<*mut PyObject> {
    // SAFETY: the type checks establish which struct `function` is; `args` holds n objects.
    unsafe {
        let ty = Py_TYPE(function);
        if ty == std::ptr::addr_of_mut!(PyCFunction_Type) {
            let f = function as *mut PyCFunctionObject;
            let def = &*(*f).m_ml;
            let slf = (*f).m_self;
            match def.ml_flags {
                // `len` is the interpreter's PRECALL_NO_KW_LEN, which has no recursion check.
                METH_O if n == 1 && is_cached(function, layout().interp_cached_len) => {
                    Some((def.ml_meth.PyCFunction)(slf, *args))
                }
                METH_O if n == 1 => with_recursion_check(|| (def.ml_meth.PyCFunction)(slf, *args)),
                METH_FASTCALL => Some((def.ml_meth.PyCFunctionFast)(slf, args, n as Py_ssize_t)),
                _ => None,
            }
        } else if ty == std::ptr::addr_of_mut!(PyMethodDescr_Type) {
            let d = function as *mut PyMethodDescrObject;
            if n == 0 || Py_TYPE(*args) != (*d).d_common.d_type {
                return None;
            }
            let def = &*(*d).d_method;
            let slf = *args;
            match def.ml_flags {
                // `list.append` is PRECALL_NO_KW_LIST_APPEND, without a recursion check.
                METH_O if n == 2 && is_cached(function, layout().interp_cached_list_append) => {
                    Some((def.ml_meth.PyCFunction)(slf, *args.add(1)))
                }
                METH_O if n == 2 => {
                    with_recursion_check(|| (def.ml_meth.PyCFunction)(slf, *args.add(1)))
                }
                METH_NOARGS if n == 1 => {
                    with_recursion_check(|| (def.ml_meth.PyCFunction)(slf, std::ptr::null_mut()))
                }
                METH_FASTCALL => Some((def.ml_meth.PyCFunctionFast)(
                    slf,
                    args.add(1),
                    (n - 1) as Py_ssize_t,
                )),
                _ => None,
            }
        } else if function == std::ptr::addr_of_mut!(PyType_Type) as *mut PyObject && n == 1 {
            // `type(x)`.
            let t = Py_TYPE(*args) as *mut PyObject;
            Py_INCREF(t);
            Some(t)
        } else if function == std::ptr::addr_of_mut!(PyUnicode_Type) as *mut PyObject && n == 1 {
            // `str(x)` (3.11's str has no vectorcall: the generic call builds an argument
            // tuple for `type_call`).
            Some(PyObject_Str(*args))
        } else if function == std::ptr::addr_of_mut!(PyTuple_Type) as *mut PyObject && n == 1 {
            Some(PySequence_Tuple(*args))
        } else if PyType_Check(function) != 0 {
            // A builtin class with a vectorcall (`list(x)`, `set()`, `range(n)`...).
            let tp = function as *mut PyTypeObject;
            let vectorcall = (*tp).tp_vectorcall?;
            Some(vectorcall(function, args, n, std::ptr::null_mut()))
        } else {
            None
        }
    }
}

/// Whether `function` is the callable the interpreter keeps at `offset` of its
/// `callable_cache` (`len`, `list.append`: the ones it calls without a recursion check).
///
/// # Safety
/// The GIL is held.
#[inline(always)]
unsafe fn is_cached(function: *mut PyObject, offset: i64) -> bool {
    // SAFETY: the running thread's interpreter is live; the cache holds borrowed pointers.
    unsafe {
        let l = layout();
        let interp: *mut std::ffi::c_void =
            crate::cpython::ffi::read(crate::cpython::ffi::current_tstate(l) as _, l.tstate_interp);
        function == crate::cpython::ffi::read::<*mut PyObject>(interp, offset)
    }
}

/// Runs `call` one recursion level deeper, as `_Py_EnterRecursiveCallTstate` and
/// `_Py_LeaveRecursiveCallTstate` bracket a C call in the interpreter: past the limit it
/// raises RecursionError instead (Some(NULL)).
///
/// # Safety
/// The GIL is held.
#[inline(always)]
unsafe fn with_recursion_check(call: impl FnOnce() -> *mut PyObject) -> Option<*mut PyObject> {
    // SAFETY: the thread state of the thread holding the GIL is live; its
    // `recursion_remaining` is an int at the probed offset.
    unsafe {
        let l = layout();
        let ts = crate::cpython::ffi::current_tstate(l);
        let remaining = (ts as *mut u8).offset(l.tstate_recursion_remaining as isize) as *mut c_int;
        let was = *remaining;
        *remaining = was - 1;
        if was <= 0
            && crate::cpython::ffi::_Py_CheckRecursiveCall(
                ts,
                c" while calling a Python object".as_ptr(),
            ) != 0
        {
            return Some(std::ptr::null_mut());
        }
        let res = call();
        *remaining += 1;
        Some(res)
    }
}
