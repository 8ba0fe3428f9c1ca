//! On-stack replacement (`osr`): the first call of a function with a loop runs in the
//! interpreter; once its loop has gone round there, the frame continues in compiled code at
//! the loop's header, so a loop in a function that is called once (a `main()`) runs compiled.
//!
//! CPython 3.11 gives a frame-evaluation hook no way into a frame that the interpreter is
//! running; this module uses the two it has. Pending calls (`Py_AddPendingCall`) run at the
//! interpreter's eval-breaker checks, one of which follows every loop back edge. While a first
//! call is armed, [`tick`] looks at each check: when the interpreter's current frame is the
//! armed one and stands at a back edge (after a few rounds, so that the loop's instructions
//! have specialised), it compiles the code with entries at its loop headers, takes a
//! reference to each value on the loop's stack, and raises a private exception. The
//! interpreter unwinds the frame (no handler covers the back edge: checked first), which
//! returns NULL to the hook that called it, with the locals untouched; there [`interpret`]
//! puts the stack back and runs the native code from the back edge (its entry dispatches on
//! `prev_instr` to the loop header). The traceback entry and frame object the unwinding made
//! belong to the private exception, which is dropped.
//!
//! Pending calls run only in the main thread, so only frames of the main thread are armed,
//! one at a time; while tracing or profiling is on the frame stays with the interpreter, as any
//! traced code does. An armed frame costs pending calls at every eval-breaker check until it
//! moves, returns, or [`GIVE_UP_AFTER`] calls have passed.

use super::hook::{code_state_fast, run_native, runtime, CodeState};
use super::{compile, GilCell, Optimisation};
use crate::bytecode;
use crate::cpython::ffi::{self, code as co, frame, tstate, InterpreterFrame};
use crate::cpython::{layout, Layout};
use pyo3_ffi::{PyObject, PyThreadState};
use std::os::raw::{c_int, c_void};

/// Watching a frame costs a pending call at every eval-breaker check, and a pending call that
/// adds itself again runs again in the same check (`make_pending_calls` takes up to 32 from the
/// queue each time): the counts below are of such calls, about 32 for each check.
///
/// The armed frame moves at a back edge once it has stood at back edges for this many calls
/// (a few dozen rounds: a first call that ends sooner is compiled on its second call, with
/// the feedback of the whole first one) and a loop of its code has left feedback (the
/// interpreter quickened the code and the loop went round since: its instructions are
/// specialised), or after [`MAX_CALLS_AT_BACK_EDGES`] such calls without it.
pub const MIN_CALLS_AT_BACK_EDGES: u32 = 1024;
pub const MAX_CALLS_AT_BACK_EDGES: u32 = 4096;
/// From MIN_CALLS_AT_BACK_EDGES on, whether a loop has left feedback is asked every this many
/// such calls (about eight checks, a few rounds of the loop): asking decodes the whole code.
pub const FEEDBACK_CHECK_EVERY: u32 = 256;

/// Calls (in any frame) after which an armed frame is left to the interpreter, about five
/// hundred checks: while a frame is armed the eval breaker stays set, so compiled code exits
/// to the interpreter at its checks, and each check runs the re-adding call 32 times under the
/// pending-calls lock; a frame whose loop takes long to come round (each round calling much
/// compiled code) is not watched long. At 64,000 (two thousand checks), a richards worker's
/// start-up spent 152M instructions in `Py_AddPendingCall` and its compiled code exited at
/// entry 4,208 times; at 16,000, 78M and 1,869, with as many frames moved (7; regex_v8 10,
/// go 10).
pub const GIVE_UP_AFTER: u32 = 16_000;

/// The frame being watched, and what [`tick`] saved for the move.
struct Armed {
    frame: *mut InterpreterFrame,
    code: *mut PyObject,
    /// Calls of [`tick`] so far, and of those the ones at a back edge of the frame.
    checks: u32,
    rounds: u32,
    /// The code's back edges (the unit that jumps back) with their loop headers, decoded once
    /// when the frame is armed.
    back_edges: Vec<(u32, u32)>,
    /// Set by [`tick`] when it raised [`entry_exception`]: the back edge and the references it
    /// took to the loop's stack values.
    moving: Option<(u32, Vec<*mut PyObject>)>,
}

static ARMED: GilCell<Option<Armed>> = GilCell::new(None);
static ENTRY_EXCEPTION: GilCell<*mut PyObject> = GilCell::new(std::ptr::null_mut());

