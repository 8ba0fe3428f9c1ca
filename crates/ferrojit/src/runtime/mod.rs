//! The runtime: the frame-evaluation hook and its policy, per-code state, the compile driver,
//! executable memory, the helpers generated code calls, and statistics.

pub mod attr_cache;
pub mod c_calls;
pub mod callees;
pub mod codemem;
pub mod compile;
pub mod counting;
pub mod direct_call;
pub mod generators;
pub mod helpers;
pub mod hook;
pub mod matching;
pub mod osr;
pub mod panics;
pub mod perf_map;
pub mod specialised;
pub mod stats;
pub mod unpacking;

use std::cell::UnsafeCell;
use std::path::PathBuf;

/// Interior mutability for state that is only touched while holding the GIL.
pub struct GilCell<T>(UnsafeCell<T>);

// SAFETY: every access goes through `get`, whose callers hold the GIL, which serialises them.
unsafe impl<T> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    pub const fn new(v: T) -> Self {
        GilCell(UnsafeCell::new(v))
    }

    /// # Safety
    /// The caller holds the GIL and does not keep the reference across anything that may
    /// re-enter ferrojit (a Python call).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: exclusive by the GIL, as the caller promises.
        unsafe { &mut *self.0.get() }
    }
}

/// The knobs of the JIT.
#[derive(Clone, Debug)]
pub struct Options {
    /// Calls a function gets in the interpreter before it is compiled (0: compile on the first
    /// call). The interpreter's warm-up quickens the code, so a non-zero threshold gives the
    /// compiler type feedback.
    pub threshold: u32,
    /// Calls before a function with a loop (a backward jump) is compiled, when fewer than
    /// `threshold`: its loop makes the interpreter quicken it during the first call, so its
    /// feedback is ready early, and a function whose loop is the hot part may be called only a
    /// few times (richards' `schedule` once per iteration of the benchmark).
    pub loop_threshold: u32,
    /// Append a JSON line of statistics here at exit.
    pub stats_path: Option<PathBuf>,
    /// Write each compiled function's HIR, LIR and disassembly here.
    pub dump_dir: Option<PathBuf>,
    /// The deopt policy's bound: a speculation whose exit is taken more often than this makes
    /// its function recompile with that instruction's generic path (0: never recompile).
    pub deopt_limit: u32,
    /// Optimisations switched off (for A/B measurements and for finding a culprit).
    pub disabled: Vec<Optimisation>,
}

