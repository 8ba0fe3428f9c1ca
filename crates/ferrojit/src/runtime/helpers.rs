//! The helper functions that generated code calls, each doing what the interpreter does for
//! one generic instruction (Python/ceval.c in 3.11), with the same reference-count effects.
//!
//! Conventions: object results are new references; NULL means an exception is set;
//! [`DEOPT_MARKER`] asks the generated code to hand the instruction to the interpreter (nothing
//! was consumed); [`EXHAUSTED_MARKER`] ends a `for` loop.

use super::{matching, specialised, unpacking};
use crate::cpython::ffi::{self, InterpreterFrame};
use crate::cpython::layout;
use crate::cpython::opcodes::*;
use crate::hir::Helper;
use pyo3_ffi::*;
use std::ffi::CStr;
use std::os::raw::c_int;
use std::sync::OnceLock;

/// "Run this instruction in the interpreter instead" (never a valid object address).
pub const DEOPT_MARKER: *mut PyObject = 1 as *mut PyObject;
/// `fj_for_iter`: the iterator is exhausted.
pub const EXHAUSTED_MARKER: *mut PyObject = 1 as *mut PyObject;

/// The address of a helper's function, for lowering. An exhaustive match: a helper added to
/// the HIR without a function here does not compile.
pub fn address(helper: Helper) -> usize {
    let f = match helper {
        Helper::BinaryOp => fj_binary_op as *const (),
        Helper::BinaryOpNumeric => super::specialised::fj_binary_op_numeric as *const (),
        Helper::CompareOp => fj_compare_op as *const (),
        Helper::GetAttr => super::attr_cache::fj_getattr_cached as *const (),
        Helper::SetAttr => PyObject_SetAttr as *const (),
        Helper::SetAttrCached => super::attr_cache::fj_setattr_cached as *const (),
        Helper::StoreAttrDict => super::attr_cache::fj_store_attr_dict as *const (),
        Helper::GetItem => PyObject_GetItem as *const (),
        Helper::Negative => PyNumber_Negative as *const (),
        Helper::Positive => PyNumber_Positive as *const (),
        Helper::Invert => PyNumber_Invert as *const (),
        Helper::UnpackSequence => unpacking::fj_unpack_sequence as *const (),
        Helper::BuildSlice => PySlice_New as *const (),
        Helper::DelItem => PyObject_DelItem as *const (),
        Helper::FormatValue => fj_format_value as *const (),
        Helper::BuildString => fj_build_string as *const (),
        Helper::BuildConstKeyMap => fj_build_const_key_map as *const (),
        Helper::SetItem => PyObject_SetItem as *const (),
        Helper::IsTrue => PyObject_IsTrue as *const (),
        Helper::GetIter => super::generators::fj_get_iter as *const (),
        Helper::Contains => PySequence_Contains as *const (),
        Helper::Not => PyObject_Not as *const (),
        Helper::LoadGlobal => fj_load_global as *const (),
        Helper::StoreGlobal => fj_store_global as *const (),
        Helper::LoadMethod => super::attr_cache::fj_load_method_cached as *const (),
        Helper::OwnDictLacks => super::attr_cache::fj_own_dict_lacks as *const (),
        Helper::NewInstance => super::direct_call::fj_new_instance as *const (),
        Helper::InitReturned => super::direct_call::fj_init_returned as *const (),
        Helper::Call => fj_call as *const (),
        Helper::CallC => super::c_calls::fj_call_c as *const (),
        Helper::FinishNativeCall => super::hook::fj_finish_native_call as *const (),
        Helper::ClearFrame => super::direct_call::fj_clear_frame as *const (),
        Helper::BuildList => fj_build_list as *const (),
        Helper::BuildTuple => fj_build_tuple as *const (),
        Helper::BuildMap => fj_build_map as *const (),
        Helper::ForIter => fj_for_iter as *const (),
        Helper::ListAppend => fj_list_append as *const (),
        Helper::MakeFunction => fj_make_function as *const (),
        Helper::MakeCell => fj_make_cell as *const (),
        Helper::BuildSet => fj_build_set as *const (),
        Helper::SetAdd => fj_set_add as *const (),
        Helper::MapAdd => fj_map_add as *const (),
        Helper::BeforeWith => fj_before_with as *const (),
        Helper::ListExtend => unpacking::fj_list_extend as *const (),
        Helper::SetUpdate => unpacking::fj_set_update as *const (),
        Helper::DictUpdate => unpacking::fj_dict_update as *const (),
        Helper::DictMerge => unpacking::fj_dict_merge as *const (),
        Helper::CallFunctionEx => unpacking::fj_call_function_ex as *const (),
        Helper::ListToTuple => unpacking::fj_list_to_tuple as *const (),
        Helper::ImportName => fj_import_name as *const (),
        Helper::ImportFrom => fj_import_from as *const (),
        Helper::GetLen => matching::fj_get_len as *const (),
        Helper::MatchKind => matching::fj_match_kind as *const (),
        Helper::MatchKeys => matching::fj_match_keys as *const (),
        Helper::MatchClass => matching::fj_match_class as *const (),
        Helper::DeleteGlobal => fj_delete_global as *const (),
        Helper::LoadBuildClass => fj_load_build_class as *const (),
        Helper::GetYieldFromIter => super::generators::fj_get_yield_from_iter as *const (),
        Helper::Send => super::generators::fj_send as *const (),
        Helper::GetAwaitable => super::generators::fj_get_awaitable as *const (),
        Helper::BeforeAsyncWith => fj_before_async_with as *const (),
        Helper::AsyncGenWrap => super::generators::fj_async_gen_wrap as *const (),
        Helper::GetAiter => super::generators::fj_get_aiter as *const (),
        Helper::GetAnext => super::generators::fj_get_anext as *const (),
        Helper::CopyFreeVars => fj_copy_free_vars as *const (),
        Helper::CompareInts => specialised::fj_compare_ints as *const (),
        Helper::CompareFloats => specialised::fj_compare_floats as *const (),
        Helper::CompareStrs => specialised::fj_compare_strs as *const (),
        Helper::IntBinary => specialised::fj_int_binary as *const (),
        Helper::IntFromWord => PyLong_FromLongLong as *const (),
        Helper::BoxFloat => specialised::fj_box_float as *const (),
        Helper::FloatBinary => specialised::fj_float_binary as *const (),
        Helper::ValuesAddKey => fj_values_add_key as *const (),
        Helper::ListGetItem => specialised::fj_list_getitem as *const (),
        Helper::TupleGetItem => specialised::fj_tuple_getitem as *const (),
        Helper::ListSetItem => specialised::fj_list_setitem as *const (),
    };
    f as usize
}

