//! HIR: ferrojit's high-level IR. SSA values in basic blocks with block parameters, a small type
//! lattice, explicit reference counting, and explicit guards that each carry the frame state the
//! interpreter needs to resume (the bytecode index and the value stack; locals always live in the
//! frame).
//!
//! Built from 3.11 bytecode plus the interpreter's feedback by [`builder`], printed by the
//! `Display` impl of [`Function`], lowered to LIR by `crate::lir::lower`.

pub mod borrow;
pub mod builder;
pub mod guards;
mod print;
pub mod types;

pub use types::Type;

use std::fmt;

/// An SSA value: the result of the instruction (or block parameter) of the same number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

/// A basic block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(pub u32);

/// A frame state: where a guard or a raising operation hands over to the interpreter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateId(pub u32);

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}
impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bb{}", self.0)
    }
}
impl fmt::Display for StateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fs{}", self.0)
    }
}

/// How control reaches the interpreter from a frame state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// An assumption failed: the interpreter executes the instruction at `resume_at` again.
    Deopt,
    /// An exception is set: the interpreter treats the instruction at `resume_at` as the
    /// raising one (traceback entry, handler lookup, unwinding).
    Raise,
}

/// The interpreter-visible state at an exit: the value stack (owned references, bottom first;
/// `Null` values are written as NULL) and the instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameState {
    /// Code-unit index: the instruction to execute again (Deopt) or the raising one (Raise).
    pub resume_at: u32,
    /// The value stack at that point.
    pub stack: Vec<ValueId>,
    pub kind: ExitKind,
    /// Why this exit exists, for statistics ("LOAD_ATTR type version", ...).
    pub reason: &'static str,
    /// For an exit taken when a speculation on the interpreter's feedback fails: the
    /// instruction that speculated, which a recompilation can give its generic path when the
    /// exit keeps being taken (the deopt policy). None for exits that are the normal way to do
    /// something (raising, the eval breaker, an unbound local).
    pub site: Option<u32>,
    /// For an exit after a call: the call, whose end the interpreter checks the eval breaker
    /// at. The exit runs pending signal handlers and calls before resuming, and an exception
    /// they raise is raised by the call, as in the interpreter.
    pub pending_calls_at: Option<u32>,
}

