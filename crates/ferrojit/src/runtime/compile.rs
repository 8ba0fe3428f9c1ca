//! The compile driver: reads a live code object (bytecode with feedback, constants, names, the
//! namespaces' dict-key versions), runs the pipeline
//! bytecode -> HIR -> LIR (simplified) -> register allocation -> cleanup -> machine code,
//! installs the code in executable memory, and writes dumps.

use super::attr_cache::{SiteCache, SiteFeedback};
use super::codemem::{CodeBlock, Linked};
use super::helpers;
use super::hook::{runtime, CodeState};
use crate::backend::{disasm, Env, Isa, MachineCode};
use crate::bytecode::{self, Instr};
use crate::cpython::ffi::{self, code as co, InterpreterFrame};
use crate::cpython::{
    layout, opcode_tables, range_iter_layout_holds, seq_iter_layout_holds, Layout,
};
use crate::hir::builder::{
    CallBinding, CodeInfo, ConstInfo, GlobalSlot, KeysInfo, PolySites, Unshadowed, WellKnown,
};
use crate::hir::{self, Type};
use crate::lir;
use crate::passes;
use crate::regalloc;
use pyo3_ffi::*;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// The signature of generated code.
pub type Entry = unsafe extern "C" fn(*mut PyThreadState, *mut InterpreterFrame) -> *mut PyObject;

/// A compiled function, owned by its code object's state.
pub struct NativeCode {
    pub entry: Entry,
    pub block: CodeBlock,
    /// What each side exit is, by exit number.
    pub exits: Box<[ExitInfo]>,
    /// `file:qualname`, as statistics name the function.
    pub location: String,
    /// The attribute-site caches the code points at.
    pub site_caches: Box<[SiteCache]>,
    /// The instruction each site cache serves.
    pub site_cache_at: Box<[u32]>,
    /// Entries into this code (counted up to when its site caches are read for feedback).
    pub entries: Cell<u32>,
    /// Its site caches were read for feedback.
    pub site_feedback_read: Cell<bool>,
    /// How native callers may call this code directly (None: only through the hook).
    pub direct: Option<super::direct_call::DirectEntry>,
    /// For a generator: where a suspended frame must stand (code-unit index of
    /// `prev_instr`) for this code to resume it, as a bit set by code unit (every resume of
    /// a generator asks, so the test is one word read).
    pub resume_points: ResumePoints,
    /// Back edges (code-unit indices) at whose loop header a frame can enter this code, each
    /// with the loop header's stack depth.
    pub loop_entries: Box<[(u32, u32)]>,
}

impl NativeCode {
    /// Whether `cache` is the address of one of this code's site caches.
    #[inline]
    pub fn owns_site_cache(&self, cache: usize) -> bool {
        let caches = self.site_caches.as_ptr_range();
        (caches.start as usize..caches.end as usize).contains(&cache)
    }
}

/// A set of code-unit indices, one bit each.
#[derive(Default)]
pub struct ResumePoints(Box<[u64]>);

impl ResumePoints {
    pub fn new(points: &[u32]) -> Self {
        let words = points
            .iter()
            .map(|&p| p as usize / 64 + 1)
            .max()
            .unwrap_or(0);
        let mut bits = vec![0u64; words];
        for &p in points {
            bits[p as usize / 64] |= 1 << (p % 64);
        }
        ResumePoints(bits.into_boxed_slice())
    }

    #[inline]
    pub fn contains(&self, at: usize) -> bool {
        self.0
            .get(at / 64)
            .is_some_and(|word| word >> (at % 64) & 1 != 0)
    }
}

impl NativeCode {
    /// Whether this code can resume the suspended generator frame `f`.
    ///
    /// # Safety
    /// `f` is a live generator frame of this code.
    pub unsafe fn resumes(
        &self,
        l: &Layout,
        f: *mut InterpreterFrame,
        code: *mut PyObject,
    ) -> bool {
        // SAFETY: `prev_instr` points into the frame's code object's instructions.
        unsafe {
            let at: *mut u16 = ffi::read(f as _, l.frame_prev_instr);
            let first = (code as *mut u8).offset(l.code_adaptive as isize) as *mut u16;
            usize::try_from(at.offset_from(first)).is_ok_and(|bc| self.resume_points.contains(bc))
        }
    }
}

/// A side exit of native code, for statistics and the deopt policy.
pub struct ExitInfo {
    pub reason: &'static str,
    /// The code unit the interpreter resumes at.
    pub resume_at: u32,
    /// The speculating instruction, for exits taken when a speculation fails.
    pub site: Option<u32>,
    /// How often the exit was taken (counted for speculations only).
    pub taken: Cell<u32>,
    /// The call whose eval-breaker check the exit stands for (see `hir::FrameState`).
    pub pending_calls_at: Option<u32>,
}

/// Compilations of one code object after which it is left to the interpreter for good.
pub const MAX_RECOMPILATIONS: usize = 8;

