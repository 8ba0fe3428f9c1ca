//! Raw access to CPython 3.11 internals that `pyo3_ffi` does not cover: the frame-evaluation
//! hook API, code-object extras, and field accessors driven by the probed [`Layout`].
//!
//! Every accessor here is `unsafe`: the caller promises the pointer is a live object of the
//! right kind. They are the only place (with `runtime::codemem`) where ferrojit reads CPython
//! memory by offset.

#![allow(non_camel_case_types)]

use super::layout;
use pyo3_ffi::{PyObject, PyThreadState, PyTypeObject};
use std::os::raw::{c_char, c_int, c_void};

/// CPython's `_PyInterpreterFrame`; opaque, read through [`Layout`] offsets.
#[repr(C)]
pub struct InterpreterFrame {
    _private: [u8; 0],
}

/// The PEP 523 hook's type in 3.11.
pub type EvalFrameFunc =
    unsafe extern "C" fn(*mut PyThreadState, *mut InterpreterFrame, c_int) -> *mut PyObject;

extern "C" {
    /// libpython's `_PyRuntimeState` (exported data; read at layout offsets only).
    static _PyRuntime: u8;
    pub fn _PyEval_EvalFrameDefault(
        ts: *mut PyThreadState,
        f: *mut InterpreterFrame,
        exc: c_int,
    ) -> *mut PyObject;
    pub fn _PyInterpreterState_GetEvalFrameFunc(
        interp: *mut pyo3_ffi::PyInterpreterState,
    ) -> EvalFrameFunc;
    pub fn _PyInterpreterState_SetEvalFrameFunc(
        interp: *mut pyo3_ffi::PyInterpreterState,
        f: EvalFrameFunc,
    );
    pub fn _PyEval_RequestCodeExtraIndex(free: unsafe extern "C" fn(*mut c_void)) -> isize;
    /// Whether the calling thread is the main thread of the main interpreter: the one that
    /// runs pending calls and signal handlers.
    pub fn _PyOS_IsMainThread() -> c_int;
    pub fn _PyCode_GetExtra(code: *mut PyObject, index: isize, extra: *mut *mut c_void) -> c_int;
    pub fn _PyCode_SetExtra(code: *mut PyObject, index: isize, extra: *mut c_void) -> c_int;
    pub fn _Py_CheckRecursiveCall(ts: *mut PyThreadState, where_: *const c_char) -> c_int;
    pub fn PyTraceBack_Here(f: *mut PyObject) -> c_int;
    pub fn _Py_Dealloc(o: *mut PyObject);
    /// The attribute `name` of type `ty` along its MRO; borrowed, NULL without an error.
    pub fn _PyType_Lookup(ty: *mut PyTypeObject, name: *mut PyObject) -> *mut PyObject;
    pub fn _PyErr_FormatFromCause(
        exception: *mut PyObject,
        format: *const c_char,
        ...
    ) -> *mut PyObject;
    pub static mut PyMethod_Type: PyTypeObject;
    /// The type of the values an async generator yields on their way to its `asend`
    /// (`ASYNC_GEN_WRAP`): an object header and one reference.
    pub static mut _PyAsyncGenWrappedValue_Type: PyTypeObject;
    pub fn PyMethod_Function(m: *mut PyObject) -> *mut PyObject;
    pub fn PyMethod_Self(m: *mut PyObject) -> *mut PyObject;
    pub fn _PyList_Extend(list: *mut PyObject, iterable: *mut PyObject) -> *mut PyObject;
    pub fn _PySet_Update(set: *mut PyObject, iterable: *mut PyObject) -> c_int;
    pub fn _PyDict_MergeEx(dict: *mut PyObject, other: *mut PyObject, override_: c_int) -> c_int;
    pub fn _PyObject_FunctionStr(func: *mut PyObject) -> *mut PyObject;
    pub fn _PyObject_LookupSpecial(o: *mut PyObject, name: *mut PyObject) -> *mut PyObject;
    pub fn _PyObject_LookupAttr(
        o: *mut PyObject,
        name: *mut PyObject,
        out: *mut *mut PyObject,
    ) -> c_int;
    pub fn _PyModuleSpec_IsInitializing(spec: *mut PyObject) -> c_int;
}

/// Reads a value of type `T` at `base + offset`.
///
/// # Safety
/// `base + offset` must be a valid, aligned `T` inside a live object.
#[inline]
pub unsafe fn read<T: Copy>(base: *const c_void, offset: i64) -> T {
    // SAFETY: the caller guarantees the address is a valid T.
    unsafe { *((base as *const u8).offset(offset as isize) as *const T) }
}

