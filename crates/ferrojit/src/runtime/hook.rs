//! The PEP 523 frame-evaluation hook: counts calls per code object, compiles hot functions,
//! enters their native code, and hands frames back to the interpreter on deopts and exceptions.
//!
//! The interpreter runs a frame whenever native code cannot: tracing or profiling on, a
//! generator's first call (up to RETURN_GENERATOR) or a resume from a point its code does not
//! know, a coroutine, `throw()`, or a function the compiler refused (for good, with the reason
//! counted). Entering native code costs one recursion level, as the interpreter's
//! `start_frame` does, and the frame is linked into `cframe->current_frame` for the duration so
//! that `sys._getframe` and tracebacks see it.

use super::attr_cache::SiteFeedback;
use super::compile::{self, ExitInfo, Namespaces, NativeCode};
use super::stats::Stats;
use super::{GilCell, Optimisation, Options};
use crate::backend::Isa;
use crate::cpython::ffi::{self, code as co, frame, tstate, InterpreterFrame};
use crate::cpython::Layout;
use crate::hir::builder::{MethodCase, PolySites, BUILTINS_KEYS_CHANGED, MODULE_KEYS_CHANGED};
use pyo3_ffi::{PyObject, PyThreadState};
use std::collections::{BTreeMap, BTreeSet};
use std::os::raw::{c_int, c_void};
use std::sync::atomic::AtomicUsize;

/// Per-code-object state, kept in the code object's co_extra slot.
pub struct CodeState {
    pub calls: u32,
    /// The code has a loop (a backward jump): the loop threshold applies.
    pub has_loop: bool,
    pub native: Option<Box<NativeCode>>,
    /// Why this code will never be compiled.
    pub refused: Option<String>,
    /// Instructions (code-unit indices) the deopt policy gave their generic path.
    pub generic_sites: BTreeSet<u32>,
    /// Failed speculations by instruction, over every native version of the code: the deopt
    /// limit bounds a site, not a version (a recompilation for another site's sake does not
    /// start the count again).
    pub site_exits: BTreeMap<u32, u32>,
    /// Native code replaced after a speculation kept failing. A frame further up the C stack may
    /// still be running it (recursion), so it lives as long as the code object.
    pub retired: Vec<Box<NativeCode>>,
    /// Feedback the site caches of earlier native code gave, by instruction (see
    /// [`take_site_feedback`]).
    pub site_feedback: BTreeMap<u32, SiteFeedback>,
    /// How many native versions' site caches were read (see [`MAX_SITE_FEEDBACK_READS`]).
    pub site_feedback_reads: u8,
    /// Attribute and method loads whose caches held cases for some types: `poly-attrs` and
    /// `poly-methods` compile them to a chain of type checks. Learnt with the site feedback.
    pub poly: PolySites,
    /// Native code retired because a global was added or deleted (see
    /// [`KEYS_CHANGE_RECOMPILES`]).
    pub keys_change_recompiles: u32,
    /// Compile with entries at the loops' headers (asked for by on-stack replacement).
    pub loop_entries: bool,
    /// The word through which callers' machine code finds this code's native code
    /// (`calls-in-machine-code`): the address of `native` while the code lives, 0 once it
    /// died. Made when a caller first names the code, never freed: a caller compiled against
    /// it may outlive the code (8 bytes per such code object that dies).
    pub callee_cell: Option<&'static AtomicUsize>,
}

impl CodeState {
    /// Sets the native code aside so that the next call compiles the code again. It is kept,
    /// not freed: a frame further up the C stack may still be running it.
    pub fn retire_native(&mut self) {
        if let Some(old) = self.native.take() {
            self.retired.push(old);
            super::callees::changed();
        }
    }

    /// Makes `native` the code's native code.
    pub fn install_native(&mut self, native: NativeCode) {
        self.native = Some(Box::new(native));
        super::callees::changed();
    }
}

/// Times a code object is recompiled at the first exit of a `LOAD_GLOBAL` whose dict's keys
/// changed; past that (a module that keeps adding globals) its exits count towards the deopt
/// limit like any other.
pub const KEYS_CHANGE_RECOMPILES: u32 = 4;