/// An optimisation that can be switched off by name (`--disable NAME`, `FERROJIT_DISABLE`,
/// `enable(disable=...)`), so the lab can measure it off and on in the same run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optimisation {
    /// `compile-time-globals`: a `LOAD_GLOBAL` the interpreter never specialised reads the
    /// entry where the name was at compile time, under keys-version guards, instead of
    /// looking the name up in two dicts on every execution.
    CompileTimeGlobals,
    /// `inline-dict-attrs`: `LOAD_ATTR_WITH_HINT` (an instance whose `__dict__` was
    /// materialised) and `LOAD_ATTR_MODULE` read the dict entry in machine code, under the
    /// interpreter's guards, instead of calling the site-cached generic lookup.
    InlineDictAttrs,
    /// `direct-call-defaults`: a direct call between compiled functions may leave trailing
    /// parameters to the callee's `__defaults__` (filled as `initialize_locals` does); off,
    /// such calls take the vectorcall path through the hook.
    DirectCallDefaults,
    /// `site-cache-feedback`: after 200 entries into a function's native code, generic
    /// attribute loads whose site cache saw one type (the interpreter had not specialised them
    /// when the function compiled) become feedback, and the function compiles once more with
    /// inline reads there.
    SiteCacheFeedback,
    /// `method-cache-dicts`: a generic `LOAD_METHOD` site's cache also serves instances whose
    /// `__dict__` was materialised, checking only that the instance's dict does not shadow the
    /// method (the generic path looks the name up on the type and in the dict).
    MethodCacheDicts,
    /// `store-attr-dict`: `STORE_ATTR_WITH_HINT` (an instance whose `__dict__` was
    /// materialised) stores with `PyDict_SetItem` under the interpreter's type-version check,
    /// instead of the generic `PyObject_SetAttr` (which looks the name up on the type first).
    StoreAttrDict,
    /// `inline-int-compare`: `COMPARE_OP_INT_JUMP` compares two ints of 0 or one positive
    /// digit in machine code (the helper for any other int).
    InlineIntCompare,
    /// `inline-unpack`: `UNPACK_SEQUENCE` specialised for a tuple or list reads the items of
    /// an exact tuple or list of the right length in machine code (the helper otherwise).
    InlineUnpack,
    /// `inline-int-arith`: `BINARY_OP_{ADD,SUBTRACT,MULTIPLY}_INT` on two ints of 0 or one
    /// positive digit computes in machine words and boxes the result with
    /// `PyLong_FromLongLong` (the helper for any other int).
    InlineIntArith,
    /// `c-calls`: a call the interpreter specialised for a builtin function, a builtin type's
    /// method descriptor or `type(x)` calls the C function straight from its method
    /// definition, as the interpreter's specialised `PRECALL`s do (`fj_call_c`).
    CCalls,
    /// `compile-send`: coroutines and generators with `await`, `yield from`, `async with` or
    /// `async for` compile (`GET_AWAITABLE`, `GET_YIELD_FROM_ITER`, `SEND`,
    /// `BEFORE_ASYNC_WITH`, `GET_AITER`, `GET_ANEXT`); off, such code stays with the
    /// interpreter.
    CompileSend,
    /// `direct-resume`: `SEND` in compiled code resumes a generator or coroutine whose code is
    /// compiled by entering its native code directly (what `gen_send_ex2` does around the
    /// frame), instead of `PyIter_Send` and the hook.
    DirectResume,
    /// `direct-generator-calls`: a direct call of a compiled generator or coroutine function
    /// makes the generator object itself (as `RETURN_GENERATOR` does), instead of running the
    /// call's first instruction in the interpreter through `_PyEval_Vector` and the hook.
    DirectGeneratorCalls,
    /// `direct-iter-calls`: `iter(x)` in compiled code (`GET_ITER`, `yield from`) calls the
    /// class's `__iter__` directly when it is a compiled Python function (for a generator
    /// function, making the generator), instead of `PyObject_GetIter` -> `slot_tp_iter` ->
    /// vectorcall -> the hook.
    DirectIterCalls,
    /// `recompile-on-keys-change`: a `LOAD_GLOBAL` exit taken because the module's or the
    /// builtins' keys changed (a global added or deleted after compiling) retires the code at
    /// once, so the next call compiles against the dicts as they are now, instead of exiting
    /// up to the deopt limit and then making the site generic. At most
    /// `KEYS_CHANGE_RECOMPILES` times per code object; after that the ordinary policy.
    RecompileOnKeysChange,
    /// `inline-for-iter`: `FOR_ITER` over a list or tuple iterator takes the next item in
    /// machine code (type check, index against size, item load, index bump), as
    /// `listiter_next`/`tupleiter_next` do, instead of calling `fj_for_iter`; other iterators
    /// and the end of the loop go through the helper.
    InlineForIter,
    /// `direct-constructors`: calling a class whose instances come from `object.__new__` and
    /// whose `__init__` is a compiled Python function makes the instance with `object.__new__`
    /// and calls `__init__` directly (as `type.__call__` and `slot_tp_init` would, without
    /// their argument tuple, lookups and the hook).
    DirectConstructors,
    /// `mixed-float-arith`: a `+ - * /` the interpreter left generic (its operands vary, as in
    /// `v * factor` with an int or float factor) computes in doubles when one operand is an
    /// exact float and the other an exact float or a one-digit int, as `float_add` & co. do
    /// after converting the int, and in a word for two one-digit ints, without `PyNumber_*`'s
    /// slot dispatch.
    MixedFloatArith,
    /// `inline-float-arith`: `BINARY_OP_{ADD,SUBTRACT,MULTIPLY}_FLOAT` computes in machine
    /// code (the doubles through scratch FP registers), writing the result into an operand
    /// nothing else holds or boxing it, instead of calling `fj_float_binary`.
    InlineFloatArith,
    /// `refuse-huge-functions`: a function of more than [`HUGE_FUNCTION_CODE_UNITS`] code
    /// units stays with the interpreter (as HotSpot leaves methods over its `HugeMethodLimit`
    /// of 8000 bytecode bytes to its interpreter). Straight-line machine code for such a body
    /// is some 50 times its bytecode's size and runs from beyond the instruction cache: the
    /// 400 unpackings of pyperformance's `unpack_sequence` were 510 KB of x86-64 code and ran
    /// 3.7 times slower than the interpreter.
    RefuseHugeFunctions,
    /// `short-jumps`: x86-64 code is emitted twice, and the second time the forward jumps the
    /// first found within reach take their two-byte form (`jcc rel8`, `jmp rel8`) instead of
    /// six or five bytes. Backward jumps are short whenever they reach either way.
    ShortJumps,
    /// `cold-slow-paths`: the slow paths of inline fast paths (the helper calls taken when a
    /// type, size or version check fails) are laid out after the rest of the function, so the
    /// code that runs stays dense and falls through its checks.
    ColdSlowPaths,
    /// `early-quickening`: on the first call of a function with a loop, the interpreter is
    /// told to quicken it at that call's `RESUME` (its warm-up counter set one short of zero),
    /// so the loop specialises during the first call and the function compiles with feedback
    /// on its second (the loop threshold). Only `JUMP_BACKWARD` counts towards quickening in
    /// 3.11: a `while` loop ending in `POP_JUMP_BACKWARD_IF_*` (richards' `schedule`) or a
    /// loop run once per call otherwise waits eight calls, and the function the call
    /// threshold.
    EarlyQuickening,
    /// `spread-code`: each compiled function starts at the next of 64 cache-line offsets
    /// within its first page instead of at the page boundary, so the hot heads of many
    /// functions do not all fall into the same instruction-cache sets.
    SpreadCode,
    /// `prev-instr-low-half`: `frame->prev_instr` is kept up to date with one 32-bit store of
    /// an immediate (its lower half) where every instruction of the code shares the upper half,
    /// instead of a 64-bit constant built in a register and stored (x86-64: 8 bytes instead of
    /// 11 with the literal pool, 14 without; AArch64: `mov`/`movk`/`str` instead of
    /// `mov`/`movk`/`movk`/`str` without the pool, but one more than the pool's `ldr`/`str`:
    /// LIR is ISA-neutral, so AArch64 takes the x86-64 choice until a prev_instr operation
    /// lets each backend pick its own encoding).
    PrevInstrLowHalf,
    /// `literal-pool` (AArch64): 64-bit constants and helper addresses come from a pool of
    /// 8-byte entries after each function's code, one `ldr` (literal) instead of three or four
    /// `mov`/`movk`. x86-64 could do the same RIP-relative (`mov r, [rip + d]` instead of a
    /// 10-byte `movabs`, `call [rip + d]` instead of 13 bytes), and its encoder can, but the
    /// lab measured each of the three uses slower there (0.935x with all of them, geometric
    /// mean of richards, richards_super, go, chaos, nbody), so x86-64 keeps `movabs`.
    LiteralPool,
    /// `constant-operands`: an int or float constant operand of specialised arithmetic or
    /// comparison needs no type guard, and a small int constant no one-digit test: its machine
    /// word is a constant (`n - 1`, `i + 1`, `x * 2.0`).
    ConstantOperands,
    /// `borrowed-refs`: a local or a constant pushed for uses that all give it back is read
    /// without an `Incref`/`Decref` pair (the frame and the code object hold it); an exit
    /// with it on the value stack takes the reference the interpreter's frame needs.
    BorrowedRefs,
    /// `live-ranges`: register allocation sees where each value is live, not just its first
    /// and last position: values share a register when their live ranges do not meet, and a
    /// value needs a callee-saved register (or a spill slot) only where it is live across a
    /// call. Off, a value used in a slow path laid out at the end holds its location (and
    /// counts every call) from its definition in the hot code to there.
    LiveRanges,
    /// `slot-order`: spill slots are numbered by how often the code touches them, so the most
    /// used get x86-64's one-byte displacement (`[rsp + 8k]` for k < 16).
    SlotOrder,
    /// `compact-int-multiply`: the machine word of a compact int (guarded to 0 or one
    /// positive digit) is its digit times its size, one multiply, instead of masking the digit
    /// with the negated size (a zero, a subtraction and an `and`).
    CompactIntMultiply,
    /// `compare-and-branch` (AArch64): a branch or guard on a register being zero or not is
    /// one `cbz`/`cbnz` instead of `cmp` and `b.cond` (null checks, error checks, the
    /// interpreter-idle checks, truth tests).
    CompareAndBranch,
    /// `osr`: a function whose first call runs a loop enters compiled code at the loop's header
    /// once the loop has gone round in the interpreter (on-stack replacement, see [`osr`]),
    /// instead of waiting for a second call that may never come.
    Osr,
    /// `inline-range-iter`: `for` over a `range` steps the range iterator in machine code
    /// (index, bound, `start + index * step`, one call to box the int) instead of calling
    /// `fj_for_iter` and the iterator's `tp_iternext` for every item. Part of
    /// `inline-for-iter` (off with it).
    InlineRangeIter,
    /// `literal-pool-pairs` (AArch64, with `literal-pool`): a constant that takes a
    /// `movz`/`movk` pair is one `ldr` from the pool too. Debian's arm64 CPython is not
    /// position-independent, so `None`, `True`, `False`, the builtin types and the eval
    /// breaker lie below 4 GiB and took two instructions each time they were named: 62M of
    /// richards' 1,035M generated instructions per run were those `movk`s.
    LiteralPoolPairs,
    /// `fuse-bool-branches`: a jump on the truth of a bool the function just made from a
    /// condition (`not x`, `a in b`, `a is b`, a comparison) branches on the condition, not on
    /// a truth test of the boxed bool (two compares against `True` and `False` and a test).
    FuseBoolBranches,
    /// `direct-call-extras`: direct calls also reach functions with keyword-only parameters
    /// (filled from `__kwdefaults__`), `*args` and `**kwargs` (given an empty tuple and a new
    /// empty dict), when the call passes no keywords and no extra positional arguments, as
    /// `json.dumps(obj)` does; otherwise such calls go through vectorcall and the hook.
    DirectCallExtras,
    /// `direct-call-keywords`: direct calls also bind keyword arguments to the callee's
    /// parameters by name (the rest from the defaults), instead of leaving every call with
    /// keywords to vectorcall and the hook.
    DirectCallKeywords,
    /// `pair-loads-stores` (AArch64): two adjacent 64-bit loads (stores) from (to) the same
    /// base register eight bytes apart are one `ldp` (`stp`): locals read for a call's
    /// arguments, a value stack written back at an exit, items stored in a new tuple.
    PairLoadsStores,
    /// `test-bit-branches` (AArch64): a branch or guard on a value's sign (`< 0`, `>= 0`)
    /// is one `tbnz`/`tbz` on its top bit instead of `cmp` and `b.lt`/`b.ge`; a function
    /// whose sign tests lie beyond `tbz`'s 32 KiB reach is generated again without them.
    TestBitBranches,
    /// `near-calls`: a call of a helper (a runtime function, a C API function, `_Py_Dealloc`)
    /// is one `call rel32` / `bl`, its displacement written at install, instead of the
    /// helper's address moved into a scratch register and called through it. Code is placed
    /// near the extension so that its helpers are in reach; a helper that is not (libpython in
    /// another part of the address space) is called through a veneer next to the code.
    NearCalls,
    /// `cold-section`: the epilogue follows the hot blocks, and the cold code (the slow-path
    /// blocks `cold-slow-paths` lays out last, the exit stubs, the dealloc paths) follows it,
    /// instead of the epilogue coming after all of that: every return then stays within the
    /// hot stretch of the function's code.
    ColdSection,
    /// `callee-table`: a direct call finds its callee's native code in a table of recently
    /// called functions (`runtime::callees`) instead of following function -> code ->
    /// `co_extra` -> code state -> native code on every call.
    CalleeTable,
    /// `poly-attrs`: a `LOAD_ATTR` site whose cache saw instance attributes of several types
    /// (after the site feedback's 200 entries) is compiled again to a chain of type-version
    /// checks, each with its inline slot read; the cached helper only for other types.
    PolyAttrs,
    /// `poly-methods`: a `LOAD_METHOD` site whose cache saw methods of several types is
    /// compiled again to a chain of type-version checks, each with its no-shadowing check and
    /// its method as a constant; the cached helper only for other types.
    PolyMethods,
    /// `hot-site-feedback`: a site cache that served many loads (`FEEDBACK_AFTER_HITS`) asks
    /// for its function's site feedback when the function next returns, so that a function
    /// entered too seldom to reach the feedback's entry count (a long loop) learns its sites;
    /// and the caches of the code compiled from feedback are read too (up to
    /// `hook::MAX_SITE_FEEDBACK_READS` versions), not only the first version's.
    HotSiteFeedback,
    /// `poly-stores`: a generic `STORE_ATTR` stores through its site's cache
    /// (`fj_setattr_cached`, which stores into an instance's values itself for a type it
    /// knows), and a site whose cache learnt instance attributes of some types is compiled
    /// again to a chain of type checks, each with its inline store.
    PolyStores,
    /// `guard-elimination`: a type guard on a value already known to be of that exact type
    /// (a float product, a constant, a value or local slot checked before on every path) is
    /// removed from the HIR (`hir::guards`).
    GuardElimination,
    /// `inline-float-compare`: `COMPARE_OP_FLOAT_JUMP` compares the two floats' values in
    /// machine code (`cmpsd`; `fcmp` and `cset`) instead of calling `fj_compare_floats`.
    InlineFloatCompare,
    /// `calls-in-machine-code`: a method call whose function had native code when the caller
    /// was compiled pushes the callee's frame, enters its native code and pops the frame in
    /// machine code, without `fj_call` (see `hir::InstKind::CallCompiled`).
    CallsInMachineCode,
    /// `machine-code-call-binding`: a call made in machine code (`calls-in-machine-code`) may
    /// also pass keyword arguments and leave parameters to their defaults: the compiler binds
    /// each parameter to an argument or an item of `__defaults__` for the callee's code, and
    /// the machine code checks the defaults' count. Off, only calls passing exactly the
    /// positional parameters are made there.
    MachineCodeCallBinding,
    /// `own-dict-methods`: a polymorphic `LOAD_METHOD` (`poly-methods`) also handles inline a
    /// type whose instances' values were made into a dict of their own (the interpreter cannot
    /// specialise those: each such dict has keys of its own): the type check, then
    /// `fj_own_dict_lacks` instead of the whole site-cache lookup, so the method is known and
    /// its call can be made in machine code.
    OwnDictMethods,
    /// `constructors-in-machine-code`: the call of a global class whose instances come from
    /// `object.__new__` and whose `__init__` is a Python function (`direct-constructors`'
    /// classes) is made in machine code: the class and its version checked, the instance
    /// made by `fj_new_instance`, `__init__` entered as a call in machine code, its None
    /// checked.
    ConstructorsInMachineCode,
}

