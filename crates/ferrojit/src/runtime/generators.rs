//! Generators and coroutines between compiled functions.
//!
//! In CPython 3.11 every resume of a generator or coroutine (`next()`, `send()`, and each
//! level of `await` and `yield from`, which `SEND` does with `PyIter_Send`) goes through
//! `gen_send_ex2` and `_PyEval_EvalFrame`, so with a hook installed through the hook as well.
//! Compiled code that resumes a generator whose code is compiled does here what `gen_send_ex2`
//! does around the frame, and enters the native code straight away ([`fj_send`], knob
//! `direct-resume`). A direct call of a compiled generator or coroutine function makes the
//! generator object here, as `RETURN_GENERATOR` would at the end of the call's first
//! instruction, without a thread frame, `_PyEval_Vector` or the hook ([`make_generator`],
//! knob `direct-generator-calls`). Anything unusual (a generator already running or finished,
//! a value sent into a fresh one, tracing, another tool's hook, coroutine origin tracking)
//! takes CPython's own path, which raises the right error.

use super::direct_call::{self, DirectEntry};
use super::hook::{self, runtime, Runtime};
use super::Optimisation;
use crate::cpython::ffi::{self, read, write, InterpreterFrame};
use crate::cpython::{layout, Layout};
use pyo3_ffi::*;
use std::os::raw::{c_int, c_void};

/// `GET_YIELD_FROM_ITER` in a generator: a generator stays itself, a coroutine too where
/// `takes_coroutines` (a `types.coroutine` generator) and is an error elsewhere, anything else
/// becomes its iterator. Takes `iterable`; new reference or NULL.
///
/// # Safety
/// GIL held; `iterable` is an owned reference.
pub unsafe extern "C" fn fj_get_yield_from_iter(
    iterable: *mut PyObject,
    takes_coroutines: c_int,
) -> *mut PyObject {
    // SAFETY: `iterable` is an owned reference.
    unsafe {
        let ty = Py_TYPE(iterable);
        if ty == std::ptr::addr_of_mut!(PyCoro_Type) && takes_coroutines != 0 {
            return iterable;
        }
        if ty == std::ptr::addr_of_mut!(PyCoro_Type) {
            Py_DECREF(iterable);
            PyErr_SetString(
                PyExc_TypeError,
                c"cannot 'yield from' a coroutine object in a non-coroutine generator".as_ptr(),
            );
            return std::ptr::null_mut();
        }
        if ty == std::ptr::addr_of_mut!(PyGen_Type) {
            return iterable;
        }
        let it = fj_get_iter(iterable);
        Py_DECREF(iterable);
        it
    }
}

/// `iter(v)` (`GET_ITER`; `PyObject_GetIter`). An instance of a class whose `__iter__` is a
/// Python function compiled for direct calls gets it called directly (for a generator
/// function, that makes the generator without running any code), as `slot_tp_iter` would
/// call it (knob `direct-iter-calls`). Borrows `v`; new reference or NULL.
///
/// # Safety
/// GIL held; `v` is live.
pub unsafe extern "C" fn fj_get_iter(v: *mut PyObject) -> *mut PyObject {
    // SAFETY: as the caller's.
    unsafe {
        match iter_through_compiled_method(v) {
            Some(it) => it,
            None => PyObject_GetIter(v),
        }
    }
}

/// `slot_tp_iter(v)` through a direct call, when the class's `__iter__` is a compiled Python
/// function: for a heap type, a Python function as `__iter__` means its `tp_iter` is
/// `slot_tp_iter` (CPython keeps the slot in step with the attribute). The result is checked
/// as `PyObject_GetIter` checks it. None (nothing done) otherwise.
#[inline(always)]
unsafe fn iter_through_compiled_method(v: *mut PyObject) -> Option<*mut PyObject> {
    static ITER: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: `v` is live; `_PyType_Lookup` returns a borrowed reference (or NULL) without
    // setting an error; the references handed to the call are new ones.
    unsafe {
        let ty = Py_TYPE(v);
        if (*ty).tp_flags & Py_TPFLAGS_HEAPTYPE == 0
            || !runtime().options.enabled(Optimisation::DirectIterCalls)
        {
            return None;
        }
        let name = super::helpers::interned(&ITER, c"__iter__");
        if name.is_null() {
            PyErr_Clear();
            return None;
        }
        let method = ffi::_PyType_Lookup(ty, name);
        if method.is_null() || Py_TYPE(method) != std::ptr::addr_of_mut!(PyFunction_Type) {
            return None;
        }
        Py_INCREF(method);
        Py_INCREF(v);
        let args = [v];
        let Some(it) = direct_call::call_compiled(method, args.as_ptr(), 1) else {
            Py_DECREF(v);
            Py_DECREF(method);
            return None;
        };
        if !it.is_null() && PyIter_Check(it) == 0 {
            PyErr_Format(
                PyExc_TypeError,
                c"iter() returned non-iterator of type '%.100s'".as_ptr(),
                (*Py_TYPE(it)).tp_name,
            );
            Py_DECREF(it);
            return Some(std::ptr::null_mut());
        }
        Some(it)
    }
}