/// Process-wide JIT state (one interpreter).
pub struct Runtime {
    pub options: Options,
    pub stats: Stats,
    pub extra_index: isize,
    pub enabled: bool,
    /// The address of a site cache that asked for its function's site feedback (0: none), see
    /// `attr_cache::FEEDBACK_AFTER_HITS`. Only compared, never followed.
    pub feedback_asked_by: usize,
}

static RUNTIME: GilCell<Option<Runtime>> = GilCell::new(None);

/// The runtime state; created on first use.
///
/// # Safety
/// The caller holds the GIL (see [`GilCell::get`]).
#[inline]
pub unsafe fn runtime() -> &'static mut Runtime {
    // SAFETY: the GIL is held by the caller.
    let slot = unsafe { RUNTIME.get() };
    match slot {
        Some(rt) => rt,
        None => first_runtime(slot),
    }
}

/// The runtime state if it exists already.
///
/// # Safety
/// As for [`runtime`].
#[inline]
unsafe fn runtime_if_created() -> Option<&'static mut Runtime> {
    // SAFETY: the GIL is held by the caller.
    unsafe { RUNTIME.get().as_mut() }
}

#[cold]
fn first_runtime(slot: &'static mut Option<Runtime>) -> &'static mut Runtime {
    slot.insert(Runtime {
        options: Options::default(),
        stats: Stats {
            isa: Isa::host().name(),
            threshold: super::DEFAULT_THRESHOLD,
            loop_threshold: super::DEFAULT_LOOP_THRESHOLD,
            deopt_limit: super::DEFAULT_DEOPT_LIMIT,
            ..Default::default()
        },
        extra_index: -1,
        enabled: false,
        feedback_asked_by: 0,
    })
}

unsafe extern "C" fn free_code_state(p: *mut c_void) {
    if !p.is_null() {
        // SAFETY: co_extra holds a Box<CodeState> made by `code_state`; CPython calls this once,
        // with the GIL, when the code object dies.
        let state = unsafe { Box::from_raw(p as *mut CodeState) };
        if state.native.is_some() || !state.retired.is_empty() {
            super::callees::changed();
        }
        if let Some(cell) = state.callee_cell {
            cell.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        drop(state);
    }
}

/// The state of `code`, created on first use; None if the extra slot cannot be used.
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn code_state(code: *mut PyObject) -> Option<&'static mut CodeState> {
    // SAFETY: GIL held by the caller; `code` is live.
    unsafe {
        let rt = runtime();
        if rt.extra_index < 0 {
            rt.extra_index = ffi::_PyEval_RequestCodeExtraIndex(free_code_state);
            if rt.extra_index < 0 {
                pyo3_ffi::PyErr_Clear();
                return None;
            }
        }
        let mut p: *mut c_void = std::ptr::null_mut();
        if ffi::_PyCode_GetExtra(code, rt.extra_index, &mut p) != 0 {
            pyo3_ffi::PyErr_Clear();
            return None;
        }
        if p.is_null() {
            let has_loop = compile::has_loop(code);
            let state = CodeState {
                calls: 0,
                has_loop,
                native: None,
                refused: None,
                generic_sites: BTreeSet::new(),
                site_exits: BTreeMap::new(),
                retired: Vec::new(),
                site_feedback: BTreeMap::new(),
                site_feedback_reads: 0,
                poly: PolySites::default(),
                keys_change_recompiles: 0,
                loop_entries: false,
                callee_cell: None,
            };
            let b = Box::into_raw(Box::new(state));
            if !set_own_extra(code, rt.extra_index, b as *mut c_void) {
                drop(Box::from_raw(b));
                return None;
            }
            p = b as *mut c_void;
        }
        Some(&mut *(p as *mut CodeState))
    }
}

/// Stores `value` in slot `index` of `code`'s extras, growing them only up to `index`.
///
/// `_PyCode_SetExtra` would size the extras for every index any extension has requested, and
/// CPython 3.11's `code_dealloc` calls each index's free function for each slot the extras hold,
/// NULL or not: a code object that only ferrojit gave extras would call another extension's
/// free function when it dies (CPython's test_code registers a Python callback that then runs
/// during interpreter shutdown and crashes). Sized to our own slot, a code object dies as it
/// would without ferrojit for every index after ours. False (no exception set) if memory runs
/// out.
///
/// # Safety
/// GIL held; `code` is a live code object; `index` came from `_PyEval_RequestCodeExtraIndex`.
unsafe fn set_own_extra(code: *mut PyObject, index: isize, value: *mut c_void) -> bool {
    // SAFETY: co_extra is NULL or a `_PyCodeObjectExtra` (`Py_ssize_t ce_size; void
    // *ce_extras[]`) allocated with PyMem_*, which `code_dealloc` and `_PyCode_SetExtra` also
    // use; we only grow it, keep its slots and clear the new ones, as `_PyCode_SetExtra` does.
    unsafe {
        let offset = crate::cpython::layout().code_extra;
        let extra: *mut isize = ffi::read(code as _, offset);
        let size = if extra.is_null() { 0 } else { *extra };
        let extra = if index < size {
            extra
        } else {
            let bytes = std::mem::size_of::<isize>() * (index as usize + 2);
            let grown = pyo3_ffi::PyMem_Realloc(extra as *mut c_void, bytes) as *mut isize;
            if grown.is_null() {
                return false;
            }
            for i in size..=index {
                *grown.add(1 + i as usize) = 0;
            }
            *grown = index + 1;
            ffi::write(code as _, offset, grown);
            grown
        };
        *extra.add(1 + index as usize) = value as isize;
        true
    }
}

/// The state of `code` if it has one already, read straight from the code object's extras
/// (`_PyCodeObjectExtra`: a size, then the slots) without the checks of `_PyCode_GetExtra`.
///
/// # Safety
/// GIL held; `code` is a live code object.
#[inline]
pub unsafe fn code_state_fast(code: *mut PyObject) -> Option<&'static mut CodeState> {
    // SAFETY: co_extra is NULL or a `_PyCodeObjectExtra` (Objects/codeobject.c: `Py_ssize_t
    // ce_size; void *ce_extras[]`), and our slot holds a Box<CodeState> or NULL.
    unsafe { code_state_in(crate::cpython::layout(), runtime(), code) }
}