/// The size over which `refuse-huge-functions` leaves a function to the interpreter, in code
/// units (instructions and inline caches). It bounds compile time and code size: measured on
/// this project's x86-64 machine, a straight-line loop body of 10,400 units compiled in 112 ms
/// (x86-64, 542 KB) and 199 ms (AArch64, 440 KB, within its conditional branches' 1 MB
/// reach); pyperformance's `do_unpacking` (5,200 units) runs 2x faster compiled than
/// interpreted.
pub const HUGE_FUNCTION_CODE_UNITS: usize = 8000;

impl Options {
    /// Whether optimisation `opt` is on (not named in `disabled`).
    pub fn enabled(&self, opt: Optimisation) -> bool {
        !self.disabled.contains(&opt)
    }
}

impl Optimisation {
    pub const ALL: [Optimisation; 53] = [
        Optimisation::CompileTimeGlobals,
        Optimisation::InlineDictAttrs,
        Optimisation::DirectCallDefaults,
        Optimisation::SiteCacheFeedback,
        Optimisation::MethodCacheDicts,
        Optimisation::StoreAttrDict,
        Optimisation::InlineIntCompare,
        Optimisation::InlineUnpack,
        Optimisation::InlineIntArith,
        Optimisation::CCalls,
        Optimisation::CompileSend,
        Optimisation::DirectResume,
        Optimisation::DirectGeneratorCalls,
        Optimisation::DirectIterCalls,
        Optimisation::RecompileOnKeysChange,
        Optimisation::InlineForIter,
        Optimisation::DirectConstructors,
        Optimisation::MixedFloatArith,
        Optimisation::InlineFloatArith,
        Optimisation::RefuseHugeFunctions,
        Optimisation::ShortJumps,
        Optimisation::ColdSlowPaths,
        Optimisation::EarlyQuickening,
        Optimisation::SpreadCode,
        Optimisation::PrevInstrLowHalf,
        Optimisation::LiteralPool,
        Optimisation::ConstantOperands,
        Optimisation::BorrowedRefs,
        Optimisation::LiveRanges,
        Optimisation::SlotOrder,
        Optimisation::CompactIntMultiply,
        Optimisation::CompareAndBranch,
        Optimisation::Osr,
        Optimisation::InlineRangeIter,
        Optimisation::LiteralPoolPairs,
        Optimisation::FuseBoolBranches,
        Optimisation::DirectCallExtras,
        Optimisation::DirectCallKeywords,
        Optimisation::PairLoadsStores,
        Optimisation::TestBitBranches,
        Optimisation::NearCalls,
        Optimisation::ColdSection,
        Optimisation::CalleeTable,
        Optimisation::PolyAttrs,
        Optimisation::PolyMethods,
        Optimisation::HotSiteFeedback,
        Optimisation::PolyStores,
        Optimisation::GuardElimination,
        Optimisation::InlineFloatCompare,
        Optimisation::CallsInMachineCode,
        Optimisation::MachineCodeCallBinding,
        Optimisation::OwnDictMethods,
        Optimisation::ConstructorsInMachineCode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Optimisation::CompileTimeGlobals => "compile-time-globals",
            Optimisation::InlineDictAttrs => "inline-dict-attrs",
            Optimisation::DirectCallDefaults => "direct-call-defaults",
            Optimisation::SiteCacheFeedback => "site-cache-feedback",
            Optimisation::MethodCacheDicts => "method-cache-dicts",
            Optimisation::StoreAttrDict => "store-attr-dict",
            Optimisation::InlineIntCompare => "inline-int-compare",
            Optimisation::InlineUnpack => "inline-unpack",
            Optimisation::InlineIntArith => "inline-int-arith",
            Optimisation::CCalls => "c-calls",
            Optimisation::CompileSend => "compile-send",
            Optimisation::DirectResume => "direct-resume",
            Optimisation::DirectGeneratorCalls => "direct-generator-calls",
            Optimisation::DirectIterCalls => "direct-iter-calls",
            Optimisation::RecompileOnKeysChange => "recompile-on-keys-change",
            Optimisation::InlineForIter => "inline-for-iter",
            Optimisation::DirectConstructors => "direct-constructors",
            Optimisation::MixedFloatArith => "mixed-float-arith",
            Optimisation::InlineFloatArith => "inline-float-arith",
            Optimisation::RefuseHugeFunctions => "refuse-huge-functions",
            Optimisation::ShortJumps => "short-jumps",
            Optimisation::ColdSlowPaths => "cold-slow-paths",
            Optimisation::EarlyQuickening => "early-quickening",
            Optimisation::SpreadCode => "spread-code",
            Optimisation::PrevInstrLowHalf => "prev-instr-low-half",
            Optimisation::LiteralPool => "literal-pool",
            Optimisation::ConstantOperands => "constant-operands",
            Optimisation::BorrowedRefs => "borrowed-refs",
            Optimisation::LiveRanges => "live-ranges",
            Optimisation::SlotOrder => "slot-order",
            Optimisation::CompactIntMultiply => "compact-int-multiply",
            Optimisation::CompareAndBranch => "compare-and-branch",
            Optimisation::Osr => "osr",
            Optimisation::InlineRangeIter => "inline-range-iter",
            Optimisation::LiteralPoolPairs => "literal-pool-pairs",
            Optimisation::FuseBoolBranches => "fuse-bool-branches",
            Optimisation::DirectCallExtras => "direct-call-extras",
            Optimisation::DirectCallKeywords => "direct-call-keywords",
            Optimisation::PairLoadsStores => "pair-loads-stores",
            Optimisation::TestBitBranches => "test-bit-branches",
            Optimisation::NearCalls => "near-calls",
            Optimisation::ColdSection => "cold-section",
            Optimisation::CalleeTable => "callee-table",
            Optimisation::PolyAttrs => "poly-attrs",
            Optimisation::PolyMethods => "poly-methods",
            Optimisation::HotSiteFeedback => "hot-site-feedback",
            Optimisation::PolyStores => "poly-stores",
            Optimisation::GuardElimination => "guard-elimination",
            Optimisation::InlineFloatCompare => "inline-float-compare",
            Optimisation::CallsInMachineCode => "calls-in-machine-code",
            Optimisation::MachineCodeCallBinding => "machine-code-call-binding",
            Optimisation::OwnDictMethods => "own-dict-methods",
            Optimisation::ConstructorsInMachineCode => "constructors-in-machine-code",
        }
    }

    /// Parses a comma-separated list of names (empty: none).
    pub fn parse_list(text: &str) -> Result<Vec<Optimisation>, String> {
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match Self::ALL.iter().find(|o| o.name() == name) {
                Some(&o) if !out.contains(&o) => out.push(o),
                Some(_) => {}
                None => {
                    let known: Vec<_> = Self::ALL.iter().map(|o| o.name()).collect();
                    return Err(format!(
                        "unknown optimisation {name:?} (known: {})",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// Default call threshold: the interpreter quickens a function after 8 calls (co_warmup) and
/// its instructions specialise on their next execution, so a few calls more give feedback.
pub const DEFAULT_THRESHOLD: u32 = 20;

/// Default loop threshold: compile a function with a loop on its second call.
pub const DEFAULT_LOOP_THRESHOLD: u32 = 1;

/// Default deopt limit: a failed speculation costs a trip through the interpreter for the rest
/// of the call, so a site that fails this often is better off generic.
pub const DEFAULT_DEOPT_LIMIT: u32 = 100;

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: DEFAULT_THRESHOLD,
            loop_threshold: DEFAULT_LOOP_THRESHOLD,
            stats_path: None,
            dump_dir: None,
            deopt_limit: DEFAULT_DEOPT_LIMIT,
            disabled: Vec::new(),
        }
    }
}