/// `BINARY_OP oparg`: the interpreter's `binary_ops[oparg]`.
pub unsafe extern "C" fn fj_binary_op(
    a: *mut PyObject,
    b: *mut PyObject,
    oparg: i64,
) -> *mut PyObject {
    // SAFETY: generated code passes two live objects; the C API functions accept any objects.
    unsafe {
        match oparg as u8 {
            NB_ADD => PyNumber_Add(a, b),
            NB_AND => PyNumber_And(a, b),
            NB_FLOOR_DIVIDE => PyNumber_FloorDivide(a, b),
            NB_LSHIFT => PyNumber_Lshift(a, b),
            NB_MATRIX_MULTIPLY => PyNumber_MatrixMultiply(a, b),
            NB_MULTIPLY => PyNumber_Multiply(a, b),
            NB_REMAINDER => PyNumber_Remainder(a, b),
            NB_OR => PyNumber_Or(a, b),
            NB_POWER => PyNumber_Power(a, b, Py_None()),
            NB_RSHIFT => PyNumber_Rshift(a, b),
            NB_SUBTRACT => PyNumber_Subtract(a, b),
            NB_TRUE_DIVIDE => PyNumber_TrueDivide(a, b),
            NB_XOR => PyNumber_Xor(a, b),
            NB_INPLACE_ADD => PyNumber_InPlaceAdd(a, b),
            NB_INPLACE_AND => PyNumber_InPlaceAnd(a, b),
            NB_INPLACE_FLOOR_DIVIDE => PyNumber_InPlaceFloorDivide(a, b),
            NB_INPLACE_LSHIFT => PyNumber_InPlaceLshift(a, b),
            NB_INPLACE_MATRIX_MULTIPLY => PyNumber_InPlaceMatrixMultiply(a, b),
            NB_INPLACE_MULTIPLY => PyNumber_InPlaceMultiply(a, b),
            NB_INPLACE_REMAINDER => PyNumber_InPlaceRemainder(a, b),
            NB_INPLACE_OR => PyNumber_InPlaceOr(a, b),
            NB_INPLACE_POWER => PyNumber_InPlacePower(a, b, Py_None()),
            NB_INPLACE_RSHIFT => PyNumber_InPlaceRshift(a, b),
            NB_INPLACE_SUBTRACT => PyNumber_InPlaceSubtract(a, b),
            NB_INPLACE_TRUE_DIVIDE => PyNumber_InPlaceTrueDivide(a, b),
            NB_INPLACE_XOR => PyNumber_InPlaceXor(a, b),
            _ => {
                PyErr_SetString(PyExc_SystemError, c"ferrojit: unknown BINARY_OP".as_ptr());
                std::ptr::null_mut()
            }
        }
    }
}