/// Everything the pipeline produced for one function, for dumps and tests.
pub struct Artifacts {
    pub name: String,
    pub hir: hir::Function,
    /// The LIR given to the allocator (lowered, then simplified).
    pub lir: lir::Function,
    pub alloc: regalloc::Allocation,
    /// The LIR after allocation and cleanup: what the backend turned into machine code.
    pub allocated: lir::Function,
    /// What the backend emitted: the bytes to install (instructions, then the literal pool),
    /// count points and helper calls to link; installing adds the counting veneers' points.
    pub machine: MachineCode,
    pub isa: Isa,
    /// The attribute-site caches the code points at; they live as long as the code.
    pub site_caches: Box<[SiteCache]>,
    /// Type guards `guard-elimination` removed from the HIR.
    pub guards_removed: u32,
}

impl Artifacts {
    /// The four dump texts: HIR, LIR, allocated LIR, disassembly.
    pub fn texts(&self) -> [(&'static str, String); 4] {
        let m = &self.machine;
        let asm = disasm::disassemble_linked(self.isa, m.instructions(), 0, &m.links)
            .unwrap_or_else(|e| format!("disassembly failed: {e}\n"));
        [
            ("hir", self.hir.to_string()),
            ("lir", self.lir.to_string()),
            (
                "regalloc",
                regalloc::print_allocated(&self.allocated, &self.alloc),
            ),
            ("asm", asm),
        ]
    }
}

const CO_OPTIMIZED: i32 = 0x1;
const CO_NEWLOCALS: i32 = 0x2;

/// Why a code object is never compiled, before looking at its bytecode.
///
/// # Safety
/// `code` is a live code object.
unsafe fn refusal(code: *mut PyObject) -> Option<String> {
    // SAFETY: reading fields of a live code object.
    unsafe {
        let flags = co::flags(code);
        if flags & ffi::CO_ASYNC_GENERATOR != 0 && !super::generators::async_gen_wrap_known() {
            return Some("async generator value wrapper unlike CPython 3.11's".into());
        }
        if flags & (CO_OPTIMIZED | CO_NEWLOCALS) != (CO_OPTIMIZED | CO_NEWLOCALS) {
            return Some("module or class body".into());
        }
        let has_cells = co::ncellvars(code) != 0 || co::nfreevars(code) != 0;
        if has_cells && layout().cell_ref != 8 * i64::from(crate::hir::builder::CELL_REF_WORD) {
            return Some("cell layout unlike 64-bit CPython's".into());
        }
        let nunits = (*(code as *mut PyVarObject)).ob_size as usize;
        let huge = super::Optimisation::RefuseHugeFunctions;
        if nunits > super::HUGE_FUNCTION_CODE_UNITS && runtime().options.enabled(huge) {
            return Some(format!(
                "huge function (over {} code units)",
                super::HUGE_FUNCTION_CODE_UNITS
            ));
        }
        None
    }
}

/// Whether `code` has a loop: a backward jump (not `JUMP_BACKWARD_NO_INTERRUPT`, which only
/// `yield from`/`await` use).
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn has_loop(code: *mut PyObject) -> bool {
    // SAFETY: reading the code units of a live code object.
    unsafe {
        let nunits = (*(code as *mut PyVarObject)).ob_size as usize;
        let units = std::slice::from_raw_parts(co::first_instr(code), nunits);
        let tables = opcode_tables();
        bytecode::decode(units, &tables.caches, &tables.deopt)
            .iter()
            .any(|i| bytecode::is_loop_edge(i.op))
    }
}

/// The decoded instructions of `code`.
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn instructions(code: *mut PyObject) -> Vec<Instr> {
    // SAFETY: reading the code units of a live code object.
    unsafe {
        let nunits = (*(code as *mut PyVarObject)).ob_size as usize;
        let units = std::slice::from_raw_parts(co::first_instr(code), nunits);
        let tables = opcode_tables();
        bytecode::decode(units, &tables.caches, &tables.deopt)
    }
}

/// `code.co_exceptiontable` (None if it cannot be read).
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn exception_table(code: *mut PyObject) -> Option<Vec<u8>> {
    // SAFETY: GIL held; the attribute is a bytes object owned by the code.
    unsafe {
        let table = PyObject_GetAttrString(code, c"co_exceptiontable".as_ptr());
        if table.is_null() {
            PyErr_Clear();
            return None;
        }
        let out = (PyBytes_Check(table) != 0).then(|| {
            let p = PyBytes_AsString(table) as *const u8;
            std::slice::from_raw_parts(p, PyBytes_Size(table) as usize).to_vec()
        });
        Py_DECREF(table);
        out
    }
}

/// Whether the interpreter has left feedback from a loop of `code`: the code is quickened and
/// one of its loops went round since (see [`bytecode::a_loop_went_round`]).
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn loop_feedback_ready(code: *mut PyObject) -> bool {
    // SAFETY: reading the code units of a live code object.
    unsafe {
        if !co::quickened(code) {
            return false;
        }
        let nunits = (*(code as *mut PyVarObject)).ob_size as usize;
        let units = std::slice::from_raw_parts(co::first_instr(code), nunits);
        let tables = opcode_tables();
        bytecode::a_loop_went_round(&bytecode::decode(units, &tables.caches, &tables.deopt))
    }
}

/// Compiles `code` for the host and attaches the result to `state`, or records the refusal.
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn compile_code(code: *mut PyObject, ns: Namespaces, state: &mut CodeState) {
    // SAFETY: GIL held, live code object.
    unsafe {
        let rt = runtime();
        if let Some(reason) = refusal(code) {
            rt.stats.refuse(&reason);
            state.refused = Some(reason);
            return;
        }
        if state.retired.len() >= MAX_RECOMPILATIONS {
            let reason = format!("still deopting after {MAX_RECOMPILATIONS} recompilations");
            rt.stats.refuse(&reason);
            state.refused = Some(reason);
            return;
        }
        let started = Instant::now();
        let where_ = location(code);
        let feedback = Feedback {
            generic_sites: &state.generic_sites,
            site_feedback: &state.site_feedback,
            poly: &state.poly,
            loop_entries: state.loop_entries,
        };
        let qualname = where_.rsplit_once(':').map_or(where_.as_str(), |(_, q)| q);
        let compiled = super::panics::contained(|| {
            super::panics::inject_fault(qualname);
            pipeline(code, ns, Isa::host(), feedback)
        });
        let compiled = compiled.unwrap_or_else(|message| {
            Err(Failure::Error(format!("the compiler panicked: {message}")))
        });
        match compiled {
            Err(Failure::Unsupported(reason)) => {
                rt.stats.refuse(&reason);
                rt.stats.refused_functions.insert(where_, reason.clone());
                state.refused = Some(reason);
            }
            Err(Failure::Error(reason)) => {
                rt.stats.fail(&reason);
                rt.stats.refused_functions.insert(where_, reason.clone());
                state.refused = Some(reason);
            }
            Ok(mut art) => match super::panics::contained(|| {
                install(
                    &mut art,
                    where_.clone(),
                    rt.options.enabled(super::Optimisation::SpreadCode),
                )
            })
            .unwrap_or_else(|message| Err(format!("installing the code panicked: {message}")))
            {
                Ok((mut native, linked)) => {
                    native.direct = super::direct_call::DirectEntry::for_code(code);
                    let rt = runtime();
                    rt.stats.helper_calls_direct += u64::from(linked.direct);
                    rt.stats.helper_calls_through_veneers += u64::from(linked.through_veneers);
                    rt.stats.veneers += u64::from(linked.veneers);
                    if state.retired.is_empty() {
                        rt.stats.functions_compiled += 1;
                    } else {
                        rt.stats.recompilations += 1;
                    }
                    let m = &mut art.machine;
                    rt.stats.code_bytes += m.code_len as u64;
                    rt.stats.guards_removed += u64::from(art.guards_removed);
                    rt.stats.literal_pool_bytes += (m.bytes.len() - m.code_len) as u64;
                    rt.stats.compile_time_ms += started.elapsed().as_secs_f64() * 1000.0;
                    super::perf_map::record(native.block.addr(), m.bytes.len(), &where_);
                    super::counting::register(&m.counted);
                    rt.stats.compiled.push(where_);
                    if let Some(dir) = rt.options.dump_dir.clone() {
                        write_dumps(&dir, &art);
                    }
                    let code_len = art.machine.code_len;
                    let mut instructions = std::mem::take(&mut art.machine.bytes);
                    instructions.truncate(code_len);
                    rt.stats.uncounted.push((art.isa, instructions));
                    state.install_native(native);
                }
                Err(e) => {
                    rt.stats.fail(&e);
                    state.refused = Some(e);
                }
            },
        }
    }
}

/// The globals and builtins dicts the code will run with (borrowed; NULL if unknown): their
/// key versions decide whether `LOAD_GLOBAL` feedback is still good.
#[derive(Clone, Copy)]
pub struct Namespaces {
    pub globals: *mut PyObject,
    pub builtins: *mut PyObject,
}

impl Namespaces {
    /// The namespaces of a frame about to run.
    ///
    /// # Safety
    /// `f` is a live frame.
    pub unsafe fn of_frame(f: *mut InterpreterFrame) -> Namespaces {
        // SAFETY: reading two borrowed pointers of a live frame.
        unsafe {
            Namespaces {
                globals: ffi::read(f as _, layout().frame_globals),
                builtins: ffi::read(f as _, layout().frame_builtins),
            }
        }
    }