/// Runtime functions that generated code calls. The C API ones do not take references from their
/// arguments; ferrojit's own (`fj_*`) say so when they do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Helper {
    /// `fj_binary_op(a, b, oparg)`: the interpreter's `binary_ops[oparg]`. New reference or NULL.
    BinaryOp,
    /// `fj_binary_op_numeric(a, b, oparg)`: [`Helper::BinaryOp`] for `+ - * /` at a site the
    /// interpreter left generic; when one operand is an exact float and the other an exact
    /// float or an int of at most one digit, computes in doubles as `float_add` & co. do.
    /// New reference or NULL.
    BinaryOpNumeric,
    /// `fj_compare_op(a, b, op)`: `COMPARE_OP`; exact ints, floats and (==, !=) strs compare
    /// through their type directly, as the interpreter's specialised forms do (no recursion
    /// check); anything else through `PyObject_RichCompare`. New reference or NULL.
    CompareOp,
    /// `fj_getattr_cached(obj, name, cache)`: `PyObject_GetAttr` through the site's
    /// polymorphic cache. New reference or NULL.
    GetAttr,
    /// `PyObject_SetAttr(obj, name, value)`: 0 or -1.
    SetAttr,
    /// `fj_setattr_cached(obj, name, value, cache)`: `PyObject_SetAttr` through the site's
    /// polymorphic cache (`poly-stores`). Takes nothing; 0 or -1.
    SetAttrCached,
    /// `fj_store_attr_dict(obj, name, value, version)`: `STORE_ATTR_WITH_HINT`'s store. When
    /// the type still has the version the interpreter specialised for and the instance's
    /// values were turned into a dict, `PyDict_SetItem` on that dict (what the generic path
    /// ends in, without its type lookup); otherwise `PyObject_SetAttr`. Takes nothing; 0 or -1.
    StoreAttrDict,
    /// `PyObject_GetItem(container, key)`.
    GetItem,
    /// `PyObject_SetItem(container, key, value)`: 0 or -1.
    SetItem,
    /// `PyObject_IsTrue(v)`: 1, 0 or -1.
    IsTrue,
    /// `fj_get_iter(v)`: `iter(v)` (`PyObject_GetIter`, or a direct call of a compiled
    /// `__iter__`); borrows `v`.
    GetIter,
    /// `PySequence_Contains(container, v)`: 1, 0 or -1.
    Contains,
    /// `PyObject_Not(v)`: 1, 0 or -1.
    Not,
    /// `fj_load_global(frame, name)`: new reference, NULL on error, or the deopt marker when
    /// the name is missing (the interpreter then raises NameError itself).
    LoadGlobal,
    /// `fj_store_global(frame, name, value)`: 0 or -1; does not take `value`.
    StoreGlobal,
    /// `fj_load_method_cached(obj, name, out, cache)`: takes `obj`; writes (method, self) or
    /// (NULL, attribute) to `out[0..2]` as new references; 0 or -1. Through the site's cache.
    LoadMethod,
    /// `fj_own_dict_lacks(obj, name, version)`: machine bool (a full word, 0 or 1): `obj`'s
    /// values were made into a dict of its own that has no key `name` (nothing shadows the
    /// method a polymorphic `LOAD_METHOD` case found on the type), and its type still has
    /// `version` after the lookup. Borrows everything; never raises.
    OwnDictLacks,
    /// `fj_new_instance(type)`: `object.__new__(type)` for a class call made in machine code;
    /// new reference or NULL.
    NewInstance,
    /// `fj_init_returned(result, obj)`: the TypeError of an `__init__` that returned `result`,
    /// not None; takes both; NULL.
    InitReturned,
    /// `fj_call(base, oparg, kwnames)`: takes every reference in `base[0 .. oparg + 2]`
    /// (`[method or NULL, callable or self, args...]`); the call's result or NULL.
    Call,
    /// `fj_call_c(base, oparg, kwnames)`: [`Helper::Call`] where the interpreter specialised
    /// the call of a builtin function, a method descriptor or `type`: calls the C function
    /// directly while the callable is still one.
    CallC,
    /// `fj_finish_native_call(tstate, frame, native, r)`: for [`InstKind::CallCompiled`], what
    /// the runtime does after native code it entered returned `r` when that is not a plain
    /// result or site feedback is due: feedback, then the interpreter finishes the frame after a
    /// raise or a deopt. The call's result or NULL.
    FinishNativeCall,
    /// `fj_clear_frame(frame)`: `_PyFrame_Clear` of a callee frame that
    /// [`InstKind::CallCompiled`] cannot clear inline (a frame object, `f_locals`, a value
    /// stack left).
    ClearFrame,
    /// `fj_build_list(items, n)`: takes the n items; new list or NULL.
    BuildList,
    /// `fj_build_tuple(items, n)`: takes the n items.
    BuildTuple,
    /// `fj_build_map(items, n)`: takes n key/value pairs.
    BuildMap,
    /// `fj_for_iter(iter)`: the next item, NULL on error, or the exhausted marker.
    ForIter,
    /// `fj_list_append(list, v)`: takes v; 0 or -1.
    ListAppend,
    /// `PyNumber_Negative(v)`. New reference or NULL.
    Negative,
    /// `PyNumber_Positive(v)`. New reference or NULL.
    Positive,
    /// `PyNumber_Invert(v)`. New reference or NULL.
    Invert,
    /// `fj_unpack_sequence(seq, before, after, out)`: `UNPACK_SEQUENCE` (after = -1) and
    /// `UNPACK_EX`: the items as new references into the stack slots at `out`, first item
    /// highest; takes nothing. 0, or -1 with an exception set (nothing left in `out`).
    UnpackSequence,
    /// `PySlice_New(start, stop, step or NULL)`. New reference or NULL.
    BuildSlice,
    /// `PyObject_DelItem(container, key)`: 0 or -1.
    DelItem,
    /// `fj_format_value(value, flags, spec or NULL)`: `FORMAT_VALUE` (conversion, then
    /// `format()`); takes nothing. New reference or NULL.
    FormatValue,
    /// `fj_build_string(items, n)`: takes the n str items; their concatenation or NULL.
    BuildString,
    /// `fj_build_const_key_map(items, n, keys)`: takes the n values (not `keys`, a tuple).
    BuildConstKeyMap,
    /// `fj_values_add_key(values, index)`: records that slot `index` of an instance's values,
    /// empty until now, was filled (the insertion order `STORE_ATTR_INSTANCE_VALUE` keeps).
    ValuesAddKey,
    /// `fj_make_function(frame, code, defaults, kwdefaults, annotations, closure)`: a function
    /// of `code` over the frame's globals, with each of the others set if not NULL; takes
    /// nothing. New reference or NULL.
    MakeFunction,
    /// `fj_make_cell(frame, index)`: `MAKE_CELL`, local `index` moved into a new cell. 0 or -1.
    MakeCell,
    /// `fj_copy_free_vars(frame, n)`: `COPY_FREE_VARS`, the function's closure cells into the
    /// last `n` locals. Cannot fail.
    CopyFreeVars,
    /// `fj_build_set(items, n)`: takes the n items; a new set or NULL.
    BuildSet,
    /// `fj_set_add(set, v)`: `SET_ADD`; takes `v`. 0 or -1.
    SetAdd,
    /// `fj_map_add(dict, key, value)`: `MAP_ADD`; takes key and value. 0 or -1.
    MapAdd,
    /// `fj_before_with(mgr, out)`: `BEFORE_WITH`; takes `mgr`, writes the bound `__exit__` and
    /// the result of `__enter__()` to two stack slots. 0 or -1.
    BeforeWith,
    /// `fj_list_extend(list, iterable)`: `LIST_EXTEND`; takes `iterable`. 0 or -1.
    ListExtend,
    /// `fj_set_update(set, iterable)`: `SET_UPDATE`; takes `iterable`. 0 or -1.
    SetUpdate,
    /// `fj_dict_update(dict, update)`: `DICT_UPDATE`; takes `update`. 0 or -1.
    DictUpdate,
    /// `fj_dict_merge(dict, update, func)`: `DICT_MERGE` for a call of `func`; takes `update`.
    /// 0 or -1.
    DictMerge,
    /// `fj_call_function_ex(func, callargs, kwargs or NULL)`: `CALL_FUNCTION_EX`; takes all
    /// three. New reference or NULL.
    CallFunctionEx,
    /// `fj_list_to_tuple(list)`: `LIST_TO_TUPLE`; takes `list`. New reference or NULL.
    ListToTuple,
    /// `fj_import_name(frame, name, fromlist, level)`: `IMPORT_NAME` through the frame's
    /// builtins' `__import__`; takes fromlist and level. New reference or NULL.
    ImportName,
    /// `fj_import_from(module, name)`: `IMPORT_FROM`; takes nothing. New reference or NULL.
    ImportFrom,
    /// `fj_get_len(obj)`: `GET_LEN`, `len(obj)` as an int; takes nothing. New reference or NULL.
    GetLen,
    /// `fj_match_kind(subject, which)`: `MATCH_MAPPING` (0) or `MATCH_SEQUENCE` (1), the
    /// subject type's flag as True or False; takes nothing, cannot fail.
    MatchKind,
    /// `fj_match_keys(subject, keys)`: `MATCH_KEYS`, the values of the keys tuple or None;
    /// takes nothing. New reference or NULL.
    MatchKeys,
    /// `fj_match_class(subject, cls, names, nargs)`: `MATCH_CLASS`, the matched attributes as
    /// a tuple, or None; takes nothing. New reference or NULL.
    MatchClass,
    /// `fj_delete_global(frame, name)`: `DELETE_GLOBAL`; 0, -1, or 1 when the name is missing
    /// (the interpreter then raises).
    DeleteGlobal,
    /// `fj_load_build_class(frame)`: `LOAD_BUILD_CLASS` from the builtins; new reference,
    /// NULL, or the deopt marker when it is missing.
    LoadBuildClass,
    /// `fj_get_yield_from_iter(iterable, takes_coroutines)`: `GET_YIELD_FROM_ITER` in a
    /// generator (a coroutine is an error unless `takes_coroutines`, in a `types.coroutine`
    /// generator); takes `iterable`. New reference or NULL.
    GetYieldFromIter,
    /// `fj_get_awaitable(iterable, from)`: `GET_AWAITABLE from` (0 an `await`, 1 and 2 the
    /// results of `__aenter__()` and `__aexit__()` in `async with`); takes `iterable`. New
    /// reference or NULL.
    GetAwaitable,
    /// `fj_before_async_with(mgr, out)`: `BEFORE_ASYNC_WITH`; takes `mgr`, writes the bound
    /// `__aexit__` and the result of `__aenter__()` to two stack slots. 0 or -1.
    BeforeAsyncWith,
    /// `fj_async_gen_wrap(v)`: `ASYNC_GEN_WRAP`; takes `v`. The wrapped value (new reference)
    /// or NULL.
    AsyncGenWrap,
    /// `fj_get_aiter(obj)`: `GET_AITER` (`async for`); takes `obj`. Its async iterator (new
    /// reference) or NULL.
    GetAiter,
    /// `fj_get_anext(aiter)`: `GET_ANEXT`; borrows `aiter`. What to await for its next item
    /// (new reference) or NULL.
    GetAnext,
    /// `fj_send(receiver, v, out)`: `SEND`; takes `v`, writes the yielded or returned value to
    /// `out`. 1 (yielded), 0 (returned) or -1.
    Send,
    /// `fj_compare_ints(a, b, op)`: the truth (0 or 1) of comparing two exact ints (guarded),
    /// or -1 (the recursion check of `PyObject_RichCompare`, for ints of more than one
    /// digit); takes nothing.
    CompareInts,
    /// `fj_compare_floats(a, b, op)`: the same for two exact floats.
    CompareFloats,
    /// `fj_compare_strs(a, b, op)`: the same for two exact strs, == and != only (cannot fail).
    CompareStrs,
    /// `fj_int_binary(a, b, oparg)`: +, - or * of two exact ints (guarded); takes nothing.
    /// New reference or NULL.
    IntBinary,
    /// `PyLong_FromLongLong(word)`: an int from a machine int. New reference or NULL.
    IntFromWord,
    /// `fj_box_float(bits)`: a new float holding the double whose bits are the word, or NULL.
    BoxFloat,
    /// `fj_float_binary(a, b, oparg)`: +, - or * of two exact floats (guarded); takes both
    /// (an operand nobody else holds receives the result). New reference or NULL.
    FloatBinary,
    /// `fj_list_getitem(list, sub)`: `list[sub]`, exact list and int guarded; takes nothing.
    ListGetItem,
    /// `fj_tuple_getitem(tuple, sub)`: the same for an exact tuple.
    TupleGetItem,
    /// `fj_list_setitem(list, sub, v)`: `list[sub] = v`, exact list and int guarded; takes
    /// nothing. 0 or -1.
    ListSetItem,
}