/// `COMPARE_OP op`. Where the interpreter, once it has quickened the code, would compare
/// without a recursion check (`COMPARE_OP_{INT,FLOAT,STR}_JUMP`: two exact ints of at most one
/// digit, two exact floats, two exact strs for == and !=), the type's comparison is called
/// directly; anything else goes through `PyObject_RichCompare` as the generic `COMPARE_OP`
/// does, with its recursion check (RecursionError "in comparison" at the limit).
pub unsafe extern "C" fn fj_compare_op(
    a: *mut PyObject,
    b: *mut PyObject,
    op: i64,
) -> *mut PyObject {
    // SAFETY: generated code passes two live objects and a comparison operator (0..=5).
    unsafe {
        let t = Py_TYPE(a);
        let int = std::ptr::addr_of_mut!(PyLong_Type);
        let direct = t == Py_TYPE(b)
            && (t == int
                && specialised::small_int(a).is_some()
                && specialised::small_int(b).is_some()
                || t == std::ptr::addr_of_mut!(PyFloat_Type)
                || (t == std::ptr::addr_of_mut!(PyUnicode_Type)
                    && (op as i32 == Py_EQ || op as i32 == Py_NE)));
        if direct {
            if let Some(cmp) = (*t).tp_richcompare {
                return cmp(a, b, op as i32);
            }
        }
        PyObject_RichCompare(a, b, op as i32)
    }
}

/// `LOAD_GLOBAL` for exact-dict globals and builtins; the deopt marker when the name is in
/// neither (the interpreter raises the NameError, with its exact message and attributes) or
/// when either namespace is not an exact dict.
pub unsafe extern "C" fn fj_load_global(
    frame: *mut InterpreterFrame,
    name: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: `frame` is the running frame; its globals and builtins are live borrowed refs.
    unsafe {
        let globals: *mut PyObject = ffi::read(frame as _, layout().frame_globals);
        let builtins: *mut PyObject = ffi::read(frame as _, layout().frame_builtins);
        if PyDict_CheckExact(globals) == 0 || PyDict_CheckExact(builtins) == 0 {
            return DEOPT_MARKER;
        }
        for ns in [globals, builtins] {
            let v = PyDict_GetItemWithError(ns, name);
            if !v.is_null() {
                Py_INCREF(v);
                return v;
            }
            if !PyErr_Occurred().is_null() {
                return std::ptr::null_mut();
            }
        }
        DEOPT_MARKER
    }
}

/// `DELETE_GLOBAL`: 0, -1 with an exception set, or 1 when the name is not there (nothing
/// changed, no exception: the interpreter raises the NameError with its suggestions).
pub unsafe extern "C" fn fj_delete_global(
    frame: *mut InterpreterFrame,
    name: *mut PyObject,
) -> i64 {
    // SAFETY: `frame` is the running frame; its globals are a live borrowed reference.
    unsafe {
        let globals: *mut PyObject = ffi::read(frame as _, layout().frame_globals);
        if PyDict_DelItem(globals, name) == 0 {
            return 0;
        }
        if PyErr_ExceptionMatches(PyExc_KeyError) != 0 {
            PyErr_Clear();
            return 1;
        }
        -1
    }
}

/// `LOAD_BUILD_CLASS`: `__build_class__` from the frame's builtins (new reference), NULL with
/// an exception set, or the deopt marker when it is missing or the builtins are not a dict
/// (the interpreter raises or looks it up its own way).
pub unsafe extern "C" fn fj_load_build_class(frame: *mut InterpreterFrame) -> *mut PyObject {
    // SAFETY: `frame` is the running frame; its builtins are a live borrowed reference.
    unsafe {
        let builtins: *mut PyObject = ffi::read(frame as _, layout().frame_builtins);
        if PyDict_CheckExact(builtins) == 0 {
            return DEOPT_MARKER;
        }
        let v = PyDict_GetItemString(builtins, c"__build_class__".as_ptr());
        if v.is_null() {
            return DEOPT_MARKER;
        }
        Py_INCREF(v);
        v
    }
}

/// `STORE_GLOBAL`: does not take `v`.
pub unsafe extern "C" fn fj_store_global(
    frame: *mut InterpreterFrame,
    name: *mut PyObject,
    v: *mut PyObject,
) -> c_int {
    // SAFETY: `frame` is the running frame; its globals is a live dict.
    unsafe {
        let globals: *mut PyObject = ffi::read(frame as _, layout().frame_globals);
        PyDict_SetItem(globals, name, v)
    }
}