    /// The namespaces of a function object.
    ///
    /// # Safety
    /// `func` is a live function object.
    pub unsafe fn of_function(func: *mut PyObject) -> Namespaces {
        // SAFETY: reading two borrowed pointers of a live function.
        unsafe {
            Namespaces {
                globals: ffi::read(func as _, layout().function_globals),
                builtins: ffi::read(func as _, layout().function_builtins),
            }
        }
    }
}

/// `file:qualname` of a code object, as statistics name functions.
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn location(code: *mut PyObject) -> String {
    // SAFETY: as above.
    unsafe {
        let file = attr_string(code, c"co_filename").unwrap_or_default();
        let name = attr_string(code, c"co_qualname").unwrap_or_default();
        format!("{file}:{name}")
    }
}

/// How compilation did not succeed.
pub enum Failure {
    /// The compiler does not handle this function (yet).
    Unsupported(String),
    /// Something went wrong that should not have.
    Error(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Unsupported(s) | Failure::Error(s) => s,
        }
    }
}

/// Puts the code of `art` into executable memory (at a spread cache-line offset when `spread`).
fn install(
    art: &mut Artifacts,
    location: String,
    spread: bool,
) -> Result<(NativeCode, Linked), String> {
    let m = &mut art.machine;
    let counters = super::counting::counters();
    let (block, linked) = CodeBlock::install(&m.bytes, &m.links, spread, counters)?;
    m.counted.extend_from_slice(&linked.counted);
    // SAFETY: the block holds code generated for the host ISA with the `Entry` ABI.
    let entry: Entry = unsafe { std::mem::transmute::<usize, Entry>(block.addr()) };
    let exits = art
        .lir
        .exits
        .iter()
        .map(|e| {
            let state = &art.hir.states[e.state as usize];
            ExitInfo {
                reason: state.reason,
                resume_at: state.resume_at,
                site: state.site,
                taken: Cell::new(0),
                pending_calls_at: state.pending_calls_at,
            }
        })
        .collect();
    let site_caches = std::mem::take(&mut art.site_caches);
    let native = NativeCode {
        entry,
        block,
        exits,
        location,
        site_caches,
        site_cache_at: art.hir.site_cache_at.clone().into_boxed_slice(),
        entries: Cell::new(0),
        site_feedback_read: Cell::new(false),
        direct: None,
        resume_points: ResumePoints::new(&art.hir.resume_points),
        loop_entries: art.hir.loop_entries.clone().into_boxed_slice(),
    };
    Ok((native, linked))
}