/// `next(gen)` for `FOR_ITER` when `gen` is a generator whose compiled code can resume it
/// (what `gen_iternext` does, directly): Some(item), Some(the exhausted marker), Some(NULL)
/// with an error, or None (nothing done) for any other generator.
///
/// # Safety
/// GIL held; `gen` is a live generator.
pub(super) unsafe fn next_of_compiled(gen: *mut PyObject) -> Option<*mut PyObject> {
    // SAFETY: as the caller's; `None` is immortal enough to pass a new reference to.
    unsafe {
        let none = Py_None();
        Py_INCREF(none);
        let mut out = std::ptr::null_mut();
        match resume_compiled(gen, none, &mut out) {
            None => {
                Py_DECREF(none);
                None
            }
            Some(1) => Some(out),
            Some(0) => {
                Py_DECREF(out);
                Some(super::helpers::EXHAUSTED_MARKER)
            }
            Some(_) => Some(std::ptr::null_mut()),
        }
    }
}

/// `GET_AWAITABLE from`: what `await` waits on. A coroutine (or a generator marked with
/// `types.coroutine`) is itself, unless it is suspended in an `await` of its own (then it is
/// being awaited already); anything else is what its `__await__` returns, which must be an
/// iterator. `from` names where the object came from for the error when it has no
/// `__await__`: 0 an `await`, 1 `__aenter__`, 2 `__aexit__` (`format_awaitable_error`).
/// Takes `iterable`; new reference or NULL.
///
/// # Safety
/// GIL held; `iterable` is an owned reference.
pub unsafe extern "C" fn fj_get_awaitable(iterable: *mut PyObject, from: c_int) -> *mut PyObject {
    // SAFETY: `iterable` is an owned reference; type slots are read as CPython reads them.
    unsafe {
        let l = layout();
        if Py_TYPE(iterable) == std::ptr::addr_of_mut!(PyCoro_Type) {
            if awaiting(l, iterable) {
                Py_DECREF(iterable);
                PyErr_SetString(
                    PyExc_RuntimeError,
                    c"coroutine is being awaited already".as_ptr(),
                );
                return std::ptr::null_mut();
            }
            return iterable;
        }
        let res = awaitable_iter(l, iterable);
        if res.is_null() && !has_await(Py_TYPE(iterable)) {
            let what = match from {
                1 => Some(c"'async with' received an object from __aenter__ that does not implement __await__: %.100s"),
                2 => Some(c"'async with' received an object from __aexit__ that does not implement __await__: %.100s"),
                _ => None,
            };
            if let Some(what) = what {
                PyErr_Format(PyExc_TypeError, what.as_ptr(), (*Py_TYPE(iterable)).tp_name);
            }
        }
        Py_DECREF(iterable);
        res
    }
}

/// `ASYNC_GEN_WRAP`: `_PyAsyncGenValueWrapperNew(v)`, which CPython does not export: a new
/// `_PyAsyncGenWrappedValue` holding `v`, allocated as CPython allocates it when its free
/// list is empty (its deallocator puts it on the free list or frees it, either way right for
/// an object made here). Takes `v`; new reference or NULL.
///
/// # Safety
/// GIL held; `v` is an owned reference; [`async_gen_wrap_known`] holds.
pub unsafe extern "C" fn fj_async_gen_wrap(v: *mut PyObject) -> *mut PyObject {
    // SAFETY: the type's instances are an object header and one reference (checked by
    // `async_gen_wrap_known` before any code using this was compiled); the new object's
    // field is set before the collector can see it.
    unsafe {
        let ty = std::ptr::addr_of_mut!(ffi::_PyAsyncGenWrappedValue_Type);
        let o: *mut PyObject = PyObject_GC_New(ty);
        if o.is_null() {
            Py_DECREF(v);
            return o;
        }
        *(o as *mut *mut PyObject).add(WRAPPED_VALUE_WORD) = v;
        PyObject_GC_Track(o as *mut c_void);
        o
    }
}

