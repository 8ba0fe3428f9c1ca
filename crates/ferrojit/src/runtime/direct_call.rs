//! Direct calls from native code to native code.
//!
//! With a PEP 523 hook installed, CPython 3.11 no longer inlines Python-to-Python calls: every
//! call goes `PyObject_Vectorcall` -> `_PyFunction_Vectorcall` -> `_PyEval_Vector` (push and
//! initialise a frame, generic argument binding) -> the hook -> the code's native entry, and
//! back through `_PyEvalFrameClearAndPop`. When a compiled function calls a plain Python
//! function whose code is already compiled, with exactly its positional parameters, this module
//! does what those layers do, and only that: it pushes the callee's `_PyInterpreterFrame` on the
//! thread's data stack, initialises it as `_PyFrame_InitializeSpecials` does, moves the
//! arguments in, runs the native code (through [`hook::run_native`], so recursion limits,
//! frame linking, deopts and exceptions behave exactly as through the hook), then clears and
//! pops the frame as `_PyFrame_Clear` and `_PyThreadState_PopFrame` do. 3.11 does not export
//! those two, so the clear (including handing a frame object its data when `sys._getframe`
//! kept one alive) is written here against the probed layout.
//!
//! Trailing parameters the call leaves out are filled from the function's `__defaults__` as
//! `initialize_locals` does; keyword-only parameters from its `__kwdefaults__`, and a `*args`
//! or `**kwargs` parameter gets an empty tuple or a new empty dict (`direct-call-extras`).
//! Anything else (keywords at the call, extra positional arguments, a callee not compiled yet,
//! tracing on, another tool's hook, a full data-stack chunk) takes the ordinary path, so the
//! first calls of a function still reach the hook and its call counter.

use super::compile::NativeCode;
use super::generators;
use super::hook::{self, runtime, Runtime};
use crate::cpython::ffi::{self, read, write, InterpreterFrame};
use crate::cpython::{layout, Layout};
use crate::hir::{KnownCallee, KnownClass};
use pyo3_ffi::*;
use std::collections::BTreeMap;
use std::os::raw::c_void;
use std::sync::atomic::{AtomicU64, AtomicUsize};

/// Calls that machine code made itself (`calls-in-machine-code`), added to the statistics'
/// direct and native calls when they are read. The machine code adds one with a plain memory
/// increment, under the GIL.
pub static MACHINE_CODE_CALLS: AtomicU64 = AtomicU64::new(0);

/// What a direct call needs to know about its callee, worked out once when the callee is
/// compiled: it takes `nargs` positional parameters, then `kwonly` keyword-only ones (filled
/// from `__kwdefaults__`), then `*args` and `**kwargs` if it has them (given empty); a call may
/// pass fewer positional arguments when the function's defaults cover the rest. A generator or coroutine function (without cells, so that its first instruction
/// is `RETURN_GENERATOR`) is called directly by making its generator.
#[derive(Clone, Copy, Debug)]
pub struct DirectEntry {
    pub nargs: usize,
    /// Keyword-only parameters.
    pub kwonly: usize,
    /// A `*args` parameter.
    pub varargs: bool,
    /// A `**kwargs` parameter.
    pub varkw: bool,
    /// Any of the three above: one test on the hot path of a plain positional call.
    pub has_extras: bool,
    pub nlocalsplus: usize,
    /// Data-stack slots of its frame: specials, locals and value stack.
    pub slots: usize,
    /// For a generator or coroutine function: the type of what a call makes.
    pub makes: Option<*mut PyTypeObject>,
}

impl DirectEntry {
    /// The entry of `code`, if its calls can be direct.
    ///
    /// # Safety
    /// GIL held; `code` is a live code object.
    pub unsafe fn for_code(code: *mut PyObject) -> Option<DirectEntry> {
        // SAFETY: reading fields of a live code object.
        unsafe {
            let flags = ffi::code::flags(code);
            if flags & (ffi::CO_ITERABLE_COROUTINE | ffi::CO_ASYNC_GENERATOR) != 0 {
                return None;
            }
            let kwonly = ffi::code::kwonlyargcount(code) as usize;
            let (varargs, varkw) = (
                flags & ffi::CO_VARARGS != 0,
                flags & ffi::CO_VARKEYWORDS != 0,
            );
            let extras = kwonly != 0 || varargs || varkw;
            let generator = flags & (ffi::CO_GENERATOR | ffi::CO_COROUTINE) != 0;
            if extras
                && (generator
                    || kwonly > MAX_KWONLY
                    || !runtime()
                        .options
                        .enabled(super::Optimisation::DirectCallExtras))
            {
                return None;
            }
            let makes = if flags & ffi::CO_COROUTINE != 0 {
                Some(std::ptr::addr_of_mut!(PyCoro_Type))
            } else if flags & ffi::CO_GENERATOR != 0 {
                Some(std::ptr::addr_of_mut!(PyGen_Type))
            } else {
                None
            };
            let first = *ffi::code::first_instr(code) & 0xff;
            if makes.is_some() && first != u16::from(crate::cpython::opcodes::RETURN_GENERATOR) {
                return None;
            }
            let nlocalsplus = ffi::code::nlocalsplus(code) as usize;
            Some(DirectEntry {
                nargs: ffi::code::argcount(code) as usize,
                kwonly,
                varargs,
                varkw,
                has_extras: extras,
                nlocalsplus,
                slots: nlocalsplus
                    + ffi::code::stacksize(code) as usize
                    + layout().frame_specials_slots as usize,
                makes,
            })
        }
    }
}