/// `PRECALL` + `CALL` (generic): `base` holds `[method or NULL, callable or self, args...]`,
/// all taken; `kwnames` is a tuple of keyword names or NULL (0).
pub unsafe extern "C" fn fj_call(
    base: *mut *mut PyObject,
    oparg: i64,
    kwnames: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: `base` points at oparg + 2 stack slots of the running frame, filled by the caller.
    unsafe {
        let oparg = oparg as usize;
        let mut is_meth = !(*base).is_null();
        if !is_meth {
            let callable = *base.add(1);
            if Py_TYPE(callable) == std::ptr::addr_of_mut!(ffi::PyMethod_Type) {
                let func = ffi::PyMethod_Function(callable);
                let selfobj = ffi::PyMethod_Self(callable);
                Py_INCREF(func);
                Py_INCREF(selfobj);
                *base = func;
                *base.add(1) = selfobj;
                Py_DECREF(callable);
                is_meth = true;
            }
        }
        let total = oparg + is_meth as usize;
        let args = base.add(2 - is_meth as usize);
        let function = *args.sub(1);
        let nkw = if kwnames.is_null() {
            0
        } else {
            PyTuple_GET_SIZE(kwnames) as usize
        };
        if nkw != 0 {
            let call =
                super::direct_call::call_compiled_with_keywords(function, args, total, kwnames);
            if let Some(res) = call {
                return res;
            }
        } else {
            if let Some(res) = super::direct_call::call_compiled(function, args, total) {
                return res;
            }
            if !is_meth {
                // `base[0]` is free (NULL): the class's slot can take the new instance.
                if let Some(res) = super::direct_call::construct(base.add(1), total) {
                    return res;
                }
            }
        }
        let nargsf = (total - nkw) | PY_VECTORCALL_ARGUMENTS_OFFSET;
        let res = PyObject_Vectorcall(function, args, nargsf, kwnames);
        Py_DECREF(function);
        for i in 0..total {
            Py_DECREF(*args.add(i));
        }
        res
    }
}

/// `BUILD_LIST n`: takes the n items.
pub unsafe extern "C" fn fj_build_list(items: *mut *mut PyObject, n: i64) -> *mut PyObject {
    // SAFETY: `items` points at n owned references.
    unsafe {
        let list = PyList_New(n as isize);
        if list.is_null() {
            release(items, n);
            return list;
        }
        for i in 0..n as isize {
            PyList_SET_ITEM(list, i, *items.offset(i));
        }
        list
    }
}

/// `BUILD_TUPLE n`: takes the n items.
pub unsafe extern "C" fn fj_build_tuple(items: *mut *mut PyObject, n: i64) -> *mut PyObject {
    // SAFETY: `items` points at n owned references.
    unsafe {
        let t = PyTuple_New(n as isize);
        if t.is_null() {
            release(items, n);
            return t;
        }
        for i in 0..n as isize {
            PyTuple_SET_ITEM(t, i, *items.offset(i));
        }
        t
    }
}

/// `BUILD_MAP n`: takes n key/value pairs.
pub unsafe extern "C" fn fj_build_map(items: *mut *mut PyObject, n: i64) -> *mut PyObject {
    // SAFETY: `items` points at 2n owned references.
    unsafe {
        let d = PyDict_New();
        let mut ok = !d.is_null();
        for i in 0..n as isize {
            if ok && PyDict_SetItem(d, *items.offset(2 * i), *items.offset(2 * i + 1)) < 0 {
                ok = false;
            }
        }
        release(items, 2 * n);
        if !ok && !d.is_null() {
            Py_DECREF(d);
            return std::ptr::null_mut();
        }
        d
    }
}

unsafe fn release(items: *mut *mut PyObject, n: i64) {
    for i in 0..n as isize {
        // SAFETY: the caller passes n owned references.
        unsafe { Py_DECREF(*items.offset(i)) };
    }
}

/// `FOR_ITER`: the next item, NULL on error, or the exhausted marker (StopIteration cleared).
/// Does not take `iter`. Called with an exception set (the inline range arm could not box its
/// item, having stepped the iterator as `rangeiter_next` does), it raises that.
pub unsafe extern "C" fn fj_for_iter(iter: *mut PyObject) -> *mut PyObject {
    // SAFETY: `iter` is a live iterator (GET_ITER produced it).
    unsafe {
        if !PyErr_Occurred().is_null() {
            return std::ptr::null_mut();
        }
        if Py_TYPE(iter) == std::ptr::addr_of_mut!(PyGen_Type) {
            if let Some(next) = super::generators::next_of_compiled(iter) {
                return next;
            }
        }
        let next = match (*Py_TYPE(iter)).tp_iternext {
            Some(f) => f(iter),
            None => std::ptr::null_mut(),
        };
        if !next.is_null() {
            return next;
        }
        if !PyErr_Occurred().is_null() {
            if PyErr_ExceptionMatches(PyExc_StopIteration) == 0 {
                return std::ptr::null_mut();
            }
            PyErr_Clear();
        }
        EXHAUSTED_MARKER
    }
}