impl Helper {
    /// The helper's name as printed in IR and disassembly.
    pub fn name(self) -> &'static str {
        match self {
            Helper::BinaryOp => "fj_binary_op",
            Helper::BinaryOpNumeric => "fj_binary_op_numeric",
            Helper::CompareOp => "fj_compare_op",
            Helper::GetAttr => "fj_getattr_cached",
            Helper::SetAttr => "PyObject_SetAttr",
            Helper::SetAttrCached => "fj_setattr_cached",
            Helper::StoreAttrDict => "fj_store_attr_dict",
            Helper::GetItem => "PyObject_GetItem",
            Helper::SetItem => "PyObject_SetItem",
            Helper::IsTrue => "PyObject_IsTrue",
            Helper::GetIter => "fj_get_iter",
            Helper::Contains => "PySequence_Contains",
            Helper::Not => "PyObject_Not",
            Helper::LoadGlobal => "fj_load_global",
            Helper::StoreGlobal => "fj_store_global",
            Helper::LoadMethod => "fj_load_method_cached",
            Helper::OwnDictLacks => "fj_own_dict_lacks",
            Helper::NewInstance => "fj_new_instance",
            Helper::InitReturned => "fj_init_returned",
            Helper::Call => "fj_call",
            Helper::CallC => "fj_call_c",
            Helper::FinishNativeCall => "fj_finish_native_call",
            Helper::ClearFrame => "fj_clear_frame",
            Helper::BuildList => "fj_build_list",
            Helper::BuildTuple => "fj_build_tuple",
            Helper::BuildMap => "fj_build_map",
            Helper::ForIter => "fj_for_iter",
            Helper::ListAppend => "fj_list_append",
            Helper::Negative => "PyNumber_Negative",
            Helper::Positive => "PyNumber_Positive",
            Helper::Invert => "PyNumber_Invert",
            Helper::UnpackSequence => "fj_unpack_sequence",
            Helper::BuildSlice => "PySlice_New",
            Helper::DelItem => "PyObject_DelItem",
            Helper::FormatValue => "fj_format_value",
            Helper::BuildString => "fj_build_string",
            Helper::BuildConstKeyMap => "fj_build_const_key_map",
            Helper::ValuesAddKey => "fj_values_add_key",
            Helper::MakeFunction => "fj_make_function",
            Helper::MakeCell => "fj_make_cell",
            Helper::CopyFreeVars => "fj_copy_free_vars",
            Helper::BuildSet => "fj_build_set",
            Helper::SetAdd => "fj_set_add",
            Helper::MapAdd => "fj_map_add",
            Helper::BeforeWith => "fj_before_with",
            Helper::ListExtend => "fj_list_extend",
            Helper::SetUpdate => "fj_set_update",
            Helper::DictUpdate => "fj_dict_update",
            Helper::DictMerge => "fj_dict_merge",
            Helper::CallFunctionEx => "fj_call_function_ex",
            Helper::ListToTuple => "fj_list_to_tuple",
            Helper::ImportName => "fj_import_name",
            Helper::ImportFrom => "fj_import_from",
            Helper::GetLen => "fj_get_len",
            Helper::MatchKind => "fj_match_kind",
            Helper::MatchKeys => "fj_match_keys",
            Helper::MatchClass => "fj_match_class",
            Helper::DeleteGlobal => "fj_delete_global",
            Helper::LoadBuildClass => "fj_load_build_class",
            Helper::GetYieldFromIter => "fj_get_yield_from_iter",
            Helper::Send => "fj_send",
            Helper::GetAwaitable => "fj_get_awaitable",
            Helper::BeforeAsyncWith => "fj_before_async_with",
            Helper::AsyncGenWrap => "fj_async_gen_wrap",
            Helper::GetAiter => "fj_get_aiter",
            Helper::GetAnext => "fj_get_anext",
            Helper::CompareInts => "fj_compare_ints",
            Helper::CompareFloats => "fj_compare_floats",
            Helper::CompareStrs => "fj_compare_strs",
            Helper::IntBinary => "fj_int_binary",
            Helper::IntFromWord => "PyLong_FromLongLong",
            Helper::BoxFloat => "fj_box_float",
            Helper::FloatBinary => "fj_float_binary",
            Helper::ListGetItem => "fj_list_getitem",
            Helper::TupleGetItem => "fj_tuple_getitem",
            Helper::ListSetItem => "fj_list_setitem",
        }
    }
}