/// The callees the calls of `info` may enter from machine code (`calls-in-machine-code`):
/// the functions of its `LOAD_METHOD` caches (the interpreter's and those its site caches
/// learnt) and `globals` (functions its `LOAD_GLOBAL`s find now), whose code is not refused
/// and takes exactly positional parameters, whether it has native code yet or not. Each one's
/// code gets its callee cell (`CodeState::callee_cell`), which its death clears.
///
/// # Safety
/// GIL held; the caches' methods and the globals are alive (their types and dict hold them).
pub unsafe fn known_callees(
    info: &crate::hir::builder::CodeInfo,
    globals: impl Iterator<Item = usize>,
) -> BTreeMap<usize, KnownCallee> {
    use crate::cpython::opcodes::{LOAD_METHOD_NO_DICT, LOAD_METHOD_WITH_VALUES};
    let cached = info.instrs.iter().filter_map(|ins| match ins.specialised {
        LOAD_METHOD_WITH_VALUES | LOAD_METHOD_NO_DICT => Some(ins.cache_u64(6) as usize),
        _ => None,
    });
    let learnt = info.poly.methods.values().flatten().map(|case| case.method);
    let mut callees = BTreeMap::new();
    for function in cached.chain(learnt).chain(globals) {
        if callees.contains_key(&function) {
            continue;
        }
        // SAFETY: the caller's contract.
        if let Some(callee) = unsafe { known_callee(function as *mut PyObject) } {
            callees.insert(function, callee);
        }
    }
    callees
}

/// The Python functions that `code`'s `LOAD_GLOBAL`s of a callable (the ones that push a NULL
/// first) find in `globals` now, by index in `co_names`.
///
/// # Safety
/// GIL held; `code` is a live code object and `globals` a live dict or NULL.
pub unsafe fn global_functions(
    code: *mut PyObject,
    globals: *mut PyObject,
    info: &crate::hir::builder::CodeInfo,
) -> BTreeMap<u32, usize> {
    // SAFETY: the caller's contract; a found value is live.
    unsafe {
        global_callables(code, globals, info, |value| {
            (Py_TYPE(value) == std::ptr::addr_of_mut!(PyFunction_Type)).then_some(value as usize)
        })
    }
}

/// The classes that `code`'s `LOAD_GLOBAL`s of a callable find in `globals` now and whose
/// calls can make their instance in machine code (see [`KnownClass`]), by index in
/// `co_names`. Their `__init__` functions are what the calls enter.
///
/// # Safety
/// GIL held; `code` is a live code object and `globals` a live dict or NULL.
pub unsafe fn global_classes(
    code: *mut PyObject,
    globals: *mut PyObject,
    info: &crate::hir::builder::CodeInfo,
) -> BTreeMap<u32, KnownClass> {
    // SAFETY: the caller's contract; a found value is live.
    unsafe { global_callables(code, globals, info, |value| known_class(value)) }
}

/// What `pick` makes of the values that `code`'s `LOAD_GLOBAL`s of a callable find in
/// `globals` now, by index in `co_names`.
unsafe fn global_callables<T>(
    code: *mut PyObject,
    globals: *mut PyObject,
    info: &crate::hir::builder::CodeInfo,
    pick: impl Fn(*mut PyObject) -> Option<T>,
) -> BTreeMap<u32, T> {
    use crate::cpython::opcodes::LOAD_GLOBAL;
    let mut found = BTreeMap::new();
    // SAFETY: the caller's contract; the names are the code's tuple of str.
    unsafe {
        if globals.is_null() || PyDict_CheckExact(globals) == 0 {
            return found;
        }
        let names = ffi::code::names(code);
        for ins in info
            .instrs
            .iter()
            .filter(|i| i.op == LOAD_GLOBAL && i.arg & 1 == 1)
        {
            let index = ins.arg >> 1;
            let value = PyDict_GetItem(globals, PyTuple_GET_ITEM(names, index as isize));
            if let Some(picked) = (!value.is_null()).then(|| pick(value)).flatten() {
                found.insert(index, picked);
            }
        }
    }
    found
}

/// `value` as a [`KnownClass`], if it is one.
unsafe fn known_class(value: *mut PyObject) -> Option<KnownClass> {
    // SAFETY: `value` is live; a type's fields are read once its metatype is `type`.
    unsafe {
        if Py_TYPE(value) != std::ptr::addr_of_mut!(PyType_Type) {
            return None;
        }
        let ty = value as *mut PyTypeObject;
        let object_new = (*std::ptr::addr_of!(PyBaseObject_Type))
            .tp_new
            .map(|f| f as usize);
        if (*ty).tp_flags & Py_TPFLAGS_HEAPTYPE == 0
            || (*ty).tp_new.map(|f| f as usize) != object_new
        {
            return None;
        }
        let version = super::attr_cache::valid_version(ty);
        let init = ffi::_PyType_Lookup(ty, init_name()?);
        // The lookup may have given the type its version; it must not have changed it.
        if version == 0
            || super::attr_cache::valid_version(ty) != version
            || init.is_null()
            || Py_TYPE(init) != std::ptr::addr_of_mut!(PyFunction_Type)
        {
            return None;
        }
        let name = std::ffi::CStr::from_ptr((*ty).tp_name).to_string_lossy();
        Some(KnownClass {
            name: name.rsplit('.').next().unwrap_or_default().to_string(),
            ty: ty as usize,
            version,
            init: init as usize,
        })
    }
}

/// `object.__new__(ty)` for a call of a [`KnownClass`] made in machine code: the new instance,
/// or NULL with an exception set (an abstract class, no memory).
///
/// # Safety
/// GIL held; `ty` is a live type whose `tp_new` is `object.__new__`.
pub unsafe extern "C" fn fj_new_instance(ty: *mut PyTypeObject) -> *mut PyObject {
    // SAFETY: the caller's contract.
    unsafe {
        let Some(new) = (*std::ptr::addr_of!(PyBaseObject_Type)).tp_new else {
            PyErr_SetString(PyExc_SystemError, c"object.__new__ missing".as_ptr());
            return std::ptr::null_mut();
        };
        let no_args = PyTuple_New(0);
        if no_args.is_null() {
            return no_args;
        }
        let obj = new(ty, no_args, std::ptr::null_mut());
        Py_DECREF(no_args);
        obj
    }
}