/// The word of a `_PyAsyncGenWrappedValue` that holds its value (`agw_val`, after the
/// two-word object header).
const WRAPPED_VALUE_WORD: usize = 2;

/// Whether `_PyAsyncGenWrappedValue` is the object header and one reference that
/// [`fj_async_gen_wrap`] makes (its size is not in any header; async generators are refused
/// when it is not).
pub(super) fn async_gen_wrap_known() -> bool {
    // SAFETY: reading a field of a static type object.
    let size = unsafe { (*std::ptr::addr_of!(ffi::_PyAsyncGenWrappedValue_Type)).tp_basicsize };
    size as usize == (WRAPPED_VALUE_WORD + 1) * std::mem::size_of::<usize>()
        && std::mem::size_of::<PyObject>() == WRAPPED_VALUE_WORD * std::mem::size_of::<usize>()
}

/// `GET_AITER`: `obj.__aiter__()` (through the type's `am_aiter`), which must have an
/// `__anext__`. Takes `obj`; new reference or NULL, with the interpreter's TypeErrors.
///
/// # Safety
/// GIL held; `obj` is an owned reference.
pub unsafe extern "C" fn fj_get_aiter(obj: *mut PyObject) -> *mut PyObject {
    // SAFETY: `obj` is an owned reference; type slots are read as CPython reads them.
    unsafe {
        let ty = Py_TYPE(obj);
        let slots = (*ty).tp_as_async;
        let getter = if slots.is_null() {
            None
        } else {
            (*slots).am_aiter
        };
        let Some(getter) = getter else {
            PyErr_Format(
                PyExc_TypeError,
                c"'async for' requires an object with __aiter__ method, got %.100s".as_ptr(),
                (*ty).tp_name,
            );
            Py_DECREF(obj);
            return std::ptr::null_mut();
        };
        let iter = getter(obj);
        Py_DECREF(obj);
        if iter.is_null() {
            return iter;
        }
        if anext_slot(Py_TYPE(iter)).is_none() {
            PyErr_Format(
                PyExc_TypeError,
                c"'async for' received an object from __aiter__ that does not implement __anext__: %.100s".as_ptr(),
                (*Py_TYPE(iter)).tp_name,
            );
            Py_DECREF(iter);
            return std::ptr::null_mut();
        }
        iter
    }
}

/// `GET_ANEXT`: what `async for` awaits for its next item: `aiter.__anext__()` made
/// awaitable (an async generator's own `__anext__` result as it is). Borrows `aiter`; new
/// reference or NULL, with the interpreter's TypeErrors.
///
/// # Safety
/// GIL held; `aiter` is live.
pub unsafe extern "C" fn fj_get_anext(aiter: *mut PyObject) -> *mut PyObject {
    // SAFETY: `aiter` is live; type slots are read as CPython reads them.
    unsafe {
        let ty = Py_TYPE(aiter);
        let Some(getter) = anext_slot(ty) else {
            PyErr_Format(
                PyExc_TypeError,
                c"'async for' requires an iterator with __anext__ method, got %.100s".as_ptr(),
                (*ty).tp_name,
            );
            return std::ptr::null_mut();
        };
        let next = getter(aiter);
        if ty == std::ptr::addr_of_mut!(PyAsyncGen_Type) || next.is_null() {
            return next;
        }
        let awaitable = awaitable_iter(layout(), next);
        if awaitable.is_null() {
            ffi::_PyErr_FormatFromCause(
                PyExc_TypeError,
                c"'async for' received an invalid object from __anext__: %.100s".as_ptr(),
                (*Py_TYPE(next)).tp_name,
            );
        }
        Py_DECREF(next);
        awaitable
    }
}