/// How a helper's result signals failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCheck {
    /// NULL means an exception is set.
    Null,
    /// A negative C int means an exception is set.
    Negative,
}

/// An operation of [`InstKind::ArithWords`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordArith {
    Add,
    Sub,
    Mul,
}

impl WordArith {
    pub fn sign(self) -> &'static str {
        match self {
            WordArith::Add => "+",
            WordArith::Sub => "-",
            WordArith::Mul => "*",
        }
    }
}

/// What [`InstKind::SharedKeysAre`] compares in a type's shared keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeysCheck {
    /// Their keys version (`dk_version`), as `LOAD_METHOD_WITH_VALUES` checks it.
    Version(u32),
    /// Their entry count (`dk_nentries`), as ferrojit's site cache checks it: shared keys only
    /// grow, so an unchanged count proves a name still absent.
    Entries(u32),
}

/// An HIR instruction. Each defines the value with its own number (some define nothing useful:
/// their type is `Type::VOID`).
#[derive(Clone, Debug, PartialEq)]
pub enum InstKind {
    /// Parameter `index` of its block.
    Param { index: u32 },
    /// A constant object (borrowed: the code object keeps it alive). `text` is its repr.
    Const { obj: usize, text: String },
    /// A machine integer constant.
    CInt { value: i64 },
    /// The address of this function's attribute-site cache number `index` (a polymorphic
    /// cache the runtime keeps for one generic attribute or method load).
    SiteCache { index: u32 },
    /// The NULL marker that `PUSH_NULL`/`LOAD_METHOD` leave on the stack.
    Null,
    /// The frame pointer (`_PyInterpreterFrame *`).
    Frame,
    /// A borrowed read of local slot `index` from the frame; may be NULL if unbound.
    LoadLocal { index: u32 },
    /// Moves `value`'s reference into local slot `index` and releases the old value.
    StoreLocal { index: u32, value: ValueId },
    /// Takes a new reference to `value`.
    Incref { value: ValueId },
    /// Releases a reference to `value` (which is never NULL).
    Decref { value: ValueId },
    /// Stores `values` into the frame's value-stack slots from `depth` on, moving their
    /// references there (arguments for helpers that read the stack).
    SpillToStack { depth: u32, values: Vec<ValueId> },
    /// Reads value-stack slot `depth` of the frame (a reference a helper left there).
    ReadStack { depth: u32 },
    /// Address of the frame's value-stack slot `depth`.
    StackAddr { depth: u32 },
    /// Calls a runtime helper with machine-word arguments.
    CallHelper { helper: Helper, args: Vec<ValueId> },
    /// `CALL` of a function the compiler expects to run the code of one of `callees`
    /// (`calls-in-machine-code`; several for a method whose types' cases differ): `base` is
    /// the address of the spilled `[method, self, args...]` (`method`) or
    /// `[NULL, function, args...]`, `oparg` the `CALL`'s, `kwnames` the tuple of keyword names
    /// of its `KW_NAMES` (the last arguments are theirs), if any. When the callable slot holds
    /// a function of one of those codes, the code has native code, and the runtime's checks
    /// for a direct call pass, the machine code pushes and fills the callee's frame (each
    /// parameter from the argument or the default its [`SiteCallee::args`] names), enters the
    /// native code, then clears and pops the frame itself; otherwise it calls `fj_call` as
    /// [`Helper::Call`]. Takes every reference at `base`; the result (NULL on error) as
    /// `fj_call`'s.
    /// With `class` (`constructors-in-machine-code`; `method` false, one callee: the class's
    /// `__init__`), the call of that class: when the callable is still it, at its version,
    /// the instance is made by `fj_new_instance` and `__init__` called on it as a method (its
    /// slot and the class's take `__init__` and the instance), which must return None; the
    /// result is the instance.
    CallCompiled {
        base: ValueId,
        oparg: u32,
        method: bool,
        kwnames: Option<ValueId>,
        callees: Vec<SiteCallee>,
        class: Option<KnownClass>,
    },
    /// Hands over to the interpreter with an exception set when `value` signals an error.
    CheckError {
        value: ValueId,
        check: ErrorCheck,
        state: StateId,
    },
    /// Deopts when `value` is the helper's deopt marker (1).
    GuardNotMarker { value: ValueId, state: StateId },
    /// Deopts when `value` is NULL.
    GuardNotNull { value: ValueId, state: StateId },
    /// Deopts unless `Py_TYPE(value)` is exactly `ty`.
    GuardType {
        value: ValueId,
        ty: usize,
        name: String,
        state: StateId,
    },
    /// Deopts unless `Py_TYPE(value)->tp_version_tag == version`.
    GuardTypeVersion {
        value: ValueId,
        version: u32,
        state: StateId,
    },
    /// Machine bool: `Py_TYPE(value)->tp_version_tag == version` (selects the specialised arm
    /// of an attribute access; the other arm is the generic one, so a polymorphic site costs a
    /// helper call instead of a deopt).
    HasTypeVersion { value: ValueId, version: u32 },
    /// Deopts unless the cached keys of `value`'s heap type have version `version`.
    GuardCachedKeysVersion {
        value: ValueId,
        version: u32,
        state: StateId,
    },
    /// Machine bool: the shared keys of `value`'s heap type are as a method cache found them,
    /// which proves that an instance with its values in place has no attribute shadowing the
    /// cached method (selects a case of a polymorphic `LOAD_METHOD`).
    SharedKeysAre { value: ValueId, check: KeysCheck },
    /// Deopts if the instance's managed `__dict__` was materialised.
    GuardNoDict { value: ValueId, state: StateId },
    /// Deopts if tracing was switched on or the eval breaker is set (checked after calls and on
    /// loop back-edges, where the interpreter checks too).
    GuardInterpreterIdle { state: StateId },
    /// The values array of a managed-dict instance (a machine pointer), NULL once its
    /// `__dict__` was materialised.
    InstanceValues { obj: ValueId },
    /// Borrowed read of the object pointer in word `index` from `base`: a slot of an
    /// instance's values array, or a `__slots__` member of the object itself; NULL when empty.
    LoadWord { base: ValueId, index: u32 },
    /// Borrowed read of attribute `name` (a constant str) from the materialised `__dict__` of
    /// instance `obj`, at entry `hint` of the dict's keys, as `LOAD_ATTR_WITH_HINT` reads it;
    /// NULL when there is no dict, the hint is past the entries, the keys are not str-only,
    /// the entry holds another key, or its value is NULL (the slow path decides then).
    LoadDictHint {
        obj: ValueId,
        name: ValueId,
        hint: u32,
    },
    /// Borrowed read of entry `index` of module `obj`'s dict, as `LOAD_ATTR_MODULE` reads it;
    /// NULL when `obj` is not exactly a module, its dict's keys do not have `version`, or the
    /// entry is empty.
    LoadModuleAttr {
        obj: ValueId,
        version: u32,
        index: u32,
    },
    /// Stores `value` into word `index` from `base` (as for [`InstKind::LoadWord`]), moving its
    /// reference there; the old value is not released (it was read before, and is released by
    /// the caller).
    StoreWord {
        base: ValueId,
        index: u32,
        value: ValueId,
    },
    /// Borrowed read of entry `index` of the globals dict, whose keys must have `version`.
    LoadModuleGlobal {
        version: u32,
        index: u32,
        entries: u32,
        state: StateId,
    },
    /// Borrowed read of entry `index` of the builtins dict; globals keys must have
    /// `globals_version` and builtins keys `builtins_version`.
    LoadBuiltin {
        globals_version: u32,
        builtins_version: u32,
        index: u32,
        entries: u32,
        state: StateId,
    },
    /// Machine bool: `a` and `b` are the same object.
    Is { a: ValueId, b: ValueId },
    /// Machine bool: the exact int `value` is 0 or has one positive digit (`ob_size` 0 or 1),
    /// so [`InstKind::CompactIntValue`] is its value.
    IsCompactInt { value: ValueId },
    /// Machine int: the value of an int [`InstKind::IsCompactInt`] accepted
    /// (`ob_digit[0] & -ob_size`: a zero's digit is not read as its value).
    CompactIntValue { value: ValueId },
    /// Machine int 1 or 0: `a op b` on signed machine ints, `op` a `COMPARE_OP` oparg
    /// (0 `<`, 1 `<=`, 2 `==`, 3 `!=`, 4 `>`, 5 `>=`).
    CompareWords { a: ValueId, b: ValueId, op: u32 },
    /// Machine int 1 or 0: `a op b` on two exact floats' values (`COMPARE_OP_FLOAT_JUMP`'s
    /// test, as `float_richcompare` makes it: a NaN is unequal to everything), `op` a
    /// `COMPARE_OP` oparg.
    CompareFloats { a: ValueId, b: ValueId, op: u32 },
    /// Machine int: `a op b` on machine ints the caller knows cannot overflow (ints of one
    /// digit, below 2**30).
    ArithWords {
        a: ValueId,
        b: ValueId,
        op: WordArith,
    },
    /// Machine int: truth of `value` with the fast paths of the interpreter (True, False,
    /// None) inline, else `PyObject_IsTrue`; -1 on error.
    Truthy { value: ValueId },
    /// `Py_True` or `Py_False` (borrowed) from a machine bool, or from its negation.
    BoolObject { value: ValueId, negate: bool },
    /// Machine bool: `value` != 0 (a C int).
    NonZero { value: ValueId },
    /// Machine bool: the pointer `value` is not NULL.
    NotNull { value: ValueId },
    /// New reference to the next item of `iter` when it is exactly a list, tuple or range
    /// iterator with an item left at its index (the index advanced, as `listiter_next`,
    /// `tupleiter_next` and `rangeiter_next` do); NULL otherwise: another kind of iterator, or
    /// its end (the caller's slow path, `fj_for_iter`, then ends it as those functions do), or
    /// a range item that could not be boxed (the exception is set: `fj_for_iter` raises it).
    SeqIterNext { iter: ValueId },
    /// `BINARY_OP_{ADD,SUBTRACT,MULTIPLY}_FLOAT` on two exact floats (guarded), in machine
    /// code: takes both references; the result is written into an operand that nothing else
    /// holds (reference count 1, as `fj_float_binary` does), else boxed by `fj_box_float`.
    /// New reference, or NULL when boxing failed.
    FloatArith {
        a: ValueId,
        b: ValueId,
        op: WordArith,
    },
    /// Machine bool: `value` is the exhausted marker of `fj_for_iter`.
    IsExhausted { value: ValueId },
    /// Machine bool: the generator frame being resumed was suspended at instruction `bc`
    /// (`RETURN_GENERATOR` or a `YIELD_VALUE`: `prev_instr` points there).
    SuspendedAt { bc: u32 },
    /// The generator frame's value stack, just read with `ReadStack`, now belongs to the
    /// compiled code: `stacktop` goes back to the locals, so the frame (and the garbage
    /// collector, which visits the frame) no longer counts those references.
    TakeFrameStack,
}