/// The end of a class call made in machine code whose `__init__` returned `result`, not None:
/// the interpreter's TypeError; releases `result` and the instance `obj`. Returns NULL.
///
/// # Safety
/// GIL held; `result` and `obj` are owned references.
pub unsafe extern "C" fn fj_init_returned(
    result: *mut PyObject,
    obj: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: the caller's contract.
    unsafe {
        init_not_none(result);
        Py_DECREF(obj);
        std::ptr::null_mut()
    }
}

/// Sets `__init__`'s TypeError for its result `result` (not None) and releases it.
unsafe fn init_not_none(result: *mut PyObject) {
    // SAFETY: `result` is an owned live reference.
    unsafe {
        PyErr_Format(
            PyExc_TypeError,
            c"__init__() should return None, not '%.200s'".as_ptr(),
            (*Py_TYPE(result)).tp_name,
        );
        Py_DECREF(result);
    }
}

/// [`known_callees`] for one function.
unsafe fn known_callee(function: *mut PyObject) -> Option<KnownCallee> {
    // SAFETY: `function` is alive (the caller's contract), and so are its code and the code's
    // state.
    unsafe {
        if Py_TYPE(function) != std::ptr::addr_of_mut!(PyFunction_Type) {
            return None;
        }
        let code: *mut PyObject = read(function as _, layout().function_code);
        let direct = DirectEntry::for_code(code)?;
        if direct.has_extras || direct.makes.is_some() {
            return None;
        }
        let state = hook::code_state(code)?;
        if state.refused.is_some() {
            return None;
        }
        // The cell names the state's `native` word, whose address holds while the code lives.
        let native_at = std::ptr::addr_of!(state.native) as usize;
        let cell = *state
            .callee_cell
            .get_or_insert_with(|| Box::leak(Box::new(AtomicUsize::new(native_at))));
        Some(KnownCallee {
            name: super::compile::location(code)
                .rsplit_once(':')
                .map(|(_, q)| q.to_string())
                .unwrap_or_default(),
            code: code as usize,
            // An `Option<Box<_>>` is one word: the box's address, or 0.
            native_cell: cell.as_ptr() as usize,
            nargs: direct.nargs as u32,
            params: parameter_names(code, direct.nargs)?,
            ndefaults: match read::<*mut PyObject>(function as _, layout().function_defaults) {
                d if d.is_null() => 0,
                d => PyTuple_GET_SIZE(d) as u32,
            },
            positional_only: ffi::code::posonlyargcount(code) as u32,
            nlocalsplus: direct.nlocalsplus as u32,
            slots: direct.slots as u32,
            first_prev_instr: ffi::code::first_instr(code) as usize - 2,
        })
    }
}

/// The names of the first `n` locals of `code` (its positional parameters), or None if one
/// is not a plain str.
unsafe fn parameter_names(code: *mut PyObject, n: usize) -> Option<Vec<String>> {
    // SAFETY: `code` is live; its names are a tuple of at least `n` items.
    unsafe {
        let names = ffi::code::localsplusnames(code);
        (0..n as isize)
            .map(|i| {
                let name = PyTuple_GET_ITEM(names, i);
                let mut size: Py_ssize_t = 0;
                let p = PyUnicode_AsUTF8AndSize(name, &mut size);
                if p.is_null() {
                    PyErr_Clear();
                    return None;
                }
                let bytes = std::slice::from_raw_parts(p as *const u8, size as usize);
                std::str::from_utf8(bytes).ok().map(str::to_string)
            })
            .collect()
    }
}

/// `_PyFrame_Clear` of a callee frame that the machine code of a direct call cannot clear
/// inline (`calls-in-machine-code`): one with a frame object, `f_locals` or a value stack.
///
/// # Safety
/// GIL held; `frame` is the thread's top frame, pushed by that call, no longer current.
pub unsafe extern "C" fn fj_clear_frame(frame: *mut InterpreterFrame) {
    // SAFETY: the caller's contract.
    unsafe { clear_frame(layout(), frame) }
}

/// Calls `function` with `args[..nargs]` through its native code when that is possible.
/// Returns None (nothing taken) when it is not; otherwise the call's result (NULL with an
/// exception set), having taken the references to `function` and to every argument.
///
/// # Safety
/// GIL held; `function` and `args[..nargs]` are owned references.
#[inline(always)]
pub unsafe fn call_compiled(
    function: *mut PyObject,
    args: *const *mut PyObject,
    nargs: usize,
) -> Option<*mut PyObject> {
    // SAFETY: the GIL is held and the objects are live (caller's contract); every field read
    // below is at an offset the layout probe took from the target interpreter's headers.
    unsafe {
        // One look at the layout and the runtime for the whole call: each look is an atomic
        // load the compiler cannot merge, and this path runs once a call.
        let l = layout();
        let rt = runtime();
        let callee = compiled_callee(l, rt, function)?;
        let (code, native, direct) = (callee.code, callee.native, callee.direct);
        // Missing trailing arguments come from `__defaults__`, as `initialize_locals` fills them.
        let missing = direct.nargs.checked_sub(nargs)?;
        let defaults = match missing {
            0 => std::ptr::null(),
            _ if !rt.options.enabled(super::Optimisation::DirectCallDefaults) => return None,
            _ => trailing_defaults(l, function, missing)?,
        };
        let ts = ffi::current_tstate(l);
        if !can_enter(l, ts) {
            return None;
        }
        if let Some(ty) = direct.makes {
            let call = (function, code, args, nargs, defaults, missing);
            return make_generator_directly(l, rt, ts, ty, direct, call);
        }
        if direct.has_extras {
            let call = (function, code, args, nargs, defaults, missing);
            return call_with_extras(l, rt, ts, callee, call);
        }
        // The hot path: no closure, no extras, nothing between the checks and the frame that
        // the compiler could leave out of line.
        let frame = enter_new_frame(l, rt, ts, callee)?;
        fill_locals(l, frame, args, nargs, defaults, missing, direct);
        Some(run_and_pop(l, rt, ts, frame, native))
    }
}