/// [`code_state_fast`] with the layout and runtime in hand.
///
/// # Safety
/// As for [`code_state_fast`].
#[inline(always)]
pub(super) unsafe fn code_state_in(
    l: &Layout,
    rt: &Runtime,
    code: *mut PyObject,
) -> Option<&'static mut CodeState> {
    // SAFETY: as for `code_state_fast`.
    unsafe {
        let index = rt.extra_index;
        let extra: *const isize = ffi::read(code as _, l.code_extra);
        if index < 0 || extra.is_null() || index >= *extra {
            return None;
        }
        let p = *(extra.add(1 + index as usize)) as *mut CodeState;
        p.as_mut()
    }
}

/// The hook itself.
///
/// Every interpreted call and every generator resume in the process comes through here, most
/// of them for code that stays with the interpreter (refused, or a generator the compiler
/// does not take): that path is kept to a few loads and a tail call, with everything else
/// in [`enter`].
///
/// # Safety
/// Called by CPython with the GIL held, a live thread state and a pushed, initialised frame.
pub unsafe extern "C" fn eval_frame(
    ts: *mut PyThreadState,
    f: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut PyObject {
    // SAFETY: CPython's contract for eval-frame hooks (see above).
    unsafe {
        // The runtime is looked up once (each look is an atomic load the compiler cannot merge);
        // the layout's offsets are constants. Every way out of this function is a tail call, so
        // it needs no stack frame of its own.
        let l = crate::cpython::layout();
        let Some(rt) = runtime_if_created() else {
            return eval_first_frame(ts, f, throwflag);
        };
        let cframe: *mut c_void = ffi::read(ts as _, l.tstate_cframe);
        if throwflag != 0 || ffi::read::<u8>(cframe, l.cframe_use_tracing) != 0 {
            return ffi::_PyEval_EvalFrameDefault(ts, f, throwflag);
        }
        let code: *mut PyObject = ffi::read(f as _, l.frame_code);
        match code_state_in(l, rt, code) {
            Some(state) if state.refused.is_some() => ffi::_PyEval_EvalFrameDefault(ts, f, 0),
            state => enter(l, rt, ts, f, code, state),
        }
    }
}

/// The hook's first frame in a process that has not made the runtime yet: makes it, then takes
/// the frame as [`eval_frame`] does.
///
/// # Safety
/// As for [`eval_frame`].
#[cold]
#[inline(never)]
unsafe fn eval_first_frame(
    ts: *mut PyThreadState,
    f: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut PyObject {
    // SAFETY: as for `eval_frame`.
    unsafe {
        runtime();
        eval_frame(ts, f, throwflag)
    }
}

/// The hook's path for code that is not refused: counts calls and compiles, and runs native
/// code where it can take the frame. `state` is the code's state if it has one yet.
///
/// # Safety
/// As for [`eval_frame`]; `code` is `f`'s code object.
#[inline(never)]
unsafe fn enter(
    l: &Layout,
    rt: &mut Runtime,
    ts: *mut PyThreadState,
    f: *mut InterpreterFrame,
    code: *mut PyObject,
    state: Option<&'static mut CodeState>,
) -> *mut PyObject {
    // SAFETY: as for `eval_frame`.
    unsafe {
        // A generator's frame comes here twice over: on the call, which the interpreter runs
        // (up to RETURN_GENERATOR, making the generator), then owned by the generator on each
        // resume, which compiled code can take. Any other owner stays with the interpreter.
        let owner = i64::from(ffi::read::<i8>(f as _, l.frame_owner));
        let generator = ffi::read::<i32>(code as _, l.code_flags)
            & (ffi::CO_GENERATOR | ffi::CO_COROUTINE | ffi::CO_ASYNC_GENERATOR)
            != 0;
        if generator != (owner != 0) || (owner != 0 && owner != l.frame_owned_by_generator) {
            return ffi::_PyEval_EvalFrameDefault(ts, f, 0);
        }
        // Only the first call of a code object goes through the checked API to create its
        // state.
        let state = match state {
            Some(state) => state,
            None => match code_state(code) {
                Some(state) => state,
                None => return ffi::_PyEval_EvalFrameDefault(ts, f, 0),
            },
        };
        if state.native.is_none() {
            if state.refused.is_some() {
                return ffi::_PyEval_EvalFrameDefault(ts, f, 0);
            }
            count_call(f, code, state, &rt.options);
        }
        match state.native.as_deref() {
            Some(native) if generator && !native.resumes(l, f, code) => {
                ffi::_PyEval_EvalFrameDefault(ts, f, 0)
            }
            Some(native) => {
                // The code lives on the heap until the code object dies, even if the deopt
                // policy retires it while it runs.
                let native: *const NativeCode = native;
                run_native(l, rt, ts, f, &*native)
            }
            None if super::osr::wanted(state, code, ts) => super::osr::interpret(l, ts, f, code),
            None => ffi::_PyEval_EvalFrameDefault(ts, f, 0),
        }
    }
}

/// Counts a call of code not compiled yet, and compiles it once it is hot.
///
/// # Safety
/// GIL held; `f` is the live frame of `code`, whose state is `state`.
unsafe fn count_call(
    f: *mut InterpreterFrame,
    code: *mut PyObject,
    state: &mut CodeState,
    options: &Options,
) {
    state.calls = state.calls.saturating_add(1);
    if state.calls == 1 && state.has_loop && options.enabled(Optimisation::EarlyQuickening) {
        // SAFETY: `code` is a live code object (the caller's contract); the GIL is held.
        unsafe { co::quicken_at_next_tick(code) };
    }
    let threshold = if state.has_loop {
        options.threshold.min(options.loop_threshold)
    } else {
        options.threshold
    };
    if state.calls <= threshold {
        return;
    }
    // SAFETY: as the caller's.
    unsafe {
        if state.has_loop && state.calls <= options.threshold && !compile::loop_feedback_ready(code)
        {
            // The loop threshold assumes the loop left feedback during the first call. It did
            // not (a recursive function calls itself before its loop turns, or the interpreter
            // did not quicken it): compiling now would find little feedback, so this function
            // waits for the call threshold like any other.
            state.has_loop = false;
        } else {
            compile::compile_code(code, Namespaces::of_frame(f), state);
        }
    }
}

/// What native code returned.
enum Outcome {
    Returned(*mut PyObject),
    Raised,
    Deopt(usize),
}

fn outcome(r: *mut PyObject) -> Outcome {
    let bits = r as usize;
    if bits == 0 {
        Outcome::Raised
    } else if bits & 1 == 1 {
        Outcome::Deopt(bits >> 1)
    } else {
        Outcome::Returned(r)
    }
}

/// Runs `native` on frame `f`, handing over to the interpreter when it exits. The callers
/// (the hook and the direct-call path) have the layout and runtime in hand already.
///
/// # Safety
/// As for [`eval_frame`]; `native` was compiled from `f`'s code object, `l` is the layout and
/// `rt` the runtime.
#[inline(always)]
pub(super) unsafe fn run_native(
    l: &Layout,
    rt: &mut Runtime,
    ts: *mut PyThreadState,
    f: *mut InterpreterFrame,
    native: &NativeCode,
) -> *mut PyObject {
    // SAFETY: the frame and thread state are live (hook contract); `native.entry` follows the
    // `(tstate, frame) -> object` ABI its backend generated. `ts->cframe` is the same before
    // and after the native code runs: every C frame that changes it restores it on return.
    unsafe {
        let remaining = (ts as *mut u8).offset(l.tstate_recursion_remaining as isize) as *mut c_int;
        let was = *remaining;
        *remaining = was - 1;
        if was <= 0 && ffi::_Py_CheckRecursiveCall(ts, c"".as_ptr()) != 0 {
            // The check restored the count and set RecursionError, as at the interpreter's entry.
            return std::ptr::null_mut();
        }
        let cframe: *mut c_void = ffi::read(ts as _, l.tstate_cframe);
        let previous: *mut InterpreterFrame = ffi::read(cframe, l.cframe_current_frame);
        ffi::write(f as _, l.frame_previous, previous);
        ffi::write(cframe, l.cframe_current_frame, f);
        let r = (native.entry)(ts, f);
        ffi::write(cframe, l.cframe_current_frame, previous);
        *remaining += 1;
        rt.stats.native_calls += 1;
        let entries = native.entries.get().wrapping_add(1);
        native.entries.set(entries);
        after_native(rt, ts, f, native, r)
    }
}

/// What follows the native code's return of `r` on frame `f`, its entry counter already
/// moved: site feedback when due, then the result, or the interpreter finishing the frame
/// after a raise or a deopt.
#[inline(always)]
unsafe fn after_native(
    rt: &mut Runtime,
    ts: *mut PyThreadState,
    f: *mut InterpreterFrame,
    native: &NativeCode,
    r: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: as for `run_native`, after the native code returned.
    unsafe {
        if native.entries.get() == SITE_FEEDBACK_AFTER {
            take_site_feedback(f, native);
        } else if rt.feedback_asked_by != 0 && native.owns_site_cache(rt.feedback_asked_by) {
            rt.feedback_asked_by = 0;
            take_site_feedback(f, native);
        }
        match outcome(r) {
            Outcome::Returned(v) => v,
            Outcome::Raised => after_raise(ts, f),
            Outcome::Deopt(i) => after_deopt(ts, f, native, i),
        }
    }
}

/// [`after_native`] for machine code that entered `native` on frame `f` itself
/// (`calls-in-machine-code`), unlinked the frame and moved the entry counter, and found `r`
/// not a plain result or site feedback possibly due.
///
/// # Safety
/// GIL held; `f` is the callee's frame, pushed and still filled, no longer the current frame;
/// `native` is the native code that ran on it.
pub unsafe extern "C" fn fj_finish_native_call(
    ts: *mut PyThreadState,
    f: *mut InterpreterFrame,
    native: *const NativeCode,
    r: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: the caller's contract; the native code lives while its code object does, which
    // the frame holds.
    unsafe { after_native(runtime(), ts, f, &*native, r) }
}

/// Native code raised: the interpreter unwinds (or handles) from where it stopped.
#[cold]
unsafe fn after_raise(ts: *mut PyThreadState, f: *mut InterpreterFrame) -> *mut PyObject {
    // SAFETY: as for `run_native`, with an exception set.
    unsafe {
        runtime().stats.raises += 1;
        resume_with_exception(ts, f)
    }
}

/// Native code left through side exit `i`: count it, and the interpreter runs on from there.
#[cold]
unsafe fn after_deopt(
    ts: *mut PyThreadState,
    f: *mut InterpreterFrame,
    native: &NativeCode,
    i: usize,
) -> *mut PyObject {
    // SAFETY: as for `run_native`; the exit wrote the frame back to its state at the exit.
    unsafe {
        let rt = runtime();
        match native.exits.get(i) {
            Some(exit) => {
                rt.stats
                    .deopt(exit.reason, &native.location, exit.resume_at);
                if let Some(site) = exit.site {
                    count_failed_speculation(f, native, exit, site);
                }
                if let Some(call) = exit.pending_calls_at {
                    if pyo3_ffi::Py_MakePendingCalls() != 0 {
                        return raise_at_call(ts, f, call);
                    }
                }
            }
            None => rt.stats.deopt("unknown exit", &native.location, 0),
        }
        ffi::_PyEval_EvalFrameDefault(ts, f, 0)
    }
}

/// A signal handler or pending call run at the end of the call at code unit `call` raised: the
/// interpreter raises it from that call (its traceback line, its handler), with the call's
/// result on the stack as at the interpreter's own check.
///
/// # Safety
/// As for [`after_deopt`], with an exception set; `call` is a code unit of `f`'s code.
#[cold]
unsafe fn raise_at_call(
    ts: *mut PyThreadState,
    f: *mut InterpreterFrame,
    call: u32,
) -> *mut PyObject {
    // SAFETY: the frame is live; `call` indexes its code's instructions.
    unsafe {
        let first = co::first_instr(frame::code(f));
        frame::set_prev_instr(f, first.add(call as usize));
        after_raise(ts, f)
    }
}

/// Entries into a function's native code after which its site caches are read for feedback.
pub const SITE_FEEDBACK_AFTER: u32 = 200;

/// Site-cache feedback (`site-cache-feedback`): a function compiled before the interpreter
/// specialised some of its attribute loads (a loop function compiled on its second call, a
/// branch not taken yet) has generic sites whose caches now know the one type they see. Once,
/// after [`SITE_FEEDBACK_AFTER`] entries, those caches become feedback and the function is
/// compiled again on its next call, with inline reads at those sites (the code now running is
/// retired, not freed). With `poly-attrs`, `poly-methods` and `poly-stores`, the instance
/// attributes, methods and stored attributes a site's cache holds for several types (the slow
/// arm of a site specialised for one type, or a generic site) become a chain of type checks,
/// each with its inline read, method or store.
///
/// # Safety
/// GIL held; `f` is the live frame `native` was running.
unsafe fn take_site_feedback(f: *mut InterpreterFrame, native: &NativeCode) {
    // SAFETY: GIL held; the frame's code object is live and owns the state.
    unsafe {
        if !runtime()
            .options
            .enabled(super::Optimisation::SiteCacheFeedback)
        {
            return;
        }
        let Some(state) = code_state_fast(frame::code(f)) else {
            return;
        };
        let options = &runtime().options;
        let max_reads = match options.enabled(super::Optimisation::HotSiteFeedback) {
            true => MAX_SITE_FEEDBACK_READS,
            false => 1,
        };
        let current = state.native.as_deref();
        if state.site_feedback_reads >= max_reads
            || native.site_feedback_read.replace(true)
            || !current.is_some_and(|c| std::ptr::eq(c, native))
        {
            return;
        }
        state.site_feedback_reads += 1;
        let poly_attrs = options.enabled(super::Optimisation::PolyAttrs);
        let poly_methods = options.enabled(super::Optimisation::PolyMethods);
        let poly_stores = options.enabled(super::Optimisation::PolyStores);
        let mut learnt = false;
        let mut instrs = None;
        for (cache, &at) in native.site_caches.iter().zip(native.site_cache_at.iter()) {
            let instrs = instrs.get_or_insert_with(|| compile::instructions(frame::code(f)));
            let site = instrs.iter().find(|i| i.at == at);
            let store = site.is_some_and(|i| i.op == crate::cpython::opcodes::STORE_ATTR);
            if let Some(feedback) = cache.feedback().filter(|_| !store) {
                learnt |= state.site_feedback.insert(at, feedback).is_none();
            }
            let cases = cache.instance_value_cases();
            let wanted = match store {
                true => poly_stores,
                false => poly_attrs,
            };
            if wanted && !cases.is_empty() {
                let sites = match store {
                    true => &mut state.poly.stores,
                    false => &mut state.poly.attrs,
                };
                learnt |= add_cases(sites.entry(at).or_default(), cases, |&(version, _)| version);
            }
            let mut cases = cache.method_cases();
            if poly_methods && !cases.is_empty() {
                // The type this code served without the cache, as the interpreter had
                // specialised the site: kept, since the interpreter may specialise the site
                // for another type before the next compilation.
                if let Some(case) = site.and_then(MethodCase::interpreters) {
                    if !cases.iter().any(|c| c.version == case.version) {
                        cases.insert(0, case);
                    }
                }
                let known = state.poly.methods.entry(at).or_default();
                learnt |= add_cases(known, cases, |c| c.version);
            }
        }
        let room = state.retired.len() < compile::MAX_RECOMPILATIONS / 2;
        if learnt && (state.site_feedback_reads == 1 || room) {
            state.retire_native();
        }
    }
}

/// How many native versions of one function have their site caches read with
/// `hot-site-feedback` (without it, one): the first after its [`SITE_FEEDBACK_AFTER`] entries
/// (or when a hot site asks), then the versions compiled from that feedback, whose caches see
/// what the first did not (a type that arrived later, the slow arm of a site the interpreter
/// specialised since). A later read that learnt something retires the code while at most half
/// of `compile::MAX_RECOMPILATIONS` are used, leaving the rest to the deopt policy.
pub const MAX_SITE_FEEDBACK_READS: u8 = 3;

/// Adds to a site's `known` cases those of `seen` with a type version not known yet, up to
/// `attr_cache::ENTRIES` in all; whether any was added.
fn add_cases<T>(known: &mut Vec<T>, seen: Vec<T>, version: impl Fn(&T) -> u32) -> bool {
    let before = known.len();
    for case in seen {
        if known.len() < super::attr_cache::ENTRIES
            && !known.iter().any(|k| version(k) == version(&case))
        {
            known.push(case);
        }
    }
    known.len() > before
}

/// The deopt policy: counts a failed speculation at `site` (over every native version of the
/// code); once the site has failed more often than the limit, it gets its generic path and the
/// function is compiled again on its next call (the code now running is retired, not freed).
///
/// # Safety
/// GIL held; `f` is the live frame `native` was running.
unsafe fn count_failed_speculation(
    f: *mut InterpreterFrame,
    native: &NativeCode,
    exit: &ExitInfo,
    site: u32,
) {
    // SAFETY: GIL held; the frame's code object is live and owns the state.
    unsafe {
        exit.taken.set(exit.taken.get().saturating_add(1));
        let rt = runtime();
        let limit = rt.options.deopt_limit;
        let Some(state) = code_state_fast(frame::code(f)) else {
            return;
        };
        let exits = state.site_exits.entry(site).or_insert(0);
        *exits = exits.saturating_add(1);
        let over = limit != 0 && *exits > limit;
        let keys_changed = matches!(exit.reason, MODULE_KEYS_CHANGED | BUILTINS_KEYS_CHANGED)
            && limit != 0
            && rt.options.enabled(Optimisation::RecompileOnKeysChange);
        if !keys_changed && !over {
            return;
        }
        if !state
            .native
            .as_deref()
            .is_some_and(|current| std::ptr::eq(current, native))
        {
            return;
        }
        if keys_changed {
            // The dicts changed, not the kind of value: compile again against them as they are
            // now (the builder reads their current keys), unless this keeps happening.
            if state.keys_change_recompiles < KEYS_CHANGE_RECOMPILES {
                state.keys_change_recompiles += 1;
                state.retire_native();
                return;
            }
            if !over {
                return;
            }
        }
        // Once per site: code compiled with the site generic has no speculation left there.
        if state.generic_sites.insert(site) {
            rt.stats.generic_sites += 1;
            state.retire_native();
        }
    }
}

/// The trace and profile functions set aside while [`resume_with_exception`] swallows one
/// 'call' event (0: none).
static SET_ASIDE: GilCell<[usize; 2]> = GilCell::new([0, 0]);

/// Hands a running frame with a pending exception to the interpreter. Entering
/// `_PyEval_EvalFrameDefault` with `throwflag` reports a 'call' event to the trace and profile
/// functions when they are on (as for `generator.throw()`); this frame was already running, so
/// CPython would report no such event. Each function is swapped for one that puts it back and
/// reports nothing, for exactly that event.
///
/// # Safety
/// As for [`run_native`], with an exception set.
unsafe fn resume_with_exception(ts: *mut PyThreadState, f: *mut InterpreterFrame) -> *mut PyObject {
    // SAFETY: GIL held; the two function-pointer fields of the live thread state are swapped
    // and restored around a call that reads them once at entry.
    unsafe {
        if !tstate::use_tracing(ts) {
            return ffi::_PyEval_EvalFrameDefault(ts, f, 1);
        }
        let l = crate::cpython::layout();
        let offsets = [l.tstate_c_tracefunc, l.tstate_c_profilefunc];
        let swallowers = [
            swallow_trace_call as *const () as usize,
            swallow_profile_call as *const () as usize,
        ];
        let set_aside = SET_ASIDE.get();
        for i in 0..2 {
            let current: usize = ffi::read(ts as _, offsets[i]);
            set_aside[i] = current;
            if current != 0 {
                ffi::write(ts as _, offsets[i], swallowers[i]);
            }
        }
        let r = ffi::_PyEval_EvalFrameDefault(ts, f, 1);
        // The entry reports nothing if it could not make a frame object: put them back anyway.
        for i in 0..2 {
            if ffi::read::<usize>(ts as _, offsets[i]) == swallowers[i] {
                ffi::write(ts as _, offsets[i], SET_ASIDE.get()[i]);
            }
        }
        r
    }
}

unsafe extern "C" fn swallow_trace_call(
    _obj: *mut PyObject,
    _f: *mut c_void,
    _what: c_int,
    _arg: *mut PyObject,
) -> c_int {
    // SAFETY: called by the interpreter with the GIL, on the thread whose state was swapped.
    unsafe { put_back(0) }
    0
}

unsafe extern "C" fn swallow_profile_call(
    _obj: *mut PyObject,
    _f: *mut c_void,
    _what: c_int,
    _arg: *mut PyObject,
) -> c_int {
    // SAFETY: as above.
    unsafe { put_back(1) }
    0
}

unsafe fn put_back(which: usize) {
    // SAFETY: GIL held; the current thread state is the one whose field was swapped.
    unsafe {
        let ts = pyo3_ffi::PyThreadState_Get();
        let l = crate::cpython::layout();
        let offset = [l.tstate_c_tracefunc, l.tstate_c_profilefunc][which];
        ffi::write(ts as _, offset, SET_ASIDE.get()[which]);
    }
}

/// Installs the hook. Refuses (with the reason) when another tool's hook is installed.
///
/// # Safety
/// GIL held.
pub unsafe fn install() -> Result<(), String> {
    // SAFETY: GIL held; the interpreter state is live.
    unsafe {
        let interp = pyo3_ffi::PyInterpreterState_Get();
        let current = ffi::_PyInterpreterState_GetEvalFrameFunc(interp);
        let ours = eval_frame as ffi::EvalFrameFunc;
        let default = ffi::_PyEval_EvalFrameDefault as ffi::EvalFrameFunc;
        if current as usize != default as usize && current as usize != ours as usize {
            return Err("another frame-evaluation hook (PEP 523) is installed; ferrojit will not replace it".into());
        }
        ffi::_PyInterpreterState_SetEvalFrameFunc(interp, ours);
        runtime().enabled = true;
        Ok(())
    }
}

/// Removes the hook if it is ours. Compiled code stays attached to its code objects and is used
/// again if the hook is installed again.
///
/// # Safety
/// GIL held.
pub unsafe fn uninstall() {
    // SAFETY: GIL held.
    unsafe {
        let interp = pyo3_ffi::PyInterpreterState_Get();
        let current = ffi::_PyInterpreterState_GetEvalFrameFunc(interp);
        if current as usize == eval_frame as ffi::EvalFrameFunc as usize {
            ffi::_PyInterpreterState_SetEvalFrameFunc(interp, ffi::_PyEval_EvalFrameDefault);
        }
        runtime().enabled = false;
    }
}