/// The type's `am_anext` slot (`__anext__`), if it has one.
unsafe fn anext_slot(ty: *mut PyTypeObject) -> Option<unaryfunc> {
    // SAFETY: `ty` is a live type.
    unsafe {
        let slots = (*ty).tp_as_async;
        if slots.is_null() {
            None
        } else {
            (*slots).am_anext
        }
    }
}

/// Whether instances of `ty` have an `__await__` (`am_await`).
unsafe fn has_await(ty: *mut PyTypeObject) -> bool {
    // SAFETY: `ty` is a live type.
    unsafe {
        let slots = (*ty).tp_as_async;
        !slots.is_null() && (*slots).am_await.is_some()
    }
}

/// `_PyCoro_GetAwaitableIter(o)`: a coroutine or `types.coroutine` generator itself,
/// anything else what its `__await__` returns, checked to be an iterator and not a
/// coroutine. Borrows `o`; new reference or NULL.
unsafe fn awaitable_iter(l: &Layout, o: *mut PyObject) -> *mut PyObject {
    // SAFETY: `o` is live; type slots are read as CPython reads them.
    unsafe {
        if Py_TYPE(o) == std::ptr::addr_of_mut!(PyCoro_Type) || is_iterable_coroutine(l, o) {
            Py_INCREF(o);
            return o;
        }
        let ty = Py_TYPE(o);
        if !has_await(ty) {
            PyErr_Format(
                PyExc_TypeError,
                c"object %.100s can't be used in 'await' expression".as_ptr(),
                (*ty).tp_name,
            );
            return std::ptr::null_mut();
        }
        let getter = (*(*ty).tp_as_async).am_await.expect("checked by has_await");
        let res = getter(o);
        if res.is_null() {
            return res;
        }
        if Py_TYPE(res) == std::ptr::addr_of_mut!(PyCoro_Type) || is_iterable_coroutine(l, res) {
            PyErr_SetString(
                PyExc_TypeError,
                c"__await__() returned a coroutine".as_ptr(),
            );
            Py_DECREF(res);
            return std::ptr::null_mut();
        }
        if PyIter_Check(res) == 0 {
            PyErr_Format(
                PyExc_TypeError,
                c"__await__() returned non-iterator of type '%.100s'".as_ptr(),
                (*Py_TYPE(res)).tp_name,
            );
            Py_DECREF(res);
            return std::ptr::null_mut();
        }
        res
    }
}

/// A generator made by a function decorated with `types.coroutine` (`gen_is_coroutine`).
unsafe fn is_iterable_coroutine(l: &Layout, o: *mut PyObject) -> bool {
    // SAFETY: `o` is live; a generator's code is live.
    unsafe {
        Py_TYPE(o) == std::ptr::addr_of_mut!(PyGen_Type)
            && ffi::code::flags(read(o as _, l.gen_code)) & ffi::CO_ITERABLE_COROUTINE != 0
    }
}

/// `_PyGen_yf(coro) != NULL`: the coroutine is suspended inside an `await` (the instruction
/// after its suspension point is a `RESUME` with oparg 2 or 3).
unsafe fn awaiting(l: &Layout, coro: *mut PyObject) -> bool {
    // SAFETY: `coro` is a live coroutine; a suspended frame's `prev_instr` points into its
    // code, before at least one more instruction.
    unsafe {
        let state = i64::from(read::<i8>(coro as _, l.gen_frame_state));
        if state == l.frame_state_created || state >= l.frame_state_cleared {
            return false;
        }
        let frame = (coro as *mut u8).offset(l.gen_iframe as isize) as *mut InterpreterFrame;
        let next = *ffi::frame::prev_instr(frame).add(1);
        let raw = (next & 0xff) as u8;
        let op = match crate::cpython::opcode_tables().deopt[raw as usize] {
            0 => raw,
            generic => generic,
        };
        op == crate::cpython::opcodes::RESUME && next >> 8 >= 2
    }
}