/// A direct call of a callee with keyword-only, `*args` or `**kwargs` parameters
/// (`direct-call-extras`), which a call without keywords leaves to their defaults. Out of
/// line: the plain positional call is the hot path.
#[cold]
#[inline(never)]
unsafe fn call_with_extras(
    l: &Layout,
    rt: &mut Runtime,
    ts: *mut PyThreadState,
    callee: Callee<'_>,
    call: DirectCall,
) -> Option<*mut PyObject> {
    let (function, code, args, nargs, defaults, missing) = call;
    // SAFETY: as for `call_compiled`, whose checks passed.
    unsafe {
        let direct = callee.direct;
        let extras = Extras::make(l, function, code, direct)?;
        let Some(frame) = enter_new_frame(l, rt, ts, callee) else {
            extras.release();
            return None;
        };
        fill_locals(l, frame, args, nargs, defaults, missing, direct);
        extras.fill(l, frame, direct.nargs);
        Some(run_and_pop(l, rt, ts, frame, callee.native))
    }
}

/// The callee of a direct call: the function, its code, its native code and direct entry.
#[derive(Clone, Copy)]
struct Callee<'a> {
    function: *mut PyObject,
    code: *mut PyObject,
    native: &'a NativeCode,
    direct: &'a DirectEntry,
}

/// `function` as the callee of a direct call: a Python function whose code has native code
/// with a direct entry; None for anything else (a builtin, a bound method, a function not
/// compiled yet or compiled without a direct entry).
#[inline(always)]
unsafe fn compiled_callee(
    l: &Layout,
    rt: &mut Runtime,
    function: *mut PyObject,
) -> Option<Callee<'static>> {
    // SAFETY: `function` is a live object (the caller's contract); a function's code is a live
    // code object, and the code state's native code lives as long as that code object.
    unsafe {
        if Py_TYPE(function) != std::ptr::addr_of_mut!(PyFunction_Type) {
            return None;
        }
        let code: *mut PyObject = read(function as _, l.function_code);
        let remembered = match rt.options.enabled(super::Optimisation::CalleeTable) {
            true => super::callees::get(function, code),
            false => None,
        };
        let native = match remembered {
            Some(native) => native,
            None => look_up_callee(l, rt, function, code)?,
        };
        let direct = native.direct.as_ref()?;
        Some(Callee {
            function,
            code,
            native,
            direct,
        })
    }
}

/// The native code of `function`'s `code`, from the code's state; remembered in the table of
/// callees when `callee-table` is on.
#[inline(never)]
unsafe fn look_up_callee(
    l: &Layout,
    rt: &mut Runtime,
    function: *mut PyObject,
    code: *mut PyObject,
) -> Option<&'static NativeCode> {
    // SAFETY: `code` is the live function's code object; its state's native code lives as
    // long as the code object.
    unsafe {
        rt.stats.callee_lookups += 1;
        let native: &'static NativeCode = hook::code_state_in(l, rt, code)?.native.as_deref()?;
        if rt.options.enabled(super::Optimisation::CalleeTable) {
            super::callees::put(function, code, native);
        }
        Some(native)
    }
}

/// Pushes the callee's frame and initialises its specials; None (nothing taken) when the
/// data-stack chunk has no room. The caller then fills every local and calls [`run_and_pop`].
#[inline(always)]
unsafe fn enter_new_frame(
    l: &Layout,
    rt: &mut Runtime,
    ts: *mut PyThreadState,
    callee: Callee<'_>,
) -> Option<*mut InterpreterFrame> {
    // SAFETY: the caller checked that the callee can be entered directly.
    unsafe {
        let Some(frame) = push_frame(l, ts, callee.direct.slots) else {
            rt.stats.direct_calls_without_room += 1;
            return None;
        };
        init_frame(
            l,
            frame,
            callee.function,
            callee.code,
            callee.direct.nlocalsplus,
        );
        Some(frame)
    }
}

/// Runs the native code on a frame from [`enter_new_frame`] whose locals are all set, then
/// clears and pops it; the call's result.
#[inline(always)]
unsafe fn run_and_pop(
    l: &Layout,
    rt: &mut Runtime,
    ts: *mut PyThreadState,
    frame: *mut InterpreterFrame,
    native: &NativeCode,
) -> *mut PyObject {
    // SAFETY: the frame is pushed, initialised and filled (the caller's contract).
    unsafe {
        rt.stats.direct_calls += 1;
        let result = hook::run_native(l, rt, ts, frame, native);
        clear_and_pop(l, ts, frame);
        result
    }
}

/// A direct call of a compiled generator or coroutine function: the generator object made
/// here (`generators::make_generator`), or None for CPython's path (switched off, or coroutine
/// origin tracking, which records the caller's frames). Out of line: the ordinary direct call
/// is the hot path.
#[cold]
#[inline(never)]
unsafe fn make_generator_directly(
    l: &Layout,
    rt: &mut Runtime,
    ts: *mut PyThreadState,
    ty: *mut PyTypeObject,
    direct: &DirectEntry,
    call: DirectCall,
) -> Option<*mut PyObject> {
    let (function, code, args, nargs, defaults, missing) = call;
    // SAFETY: as for `call_compiled`, whose checks passed.
    unsafe {
        if !rt
            .options
            .enabled(super::Optimisation::DirectGeneratorCalls)
            || ty == std::ptr::addr_of_mut!(PyCoro_Type)
                && read::<i32>(ts as _, l.tstate_coroutine_origin_depth) != 0
        {
            return None;
        }
        let fill = |frame| fill_locals(l, frame, args, nargs, defaults, missing, direct);
        let gen = generators::make_generator(l, ty, function, code, direct, fill);
        if gen.is_null() {
            Py_DECREF(function);
            for i in 0..nargs {
                Py_DECREF(*args.add(i));
            }
        }
        rt.stats.direct_generators += 1;
        Some(gen)
    }
}

/// The function, its code, the arguments (pointer, count) and the defaults (pointer, count)
/// of a direct call.
type DirectCall = (
    *mut PyObject,
    *mut PyObject,
    *const *mut PyObject,
    usize,
    *const *mut PyObject,
    usize,
);