/// The private exception type that unwinds the interpreter's run of a frame that moves.
unsafe fn entry_exception() -> *mut PyObject {
    // SAFETY: GIL held (callers); the type lives for the process once made.
    unsafe {
        let slot = ENTRY_EXCEPTION.get();
        if slot.is_null() {
            *slot = pyo3_ffi::PyErr_NewException(
                c"ferrojit._LoopEntry".as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
        *slot
    }
}

/// Whether the first call of `code` (state `state`, frame `f`) should be watched.
///
/// # Safety
/// GIL held; `f` is a live frame of `code`.
pub unsafe fn wanted(state: &CodeState, code: *mut PyObject, ts: *mut PyThreadState) -> bool {
    // SAFETY: GIL held; reading the thread state and the code's flags.
    unsafe {
        let generator = ffi::CO_GENERATOR | ffi::CO_COROUTINE | ffi::CO_ASYNC_GENERATOR;
        state.calls == 1
            && co::flags(code) & generator == 0
            && state.has_loop
            && state.native.is_none()
            && state.refused.is_none()
            && runtime().options.enabled(Optimisation::Osr)
            && ARMED.get().is_none()
            && !tstate::use_tracing(ts)
            && ffi::_PyOS_IsMainThread() != 0
    }
}

/// Runs frame `f` of `code` in the interpreter, watched: if its loop moves to compiled code,
/// runs that to the end. Returns what the frame returns (NULL: raised).
///
/// # Safety
/// As for the hook; `f` is a live frame of `code`, `wanted` said yes.
pub unsafe fn interpret(
    l: &Layout,
    ts: *mut PyThreadState,
    f: *mut InterpreterFrame,
    code: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: as for the hook: the frame is live, the GIL held.
    unsafe {
        *ARMED.get() = Some(Armed {
            frame: f,
            code,
            checks: 0,
            rounds: 0,
            back_edges: back_edges(code),
            moving: None,
        });
        if pyo3_ffi::Py_AddPendingCall(Some(tick), std::ptr::null_mut()) != 0 {
            *ARMED.get() = None;
        }
        let r = ffi::_PyEval_EvalFrameDefault(ts, f, 0);
        let armed = ARMED.get().take();
        let Some((edge, values)) = armed.and_then(|a| a.moving) else {
            return r;
        };
        if !r.is_null() || pyo3_ffi::PyErr_ExceptionMatches(entry_exception()) == 0 {
            // Something else ended the run (it cannot, short of memory running out while
            // unwinding): the frame is done, the saved references go.
            for v in values {
                pyo3_ffi::Py_DECREF(v);
            }
            return r;
        }
        pyo3_ffi::PyErr_Clear();
        enter_at(l, ts, f, code, edge, values)
    }
}

/// Puts the loop's stack `values` back on frame `f` (emptied by the unwinding) and runs the
/// native code of `code` from back edge `edge`.
///
/// # Safety
/// As for [`interpret`]; the native code has a loop entry at `edge` for `values.len()` values.
unsafe fn enter_at(
    l: &Layout,
    ts: *mut PyThreadState,
    f: *mut InterpreterFrame,
    code: *mut PyObject,
    edge: u32,
    values: Vec<*mut PyObject>,
) -> *mut PyObject {
    // SAFETY: the frame is live and its stack has room for the values it held at `edge`.
    unsafe {
        let base = stack_base(l, f, code);
        for (i, v) in values.iter().enumerate() {
            *base.add(i) = *v;
        }
        frame::set_stacktop(f, co::nlocalsplus(code) as i32 + values.len() as i32);
        frame::set_prev_instr(f, co::first_instr(code).add(edge as usize));
        let rt = runtime();
        rt.stats.osr_entries += 1;
        let native = code_state_fast(code).and_then(|s| s.native.as_deref());
        let native: *const compile::NativeCode = native.expect("compiled before the move");
        run_native(l, rt, ts, f, &*native)
    }
}

/// The first slot of `f`'s value stack.
unsafe fn stack_base(
    l: &Layout,
    f: *mut InterpreterFrame,
    code: *mut PyObject,
) -> *mut *mut PyObject {
    // SAFETY: the frame's localsplus holds nlocalsplus locals, then the stack.
    unsafe {
        let localsplus = (f as *mut u8).offset(l.frame_localsplus as isize) as *mut *mut PyObject;
        localsplus.add(co::nlocalsplus(code) as usize)
    }
}

/// The pending call: at each eval-breaker check while a frame is armed, moves that frame when
/// it stands at a back edge that compiled code can enter; otherwise asks to be called again.
extern "C" fn tick(_: *mut c_void) -> c_int {
    // SAFETY: pending calls run in the main thread with the GIL held; the armed frame is live
    // while it is armed (`interpret` disarms when the interpreter returns it).
    unsafe {
        let Some(armed) = ARMED.get().as_mut() else {
            return 0;
        };
        if armed.moving.is_some() {
            return 0;
        }
        armed.checks += 1;
        if armed.checks > GIVE_UP_AFTER {
            *ARMED.get() = None;
            return 0;
        }
        let ts = pyo3_ffi::PyThreadState_Get();
        let l = layout();
        let here = tstate::current_frame(ts) == armed.frame && !tstate::use_tracing(ts);
        let edge = if here { back_edge(armed) } else { None };
        if let Some((edge, header)) = edge {
            armed.rounds += 1;
            // Asking decodes the whole code: every FEEDBACK_CHECK_EVERY calls (a frame whose
            // loop leaves no feedback was decoded at every call up to the maximum).
            let ready = armed.rounds >= MIN_CALLS_AT_BACK_EDGES
                && armed.rounds % FEEDBACK_CHECK_EVERY == 0
                && compile::loop_feedback_ready(armed.code);
            if ready || armed.rounds >= MAX_CALLS_AT_BACK_EDGES {
                return move_frame(l, edge, header);
            }
        }
        if pyo3_ffi::Py_AddPendingCall(Some(tick), std::ptr::null_mut()) != 0 {
            *ARMED.get() = None;
        }
        0
    }
}

/// The back edges of `code` (the unit that jumps back) with their loop headers.
///
/// # Safety
/// GIL held; `code` is a live code object.
unsafe fn back_edges(code: *mut PyObject) -> Vec<(u32, u32)> {
    // SAFETY: as the caller's.
    let instrs = unsafe { compile::instructions(code) };
    instrs
        .iter()
        .filter(|i| bytecode::is_loop_edge(i.op))
        .filter_map(|i| Some((i.at, i.jump_target()?)))
        .collect()
}

/// The back edge (and its loop's header) the interpreter just took in the armed frame, if it
/// stands at one.
unsafe fn back_edge(armed: &Armed) -> Option<(u32, u32)> {
    // SAFETY: `prev_instr` points into the code's instructions (the interpreter sets it at
    // each instruction); the armed frame is live.
    let at = unsafe { frame::prev_instr(armed.frame).offset_from(co::first_instr(armed.code)) };
    let at = u32::try_from(at).ok()?;
    armed.back_edges.iter().copied().find(|e| e.0 == at)
}

/// Compiles the armed frame's code with loop entries and, if it has one at `edge`, saves the
/// loop's stack and raises the private exception that hands the frame to [`interpret`].
unsafe fn move_frame(l: &Layout, edge: u32, header: u32) -> c_int {
    // SAFETY: called from `tick` with the GIL held and the frame armed and live.
    unsafe {
        let armed = ARMED.get().as_mut().expect("armed");
        let (f, code) = (armed.frame, armed.code);
        let exception = entry_exception();
        if exception.is_null() {
            pyo3_ffi::PyErr_Clear();
            *ARMED.get() = None;
            return 0;
        }
        // The interpreter looks the unwinding's handler up at the header's previous unit;
        // a handler covering that or the back edge would catch the private exception.
        let covered = |table: Vec<u8>| {
            bytecode::handler_covers(&table, header.saturating_sub(1))
                || bytecode::handler_covers(&table, edge)
        };
        if compile::exception_table(code).is_none_or(covered) {
            *ARMED.get() = None;
            return 0;
        }
        let Some(state) = super::hook::code_state(code) else {
            *ARMED.get() = None;
            return 0;
        };
        if state.native.is_none() {
            state.loop_entries = true;
            compile::compile_code(code, compile::Namespaces::of_frame(f), state);
        }
        let depth = state
            .native
            .as_deref()
            .and_then(|n| n.loop_entries.iter().find(|e| e.0 == edge))
            .map(|e| e.1 as usize);
        let base = stack_base(l, f, code);
        let values: Option<Vec<*mut PyObject>> = depth.and_then(|d| {
            (0..d)
                .map(|i| Some(*base.add(i)).filter(|v| !v.is_null()))
                .collect()
        });
        let Some(values) = values else {
            *ARMED.get() = None;
            return 0;
        };
        for &v in &values {
            pyo3_ffi::Py_INCREF(v);
        }
        if let Some(armed) = ARMED.get().as_mut() {
            armed.moving = Some((edge, values));
        }
        pyo3_ffi::PyErr_SetNone(exception);
        -1
    }
}