/// Site-cache feedback stands in for the interpreter's on `LOAD_ATTR`s it left generic: the
/// instruction reads as the specialised form, with the cache entries that form keeps (type
/// version in units 1-2, index or hint in unit 3), so the builder takes its inline path.
fn apply_site_feedback(instrs: &mut [Instr], feedback: &BTreeMap<u32, SiteFeedback>) {
    use crate::cpython::opcodes::*;
    let specialised = [
        LOAD_ATTR_INSTANCE_VALUE,
        LOAD_ATTR_WITH_HINT,
        LOAD_ATTR_SLOT,
        LOAD_ATTR_MODULE,
    ];
    for ins in instrs.iter_mut() {
        let Some(fb) = feedback.get(&ins.at) else {
            continue;
        };
        if ins.op != LOAD_ATTR || specialised.contains(&ins.specialised) || ins.cache.len() < 4 {
            continue;
        }
        ins.specialised = fb.specialised;
        ins.cache[1] = fb.version as u16;
        ins.cache[2] = (fb.version >> 16) as u16;
        ins.cache[3] = fb.index;
    }
}

/// What earlier runs of a function's native code taught the compiler.
#[derive(Clone, Copy)]
pub struct Feedback<'a> {
    /// Instructions that get their generic path (the deopt policy).
    pub generic_sites: &'a BTreeSet<u32>,
    /// Attribute loads the interpreter had not specialised, with what their site caches saw.
    pub site_feedback: &'a BTreeMap<u32, SiteFeedback>,
    /// Attribute and method loads whose site caches saw several types.
    pub poly: &'a PolySites,
    /// Compile entries at the loops' headers (see `hir::builder::CodeInfo::loop_entries`).
    pub loop_entries: bool,
}