/// A Python function's code whose native code a call site enters from machine code
/// ([`InstKind::CallCompiled`]), as the compiler found it when compiling the caller. The
/// native code itself is read when the call runs (the code's current one, compiled before or
/// after the caller), through the code's callee cell, which outlives the code.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownCallee {
    /// The code's qualified name (for printed IR).
    pub name: String,
    /// The code object.
    pub code: usize,
    /// Address of the code's callee cell: a word holding the address of the word that holds
    /// the code's current native code (`NativeCode *`, or 0), or 0 once the code died.
    pub native_cell: usize,
    /// Positional parameters (the callee takes no others), and all local slots.
    pub nargs: u32,
    /// The positional parameters' names (for the keywords of a call), and how many of the
    /// last of them had defaults (`__defaults__`) at compile time.
    pub params: Vec<String>,
    pub ndefaults: u32,
    /// How many of the first parameters are positional-only (never bound by keyword).
    pub positional_only: u32,
    pub nlocalsplus: u32,
    /// Data-stack words of the callee's frame.
    pub slots: u32,
    /// `prev_instr` of a new frame: the code unit before the first.
    pub first_prev_instr: usize,
}

/// A class whose calls make their instance in machine code ([`InstKind::CallCompiled`] with a
/// class): its metatype is exactly `type`, its `tp_new` is `object.__new__` and its
/// `__init__` a Python function, all of which its version (non-zero) proves while it holds;
/// the function is borrowed from the type's dict as the interpreter's caches borrow theirs.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownClass {
    pub name: String,
    pub ty: usize,
    pub version: u32,
    pub init: usize,
}