/// `MAKE_FUNCTION`: a new function of `code` over the frame's globals, with `defaults` (a
/// tuple), `kwdefaults` (a dict), `annotations` and `closure` (a tuple of cells) set when not
/// NULL. Takes nothing.
pub unsafe extern "C" fn fj_make_function(
    frame: *mut InterpreterFrame,
    code: *mut PyObject,
    defaults: *mut PyObject,
    kwdefaults: *mut PyObject,
    annotations: *mut PyObject,
    closure: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: `frame` is the running frame (its globals a live reference), `code` a live code
    // object, the others live or NULL; the setters check their types and take references.
    unsafe {
        let globals: *mut PyObject = ffi::read(frame as _, layout().frame_globals);
        let f = PyFunction_New(code, globals);
        if f.is_null() {
            return f;
        }
        let set =
            |field: *mut PyObject,
             setter: unsafe extern "C" fn(*mut PyObject, *mut PyObject) -> c_int| {
                field.is_null() || setter(f, field) == 0
            };
        if set(defaults, PyFunction_SetDefaults)
            && set(kwdefaults, PyFunction_SetKwDefaults)
            && set(closure, PyFunction_SetClosure)
        {
            // The compiler's annotations tuple (name, value, ...) goes in as it is, the
            // interpreter's way; `__annotations__` turns it into a dict when first read
            // (PyFunction_SetAnnotations would refuse a tuple).
            if !annotations.is_null() {
                Py_INCREF(annotations);
                ffi::write(f as _, layout().function_annotations, annotations);
            }
            f
        } else {
            Py_DECREF(f);
            std::ptr::null_mut()
        }
    }
}

/// The address of local `index` of `frame`.
///
/// # Safety
/// `frame` is a live frame and `index` below its code's `co_nlocalsplus`.
unsafe fn local_slot(frame: *mut InterpreterFrame, index: usize) -> *mut *mut PyObject {
    // SAFETY: localsplus holds co_nlocalsplus slots, `index` is one of them.
    unsafe {
        (frame as *mut u8)
            .offset(layout().frame_localsplus as isize)
            .cast::<*mut PyObject>()
            .add(index)
    }
}

/// `MAKE_CELL index`: local `index` (an argument, or NULL) moves into a new cell, which takes
/// its slot. 0, or -1 with an exception set (the local untouched).
pub unsafe extern "C" fn fj_make_cell(frame: *mut InterpreterFrame, index: i64) -> c_int {
    // SAFETY: generated code passes its own frame and a cell variable's index.
    unsafe {
        let slot = local_slot(frame, index as usize);
        let initial = *slot;
        let cell = PyCell_New(initial);
        if cell.is_null() {
            return -1;
        }
        *slot = cell;
        Py_XDECREF(initial);
        0
    }
}

/// `COPY_FREE_VARS n`: the running function's closure cells, new references, into the last
/// `n` locals. Cannot fail; returns 0.
pub unsafe extern "C" fn fj_copy_free_vars(frame: *mut InterpreterFrame, n: i64) -> c_int {
    // SAFETY: generated code passes its own frame, whose function has a closure tuple of `n`
    // cells (the compiler emits COPY_FREE_VARS with the code's co_nfreevars), and whose last
    // `n` locals are the free variables' (still NULL) slots.
    unsafe {
        let l = layout();
        let func: *mut PyObject = ffi::read(frame as _, l.frame_func);
        let closure: *mut PyObject = ffi::read(func as _, l.function_closure);
        let code: *mut PyObject = ffi::read(frame as _, l.frame_code);
        let first = ffi::code::nlocalsplus(code) as usize - n as usize;
        for i in 0..n as usize {
            let cell = PyTuple_GET_ITEM(closure, i as Py_ssize_t);
            Py_INCREF(cell);
            *local_slot(frame, first + i) = cell;
        }
        0
    }
}

/// `BUILD_SET n`: a set of the n items, added in stack order; takes them.
pub unsafe extern "C" fn fj_build_set(items: *mut *mut PyObject, n: i64) -> *mut PyObject {
    // SAFETY: `items` points at n owned references.
    unsafe {
        let set = PySet_New(std::ptr::null_mut());
        let mut failed = set.is_null();
        for i in 0..n as usize {
            let item = *items.add(i);
            if !failed {
                failed = PySet_Add(set, item) < 0;
            }
            Py_DECREF(item);
        }
        if failed {
            Py_XDECREF(set);
            return std::ptr::null_mut();
        }
        set
    }
}

