//! Statistics: what was compiled, refused or failed (with reasons), deopts by reason, code
//! bytes, compile time. Serialised as JSON for `--stats` and `ferrojit.stats()`.
//!
//! The `--stats` line is written by [`write_at_exit`], a `Py_AtExit` function: it runs after the
//! interpreter has finalised, so no Python code runs for it (no import, no audit event, nothing
//! traced), and neither a program's exit handlers nor a failing Python allocator
//! (`_testcapi.set_nomemory`) can change what it does or make it change what the program does.

use crate::backend::{disasm, Isa};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Once;

/// Counters of one process.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// The ISA the code was generated for.
    pub isa: &'static str,
    pub functions_compiled: u64,
    /// Functions the compiler does not support (they stay with the interpreter), by reason.
    pub functions_refused: u64,
    pub refused_reasons: BTreeMap<String, u64>,
    /// Functions whose compilation failed unexpectedly, by reason.
    pub functions_failed: u64,
    pub failed_reasons: BTreeMap<String, u64>,
    /// Hand-overs to the interpreter after a failed guard, by reason.
    pub deopts: BTreeMap<String, u64>,
    /// The same by exit site: `file:qualname @index reason`, where index is the code unit the
    /// interpreter resumes at.
    pub deopt_sites: BTreeMap<String, u64>,
    /// Functions compiled again because a speculation kept failing (the deopt policy).
    pub recompilations: u64,
    /// Instructions given their generic path by the deopt policy.
    pub generic_sites: u64,
    /// Hand-overs to the interpreter with an exception set.
    pub raises: u64,
    /// Entries into compiled code.
    pub native_calls: u64,
    /// Of those, frames the interpreter started that moved to compiled code at a loop header
    /// (on-stack replacement, `osr`).
    pub osr_entries: u64,
    /// Of those, calls from native code straight into native code (no vectorcall, no hook).
    pub direct_calls: u64,
    /// Of those, calls that machine code made itself (`calls-in-machine-code`): the code
    /// counts them in one word, added to `direct_calls` and `native_calls` when the
    /// statistics are read.
    pub machine_code_calls: u64,
    /// Of those, resumes of a compiled generator or coroutine by `SEND` in compiled code.
    pub direct_resumes: u64,
    /// Generators and coroutines made by a direct call (the call itself ran no code).
    pub direct_generators: u64,
    /// Instances made by calling their class from native code with `object.__new__` and the
    /// compiled `__init__` called directly (no `type.__call__`, argument tuple or hook).
    pub direct_constructions: u64,
    /// Calls that could have been direct but found the data-stack chunk full (the ordinary path
    /// then allocates the next chunk).
    pub direct_calls_without_room: u64,
    /// Times a direct call looked for its callee's native code through the function's code
    /// object and its state, not finding it in the table of callees (`callee-table`).
    pub callee_lookups: u64,
    /// Generic `LOAD_METHOD`s served by their site's cache (no lookup on the type).
    pub method_cache_hits: u64,
    /// Type guards the compiler removed from installed code because the value's exact type
    /// was already known there (`guard-elimination`).
    pub guards_removed: u64,
    /// Bytes of machine code generated.
    pub code_bytes: u64,
    /// Bytes of literal pools after the code (data, not instructions).
    pub literal_pool_bytes: u64,
    /// Helper calls linked at install to call their helper directly (`near-calls`).
    pub helper_calls_direct: u64,
    /// Helper calls linked at install to a veneer: their helper is out of reach.
    pub helper_calls_through_veneers: u64,
    /// Veneers laid out after installed code (one per distinct far helper of a function).
    pub veneers: u64,
    /// Machine instructions generated (counted by disassembling, when the statistics are read).
    pub code_instructions: u64,
    /// Instructions executed in generated code, counted by the code itself
    /// (`FERROJIT_COUNT_INSTRUCTIONS=1`, see `runtime::counting`); null when not counting.
    pub instructions_executed: Option<u64>,
    /// Code not yet counted into `code_instructions`: disassembling costs more than compiling,
    /// so it is done when someone reads the statistics, not on the way to running the code.
    #[serde(skip)]
    pub uncounted: Vec<(Isa, Vec<u8>)>,
    pub compile_time_ms: f64,
    /// `file:qualname` of the compiled functions, in compile order.
    pub compiled: Vec<String>,
    /// `file:qualname` of the functions the compiler looked at and refused, with the reason
    /// (generators and closures are refused before that and only counted).
    pub refused_functions: BTreeMap<String, String>,
    /// The call threshold in force.
    pub threshold: u32,
    /// The call threshold for functions with a loop.
    pub loop_threshold: u32,
    /// The deopt policy's bound on exits per speculating site.
    pub deopt_limit: u32,
    /// Optimisations switched off by name.
    pub disabled: Vec<&'static str>,
}

impl Stats {
    pub fn refuse(&mut self, reason: &str) {
        self.functions_refused += 1;
        *self.refused_reasons.entry(reason.to_string()).or_default() += 1;
    }

    pub fn fail(&mut self, reason: &str) {
        self.functions_failed += 1;
        *self.failed_reasons.entry(reason.to_string()).or_default() += 1;
    }

    pub fn deopt(&mut self, reason: &str, location: &str, resume_at: u32) {
        *self.deopts.entry(reason.to_string()).or_default() += 1;
        *self
            .deopt_sites
            .entry(format!("{location} @{resume_at} {reason}"))
            .or_default() += 1;
    }

    pub fn to_json(&mut self) -> String {
        let machine = super::direct_call::MACHINE_CODE_CALLS.load(Ordering::Relaxed);
        let new = machine - self.machine_code_calls;
        self.machine_code_calls = machine;
        self.direct_calls += new;
        self.native_calls += new;
        for (isa, code) in std::mem::take(&mut self.uncounted) {
            self.code_instructions += disasm::count_instructions(isa, &code) as u64;
        }
        self.instructions_executed = super::counting::instructions_executed();
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// Registers [`write_at_exit`] once per process; false if CPython has no room for another
/// exit function.
pub fn register_writer() -> bool {
    static REGISTERED: Once = Once::new();
    let mut ok = true;
    REGISTERED.call_once(|| {
        // SAFETY: called with the GIL held (from the module's functions); the function is a
        // plain `extern "C" fn()` that lives as long as the process.
        ok = unsafe { pyo3_ffi::Py_AtExit(Some(write_at_exit)) } == 0;
    });
    ok
}

/// Appends the statistics line to the `--stats` file (or standard output for `-`), if any.
/// Nothing unwinds out of it and it calls no Python API.
extern "C" fn write_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: CPython runs exit functions on the main thread at the very end, after
        // finalisation: no other code touches the runtime state any more.
        let rt = unsafe { super::hook::runtime() };
        let Some(path) = rt.options.stats_path.clone() else {
            return;
        };
        let line = rt.stats.to_json() + "\n";
        if path.as_os_str() == "-" {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes()).and_then(|_| out.flush());
            return;
        }
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!(
                "ferrojit: cannot write statistics to {}: {e}",
                path.display()
            );
        }
    });
}