/// One candidate of a [`InstKind::CallCompiled`] site: the callee, and where each of its
/// parameters comes from at this site.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteCallee {
    pub callee: KnownCallee,
    /// One per parameter, in order.
    pub args: Vec<ArgFrom>,
}

/// Where a parameter of a callee gets its value at a call site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgFrom {
    /// The `i`-th word from the first argument slot (a method's self is 0; keyword arguments
    /// follow the positional ones, in their names' order): its reference moves to the callee.
    Passed(u32),
    /// Item `i` of the function's `__defaults__` (a new reference): the call checks that the
    /// tuple still has [`KnownCallee::ndefaults`] items.
    Default(u32),
}

impl InstKind {
    /// Calls `f` on each value the instruction reads, in field order (a frame state's stack
    /// is not read here: see [`InstKind::state`]).
    pub fn for_each_operand(&self, mut f: impl FnMut(ValueId)) {
        use InstKind::*;
        match self {
            Param { .. }
            | Const { .. }
            | CInt { .. }
            | SiteCache { .. }
            | Null
            | Frame
            | LoadLocal { .. }
            | ReadStack { .. }
            | StackAddr { .. }
            | GuardInterpreterIdle { .. }
            | LoadModuleGlobal { .. }
            | LoadBuiltin { .. }
            | SuspendedAt { .. }
            | TakeFrameStack => {}
            StoreLocal { value, .. }
            | Incref { value }
            | Decref { value }
            | CheckError { value, .. }
            | GuardNotMarker { value, .. }
            | GuardNotNull { value, .. }
            | GuardType { value, .. }
            | GuardTypeVersion { value, .. }
            | HasTypeVersion { value, .. }
            | SharedKeysAre { value, .. }
            | GuardCachedKeysVersion { value, .. }
            | GuardNoDict { value, .. }
            | IsCompactInt { value }
            | CompactIntValue { value }
            | Truthy { value }
            | BoolObject { value, .. }
            | NonZero { value }
            | NotNull { value }
            | IsExhausted { value } => f(*value),
            InstanceValues { obj } | LoadModuleAttr { obj, .. } => f(*obj),
            LoadWord { base, .. } => f(*base),
            SeqIterNext { iter } => f(*iter),
            LoadDictHint { obj, name, .. } => {
                f(*obj);
                f(*name)
            }
            StoreWord { base, value, .. } => {
                f(*base);
                f(*value)
            }
            Is { a, b }
            | CompareWords { a, b, .. }
            | CompareFloats { a, b, .. }
            | ArithWords { a, b, .. }
            | FloatArith { a, b, .. } => {
                f(*a);
                f(*b)
            }
            CallCompiled { base, kwnames, .. } => {
                f(*base);
                kwnames.iter().copied().for_each(f)
            }
            SpillToStack { values: vs, .. } | CallHelper { args: vs, .. } => {
                vs.iter().copied().for_each(f)
            }
        }
    }

