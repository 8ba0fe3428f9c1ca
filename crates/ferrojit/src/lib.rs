//! ferrojit: a JIT compiler for CPython 3.11, for x86-64 and AArch64.
//!
//! See docs/ARCHITECTURE.md for the map. The rooms, in pipeline order: `cpython` (the ABI),
//! `bytecode` (decoding and feedback), `hir` (SSA with guards), `lir` (machine-level IR),
//! `passes` (LIR clean-ups around allocation), `regalloc`, `backend` (x86-64 and AArch64
//! encoders' users), `runtime` (hook, policy, memory,
//! helpers, statistics). This file is the Python module `ferrojit._ferrojit`.

pub mod backend;
pub mod bytecode;
pub mod cpython;
pub mod hir;
pub mod lir;
pub mod passes;
pub mod regalloc;
pub mod runtime;

use backend::Isa;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use runtime::compile::{self, Namespaces};
use runtime::hook;
use std::path::PathBuf;

/// The ISA this build generates code for.
pub const HOST_ISA: &str = if cfg!(target_arch = "x86_64") {
    "x86_64"
} else {
    "aarch64"
};

/// The code object and namespaces of a Python function.
fn function_parts(func: &Bound<'_, PyAny>) -> PyResult<(*mut pyo3_ffi::PyObject, Namespaces)> {
    // SAFETY: checked to be a function object before reading its fields.
    unsafe {
        if pyo3_ffi::PyFunction_Check(func.as_ptr()) == 0 {
            return Err(PyTypeError::new_err("expected a Python function"));
        }
        let code = pyo3_ffi::PyFunction_GetCode(func.as_ptr());
        Ok((code, Namespaces::of_function(func.as_ptr())))
    }
}

/// Switches the JIT on (installing the frame-evaluation hook).
#[pyfunction]
#[pyo3(signature = (threshold=None, stats=None, dump=None, loop_threshold=None, deopt_limit=None, disable=None))]
fn enable(
    threshold: Option<u32>,
    stats: Option<PathBuf>,
    dump: Option<PathBuf>,
    loop_threshold: Option<u32>,
    deopt_limit: Option<u32>,
    disable: Option<&str>,
) -> PyResult<()> {
    check_python_version()?;
    configure(threshold, stats, dump, loop_threshold, deopt_limit, disable)?;
    // SAFETY: the GIL is held by any #[pyfunction].
    unsafe { hook::install().map_err(PyRuntimeError::new_err) }
}

/// Code compiled from now on counts the instructions it executes (`instructions_executed` in
/// the statistics; see `runtime::counting`). Code compiled before does not.
#[pyfunction]
fn count_instructions() {
    runtime::counting::start();
}

/// Sets the knobs without switching the JIT on.
#[pyfunction]
#[pyo3(signature = (threshold=None, stats=None, dump=None, loop_threshold=None, deopt_limit=None, disable=None))]
fn configure(
    threshold: Option<u32>,
    stats: Option<PathBuf>,
    dump: Option<PathBuf>,
    loop_threshold: Option<u32>,
    deopt_limit: Option<u32>,
    disable: Option<&str>,
) -> PyResult<()> {
    let disabled = disable
        .map(runtime::Optimisation::parse_list)
        .transpose()
        .map_err(PyValueError::new_err)?;
    // SAFETY: the GIL is held by any #[pyfunction].
    unsafe {
        let rt = hook::runtime();
        if let Some(t) = threshold {
            rt.options.threshold = t;
            rt.stats.threshold = t;
        }
        if let Some(t) = loop_threshold {
            rt.options.loop_threshold = t;
            rt.stats.loop_threshold = t;
        }
        if let Some(n) = deopt_limit {
            rt.options.deopt_limit = n;
            rt.stats.deopt_limit = n;
        }
        if stats.is_some() {
            rt.options.stats_path = stats;
        }
        if dump.is_some() {
            rt.options.dump_dir = dump;
        }
        if let Some(d) = disabled {
            rt.stats.disabled = d.iter().map(|o| o.name()).collect();
            rt.options.disabled = d;
        }
    }
    Ok(())
}