/// Runs the whole pipeline on `code` for `isa` without installing anything.
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn pipeline(
    code: *mut PyObject,
    ns: Namespaces,
    isa: Isa,
    feedback: Feedback,
) -> Result<Artifacts, Failure> {
    // SAFETY: GIL held, live code object.
    unsafe {
        if let Some(reason) = refusal(code) {
            return Err(Failure::Unsupported(reason));
        }
        let mut info = code_info(code, ns).map_err(Failure::Error)?;
        info.generic_sites = feedback.generic_sites.clone();
        info.loop_entries = feedback.loop_entries;
        apply_site_feedback(&mut info.instrs, feedback.site_feedback);
        let options = &runtime().options;
        if options.enabled(super::Optimisation::PolyAttrs) {
            info.poly.attrs = feedback.poly.attrs.clone();
        }
        if options.enabled(super::Optimisation::PolyMethods) {
            info.poly.methods = feedback.poly.methods.clone();
            if !options.enabled(super::Optimisation::OwnDictMethods) {
                for cases in info.poly.methods.values_mut() {
                    cases.retain(|c| c.unshadowed != Unshadowed::OwnDict);
                }
                info.poly.methods.retain(|_, cases| !cases.is_empty());
            }
        }
        if options.enabled(super::Optimisation::PolyStores) {
            info.poly.stores = feedback.poly.stores.clone();
        }
        if options.enabled(super::Optimisation::CallsInMachineCode) {
            let globals = super::direct_call::global_functions(code, ns.globals, &info);
            let classes = match options.enabled(super::Optimisation::ConstructorsInMachineCode)
                && options.enabled(super::Optimisation::DirectConstructors)
            {
                true => super::direct_call::global_classes(code, ns.globals, &info),
                false => BTreeMap::new(),
            };
            let called = globals.values().copied();
            let inits = classes.values().map(|c| c.init);
            info.callees = super::direct_call::known_callees(&info, called.chain(inits));
            info.global_functions = globals
                .into_iter()
                .filter(|(_, f)| info.callees.contains_key(f))
                .collect();
            info.global_classes = classes
                .into_iter()
                .filter(|(_, c)| info.callees.contains_key(&c.init))
                .collect();
        }
        let mut hir = hir::builder::build(&info).map_err(|u| Failure::Unsupported(u.0))?;
        // Guards first: an exit fewer can leave a local borrowed.
        let guards_removed = match options.enabled(super::Optimisation::GuardElimination) {
            true => hir::guards::eliminate_guards(&mut hir),
            false => 0,
        };
        if runtime().options.enabled(super::Optimisation::BorrowedRefs) {
            hir::borrow::borrow(&mut hir);
        }
        let site_caches: Box<[SiteCache]> =
            (0..hir.site_caches).map(|_| SiteCache::default()).collect();
        let mut cx = lowering_context(code);
        cx.site_caches = site_caches.as_ptr() as usize;
        cx.site_cache_size = std::mem::size_of::<SiteCache>();
        let mut lir = lir::lower::lower(&hir, &cx);
        passes::simplify(&mut lir);
        let regs = isa.registers();
        let on = |opt| runtime().options.enabled(opt);
        let policy = regalloc::Policy {
            live_ranges: on(super::Optimisation::LiveRanges),
            slot_order: on(super::Optimisation::SlotOrder),
        };
        let alloc = regalloc::allocate_with(&lir, &regs, policy);
        if cfg!(debug_assertions) {
            regalloc::check(&lir, &alloc, &regs).map_err(Failure::Error)?;
        }
        if alloc.num_slots > regalloc::MAX_SLOTS {
            return Err(Failure::Unsupported(format!(
                "more than {} spill slots",
                regalloc::MAX_SLOTS
            )));
        }
        // The checker reads liveness off the LIR, so it runs before cleanup: removing a move
        // between two registers that share a location makes one look used before defined.
        let mut allocated = lir.clone();
        passes::cleanup(&mut allocated, &alloc);
        let mut env = backend_env(on);
        if isa == Isa::host() && env.near_calls {
            env.code_zone = super::codemem::code_zone();
        }
        let machine = isa.emit(&allocated, &alloc, &env).map_err(Failure::Error)?;
        Ok(Artifacts {
            name: info.name,
            hir,
            lir,
            alloc,
            allocated,
            machine,
            isa,
            site_caches,
            guards_removed,
        })
    }
}

/// The backends' facts, with the backend knobs as `on` says.
fn backend_env(on: impl Fn(super::Optimisation) -> bool) -> Env {
    use super::Optimisation as O;
    let l = layout();
    Env {
        frame_localsplus: l.frame_localsplus as i32,
        frame_stacktop: l.frame_stacktop as i32,
        frame_prev_instr: l.frame_prev_instr as i32,
        dealloc: ffi::_Py_Dealloc as *const () as usize,
        object_refcnt: l.object_refcnt as i32,
        short_jumps: on(O::ShortJumps),
        literal_pool: on(O::LiteralPool),
        literal_pool_pairs: on(O::LiteralPoolPairs),
        compare_and_branch: on(O::CompareAndBranch),
        pair_loads_stores: on(O::PairLoadsStores),
        test_bit_branches: on(O::TestBitBranches),
        near_calls: on(O::NearCalls),
        cold_section: on(O::ColdSection),
        code_zone: None,
        ref_total: ffi::ref_total_address(),
        count_instructions: super::counting::counters(),
    }
}