/// The most parameters (positional and keyword-only) a direct call with keywords binds.
const MAX_BOUND: usize = 32;

/// [`call_compiled`] for a call that passes keywords (`kwnames`, the last of `args[..total]`):
/// binds them to the callee's parameters by name as `initialize_locals` does, the rest from
/// the defaults (`direct-call-keywords`). None (nothing taken) whenever CPython's path must
/// decide: a name it cannot match by identity (the compiler interns both sides), one given
/// twice, a missing default, positional-only parameters, more parameters than [`MAX_BOUND`].
///
/// # Safety
/// GIL held; `function` and `args[..total]` are owned references; `kwnames` a tuple of str.
#[inline(never)]
pub unsafe fn call_compiled_with_keywords(
    function: *mut PyObject,
    args: *const *mut PyObject,
    total: usize,
    kwnames: *mut PyObject,
) -> Option<*mut PyObject> {
    // SAFETY: as for `call_compiled`; `co_localsplusnames` names every local, and the
    // defaults are a tuple and a dict (or NULL) that nothing changes before the frame is filled.
    unsafe {
        let l = layout();
        let rt = runtime();
        if !rt.options.enabled(super::Optimisation::DirectCallKeywords) {
            return None;
        }
        let callee = compiled_callee(l, rt, function)?;
        let (code, native, direct) = (callee.code, callee.native, callee.direct);
        let nkw = PyTuple_GET_SIZE(kwnames) as usize;
        let npos = total - nkw;
        let nparams = direct.nargs + direct.kwonly;
        if direct.makes.is_some()
            || npos > direct.nargs
            || nparams > MAX_BOUND
            || ffi::code::posonlyargcount(code) != 0
        {
            return None;
        }
        let ts = ffi::current_tstate(l);
        if !can_enter(l, ts) {
            return None;
        }
        let bound = bind_keywords(l, function, code, direct, args, npos, kwnames)?;
        let extras = match direct.varargs || direct.varkw {
            true => Some(Extras::stars(direct)?),
            false => None,
        };
        let Some(frame) = enter_new_frame(l, rt, ts, callee) else {
            if let Some(e) = extras {
                e.release();
            }
            return None;
        };
        let locals = localsplus(l, frame);
        for (j, &(v, owned)) in bound.values[..nparams].iter().enumerate() {
            if !owned {
                Py_INCREF(v);
            }
            *locals.add(j) = v;
        }
        for j in nparams..direct.nlocalsplus {
            *locals.add(j) = std::ptr::null_mut();
        }
        if let Some(e) = extras {
            e.fill(l, frame, nparams);
        }
        Some(run_and_pop(l, rt, ts, frame, native))
    }
}

/// Parameter values of a call with keywords: each an argument (owned) or a default (borrowed).
struct Bound {
    values: [(*mut PyObject, bool); MAX_BOUND],
}

/// Binds `args[..npos]` and the keyword arguments after them to the parameters of `code`,
/// and the parameters left from `__defaults__` and `__kwdefaults__`; None when CPython's path
/// must decide (see [`call_compiled_with_keywords`]).
unsafe fn bind_keywords(
    l: &Layout,
    function: *mut PyObject,
    code: *mut PyObject,
    direct: &DirectEntry,
    args: *const *mut PyObject,
    npos: usize,
    kwnames: *mut PyObject,
) -> Option<Bound> {
    // SAFETY: as for `call_compiled_with_keywords`.
    unsafe {
        let nparams = direct.nargs + direct.kwonly;
        let mut b = Bound {
            values: [(std::ptr::null_mut(), true); MAX_BOUND],
        };
        for j in 0..npos {
            b.values[j] = (*args.add(j), true);
        }
        let names = ffi::code::localsplusnames(code);
        for k in 0..PyTuple_GET_SIZE(kwnames) as usize {
            let name = PyTuple_GET_ITEM(kwnames, k as isize);
            let j = (npos..nparams).find(|&j| PyTuple_GET_ITEM(names, j as isize) == name)?;
            if !b.values[j].0.is_null() {
                return None;
            }
            b.values[j] = (*args.add(npos + k), true);
        }
        let defaults: *mut PyObject = read(function as _, l.function_defaults);
        let ndefaults = match defaults.is_null() {
            true => 0,
            false => PyTuple_GET_SIZE(defaults) as usize,
        };
        let first_default = direct.nargs.saturating_sub(ndefaults);
        let kwdefaults: *mut PyObject = read(function as _, l.function_kwdefaults);
        for j in npos..nparams {
            if !b.values[j].0.is_null() {
                continue;
            }
            let v = if j < direct.nargs {
                if j < first_default {
                    return None;
                }
                PyTuple_GET_ITEM(defaults, (j - first_default) as isize)
            } else {
                if kwdefaults.is_null() {
                    return None;
                }
                let found =
                    PyDict_GetItemWithError(kwdefaults, PyTuple_GET_ITEM(names, j as isize));
                if found.is_null() {
                    PyErr_Clear();
                    return None;
                }
                found
            };
            b.values[j] = (v, false);
        }
        Some(b)
    }
}

/// The most keyword-only parameters a direct call fills.
const MAX_KWONLY: usize = 16;

/// The values of a direct call's keyword-only, `*args` and `**kwargs` parameters, made before
/// the frame is pushed, so that a call that cannot be direct leaves nothing taken.
#[derive(Clone, Copy)]
struct Extras {
    /// Keyword-only defaults, borrowed from `__kwdefaults__` (nothing runs before `fill`).
    kwonly: [*mut PyObject; MAX_KWONLY],
    /// How many of `kwonly` are set.
    nkwonly: usize,
    /// An empty tuple for `*args` (owned), or NULL.
    varargs: *mut PyObject,
    /// A new empty dict for `**kwargs` (owned), or NULL.
    varkw: *mut PyObject,
}