/// `SET_ADD`: takes `v`. 0 or -1.
pub unsafe extern "C" fn fj_set_add(set: *mut PyObject, v: *mut PyObject) -> c_int {
    // SAFETY: `set` is the set a comprehension builds, `v` an owned reference.
    unsafe {
        let r = PySet_Add(set, v);
        Py_DECREF(v);
        r
    }
}

/// `MAP_ADD`: `dict[key] = value`; takes both. 0 or -1.
pub unsafe extern "C" fn fj_map_add(
    dict: *mut PyObject,
    key: *mut PyObject,
    value: *mut PyObject,
) -> c_int {
    // SAFETY: `dict` is the dict a comprehension builds, `key` and `value` owned references.
    unsafe {
        let r = PyDict_SetItem(dict, key, value);
        Py_DECREF(value);
        Py_DECREF(key);
        r
    }
}

/// `BEFORE_WITH`: looks up the context manager's `__enter__` and `__exit__` (on its type, as
/// special methods are), writes the bound `__exit__` to `out[0]` and the result of calling
/// `__enter__()` to `out[1]`; takes `mgr`. 0, or -1 with an exception set (nothing written).
pub unsafe extern "C" fn fj_before_with(mgr: *mut PyObject, out: *mut *mut PyObject) -> c_int {
    static ENTER: OnceLock<usize> = OnceLock::new();
    static EXIT: OnceLock<usize> = OnceLock::new();
    let protocol = ContextManagerProtocol {
        enter: (&ENTER, c"__enter__"),
        exit: (&EXIT, c"__exit__"),
        no_enter: c"'%.200s' object does not support the context manager protocol",
        no_exit: c"'%.200s' object does not support the context manager protocol (missed __exit__ method)",
    };
    // SAFETY: as the caller guarantees for `fj_before_with`.
    unsafe { enter_context(mgr, out, &protocol) }
}

/// `BEFORE_ASYNC_WITH`: as [`fj_before_with`] with `__aenter__` and `__aexit__` (the result
/// of `__aenter__()` is then awaited).
pub unsafe extern "C" fn fj_before_async_with(
    mgr: *mut PyObject,
    out: *mut *mut PyObject,
) -> c_int {
    static ENTER: OnceLock<usize> = OnceLock::new();
    static EXIT: OnceLock<usize> = OnceLock::new();
    let protocol = ContextManagerProtocol {
        enter: (&ENTER, c"__aenter__"),
        exit: (&EXIT, c"__aexit__"),
        no_enter: c"'%.200s' object does not support the asynchronous context manager protocol",
        no_exit: c"'%.200s' object does not support the asynchronous context manager protocol (missed __aexit__ method)",
    };
    // SAFETY: as the caller guarantees for `fj_before_async_with`.
    unsafe { enter_context(mgr, out, &protocol) }
}

/// The special methods of a `with` or `async with` and the interpreter's TypeErrors when one
/// is missing.
struct ContextManagerProtocol {
    enter: (&'static OnceLock<usize>, &'static std::ffi::CStr),
    exit: (&'static OnceLock<usize>, &'static std::ffi::CStr),
    no_enter: &'static std::ffi::CStr,
    no_exit: &'static std::ffi::CStr,
}

/// What `BEFORE_WITH` and `BEFORE_ASYNC_WITH` share: the enter method, then the exit method,
/// looked up on the type; the bound exit to `out[0]`, the result of calling enter to
/// `out[1]`; takes `mgr`. 0 or -1.
unsafe fn enter_context(
    mgr: *mut PyObject,
    out: *mut *mut PyObject,
    protocol: &ContextManagerProtocol,
) -> c_int {
    // SAFETY: `mgr` is an owned reference and `out` two writable stack slots of the frame.
    unsafe {
        let missing = |what: &std::ffi::CStr| {
            if PyErr_Occurred().is_null() {
                PyErr_Format(PyExc_TypeError, what.as_ptr(), (*Py_TYPE(mgr)).tp_name);
            }
        };
        let enter_name = interned(protocol.enter.0, protocol.enter.1);
        let exit_name = interned(protocol.exit.0, protocol.exit.1);
        if enter_name.is_null() || exit_name.is_null() {
            Py_DECREF(mgr);
            return -1;
        }
        let enter = ffi::_PyObject_LookupSpecial(mgr, enter_name);
        if enter.is_null() {
            missing(protocol.no_enter);
            Py_DECREF(mgr);
            return -1;
        }
        let exit = ffi::_PyObject_LookupSpecial(mgr, exit_name);
        if exit.is_null() {
            missing(protocol.no_exit);
            Py_DECREF(enter);
            Py_DECREF(mgr);
            return -1;
        }
        Py_DECREF(mgr);
        let res = PyObject_CallNoArgs(enter);
        Py_DECREF(enter);
        if res.is_null() {
            Py_DECREF(exit);
            return -1;
        }
        *out = exit;
        *out.add(1) = res;
        0
    }
}