unsafe fn lowering_context(code: *mut PyObject) -> lir::lower::Context {
    // SAFETY: GIL held; reading the interpreter state of the current thread.
    unsafe {
        let ts = PyThreadState_Get();
        let interp: *mut u8 = ffi::read(ts as _, layout().tstate_interp);
        lir::lower::Context {
            layout: *layout(),
            first_instr: co::first_instr(code) as usize,
            true_obj: Py_True() as usize,
            false_obj: Py_False() as usize,
            none_obj: Py_None() as usize,
            module_type: std::ptr::addr_of_mut!(PyModule_Type) as usize,
            list_iter_type: std::ptr::addr_of_mut!(PyListIter_Type) as usize,
            tuple_iter_type: std::ptr::addr_of_mut!(PyTupleIter_Type) as usize,
            range_iter_type: if runtime()
                .options
                .enabled(super::Optimisation::InlineRangeIter)
                && range_iter_layout_holds()
            {
                std::ptr::addr_of_mut!(PyRangeIter_Type) as usize
            } else {
                0
            },
            eval_breaker: interp as usize + layout().interp_eval_breaker as usize,
            helpers: helpers::address,
            site_caches: 0,
            site_cache_size: 0,
            cold_last: runtime()
                .options
                .enabled(super::Optimisation::ColdSlowPaths),
            compact_int_multiply: runtime()
                .options
                .enabled(super::Optimisation::CompactIntMultiply),
            prev_instr_op: runtime()
                .options
                .enabled(super::Optimisation::PrevInstrLowHalf)
                || runtime().options.enabled(super::Optimisation::LiteralPool),
            ref_total: ffi::ref_total_address(),
            prev_instr_low_half: runtime()
                .options
                .enabled(super::Optimisation::PrevInstrLowHalf)
                && lir::lower::prev_instr_high_half_fixed(
                    co::first_instr(code) as usize,
                    (*(code as *mut PyVarObject)).ob_size as usize,
                ),
            direct_calls: lir::lower::DirectCallContext {
                function_type: std::ptr::addr_of_mut!(PyFunction_Type) as usize,
                type_type: std::ptr::addr_of_mut!(PyType_Type) as usize,
                none: Py_None() as usize,
                eval_frame: super::hook::eval_frame as ffi::EvalFrameFunc as usize,
                feedback_asked_at: std::ptr::addr_of!(runtime().feedback_asked_by) as usize,
                feedback_after: super::hook::SITE_FEEDBACK_AFTER,
                machine_code_calls_at: super::direct_call::MACHINE_CODE_CALLS.as_ptr() as usize,
                native_entry: std::mem::offset_of!(NativeCode, entry) as i64,
                native_entries: std::mem::offset_of!(NativeCode, entries) as i64,
            },
        }
    }
}

/// Reads what the HIR builder needs from a live code object.
unsafe fn code_info(code: *mut PyObject, ns: Namespaces) -> Result<CodeInfo, String> {
    // SAFETY: GIL held, live code object; all objects read are borrowed from it.
    unsafe {
        let nunits = (*(code as *mut PyVarObject)).ob_size as usize;
        let units = std::slice::from_raw_parts(co::first_instr(code), nunits);
        let tables = opcode_tables();
        let instrs = bytecode::decode(units, &tables.caches, &tables.deopt);
        let name = attr_string(code, c"co_qualname").unwrap_or_else(|| "<unknown>".into());
        let consts = tuple_infos(co::consts(code));
        let kwnames = keyword_names(co::consts(code), &instrs);
        let names = tuple_infos(co::names(code));
        let mut nparams = co::argcount(code) as u32 + attr_int(code, c"co_kwonlyargcount") as u32;
        let flags = co::flags(code);
        nparams +=
            (flags & ffi::CO_VARARGS != 0) as u32 + (flags & ffi::CO_VARKEYWORDS != 0) as u32;
        let on = |opt| runtime().options.enabled(opt);
        let global_slots = if on(super::Optimisation::CompileTimeGlobals) {
            global_slots(co::names(code), ns)
        } else {
            Vec::new()
        };
        let inline_dict_attrs = on(super::Optimisation::InlineDictAttrs);
        let store_attr_dict = on(super::Optimisation::StoreAttrDict);
        let cached_stores = on(super::Optimisation::PolyStores);
        let inline_int_compare = on(super::Optimisation::InlineIntCompare);
        let inline_unpack = on(super::Optimisation::InlineUnpack);
        let inline_for_iter = on(super::Optimisation::InlineForIter) && seq_iter_layout_holds();
        let inline_int_arith = on(super::Optimisation::InlineIntArith);
        let c_calls = on(super::Optimisation::CCalls);
        let compile_send = on(super::Optimisation::CompileSend);
        Ok(CodeInfo {
            compile_send,
            inline_unpack,
            inline_for_iter,
            fuse_bool_branches: on(super::Optimisation::FuseBoolBranches),
            mixed_float_arith: on(super::Optimisation::MixedFloatArith),
            inline_float_arith: on(super::Optimisation::InlineFloatArith),
            inline_float_compare: on(super::Optimisation::InlineFloatCompare),
            inline_int_arith,
            constant_operands: on(super::Optimisation::ConstantOperands),
            c_calls,
            inline_int_compare,
            inline_dict_attrs,
            store_attr_dict,
            cached_stores,
            generator: flags & (ffi::CO_GENERATOR | ffi::CO_COROUTINE | ffi::CO_ASYNC_GENERATOR)
                != 0,
            yield_from_coroutines: flags & (ffi::CO_COROUTINE | ffi::CO_ITERABLE_COROUTINE) != 0,
            global_slots,
            name,
            instrs,
            consts,
            names,
            nlocalsplus: co::nlocalsplus(code) as u32,
            nparams,
            globals_keys: keys_info(ns.globals),
            builtins_keys: keys_info(ns.builtins),
            well_known: WellKnown {
                none: Py_None() as usize,
                true_: Py_True() as usize,
                false_: Py_False() as usize,
                int_type: std::ptr::addr_of_mut!(PyLong_Type) as usize,
                float_type: std::ptr::addr_of_mut!(PyFloat_Type) as usize,
                str_type: std::ptr::addr_of_mut!(PyUnicode_Type) as usize,
                list_type: std::ptr::addr_of_mut!(PyList_Type) as usize,
                tuple_type: std::ptr::addr_of_mut!(PyTuple_Type) as usize,
            },
            generic_sites: BTreeSet::new(),
            poly: PolySites::default(),
            callees: BTreeMap::new(),
            kwnames,
            call_binding: CallBinding {
                keywords: on(super::Optimisation::MachineCodeCallBinding)
                    && on(super::Optimisation::DirectCallKeywords),
                defaults: on(super::Optimisation::MachineCodeCallBinding)
                    && on(super::Optimisation::DirectCallDefaults),
            },
            global_functions: BTreeMap::new(),
            global_classes: BTreeMap::new(),
            loop_entries: false,
        })
    }
}