impl Extras {
    /// The extras of a call of `function` that passes no keywords, as `initialize_locals`
    /// binds them; None (nothing taken, no exception set) when a keyword-only parameter has no
    /// default (CPython's path raises the TypeError) or an allocation fails.
    unsafe fn make(
        l: &Layout,
        function: *mut PyObject,
        code: *mut PyObject,
        direct: &DirectEntry,
    ) -> Option<Extras> {
        // SAFETY: live function and code objects; `func_kwdefaults` is NULL or a dict, and
        // `co_localsplusnames` a tuple naming every local.
        unsafe {
            let mut kwonly = [std::ptr::null_mut(); MAX_KWONLY];
            if direct.kwonly != 0 {
                let kwdefaults: *mut PyObject = read(function as _, l.function_kwdefaults);
                if kwdefaults.is_null() {
                    return None;
                }
                let names = ffi::code::localsplusnames(code);
                for (i, slot) in kwonly[..direct.kwonly].iter_mut().enumerate() {
                    let name = PyTuple_GET_ITEM(names, (direct.nargs + i) as isize);
                    *slot = PyDict_GetItemWithError(kwdefaults, name);
                    if slot.is_null() {
                        PyErr_Clear();
                        return None;
                    }
                }
            }
            let stars = Extras::stars(direct)?;
            Some(Extras {
                kwonly,
                nkwonly: direct.kwonly,
                ..stars
            })
        }
    }

    /// Only the `*args` and `**kwargs` values (a call with keywords binds the keyword-only
    /// parameters itself); None (nothing taken, no exception set) when an allocation fails.
    unsafe fn stars(direct: &DirectEntry) -> Option<Extras> {
        // SAFETY: the GIL is held (the caller's contract); the new objects are ours.
        unsafe {
            let mut e = Extras {
                kwonly: [std::ptr::null_mut(); MAX_KWONLY],
                nkwonly: 0,
                varargs: std::ptr::null_mut(),
                varkw: std::ptr::null_mut(),
            };
            if direct.varargs {
                e.varargs = PyTuple_New(0);
                if e.varargs.is_null() {
                    PyErr_Clear();
                    return None;
                }
            }
            if direct.varkw {
                e.varkw = PyDict_New();
                if e.varkw.is_null() {
                    PyErr_Clear();
                    e.release();
                    return None;
                }
            }
            Some(e)
        }
    }

    /// Gives back what `make` took, for a call that did not happen.
    unsafe fn release(self) {
        // SAFETY: the tuple and dict are ours (or NULL).
        unsafe {
            Py_XDECREF(self.varargs);
            Py_XDECREF(self.varkw);
        }
    }

    /// Puts the extras in the frame's locals from index `first` on: keyword-only ones (new
    /// references), then `*args`, then `**kwargs` (the references `make` took).
    unsafe fn fill(self, l: &Layout, frame: *mut InterpreterFrame, first: usize) {
        // SAFETY: the frame has a local slot for each of these, from `first` on.
        unsafe {
            let locals = localsplus(l, frame);
            let mut at = first;
            for &v in &self.kwonly[..self.nkwonly] {
                Py_INCREF(v);
                *locals.add(at) = v;
                at += 1;
            }
            if !self.varargs.is_null() {
                *locals.add(at) = self.varargs;
                at += 1;
            }
            if !self.varkw.is_null() {
                *locals.add(at) = self.varkw;
            }
        }
    }
}

/// Moves the call's arguments into the callee frame's locals, adds new references to the
/// defaults that fill the `missing` trailing parameters, and clears the other locals.
#[inline(always)]
unsafe fn fill_locals(
    l: &Layout,
    frame: *mut InterpreterFrame,
    args: *const *mut PyObject,
    nargs: usize,
    defaults: *const *mut PyObject,
    missing: usize,
    direct: &DirectEntry,
) {
    // SAFETY: the frame has `direct.nlocalsplus` local slots; `args[..nargs]` are owned
    // references and `defaults[..missing]` borrowed ones.
    unsafe {
        let locals = localsplus(l, frame);
        // Element loops, not memcpy/memset: these are a handful of words.
        for i in 0..nargs {
            *locals.add(i) = *args.add(i);
        }
        for i in 0..missing {
            let d = *defaults.add(i);
            Py_INCREF(d);
            *locals.add(nargs + i) = d;
        }
        for i in direct.nargs..direct.nlocalsplus {
            *locals.add(i) = std::ptr::null_mut();
        }
    }
}

/// Compiled code may be entered without the hook: no tracing or profiling, and the installed
/// hook is ferrojit's (another tool's hook must see every frame).
#[inline(always)]
pub(super) unsafe fn can_enter(l: &Layout, ts: *mut PyThreadState) -> bool {
    // SAFETY: `ts` is the live thread state.
    unsafe {
        hook_is_ours(l, ts) && read::<u8>(read(ts as _, l.tstate_cframe), l.cframe_use_tracing) == 0
    }
}

/// Where the last `missing` of `function`'s default values start in its defaults tuple
/// (borrowed: the caller takes its own references before anything can run), or None when it
/// has fewer.
unsafe fn trailing_defaults(
    l: &Layout,
    function: *mut PyObject,
    missing: usize,
) -> Option<*const *mut PyObject> {
    // SAFETY: `function` is a live function object; `func_defaults` is NULL or a tuple.
    unsafe {
        let defaults: *mut PyObject = read(function as _, l.function_defaults);
        if defaults.is_null() {
            return None;
        }
        let n = PyTuple_GET_SIZE(defaults) as usize;
        let first = n.checked_sub(missing)?;
        let items = (defaults as *mut u8).add(std::mem::offset_of!(PyTupleObject, ob_item));
        Some((items as *const *mut PyObject).add(first))
    }
}

/// The installed hook is ferrojit's (another tool's hook must see every frame).
#[inline(always)]
unsafe fn hook_is_ours(l: &Layout, ts: *mut PyThreadState) -> bool {
    // SAFETY: `ts` is the live thread state; its interpreter is live.
    unsafe {
        let interp: *mut c_void = read(ts as _, l.tstate_interp);
        let current: usize = read(interp, l.interp_eval_frame);
        current == hook::eval_frame as ffi::EvalFrameFunc as usize
    }
}