/// `IMPORT_NAME`: `__import__(name, globals, locals or None, fromlist, level)`, the
/// `__import__` found in the frame's builtins (which may have been replaced), as the
/// interpreter's `import_name` does; takes `fromlist` and `level`.
pub unsafe extern "C" fn fj_import_name(
    frame: *mut InterpreterFrame,
    name: *mut PyObject,
    fromlist: *mut PyObject,
    level: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: `frame` is the running frame (its builtins and globals live references), the
    // others live objects, `fromlist` and `level` owned.
    unsafe {
        let l = layout();
        let builtins: *mut PyObject = ffi::read(frame as _, l.frame_builtins);
        static IMPORT: OnceLock<usize> = OnceLock::new();
        let key = interned(&IMPORT, c"__import__");
        let import = if key.is_null() {
            key
        } else {
            PyDict_GetItemWithError(builtins, key)
        };
        let res = if import.is_null() {
            if PyErr_Occurred().is_null() {
                PyErr_SetString(PyExc_ImportError, c"__import__ not found".as_ptr());
            }
            std::ptr::null_mut()
        } else {
            let locals: *mut PyObject = ffi::read(frame as _, l.frame_locals);
            let globals: *mut PyObject = ffi::read(frame as _, l.frame_globals);
            let locals = if locals.is_null() { Py_None() } else { locals };
            Py_INCREF(import);
            let args = [name, globals, locals, fromlist, level];
            let r = PyObject_Vectorcall(import, args.as_ptr(), 5, std::ptr::null_mut());
            Py_DECREF(import);
            r
        };
        Py_DECREF(fromlist);
        Py_DECREF(level);
        res
    }
}

/// `IMPORT_FROM`: `name` of the module `module`, falling back on `sys.modules` for a circular
/// relative import, with the interpreter's ImportError messages (`import_from` in 3.11's
/// ceval.c). Takes nothing; new reference or NULL.
pub unsafe extern "C" fn fj_import_from(
    module: *mut PyObject,
    name: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: `module` and `name` are live objects; every reference made here is released.
    unsafe {
        let mut found = std::ptr::null_mut();
        if ffi::_PyObject_LookupAttr(module, name, &mut found) != 0 {
            return found;
        }
        let mut pkgname = PyObject_GetAttrString(module, c"__name__".as_ptr());
        if !pkgname.is_null() && PyUnicode_Check(pkgname) == 0 {
            Py_DECREF(pkgname);
            pkgname = std::ptr::null_mut();
        } else if !pkgname.is_null() {
            let full = PyUnicode_FromFormat(c"%U.%U".as_ptr(), pkgname, name);
            if full.is_null() {
                Py_DECREF(pkgname);
                return full;
            }
            let m = PyImport_GetModule(full);
            Py_DECREF(full);
            if !m.is_null() || !PyErr_Occurred().is_null() {
                Py_DECREF(pkgname);
                return m;
            }
        }
        import_from_error(module, name, pkgname)
    }
}

/// The ImportError of a failed `from module import name`; takes `pkgname` (the module's
/// `__name__` or NULL). Returns NULL.
unsafe fn import_from_error(
    module: *mut PyObject,
    name: *mut PyObject,
    pkgname: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: live objects; each reference made here is released once.
    unsafe {
        let pkgpath = PyModule_GetFilenameObject(module);
        let shown = if pkgname.is_null() {
            PyUnicode_FromString(c"<unknown module name>".as_ptr())
        } else {
            pkgname
        };
        if shown.is_null() {
            Py_XDECREF(pkgpath);
            return shown;
        }
        let errmsg;
        if pkgpath.is_null() || PyUnicode_Check(pkgpath) == 0 {
            PyErr_Clear();
            errmsg = PyUnicode_FromFormat(
                c"cannot import name %R from %R (unknown location)".as_ptr(),
                name,
                shown,
            );
            PyErr_SetImportError(errmsg, pkgname, std::ptr::null_mut());
        } else {
            let spec = PyObject_GetAttrString(module, c"__spec__".as_ptr());
            let fmt = if ffi::_PyModuleSpec_IsInitializing(spec) != 0 {
                c"cannot import name %R from partially initialized module %R (most likely due to a circular import) (%S)"
            } else {
                c"cannot import name %R from %R (%S)"
            };
            Py_XDECREF(spec);
            errmsg = PyUnicode_FromFormat(fmt.as_ptr(), name, shown, pkgpath);
            PyErr_SetImportError(errmsg, pkgname, pkgpath);
        }
        Py_XDECREF(errmsg);
        Py_DECREF(shown);
        Py_XDECREF(pkgpath);
        std::ptr::null_mut()
    }
}