/// The thread state of the thread holding the GIL (`_PyThreadState_GET()`: one load of
/// `_PyRuntime.gilstate.tstate_current`, at the offset the layout probe took), without the
/// call and the NULL check of `PyThreadState_Get`.
///
/// # Safety
/// The GIL is held (so the word names a live thread state).
#[inline(always)]
pub unsafe fn current_tstate(l: &super::Layout) -> *mut PyThreadState {
    // SAFETY: `_PyRuntime` is libpython's exported runtime state and the offset that of
    // `gilstate.tstate_current` in it: an aligned pointer-sized word that only the thread
    // holding the GIL changes; a plain load is the relaxed atomic load `_PyThreadState_GET`
    // makes.
    unsafe {
        let runtime = std::ptr::addr_of!(_PyRuntime);
        *(runtime.offset(l.pyruntime_tstate_current as isize) as *const *mut PyThreadState)
    }
}

/// Writes `value` at `base + offset`.
///
/// # Safety
/// `base + offset` must be a valid, aligned, writable `T` inside a live object.
#[inline]
pub unsafe fn write<T: Copy>(base: *mut c_void, offset: i64, value: T) {
    // SAFETY: the caller guarantees the address is a valid T.
    unsafe { *((base as *mut u8).offset(offset as isize) as *mut T) = value }
}

/// Typed views of a frame's fields.
pub mod frame {
    use super::*;

    #[inline]
    pub unsafe fn code(f: *mut InterpreterFrame) -> *mut PyObject {
        unsafe { read(f as _, layout().frame_code) }
    }
    #[inline]
    pub unsafe fn owner(f: *mut InterpreterFrame) -> i8 {
        unsafe { read(f as _, layout().frame_owner) }
    }
    #[inline]
    pub unsafe fn prev_instr(f: *mut InterpreterFrame) -> *mut u16 {
        unsafe { read(f as _, layout().frame_prev_instr) }
    }
    #[inline]
    pub unsafe fn set_prev_instr(f: *mut InterpreterFrame, p: *mut u16) {
        unsafe { write(f as _, layout().frame_prev_instr, p) }
    }
    #[inline]
    pub unsafe fn previous(f: *mut InterpreterFrame) -> *mut InterpreterFrame {
        unsafe { read(f as _, layout().frame_previous) }
    }
    #[inline]
    pub unsafe fn set_previous(f: *mut InterpreterFrame, p: *mut InterpreterFrame) {
        unsafe { write(f as _, layout().frame_previous, p) }
    }
    #[inline]
    pub unsafe fn stacktop(f: *mut InterpreterFrame) -> i32 {
        unsafe { read(f as _, layout().frame_stacktop) }
    }
    #[inline]
    pub unsafe fn set_stacktop(f: *mut InterpreterFrame, v: i32) {
        unsafe { write(f as _, layout().frame_stacktop, v) }
    }
}

/// Typed views of a code object's fields.
pub mod code {
    use super::*;