/// Bumps the thread's data-stack pointer by `slots` within the current chunk
/// (`_PyThreadState_BumpFramePointer` without its slow path: a full chunk takes the ordinary
/// call path, which allocates the next one).
#[inline(always)]
unsafe fn push_frame(
    l: &Layout,
    ts: *mut PyThreadState,
    slots: usize,
) -> Option<*mut InterpreterFrame> {
    // SAFETY: `ts` is live; the data-stack fields are read and written as CPython does.
    unsafe {
        let top: *mut *mut PyObject = read(ts as _, l.tstate_datastack_top);
        let limit: *mut *mut PyObject = read(ts as _, l.tstate_datastack_limit);
        if top.is_null() || slots >= limit.offset_from(top) as usize {
            return None;
        }
        // A frame at the very start of a chunk would make the pop free that chunk; CPython never
        // leaves `top` there, but do not depend on it.
        let chunk: *mut c_void = read(ts as _, l.tstate_datastack_chunk);
        if top as usize == chunk as usize + l.stackchunk_data as usize {
            return None;
        }
        write(ts as _, l.tstate_datastack_top, top.add(slots));
        Some(top as *mut InterpreterFrame)
    }
}

/// `_PyFrame_InitializeSpecials(frame, func, NULL, nlocalsplus)`: the frame takes the reference
/// to `function` and a new one to its code.
#[inline(always)]
pub(super) unsafe fn init_frame(
    l: &Layout,
    frame: *mut InterpreterFrame,
    function: *mut PyObject,
    code: *mut PyObject,
    nlocalsplus: usize,
) {
    // SAFETY: `frame` points at enough fresh data-stack slots for this code's frame.
    unsafe {
        let f = frame as *mut c_void;
        Py_INCREF(code);
        write(f, l.frame_func, function);
        write(f, l.frame_code, code);
        write::<*mut PyObject>(
            f,
            l.frame_builtins,
            read(function as _, l.function_builtins),
        );
        write::<*mut PyObject>(f, l.frame_globals, read(function as _, l.function_globals));
        write(f, l.frame_locals, std::ptr::null_mut::<PyObject>());
        write(f, l.frame_stacktop, nlocalsplus as i32);
        write(f, l.frame_frame_obj, std::ptr::null_mut::<PyObject>());
        write(
            f,
            l.frame_prev_instr,
            (code as *mut u8)
                .offset(l.code_adaptive as isize)
                .cast::<u16>()
                .sub(1),
        );
        write(f, l.frame_is_entry, 0u8);
        write(f, l.frame_owner, l.frame_owned_by_thread as i8);
        write(
            f,
            l.frame_previous,
            std::ptr::null_mut::<InterpreterFrame>(),
        );
    }
}

#[inline(always)]
pub(super) unsafe fn localsplus(l: &Layout, frame: *mut InterpreterFrame) -> *mut *mut PyObject {
    // SAFETY: `localsplus` is inside the frame.
    unsafe { (frame as *mut u8).offset(l.frame_localsplus as isize) as *mut *mut PyObject }
}

/// `_PyEvalFrameClearAndPop`: clear the frame (one recursion level held, as CPython does, since
/// destructors may run) and give its slots back to the data stack.
#[inline(always)]
unsafe fn clear_and_pop(l: &Layout, ts: *mut PyThreadState, frame: *mut InterpreterFrame) {
    // SAFETY: `frame` is the thread's top frame, no longer linked as the current frame.
    unsafe {
        let remaining = (ts as *mut u8).offset(l.tstate_recursion_remaining as isize) as *mut i32;
        *remaining -= 1;
        clear_frame(l, frame);
        *remaining += 1;
        write(ts as _, l.tstate_datastack_top, frame);
    }
}

/// `_PyFrame_Clear` for a frame owned by the thread or by a generator.
#[inline(always)]
pub(super) unsafe fn clear_frame(l: &Layout, frame: *mut InterpreterFrame) {
    // SAFETY: `frame` is a thread-owned frame whose slots below `stacktop` are owned references
    // or NULL, as CPython leaves them.
    unsafe {
        let f = frame as *mut c_void;
        let frame_obj: *mut PyObject = read(f, l.frame_frame_obj);
        if !frame_obj.is_null() {
            write(f, l.frame_frame_obj, std::ptr::null_mut::<PyObject>());
            if Py_REFCNT(frame_obj) > 1 {
                give_frame_object_its_data(frame_obj, frame);
                Py_DECREF(frame_obj);
                return;
            }
            Py_DECREF(frame_obj);
        }
        let locals = localsplus(l, frame);
        for i in 0..read::<i32>(f, l.frame_stacktop).max(0) as usize {
            Py_XDECREF(*locals.add(i));
        }
        Py_XDECREF(read::<*mut PyObject>(f, l.frame_locals));
        Py_DECREF(read::<*mut PyObject>(f, l.frame_func));
        Py_DECREF(read::<*mut PyObject>(f, l.frame_code));
    }
}

