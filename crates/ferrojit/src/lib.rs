//! ferrojit: a JIT compiler for CPython 3.11, for x86-64 and AArch64.
//!
//! See docs/ARCHITECTURE.md for the map of the rooms below.

pub mod cpython;

use pyo3::prelude::*;

/// The ISA this build generates code for.
pub const HOST_ISA: &str = if cfg!(target_arch = "x86_64") { "x86_64" } else { "aarch64" };

#[pymodule]
#[pyo3(name = "_ferrojit")]
fn ferrojit_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ISA", HOST_ISA)?;
    let layout = serde_json::to_string(cpython::layout()).unwrap();
    m.add("_LAYOUT", layout)?;
    Ok(())
}