/// Where each of `names` is now: an entry of the globals, else of the builtins. Only for
/// str-keyed exact dicts whose keys carry a version (the interpreter gives one the first time
/// it specialises a load from them), since the loads guard that version.
unsafe fn global_slots(names: *mut PyObject, ns: Namespaces) -> Vec<GlobalSlot> {
    // SAFETY: GIL held; `names` is the code's tuple of str, the namespaces live dicts or NULL.
    unsafe {
        let versioned = |d| keys_info(d).is_some_and(|k| k.version != 0);
        if !versioned(ns.globals) || !versioned(ns.builtins) {
            return Vec::new();
        }
        (0..PyTuple_GET_SIZE(names))
            .map(|i| {
                let name = PyTuple_GET_ITEM(names, i);
                if let Some(index) = entry_index(ns.globals, name) {
                    GlobalSlot::Module(index)
                } else if let Some(index) = entry_index(ns.builtins, name) {
                    GlobalSlot::Builtin(index)
                } else {
                    GlobalSlot::Unknown
                }
            })
            .collect()
    }
}

/// The index of the live entry for the str `name` in the str-keyed exact dict `dict`.
unsafe fn entry_index(dict: *mut PyObject, name: *mut PyObject) -> Option<u32> {
    // SAFETY: `dict` is an exact dict with DICT_KEYS_UNICODE keys (checked by the caller
    // through keys_info), whose first dk_nentries entries are initialised; `name` is a str.
    unsafe {
        let l = layout();
        let info = keys_info(dict)?;
        let keys: *mut u8 = ffi::read(dict as _, l.dict_keys);
        let n: isize = ffi::read(keys as _, l.dictkeys_nentries);
        (0..n).find_map(|i| {
            let entry = keys.offset(info.entries as isize + i * l.dict_unicode_entry_size as isize);
            let key: *mut PyObject = ffi::read(entry as _, l.dict_unicode_entry_key);
            let value: *mut PyObject = ffi::read(entry as _, l.dict_unicode_entry_value);
            let same = !key.is_null() && (key == name || PyUnicode_Compare(key, name) == 0);
            (same && !value.is_null()).then_some(i as u32)
        })
    }
}

/// The version and entries offset of an exact dict's keys, if they hold only str keys.
unsafe fn keys_info(dict: *mut PyObject) -> Option<KeysInfo> {
    // SAFETY: `dict` is NULL or a live object; only read when it is an exact dict.
    unsafe {
        if dict.is_null() || PyDict_CheckExact(dict) == 0 {
            return None;
        }
        let l = layout();
        let keys: *mut u8 = ffi::read(dict as _, l.dict_keys);
        let kind: u8 = ffi::read(keys as _, l.dictkeys_kind);
        if kind != 1 {
            return None; // only DICT_KEYS_UNICODE tables have the entry layout assumed
        }
        let version: u32 = ffi::read(keys as _, l.dictkeys_version);
        let log2_index_bytes: u8 = ffi::read(keys as _, l.dictkeys_log2_index_bytes);
        let entries = l.dictkeys_indices as u32 + (1u32 << log2_index_bytes);
        Some(KeysInfo { version, entries })
    }
}