/// Switches the JIT off; compiled code is kept for a later `enable()`.
#[pyfunction]
fn disable() {
    // SAFETY: GIL held.
    unsafe { hook::uninstall() }
}

/// Whether the hook is installed.
#[pyfunction]
fn is_enabled() -> bool {
    // SAFETY: GIL held.
    unsafe { hook::runtime().enabled }
}

/// The statistics as a JSON string.
#[pyfunction]
fn stats_json() -> String {
    // SAFETY: GIL held.
    unsafe { hook::runtime().stats.to_json() }
}

/// The statistics as a dict, made without running Python code: a `json.loads` of
/// [`stats_json`] runs `json.decoder`'s Python functions, which may be compiled, so reading the
/// statistics would move the counts being read.
#[pyfunction]
fn stats(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: GIL held.
    let text = unsafe { hook::runtime().stats.to_json() };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    json_to_python(py, &value)
}

fn json_to_python<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = pyo3::types::PyList::empty(py);
            for item in items {
                list.append(json_to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_python(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Makes sure the `--stats` line is written when the process ends (see `runtime::stats`).
#[pyfunction]
fn register_stats_writer() -> PyResult<()> {
    if runtime::stats::register_writer() {
        Ok(())
    } else {
        Err(PyRuntimeError::new_err(
            "cannot register the statistics writer: no room for another Py_AtExit function",
        ))
    }
}

/// Compiles `func` now; raises RuntimeError with the reason if it cannot.
#[pyfunction]
#[pyo3(name = "compile")]
fn compile_now(func: &Bound<'_, PyAny>) -> PyResult<()> {
    let (code, ns) = function_parts(func)?;
    // SAFETY: GIL held; `code` is the live code object of `func`.
    unsafe {
        let state = hook::code_state(code)
            .ok_or_else(|| PyRuntimeError::new_err("no co_extra slot available"))?;
        if state.native.is_some() {
            return Ok(());
        }
        state.refused = None;
        compile::compile_code(code, ns, state);
        match (&state.native, &state.refused) {
            (Some(_), _) => Ok(()),
            (None, Some(reason)) => Err(PyRuntimeError::new_err(format!(
                "ferrojit cannot compile {}: {reason}",
                func.getattr("__qualname__")?
            ))),
            (None, None) => Err(PyRuntimeError::new_err("compilation did not finish")),
        }
    }
}

/// Whether `func`'s code has native code.
#[pyfunction]
fn is_compiled(func: &Bound<'_, PyAny>) -> PyResult<bool> {
    let (code, _) = function_parts(func)?;
    // SAFETY: GIL held; live code object.
    unsafe {
        Ok(hook::code_state(code)
            .map(|s| s.native.is_some())
            .unwrap_or(false))
    }
}

/// Runs the pipeline on `func` for `isa` ("x86_64" or "aarch64") without installing anything;
/// returns {"hir", "lir", "regalloc", "asm", "code_bytes" (instructions only), "literal_pool_bytes",
/// "instructions", "spill_slots"}.
#[pyfunction]
#[pyo3(signature = (func, isa=None, loop_entries=false))]
fn inspect<'py>(
    py: Python<'py>,
    func: &Bound<'py, PyAny>,
    isa: Option<&str>,
    loop_entries: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let isa = match isa.unwrap_or(HOST_ISA) {
        "x86_64" => Isa::X86_64,
        "aarch64" => Isa::Aarch64,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown ISA {other:?}; use x86_64 or aarch64"
            )))
        }
    };
    let (code, ns) = function_parts(func)?;
    // SAFETY: GIL held; live code object.
    let (generic_sites, site_feedback, poly) = unsafe { hook::code_state(code) }
        .map(|s| {
            let sites = s.generic_sites.clone();
            (sites, s.site_feedback.clone(), s.poly.clone())
        })
        .unwrap_or_default();
    let feedback = compile::Feedback {
        generic_sites: &generic_sites,
        site_feedback: &site_feedback,
        poly: &poly,
        loop_entries,
    };
    // SAFETY: as above.
    let art = unsafe { compile::pipeline(code, ns, isa, feedback) }
        .map_err(|f| PyRuntimeError::new_err(f.message().to_string()))?;
    let d = PyDict::new(py);
    for (k, v) in art.texts() {
        d.set_item(k, v)?;
    }
    let m = &art.machine;
    d.set_item("code_bytes", m.code_len)?;
    d.set_item("literal_pool_bytes", m.bytes.len() - m.code_len)?;
    d.set_item(
        "instructions",
        backend::disasm::count_instructions(isa, m.instructions()),
    )?;
    d.set_item("spill_slots", art.alloc.num_slots)?;
    Ok(d)
}