/// `SEND`: `receiver.send(v)` (`next()` for None); the value it yielded or returned goes to
/// `*out`. A generator or coroutine whose code is compiled and can resume its frame where it
/// stands is resumed here directly; anything else through `PyIter_Send`, as the interpreter
/// does. Takes `v`; returns 1 (yielded), 0 (returned) or -1 (error, nothing written).
///
/// # Safety
/// GIL held; `receiver` is live, `v` an owned reference, `out` writable.
pub unsafe extern "C" fn fj_send(
    receiver: *mut PyObject,
    v: *mut PyObject,
    out: *mut *mut PyObject,
) -> c_int {
    // SAFETY: `receiver` is live, `v` owned, `out` a writable stack slot of the frame.
    unsafe {
        let ty = Py_TYPE(receiver);
        if ty == std::ptr::addr_of_mut!(PyCoro_Type) || ty == std::ptr::addr_of_mut!(PyGen_Type) {
            if let Some(status) = resume_compiled(receiver, v, out) {
                return status;
            }
        }
        let mut result = std::ptr::null_mut();
        let status = PyIter_Send(receiver, v, &mut result);
        Py_DECREF(v);
        match status {
            PySendResult::PYGEN_ERROR => -1,
            PySendResult::PYGEN_RETURN => {
                *out = result;
                0
            }
            PySendResult::PYGEN_NEXT => {
                *out = result;
                1
            }
        }
    }
}

/// `gen_send_ex2(gen, v)` around a direct entry into the generator's native code. None (and
/// nothing taken) when the generator is not one compiled code can resume here and now.
#[inline(always)]
unsafe fn resume_compiled(
    gen: *mut PyObject,
    v: *mut PyObject,
    out: *mut *mut PyObject,
) -> Option<c_int> {
    // SAFETY: `gen` is a live generator or coroutine, `v` owned; the frame embedded in it is
    // read and written at the offsets the layout probe took from the interpreter's headers.
    unsafe {
        let l = layout();
        let state = i64::from(read::<i8>(gen as _, l.gen_frame_state));
        let fresh = state == l.frame_state_created;
        if !(state == l.frame_state_suspended || fresh && v == Py_None()) {
            return None;
        }
        let rt = runtime();
        if !rt.options.enabled(Optimisation::DirectResume) {
            return None;
        }
        let f = (gen as *mut u8).offset(l.gen_iframe as isize) as *mut InterpreterFrame;
        let code: *mut PyObject = read(f as _, l.frame_code);
        let native: *const _ = hook::code_state_in(l, rt, code)?.native.as_deref()?;
        let ts = ffi::current_tstate(l);
        if !(*native).resumes(l, f, code) || !direct_call::can_enter(l, ts) {
            return None;
        }
        rt.stats.direct_resumes += 1;
        Some(run_resumed(l, rt, ts, gen, f, &*native, v, out))
    }
}

/// The body of `gen_send_ex2` once it is settled that native code resumes the frame: push
/// the sent value, chain the generator's exception state, run, then unchain, and release the
/// frame if the generator finished.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn run_resumed(
    l: &Layout,
    rt: &mut Runtime,
    ts: *mut PyThreadState,
    gen: *mut PyObject,
    f: *mut InterpreterFrame,
    native: &super::compile::NativeCode,
    v: *mut PyObject,
    out: *mut *mut PyObject,
) -> c_int {
    // SAFETY: as for `resume_compiled`; the frame is suspended (or fresh), so its value stack
    // has room for the sent value.
    unsafe {
        let g = gen as *mut c_void;
        // Fields through `l`, not `ffi::frame`: each of those asks the layout's OnceLock again,
        // and this runs once per level of every `yield from`/`await` chain.
        let top: i32 = read(f as _, l.frame_stacktop);
        *direct_call::localsplus(l, f).add(top as usize) = v;
        write(f as _, l.frame_stacktop, top + 1);
        let exc_info: *mut c_void = read(ts as _, l.tstate_exc_info);
        write(g, l.gen_exc_previous, exc_info);
        write(
            ts as _,
            l.tstate_exc_info,
            (gen as *mut u8).offset(l.gen_exc_state as isize),
        );
        write(g, l.gen_frame_state, l.frame_state_executing as i8);
        let result = hook::run_native(l, rt, ts, f, native);
        let state = i64::from(read::<i8>(g, l.gen_frame_state));
        write(
            ts as _,
            l.tstate_exc_info,
            read::<*mut c_void>(g, l.gen_exc_previous),
        );
        write(g, l.gen_exc_previous, std::ptr::null_mut::<c_void>());
        write(
            f as _,
            l.frame_previous,
            std::ptr::null_mut::<InterpreterFrame>(),
        );
        if !result.is_null() && state == l.frame_state_suspended {
            *out = result;
            return 1;
        }
        if result.is_null() && PyErr_ExceptionMatches(PyExc_StopIteration) != 0 {
            let msg = if Py_TYPE(gen) == std::ptr::addr_of_mut!(PyCoro_Type) {
                c"coroutine raised StopIteration"
            } else {
                c"generator raised StopIteration"
            };
            ffi::_PyErr_FormatFromCause(PyExc_RuntimeError, c"%s".as_ptr(), msg.as_ptr());
        }
        finish(l, g, f);
        if result.is_null() {
            return -1;
        }
        *out = result;
        0
    }
}