/// The names in each constant that a `KW_NAMES` of `instrs` names (a tuple of str), by index
/// in `consts`.
unsafe fn keyword_names(consts: *mut PyObject, instrs: &[Instr]) -> BTreeMap<usize, Vec<String>> {
    // SAFETY: `consts` is the code's live tuple; its items are checked before they are read.
    unsafe {
        let mut found = BTreeMap::new();
        for ins in instrs
            .iter()
            .filter(|i| i.op == crate::cpython::opcodes::KW_NAMES)
        {
            let index = ins.arg as isize;
            if index >= PyTuple_GET_SIZE(consts) {
                continue;
            }
            let names = PyTuple_GET_ITEM(consts, index);
            if PyTuple_CheckExact(names) == 0 {
                continue;
            }
            let items = (0..PyTuple_GET_SIZE(names)).map(|i| PyTuple_GET_ITEM(names, i));
            if items.clone().all(|n| PyUnicode_CheckExact(n) != 0) {
                found.insert(index as usize, items.map(|n| utf8(n)).collect());
            }
        }
        found
    }
}

unsafe fn tuple_infos(t: *mut PyObject) -> Vec<ConstInfo> {
    // SAFETY: `t` is a live tuple owned by the code object.
    unsafe {
        (0..PyTuple_GET_SIZE(t))
            .map(|i| {
                let o = PyTuple_GET_ITEM(t, i);
                ConstInfo {
                    obj: o as usize,
                    text: short_repr(o),
                    ty: exact_type(o),
                }
            })
            .collect()
    }
}

/// The HIR type of an object, by its exact type.
pub unsafe fn exact_type(o: *mut PyObject) -> Type {
    // SAFETY: `o` is a live object.
    unsafe {
        let t = Py_TYPE(o);
        if o == Py_None() {
            Type::NONE_TYPE
        } else if t == std::ptr::addr_of_mut!(PyBool_Type) {
            Type::BOOL
        } else if t == std::ptr::addr_of_mut!(PyLong_Type) {
            Type::INT
        } else if t == std::ptr::addr_of_mut!(PyFloat_Type) {
            Type::FLOAT
        } else if t == std::ptr::addr_of_mut!(PyUnicode_Type) {
            Type::STR
        } else if t == std::ptr::addr_of_mut!(PyTuple_Type) {
            Type::TUPLE
        } else {
            Type::OTHER
        }
    }
}

unsafe fn short_repr(o: *mut PyObject) -> String {
    // SAFETY: `o` is live; repr of constants (numbers, strings, tuples, code) runs no user code.
    unsafe {
        let r = PyObject_Repr(o);
        if r.is_null() {
            PyErr_Clear();
            return "<?>".into();
        }
        let s = utf8(r);
        Py_DECREF(r);
        if s.chars().count() > 40 {
            s.chars().take(37).collect::<String>() + "..."
        } else {
            s
        }
    }
}

unsafe fn utf8(s: *mut PyObject) -> String {
    // SAFETY: `s` is a live str.
    unsafe {
        let mut n: Py_ssize_t = 0;
        let p = PyUnicode_AsUTF8AndSize(s, &mut n);
        if p.is_null() {
            PyErr_Clear();
            return String::new();
        }
        String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, n as usize)).into_owned()
    }
}

unsafe fn attr_string(o: *mut PyObject, name: &std::ffi::CStr) -> Option<String> {
    // SAFETY: `o` is live; attribute reads of code objects run no user code.
    unsafe {
        let v = PyObject_GetAttrString(o, name.as_ptr());
        if v.is_null() {
            PyErr_Clear();
            return None;
        }
        let s = utf8(v);
        Py_DECREF(v);
        Some(s)
    }
}

unsafe fn attr_int(o: *mut PyObject, name: &std::ffi::CStr) -> i64 {
    // SAFETY: as above.
    unsafe {
        let v = PyObject_GetAttrString(o, name.as_ptr());
        if v.is_null() {
            PyErr_Clear();
            return 0;
        }
        let n = PyLong_AsLongLong(v);
        Py_DECREF(v);
        n
    }
}

/// Writes `<dir>/<name>.{hir,lir,regalloc,asm}`.
pub fn write_dumps(dir: &std::path::Path, art: &Artifacts) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let stem: String = art
        .name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    for (ext, text) in art.texts() {
        let _ = std::fs::write(dir.join(format!("{stem}.{ext}")), text);
    }
}

#[cfg(test)]
mod tests {
    use super::ResumePoints;

    #[test]
    fn resume_points_hold_exactly_their_code_units() {
        let points = [0, 5, 63, 64, 200];
        let set = ResumePoints::new(&points);
        for at in 0..300 {
            assert_eq!(
                set.contains(at),
                points.contains(&(at as u32)),
                "code unit {at}"
            );
        }
        assert!(!set.contains(usize::MAX));
    }

    #[test]
    fn no_resume_points_hold_nothing() {
        let set = ResumePoints::new(&[]);
        assert!(!set.contains(0));
        assert!(!set.contains(64));
    }
}