    /// The frame state the instruction exits to when its guard or check fails.
    pub fn state(&self) -> Option<StateId> {
        use InstKind::*;
        match self {
            CheckError { state, .. }
            | GuardNotMarker { state, .. }
            | GuardNotNull { state, .. }
            | GuardType { state, .. }
            | GuardTypeVersion { state, .. }
            | GuardCachedKeysVersion { state, .. }
            | GuardNoDict { state, .. }
            | GuardInterpreterIdle { state }
            | LoadModuleGlobal { state, .. }
            | LoadBuiltin { state, .. } => Some(*state),
            _ => None,
        }
    }
}

/// How a block ends.
#[derive(Clone, Debug, PartialEq)]
pub enum Terminator {
    /// Not yet set (only during building).
    None,
    /// Unconditional jump passing block arguments.
    Jump { target: BlockId, args: Vec<ValueId> },
    /// Two-way branch on a machine bool.
    Branch {
        cond: ValueId,
        then_to: BlockId,
        then_args: Vec<ValueId>,
        else_to: BlockId,
        else_args: Vec<ValueId>,
    },
    /// Returns `value` (an owned reference) from the function; `bc` is the RETURN_VALUE, left in
    /// `prev_instr` for a frame object that outlives the call (its `f_lineno`).
    Return { value: ValueId, bc: u32 },
    /// Hands over to the interpreter unconditionally.
    Exit { state: StateId },
    /// `YIELD_VALUE` at `bc`: the generator frame keeps `stack` (owned references, bottom
    /// first) as its value stack, is marked suspended with `prev_instr` at `bc`, and `value`
    /// (an owned reference) goes to the caller of `send()`/`next()`.
    Yield {
        value: ValueId,
        stack: Vec<ValueId>,
        bc: u32,
    },
}

/// An instruction with its result type and the bytecode index it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    pub kind: InstKind,
    pub ty: Type,
    pub bc: u32,
}

/// A basic block.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub params: Vec<ValueId>,
    pub insts: Vec<ValueId>,
    pub term: Terminator,
    /// The bytecode index the block starts at (for printing).
    pub bc: u32,
    /// A slow path that the fast one gives up to (a helper where the inline code does not
    /// apply): laid out after every other block, so the hot code stays dense.
    pub cold: bool,
}