    #[inline]
    pub unsafe fn flags(co: *mut PyObject) -> i32 {
        unsafe { read(co as _, layout().code_flags) }
    }
    #[inline]
    pub unsafe fn first_instr(co: *mut PyObject) -> *mut u16 {
        unsafe { (co as *mut u8).offset(layout().code_adaptive as isize) as *mut u16 }
    }
    /// Whether the interpreter has quickened the code (its warm-up counter, counting up from
    /// -8 at calls and loop back-edges, reached 0): its instructions specialise from then on.
    #[inline]
    pub unsafe fn quickened(co: *mut PyObject) -> bool {
        unsafe { read::<i16>(co as _, layout().code_warmup) == 0 }
    }
    /// Makes the interpreter quicken the code at its next warm-up tick (the `RESUME` of a
    /// call, or a `JUMP_BACKWARD`): the counter is set one short of zero, unless it is zero
    /// already (quickened; 0 also means "never again" to `_PyCode_Warmup`).
    #[inline]
    pub unsafe fn quicken_at_next_tick(co: *mut PyObject) {
        unsafe {
            if read::<i16>(co as _, layout().code_warmup) != 0 {
                write::<i16>(co as _, layout().code_warmup, -1);
            }
        }
    }
    #[inline]
    pub unsafe fn nlocalsplus(co: *mut PyObject) -> i32 {
        unsafe { read(co as _, layout().code_nlocalsplus) }
    }
    #[inline]
    pub unsafe fn nlocals(co: *mut PyObject) -> i32 {
        unsafe { read(co as _, layout().code_nlocals) }
    }
    #[inline]
    pub unsafe fn argcount(co: *mut PyObject) -> i32 {
        unsafe { read(co as _, layout().code_argcount) }
    }
    #[inline]
    pub unsafe fn posonlyargcount(co: *mut PyObject) -> i32 {
        unsafe { read(co as _, layout().code_posonlyargcount) }
    }
    #[inline]
    pub unsafe fn kwonlyargcount(co: *mut PyObject) -> i32 {
        unsafe { read(co as _, layout().code_kwonlyargcount) }
    }
    /// The names of the locals, cells and free variables (a tuple, borrowed).
    #[inline]
    pub unsafe fn localsplusnames(co: *mut PyObject) -> *mut PyObject {
        unsafe { read(co as _, layout().code_localsplusnames) }
    }
    #[inline]
    pub unsafe fn stacksize(co: *mut PyObject) -> i32 {
        unsafe { read(co as _, layout().code_stacksize) }
    }
    #[inline]
    pub unsafe fn ncellvars(co: *mut PyObject) -> i32 {
        unsafe { read(co as _, layout().code_ncellvars) }
    }
    #[inline]
    pub unsafe fn nfreevars(co: *mut PyObject) -> i32 {
        unsafe { read(co as _, layout().code_nfreevars) }
    }
    #[inline]
    pub unsafe fn firsttraceable(co: *mut PyObject) -> i32 {
        unsafe { read(co as _, layout().code_firsttraceable) }
    }
    #[inline]
    pub unsafe fn consts(co: *mut PyObject) -> *mut PyObject {
        unsafe { read(co as _, layout().code_consts) }
    }
    #[inline]
    pub unsafe fn names(co: *mut PyObject) -> *mut PyObject {
        unsafe { read(co as _, layout().code_names) }
    }
}

/// Thread-state fields.
pub mod tstate {
    use super::*;

    #[inline]
    pub unsafe fn cframe(ts: *mut PyThreadState) -> *mut c_void {
        unsafe { read(ts as _, layout().tstate_cframe) }
    }
    #[inline]
    pub unsafe fn use_tracing(ts: *mut PyThreadState) -> bool {
        unsafe { read::<u8>(cframe(ts), layout().cframe_use_tracing) != 0 }
    }
    #[inline]
    pub unsafe fn current_frame(ts: *mut PyThreadState) -> *mut InterpreterFrame {
        unsafe { read(cframe(ts), layout().cframe_current_frame) }
    }
    #[inline]
    pub unsafe fn set_current_frame(ts: *mut PyThreadState, f: *mut InterpreterFrame) {
        unsafe { write(cframe(ts), layout().cframe_current_frame, f) }
    }
    #[inline]
    pub unsafe fn recursion_remaining(ts: *mut PyThreadState) -> *mut c_int {
        unsafe {
            (ts as *mut u8).offset(layout().tstate_recursion_remaining as isize) as *mut c_int
        }
    }
}

/// Type flags pattern matching reads (Include/object.h).
pub const TPFLAGS_SEQUENCE: u64 = 1 << 5;
pub const TPFLAGS_MAPPING: u64 = 1 << 6;
/// `_Py_TPFLAGS_MATCH_SELF`: builtins whose one positional sub-pattern matches the subject.
pub const TPFLAGS_MATCH_SELF: u64 = 1 << 22;

/// Code flags (Include/cpython/code.h).
pub const CO_GENERATOR: i32 = 0x20;
pub const CO_COROUTINE: i32 = 0x80;
pub const CO_ITERABLE_COROUTINE: i32 = 0x100;
pub const CO_ASYNC_GENERATOR: i32 = 0x200;
pub const CO_VARARGS: i32 = 0x04;
pub const CO_VARKEYWORDS: i32 = 0x08;

/// Address of `_Py_RefTotal`, the total of all reference counts that a `Py_REF_DEBUG`
/// interpreter (a debug build, such as Debian's `python3.11d`) keeps; 0 in a release build,
/// which has no such symbol. Looked up once, in the running process.
pub fn ref_total_address() -> usize {
    static ADDRESS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ADDRESS.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_Py_RefTotal".as_ptr()) as usize }
    })
}