/// The interned str `name`, made on first use and kept in `slot` for the rest of the process;
/// NULL (an exception set) if that failed.
pub(super) fn interned(slot: &'static OnceLock<usize>, name: &'static CStr) -> *mut PyObject {
    if let Some(&s) = slot.get() {
        return s as *mut PyObject;
    }
    // SAFETY: called from generated code, with the GIL held.
    let s = unsafe { PyUnicode_InternFromString(name.as_ptr()) };
    if !s.is_null() {
        let _ = slot.set(s as usize);
    }
    s
}

/// `LIST_APPEND`: takes `v`.
pub unsafe extern "C" fn fj_list_append(list: *mut PyObject, v: *mut PyObject) -> c_int {
    // SAFETY: `list` is a live list (LIST_APPEND only follows BUILD_LIST) and `v` is owned.
    unsafe {
        let r = PyList_Append(list, v);
        Py_DECREF(v);
        r
    }
}

extern "C" {
    fn _PyUnicode_JoinArray(
        separator: *mut PyObject,
        items: *const *mut PyObject,
        n: isize,
    ) -> *mut PyObject;
}

/// `FORMAT_VALUE flags`: the conversion (`!s`, `!r`, `!a`), then `format(value, spec)`; an
/// exact str without a spec is itself. Takes nothing.
pub unsafe extern "C" fn fj_format_value(
    value: *mut PyObject,
    flags: i64,
    spec: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: `value` is live; `spec` is NULL or a live str.
    unsafe {
        let converted = match flags & 0x03 {
            1 => PyObject_Str(value),
            2 => PyObject_Repr(value),
            3 => PyObject_ASCII(value),
            _ => {
                Py_INCREF(value);
                value
            }
        };
        if converted.is_null() {
            return converted;
        }
        if spec.is_null() && PyUnicode_CheckExact(converted) != 0 {
            return converted;
        }
        let r = PyObject_Format(converted, spec);
        Py_DECREF(converted);
        r
    }
}

/// `BUILD_STRING n`: joins the n str items, which it takes.
pub unsafe extern "C" fn fj_build_string(items: *mut *mut PyObject, n: i64) -> *mut PyObject {
    // SAFETY: `items` points at n owned str references.
    unsafe {
        let empty = PyUnicode_FromStringAndSize(std::ptr::null(), 0);
        let r = if empty.is_null() {
            empty
        } else {
            _PyUnicode_JoinArray(empty, items, n as isize)
        };
        Py_XDECREF(empty);
        release(items, n);
        r
    }
}

/// `BUILD_CONST_KEY_MAP n`: a dict of `keys` (a tuple of n keys) to the n values, which it takes.
pub unsafe extern "C" fn fj_build_const_key_map(
    items: *mut *mut PyObject,
    n: i64,
    keys: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: `items` points at n owned references; `keys` is a live tuple of n items (the
    // compiler made it so).
    unsafe {
        let d = if PyTuple_CheckExact(keys) != 0 && PyTuple_GET_SIZE(keys) == n as isize {
            PyDict_New()
        } else {
            PyErr_SetString(
                PyExc_SystemError,
                c"bad BUILD_CONST_KEY_MAP keys argument".as_ptr(),
            );
            std::ptr::null_mut()
        };
        let mut ok = !d.is_null();
        for i in 0..n as isize {
            if ok && PyDict_SetItem(d, PyTuple_GET_ITEM(keys, i), *items.offset(i)) < 0 {
                ok = false;
            }
        }
        release(items, n);
        if !ok && !d.is_null() {
            Py_DECREF(d);
            return std::ptr::null_mut();
        }
        d
    }
}

/// `_PyDictValues_AddToInsertionOrder(values, index)` (pycore_dict.h, static inline): an
/// instance's values array keeps, in the bytes before it, the order in which its slots were
/// first filled: `values[-1]` the capacity, `values[-2]` the count, and the slot numbers below.
pub unsafe extern "C" fn fj_values_add_key(values: *mut *mut PyObject, index: i64) {
    // SAFETY: generated code passes the live values array of a managed-dict instance whose slot
    // `index` it has just filled for the first time; the prefix has room for every slot of the
    // shared keys (CPython sizes it so), and the GIL is held.
    unsafe {
        let size_ptr = (values as *mut u8).sub(2);
        let size = *size_ptr as usize + 1;
        debug_assert!(size + 1 < *(values as *mut u8).sub(1) as usize);
        *size_ptr.sub(size) = index as u8;
        *size_ptr = size as u8;
    }
}