fn check_python_version() -> PyResult<()> {
    // SAFETY: reading a C constant of the running interpreter.
    let v = unsafe { pyo3_ffi::Py_Version } as u32;
    let (major, minor) = (v >> 24, (v >> 16) & 0xff);
    if (major, minor) != (3, 11) {
        return Err(PyRuntimeError::new_err(format!(
            "ferrojit supports CPython 3.11 only; this is {major}.{minor}"
        )));
    }
    check_reference_counting()
}

/// In a `Py_REF_DEBUG` interpreter every `Py_INCREF` must also move `_Py_RefTotal`: an
/// extension built against a release CPython's headers changes counts without it, and the
/// interpreter's total (and regrtest's `-R` leak hunt) would drift. Refuses to load then.
fn check_reference_counting() -> PyResult<()> {
    let total = cpython::ffi::ref_total_address() as *const isize;
    if total.is_null() {
        return Ok(());
    }
    // SAFETY: the GIL is held (module init); `Py_None` is immortal in practice and gets its
    // reference back at once; `total` is the interpreter's own counter.
    let moved = unsafe {
        let before = std::ptr::read_volatile(total);
        pyo3_ffi::Py_INCREF(pyo3_ffi::Py_None());
        let after = std::ptr::read_volatile(total);
        pyo3_ffi::Py_DECREF(pyo3_ffi::Py_None());
        after != before
    };
    if moved {
        return Ok(());
    }
    Err(PyRuntimeError::new_err(
        "this CPython is a debug build (it counts references in _Py_RefTotal) but ferrojit \
         was built for a release build; build it for this interpreter with \
         `cargo xtask build --python python3.11d`",
    ))
}

#[pymodule]
#[pyo3(name = "_ferrojit")]
fn ferrojit_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    check_python_version()?;
    m.add("ISA", HOST_ISA)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_THRESHOLD", runtime::DEFAULT_THRESHOLD)?;
    m.add("DEFAULT_LOOP_THRESHOLD", runtime::DEFAULT_LOOP_THRESHOLD)?;
    m.add("DEFAULT_DEOPT_LIMIT", runtime::DEFAULT_DEOPT_LIMIT)?;
    let names: Vec<&str> = runtime::Optimisation::ALL
        .iter()
        .map(|o| o.name())
        .collect();
    m.add("OPTIMISATIONS", names)?;
    m.add_function(wrap_pyfunction!(enable, m)?)?;
    m.add_function(wrap_pyfunction!(disable, m)?)?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(is_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(stats_json, m)?)?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(register_stats_writer, m)?)?;
    m.add_function(wrap_pyfunction!(compile_now, m)?)?;
    m.add_function(wrap_pyfunction!(is_compiled, m)?)?;
    m.add_function(wrap_pyfunction!(inspect, m)?)?;
    m.add_function(wrap_pyfunction!(count_instructions, m)?)?;
    Ok(())
}