/// A generator that returned or raised: its exception state and frame are released
/// (`_PyErr_ClearExcState`, `FRAME_CLEARED`, `_PyFrame_Clear`).
unsafe fn finish(l: &Layout, g: *mut c_void, f: *mut InterpreterFrame) {
    // SAFETY: `g` is a live generator whose frame `f` has stopped for good.
    unsafe {
        let exc: *mut PyObject = read(g, l.gen_exc_value);
        write(g, l.gen_exc_value, std::ptr::null_mut::<PyObject>());
        Py_XDECREF(exc);
        write(g, l.gen_frame_state, l.frame_state_cleared as i8);
        direct_call::clear_frame(l, f);
    }
}

/// What a direct call of a compiled generator or coroutine function makes, instead of
/// running it: the generator object, with the call's frame inside it as `RETURN_GENERATOR`
/// leaves it (`_Py_MakeCoro`, then `_PyFrame_Copy`). The frame takes the reference to
/// `function`, and `fill` moves the arguments into its locals. NULL with MemoryError, having
/// taken nothing, if the allocation fails.
///
/// # Safety
/// GIL held; `ty` is `PyGen_Type` or `PyCoro_Type` (with coroutine origin tracking off),
/// `function` (owned) a function whose code `code` is such a generator's, starting with
/// `RETURN_GENERATOR`.
pub(super) unsafe fn make_generator(
    l: &Layout,
    ty: *mut PyTypeObject,
    function: *mut PyObject,
    code: *mut PyObject,
    direct: &DirectEntry,
    fill: impl FnOnce(*mut InterpreterFrame),
) -> *mut PyObject {
    // SAFETY: the object is allocated with room for the code's frame, and every field
    // `_Py_MakeCoro` sets is set before the collector can see it.
    unsafe {
        let items = direct.slots - l.frame_specials_slots as usize;
        let gen: *mut PyObject = PyObject_GC_NewVar(ty, items as Py_ssize_t);
        if gen.is_null() {
            return gen;
        }
        let g = gen as *mut c_void;
        Py_INCREF(code);
        write(g, l.gen_code, code);
        write(g, l.gen_weakreflist, std::ptr::null_mut::<PyObject>());
        let name: *mut PyObject = read(function as _, l.function_name);
        let qualname: *mut PyObject = read(function as _, l.function_qualname);
        Py_INCREF(name);
        Py_INCREF(qualname);
        write(g, l.gen_name, name);
        write(g, l.gen_qualname, qualname);
        write(g, l.gen_exc_value, std::ptr::null_mut::<PyObject>());
        write(g, l.gen_exc_previous, std::ptr::null_mut::<c_void>());
        write(
            g,
            l.gen_origin_or_finalizer,
            std::ptr::null_mut::<PyObject>(),
        );
        write(g, l.gen_hooks_inited, 0u8);
        write(g, l.gen_closed, 0u8);
        write(g, l.gen_running_async, 0u8);
        let f = (gen as *mut u8).offset(l.gen_iframe as isize) as *mut InterpreterFrame;
        direct_call::init_frame(l, f, function, code, direct.nlocalsplus);
        fill(f);
        // Where RETURN_GENERATOR leaves it: at that instruction (the first), owned by the
        // generator, which has not started.
        ffi::frame::set_prev_instr(f, ffi::code::first_instr(code));
        write(f as _, l.frame_owner, l.frame_owned_by_generator as i8);
        write(g, l.gen_frame_state, l.frame_state_created as i8);
        PyObject_GC_Track(g);
        gen
    }
}