/// `take_ownership` (Python/frame.c): a frame object outlives its frame, so it gets a copy of
/// the frame's data (which moves the references there), and its `f_back` link replaces the
/// `previous` pointer that is about to dangle.
#[cold]
unsafe fn give_frame_object_its_data(frame_obj: *mut PyObject, frame: *mut InterpreterFrame) {
    // SAFETY: `frame_obj` is the live frame object of `frame`; its data area was sized for this
    // code's frame when it was made.
    unsafe {
        let l = layout();
        // The caller's frame object (made if needed), skipping incomplete frames, as CPython does.
        // A pending exception (the callee raised) must survive this.
        let (mut ty, mut value, mut tb) = (
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        PyErr_Fetch(&mut ty, &mut value, &mut tb);
        let back = PyFrame_GetBack(frame_obj as *mut PyFrameObject);
        if back.is_null() {
            PyErr_Clear();
        }
        PyErr_Restore(ty, value, tb);
        let size = l.frame_localsplus as usize + ffi::frame::stacktop(frame).max(0) as usize * 8;
        let copy =
            (frame_obj as *mut u8).offset(l.frameobject_data as isize) as *mut InterpreterFrame;
        std::ptr::copy_nonoverlapping(frame as *const u8, copy as *mut u8, size);
        write(frame_obj as _, l.frameobject_frame, copy);
        write(
            copy as _,
            l.frame_owner,
            l.frame_owned_by_frame_object as i8,
        );
        let code = ffi::frame::code(copy);
        let first_traceable =
            ffi::code::first_instr(code).add(ffi::code::firsttraceable(code) as usize);
        if ffi::frame::prev_instr(copy) < first_traceable {
            ffi::frame::set_prev_instr(copy, first_traceable);
        }
        ffi::frame::set_previous(copy, std::ptr::null_mut());
        write(frame_obj as _, l.frameobject_back, back);
        if PyObject_GC_IsTracked(frame_obj) == 0 {
            PyObject_GC_Track(frame_obj as *mut c_void);
        }
    }
}

/// `cls(*args)` from native code, for a class (exactly of metatype `type`) whose instances come
/// from `object.__new__` and whose `__init__` is a Python function with native code: makes the
/// instance with `object.__new__` and calls `__init__` on it directly, which is what
/// `type.__call__` (through `_PyObject_MakeTpCall`) and `slot_tp_init` do, without their
/// argument tuple, their lookups, the vectorcall layers and the hook. The recursion count moves
/// by the same two levels as on that path (the call of the class, then `__init__`'s frame), and
/// `__init__` must return None, with the interpreter's TypeError otherwise.
///
/// `slot[0]` holds the class and `slot[1..=nargs]` the arguments, all owned. Returns None
/// (nothing taken) when the call is not of that kind, or `__init__` has no native code yet (so
/// that its calls still reach the hook and get it compiled); otherwise the instance or NULL
/// with an exception set, having taken every reference (`slot[0]` is reused for the instance).
///
/// # Safety
/// GIL held; `slot[0..=nargs]` are owned references.
#[inline(never)]
pub unsafe fn construct(slot: *mut *mut PyObject, nargs: usize) -> Option<*mut PyObject> {
    // SAFETY: the GIL is held and the objects are live (caller's contract); `cls` is a type
    // object when its metatype is `type`.
    unsafe {
        let cls = *slot;
        if Py_TYPE(cls) != std::ptr::addr_of_mut!(PyType_Type) {
            return None;
        }
        let ty = cls as *mut PyTypeObject;
        let object_new = (*std::ptr::addr_of!(PyBaseObject_Type)).tp_new;
        let new = (*ty).tp_new?;
        if (*ty).tp_flags & Py_TPFLAGS_HEAPTYPE == 0
            || Some(new as usize) != object_new.map(|f| f as usize)
            || !runtime()
                .options
                .enabled(super::Optimisation::DirectConstructors)
        {
            return None;
        }
        let init = ffi::_PyType_Lookup(ty, init_name()?);
        if init.is_null() || Py_TYPE(init) != std::ptr::addr_of_mut!(PyFunction_Type) {
            return None;
        }
        let l = layout();
        compiled_callee(l, runtime(), init)?;
        // `_PyObject_MakeTpCall`'s recursion level for the call of the class: where it would
        // raise, the ordinary path raises.
        let ts = ffi::current_tstate(l);
        let remaining = (ts as *mut u8).offset(l.tstate_recursion_remaining as isize) as *mut i32;
        if *remaining <= 0 {
            return None;
        }
        *remaining -= 1;
        let made = make_and_init(ty, init, slot, nargs, new);
        *remaining += 1;
        Py_DECREF(cls);
        if !made.is_null() {
            runtime().stats.direct_constructions += 1;
        }
        Some(made)
    }
}

/// The body of [`construct`] once its checks passed: the instance from `new`, `__init__`
/// called on it (the class's reference in `slot[0]` stays the caller's to release).
unsafe fn make_and_init(
    ty: *mut PyTypeObject,
    init: *mut PyObject,
    slot: *mut *mut PyObject,
    nargs: usize,
    new: newfunc,
) -> *mut PyObject {
    // SAFETY: as for `construct`.
    unsafe {
        let release_args = || {
            for i in 1..=nargs {
                Py_DECREF(*slot.add(i));
            }
        };
        // Held before the allocation, which may run finalizers that replace the class's
        // `__init__` (its only other owner).
        Py_INCREF(init);
        let no_args = PyTuple_New(0);
        if no_args.is_null() {
            Py_DECREF(init);
            release_args();
            return std::ptr::null_mut();
        }
        let obj = new(ty, no_args, std::ptr::null_mut());
        Py_DECREF(no_args);
        if obj.is_null() {
            Py_DECREF(init);
            release_args();
            return obj;
        }
        // `__init__(obj, *args)`: the class's slot carries the instance (a reference of its own,
        // which the call takes).
        Py_INCREF(obj);
        *slot = obj;
        let result = match call_compiled(init, slot, nargs + 1) {
            Some(result) => result,
            None => {
                let nargsf = (nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET;
                let result = PyObject_Vectorcall(init, slot, nargsf, std::ptr::null_mut());
                Py_DECREF(init);
                for i in 0..=nargs {
                    Py_DECREF(*slot.add(i));
                }
                result
            }
        };
        if result.is_null() {
            Py_DECREF(obj);
            return result;
        }
        if result != Py_None() {
            init_not_none(result);
            Py_DECREF(obj);
            return std::ptr::null_mut();
        }
        Py_DECREF(result);
        obj
    }
}

/// The interned `"__init__"`, or None when it could not be made (the ordinary path runs).
fn init_name() -> Option<*mut PyObject> {
    static NAME: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let name = super::helpers::interned(&NAME, c"__init__");
    if name.is_null() {
        // SAFETY: GIL held; the failed interning set the exception.
        unsafe { PyErr_Clear() };
        return None;
    }
    Some(name)
}