/// A function in HIR.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    pub values: Vec<Inst>,
    pub blocks: Vec<Block>,
    pub states: Vec<FrameState>,
    /// Size of locals + cells + free variables: where the value stack starts in the frame.
    pub nlocalsplus: u32,
    /// How many attribute-site caches the function uses (`SiteCache` indices).
    pub site_caches: u32,
    /// The instruction (code-unit index of its opcode) each site cache serves.
    pub site_cache_at: Vec<u32>,
    /// For a generator: the instructions (code-unit indices of `RETURN_GENERATOR` and of the
    /// translated `YIELD_VALUE`s) its frame can be suspended at and resumed from here. A frame
    /// suspended anywhere else resumes in the interpreter.
    pub resume_points: Vec<u32>,
    /// For a function compiled with loop entries: the back edges (code-unit indices) whose
    /// loop a frame can enter here at the header (a subset of `resume_points`), each with the
    /// number of values on the stack at the header.
    pub loop_entries: Vec<(u32, u32)>,
    /// Values that hold a reference they do not own: a local's or a constant's, read without
    /// the `Incref`/`Decref` pair around its uses ([`borrow`]). An exit with one on its
    /// value stack takes a reference for the interpreter's frame. Sorted.
    pub borrowed: Vec<ValueId>,
}

impl Function {
    pub fn new(name: &str, nlocalsplus: u32) -> Function {
        Function {
            name: name.to_string(),
            values: Vec::new(),
            blocks: Vec::new(),
            states: Vec::new(),
            nlocalsplus,
            site_caches: 0,
            site_cache_at: Vec::new(),
            resume_points: Vec::new(),
            loop_entries: Vec::new(),
            borrowed: Vec::new(),
        }
    }

    /// Whether `v` holds a borrowed reference (see [`Function::borrowed`]).
    pub fn is_borrowed(&self, v: ValueId) -> bool {
        self.borrowed.binary_search(&v).is_ok()
    }

    pub fn inst(&self, v: ValueId) -> &Inst {
        &self.values[v.0 as usize]
    }

    pub fn block(&self, b: BlockId) -> &Block {
        &self.blocks[b.0 as usize]
    }

    pub fn state(&self, s: StateId) -> &FrameState {
        &self.states[s.0 as usize]
    }

    /// A new empty block.
    pub fn new_block(&mut self, bc: u32) -> BlockId {
        self.blocks.push(Block {
            params: Vec::new(),
            insts: Vec::new(),
            term: Terminator::None,
            bc,
            cold: false,
        });
        BlockId(self.blocks.len() as u32 - 1)
    }

    /// Creates a value that belongs to no block yet.
    pub fn new_value(&mut self, kind: InstKind, ty: Type, bc: u32) -> ValueId {
        self.values.push(Inst { kind, ty, bc });
        ValueId(self.values.len() as u32 - 1)
    }

    /// Takes the instructions `removed` out of their blocks (the values stay, unused).
    pub fn remove_insts(&mut self, mut removed: Vec<ValueId>) {
        if removed.is_empty() {
            return;
        }
        removed.sort_unstable();
        for block in &mut self.blocks {
            block.insts.retain(|id| removed.binary_search(id).is_err());
        }
    }

    /// Appends an instruction to `block`.
    pub fn push(&mut self, block: BlockId, kind: InstKind, ty: Type, bc: u32) -> ValueId {
        let v = self.new_value(kind, ty, bc);
        self.blocks[block.0 as usize].insts.push(v);
        v
    }

    /// Adds a parameter to `block`.
    pub fn add_param(&mut self, block: BlockId, ty: Type) -> ValueId {
        let index = self.blocks[block.0 as usize].params.len() as u32;
        let bc = self.blocks[block.0 as usize].bc;
        let v = self.new_value(InstKind::Param { index }, ty, bc);
        self.blocks[block.0 as usize].params.push(v);
        v
    }

    pub fn add_state(&mut self, state: FrameState) -> StateId {
        if let Some(i) = self.states.iter().position(|s| *s == state) {
            return StateId(i as u32);
        }
        self.states.push(state);
        StateId(self.states.len() as u32 - 1)
    }

    /// The blocks in reverse post-order from the entry (bb0); unreachable blocks are left out.
    pub fn rpo(&self) -> Vec<BlockId> {
        let mut seen = vec![false; self.blocks.len()];
        let mut post = Vec::new();
        let mut stack = vec![(BlockId(0), 0usize)];
        seen[0] = true;
        while let Some((b, i)) = stack.pop() {
            let succs = self.successors(b);
            if i < succs.len() {
                stack.push((b, i + 1));
                let s = succs[i];
                if !seen[s.0 as usize] {
                    seen[s.0 as usize] = true;
                    stack.push((s, 0));
                }
            } else {
                post.push(b);
            }
        }
        post.reverse();
        post
    }

    /// Successor blocks of `b`.
    pub fn successors(&self, b: BlockId) -> Vec<BlockId> {
        match &self.block(b).term {
            Terminator::Jump { target, .. } => vec![*target],
            Terminator::Branch {
                then_to, else_to, ..
            } => vec![*then_to, *else_to],
            _ => vec![],
        }
    }
}
