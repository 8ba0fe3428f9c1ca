//! Lowering HIR to LIR: each HIR value gets a virtual register, block parameters become moves
//! on the incoming edges (through temporaries, so swaps are right), frame states become side
//! exits, and the operations become loads, stores, guards and helper calls at the offsets the
//! layout probe measured.

use super::*;
use crate::cpython::Layout;
use crate::hir::{
    self, ErrorCheck, ExitKind, Helper, InstKind, KeysCheck, Terminator, Type, ValueId, WordArith,
};
use std::collections::HashMap;

mod direct_call;

/// `DICT_KEYS_GENERAL` (Include/internal/pycore_dict.h): keys of any type, whose entries are
/// laid out differently from the str-only kinds.
const DICT_KEYS_GENERAL: i64 = 0;

/// What lowering needs to know about the running interpreter and the code being compiled.
#[derive(Clone, Debug)]
pub struct Context {
    pub layout: Layout,
    /// Address of the code's first code unit (`_PyCode_CODE(co)`).
    pub first_instr: usize,
    pub true_obj: usize,
    pub false_obj: usize,
    pub none_obj: usize,
    /// `&PyModule_Type`.
    pub module_type: usize,
    /// `&PyListIter_Type` and `&PyTupleIter_Type` (inline `FOR_ITER`).
    pub list_iter_type: usize,
    pub tuple_iter_type: usize,
    /// `PyRangeIter_Type`, or 0 when range iterators are not stepped inline (the knob is off
    /// or their layout did not check out).
    pub range_iter_type: usize,
    /// Address of the interpreter's `eval_breaker` word.
    pub eval_breaker: usize,
    /// The address of each helper.
    pub helpers: fn(Helper) -> usize,
    /// Address of the function's first attribute-site cache, and the size of one.
    pub site_caches: usize,
    pub site_cache_size: usize,
    /// Lay cold HIR blocks (slow paths) out after the others (the `cold-slow-paths` knob).
    pub cold_last: bool,
    /// `frame->prev_instr` is set by `SetPrevInstr`, each backend choosing its form (with the
    /// `prev-instr-low-half` or `literal-pool` knob), not by a constant moved into a register
    /// and stored.
    pub prev_instr_op: bool,
    /// `compact-int-multiply`: a compact int's word is its digit times its size.
    pub compact_int_multiply: bool,
    /// `SetPrevInstr` says the upper half is set (the `prev-instr-low-half` knob, where
    /// [`prev_instr_high_half_fixed`] holds for the code).
    pub prev_instr_low_half: bool,
    /// Address of `_Py_RefTotal` in a `Py_REF_DEBUG` interpreter, else 0: every incref the
    /// lowering writes then adds one to it, as `Py_INCREF` does there (see `backend::Env`).
    pub ref_total: usize,
    /// What the machine code of a direct call (`InstKind::CallCompiled`) checks and counts.
    pub direct_calls: DirectCallContext,
}

/// The runtime's words and values that [`InstKind::CallCompiled`]'s machine code uses.
#[derive(Clone, Copy, Debug)]
pub struct DirectCallContext {
    /// `&PyFunction_Type`, `&PyType_Type` and `Py_None`.
    pub function_type: usize,
    pub type_type: usize,
    pub none: usize,
    /// ferrojit's PEP 523 hook: another one installed must see every frame.
    pub eval_frame: usize,
    /// Address of the runtime's word naming a site cache that asked for feedback (0: none).
    pub feedback_asked_at: usize,
    /// The entry count at which a native code's site caches become feedback.
    pub feedback_after: u32,
    /// Address of the count of calls made by machine code.
    pub machine_code_calls_at: usize,
    /// Offsets in a `NativeCode` of its entry (a function pointer) and of its entry counter
    /// (a 32-bit word).
    pub native_entry: i64,
    pub native_entries: i64,
}

/// Whether every value `frame->prev_instr` can take while the frame runs code of `nunits`
/// units at `first_instr` (from the unit before the first, where CPython starts it, to the last)
/// has the same upper 32 bits: then writing the lower half of the word changes it completely.
pub fn prev_instr_high_half_fixed(first_instr: usize, nunits: usize) -> bool {
    let lowest = first_instr.wrapping_sub(2) as u64;
    let highest = (first_instr + 2 * nunits) as u64;
    lowest >> 32 == highest >> 32 && lowest <= highest
}

struct Lowerer<'a> {
    hir: &'a hir::Function,
    cx: &'a Context,
    out: Function,
    vreg_of: HashMap<ValueId, VReg>,
    block_of: HashMap<hir::BlockId, LBlock>,
    exit_of: HashMap<hir::StateId, ExitId>,
    cur: usize,
    /// The code unit of the HIR instruction being lowered.
    bc: u32,
}

/// Lowers `hir` to LIR.
pub fn lower(hir: &hir::Function, cx: &Context) -> Function {
    let mut l = Lowerer {
        hir,
        cx,
        out: Function {
            name: hir.name.clone(),
            ..Default::default()
        },
        vreg_of: HashMap::new(),
        block_of: HashMap::new(),
        exit_of: HashMap::new(),
        cur: 0,
        bc: 0,
    };
    let order = layout_order(hir, cx.cold_last);
    if cx.cold_last {
        let hot = order.iter().filter(|b| !hir.block(**b).cold).count();
        l.out.cold_from = Some(hot as u32);
    }
    for b in &order {
        let lb = l.new_block();
        l.block_of.insert(*b, lb);
    }
    for b in &order {
        l.cur = l.block_of[b].0 as usize;
        l.lower_block(*b);
    }
    l.out
}

/// The order LIR blocks take: HIR's reverse postorder, with the cold blocks moved after the
/// rest (in their own reverse postorder) when `cold_last`. Every LIR block ends in an explicit
/// jump, so any order means the same; the cleanup pass then turns jumps to the next block into
/// fall-throughs.
fn layout_order(hir: &hir::Function, cold_last: bool) -> Vec<hir::BlockId> {
    let rpo = hir.rpo();
    if !cold_last {
        return rpo;
    }
    let cold = |b: &hir::BlockId| hir.block(*b).cold;
    let (mut hot, cold): (Vec<_>, Vec<_>) = rpo.into_iter().partition(|b| !cold(b));
    hot.extend(cold);
    hot
}

impl<'a> Lowerer<'a> {
    fn new_block(&mut self) -> LBlock {
        self.out.blocks.push(Block::default());
        LBlock(self.out.blocks.len() as u32 - 1)
    }

    fn new_vreg(&mut self) -> VReg {
        self.out.num_vregs += 1;
        VReg(self.out.num_vregs - 1)
    }

    fn emit(&mut self, inst: LInst) {
        self.out.blocks[self.cur].insts.push(inst);
    }

    /// The register holding HIR value `v`.
    fn reg(&mut self, v: ValueId) -> VReg {
        if let Some(r) = self.vreg_of.get(&v) {
            return *r;
        }
        let r = self.new_vreg();
        self.vreg_of.insert(v, r);
        r
    }

    fn op(&mut self, v: ValueId) -> Operand {
        match self.hir.inst(v).kind {
            InstKind::Null => Operand::Imm(0),
            InstKind::CInt { value } => Operand::Imm(value),
            InstKind::SiteCache { index } => Operand::Imm(
                (self.cx.site_caches + index as usize * self.cx.site_cache_size) as i64,
            ),
            InstKind::Const { obj, .. } => Operand::Imm(obj as i64),
            _ => Operand::Reg(self.reg(v)),
        }
    }

    fn lay(&self) -> &Layout {
        &self.cx.layout
    }

    /// Byte offset of value-stack slot `depth` inside the frame.
    fn stack_slot(&self, depth: u32) -> i32 {
        (self.lay().frame_localsplus + 8 * (self.hir.nlocalsplus as i64 + depth as i64)) as i32
    }

    fn local_slot(&self, index: u32) -> i32 {
        (self.lay().frame_localsplus + 8 * index as i64) as i32
    }

    fn exit(&mut self, s: hir::StateId) -> ExitId {
        if let Some(e) = self.exit_of.get(&s) {
            return *e;
        }
        let state = self.hir.state(s).clone();
        let stack: Vec<Operand> = state.stack.iter().map(|v| self.op(*v)).collect();
        let increfs = (state.stack.iter().enumerate())
            .filter(|(_, v)| self.hir.is_borrowed(**v))
            .map(|(k, _)| k)
            .collect();
        let id = ExitId(self.out.exits.len() as u32);
        let (prev_instr, code) = match state.kind {
            ExitKind::Deopt => (
                self.cx.first_instr as i64 + 2 * (state.resume_at as i64 - 1),
                ((id.0 as i64) << 1) | 1,
            ),
            ExitKind::Raise => (self.cx.first_instr as i64 + 2 * state.resume_at as i64, 0),
        };
        self.out.exits.push(Exit {
            state: s.0,
            stack,
            increfs,
            prev_instr: prev_instr as usize,
            stacktop: (self.hir.nlocalsplus + state.stack.len() as u32) as i32,
            code,
        });
        self.exit_of.insert(s, id);
        id
    }

    fn guard(&mut self, a: VReg, b: Operand, cond: Cond, width: Width, s: hir::StateId) {
        let exit = self.exit(s);
        self.emit(LInst::GuardCmp {
            a,
            b,
            cond,
            width,
            exit,
        });
    }

    fn load(&mut self, base: Base, offset: i64, width: Width) -> VReg {
        let dst = self.new_vreg();
        self.emit(LInst::Load {
            dst,
            base,
            offset: offset as i32,
            width,
        });
        dst
    }

    fn call(&mut self, helper: Helper, args: Vec<Operand>, dst: Option<VReg>, bc: u32) {
        self.set_prev_instr(bc);
        self.call_helper(helper, args, dst);
    }

    /// Calls `helper` with `frame->prev_instr` as it is.
    fn call_helper(&mut self, helper: Helper, args: Vec<Operand>, dst: Option<VReg>) {
        let target = (self.cx.helpers)(helper);
        self.emit(LInst::Call {
            target,
            via: None,
            name: helper.name(),
            args,
            dst,
        });
    }

    /// `frame->stacktop` = the locals plus `depth` value-stack entries.
    fn set_stacktop(&mut self, depth: u32) {
        let off = self.lay().frame_stacktop as i32;
        self.emit(LInst::Store {
            base: Base::Frame,
            offset: off,
            src: Operand::Imm(self.hir.nlocalsplus as i64 + depth as i64),
            width: Width::W32,
        });
    }

    /// A compact int's word as (0 - size) & digit (sizes 0 and 1 only), without a multiply.
    fn mask_digit(&mut self, d: VReg, digit: VReg, size: VReg) {
        let zero = self.new_vreg();
        self.emit(LInst::Mov {
            dst: zero,
            src: Operand::Imm(0),
        });
        let mask = self.new_vreg();
        self.emit(LInst::Alu {
            op: AluOp::Sub,
            dst: mask,
            a: zero,
            b: Operand::Reg(size),
        });
        self.emit(LInst::Alu {
            op: AluOp::And,
            dst: d,
            a: digit,
            b: Operand::Reg(mask),
        });
    }

    /// Releases the object in `value` (skipping NULL when `maybe_null`); a deallocation first
    /// points `frame->prev_instr` at the instruction being lowered, so that a finalizer or a
    /// `ResourceWarning` sees the line that dropped the object.
    /// One more reference to the object in `object` (never NULL); in a `Py_REF_DEBUG`
    /// interpreter the total of all reference counts goes up by one too.
    fn incref(&mut self, object: VReg) {
        self.emit(LInst::AddMem {
            base: Base::Reg(object),
            offset: self.lay().object_refcnt as i32,
            imm: 1,
        });
        if self.cx.ref_total != 0 {
            let t = self.new_vreg();
            self.emit(LInst::Mov {
                dst: t,
                src: Operand::Imm(self.cx.ref_total as i64),
            });
            self.emit(LInst::AddMem {
                base: Base::Reg(t),
                offset: 0,
                imm: 1,
            });
        }
    }

    fn decref(&mut self, value: VReg, maybe_null: bool) {
        self.emit(LInst::Decref {
            value,
            maybe_null,
            prev_instr: self.cx.first_instr as i64 + 2 * self.bc as i64,
        });
    }

    /// Keeps `frame->prev_instr` at the instruction being executed before anything that can
    /// look at the frame (tracebacks, `sys._getframe`, `f_lineno`).
    fn set_prev_instr(&mut self, bc: u32) {
        let addr = self.cx.first_instr as i64 + 2 * bc as i64;
        let off = self.lay().frame_prev_instr as i32;
        if self.cx.prev_instr_op {
            self.emit(LInst::SetPrevInstr {
                addr,
                upper_half_set: self.cx.prev_instr_low_half,
            });
            return;
        }
        let t = self.new_vreg();
        self.emit(LInst::Mov {
            dst: t,
            src: Operand::Imm(addr),
        });
        self.emit(LInst::Store {
            base: Base::Frame,
            offset: off,
            src: Operand::Reg(t),
            width: Width::W64,
        });
    }

    fn lower_block(&mut self, b: hir::BlockId) {
        let block = self.hir.block(b).clone();
        for v in &block.insts {
            self.lower_inst(*v);
        }
        self.lower_term(&block.term);
    }

    fn lower_inst(&mut self, v: ValueId) {
        let inst = self.hir.inst(v).clone();
        self.bc = inst.bc;
        let lay = *self.lay();
        match inst.kind {
            InstKind::Param { .. }
            | InstKind::Null
            | InstKind::CInt { .. }
            | InstKind::SiteCache { .. }
            | InstKind::Const { .. } => {}
            InstKind::Frame => {
                let d = self.reg(v);
                self.emit(LInst::Lea {
                    dst: d,
                    base: Base::Frame,
                    offset: 0,
                });
            }
            InstKind::LoadLocal { index } => {
                let d = self.reg(v);
                let offset = self.local_slot(index);
                self.emit(LInst::Load {
                    dst: d,
                    base: Base::Frame,
                    offset,
                    width: Width::W64,
                });
            }
            InstKind::StoreLocal { index, value } => {
                let offset = self.local_slot(index);
                let old = self.load(Base::Frame, offset as i64, Width::W64);
                let src = self.op(value);
                self.emit(LInst::Store {
                    base: Base::Frame,
                    offset,
                    src,
                    width: Width::W64,
                });
                self.decref(old, true);
            }
            InstKind::Incref { value } => match self.op(value) {
                Operand::Reg(r) => self.incref(r),
                Operand::Imm(addr) => {
                    let t = self.new_vreg();
                    self.emit(LInst::Mov {
                        dst: t,
                        src: Operand::Imm(addr),
                    });
                    self.incref(t);
                }
            },
            InstKind::Decref { value } => {
                let r = self.materialise(value);
                self.decref(r, false);
            }
            InstKind::SpillToStack { depth, values } => {
                for (k, val) in values.iter().enumerate() {
                    let src = self.op(*val);
                    let offset = self.stack_slot(depth + k as u32);
                    self.emit(LInst::Store {
                        base: Base::Frame,
                        offset,
                        src,
                        width: Width::W64,
                    });
                }
            }
            InstKind::ReadStack { depth } => {
                let d = self.reg(v);
                let offset = self.stack_slot(depth);
                self.emit(LInst::Load {
                    dst: d,
                    base: Base::Frame,
                    offset,
                    width: Width::W64,
                });
            }
            InstKind::StackAddr { depth } => {
                let d = self.reg(v);
                let offset = self.stack_slot(depth);
                self.emit(LInst::Lea {
                    dst: d,
                    base: Base::Frame,
                    offset,
                });
            }
            InstKind::CallHelper { helper, args } => {
                let args: Vec<Operand> = args.iter().map(|a| self.op(*a)).collect();
                let dst = if inst.ty == Type::VOID {
                    None
                } else {
                    Some(self.reg(v))
                };
                self.call(helper, args, dst, inst.bc);
            }
            InstKind::CallCompiled {
                base,
                oparg,
                method,
                kwnames,
                ref callees,
                ref class,
            } => {
                let site = direct_call::CallSite {
                    base,
                    oparg,
                    method,
                    kwnames,
                };
                match class {
                    Some(class) => self.construct_compiled(v, site, &callees[0], class, inst.bc),
                    None => self.call_compiled(v, site, callees, inst.bc),
                }
            }
            InstKind::CheckError {
                value,
                check,
                state,
            } => {
                let r = self.reg(value);
                match check {
                    ErrorCheck::Null => self.guard(r, Operand::Imm(0), Cond::Eq, Width::W64, state),
                    ErrorCheck::Negative => {
                        self.guard(r, Operand::Imm(0), Cond::Lt, Width::W32, state)
                    }
                }
            }
            InstKind::GuardNotMarker { value, state } => {
                let r = self.reg(value);
                self.guard(r, Operand::Imm(1), Cond::Eq, Width::W64, state);
            }
            InstKind::GuardNotNull { value, state } => {
                let r = self.reg(value);
                self.guard(r, Operand::Imm(0), Cond::Eq, Width::W64, state);
            }
            InstKind::GuardType {
                value, ty, state, ..
            } => {
                let r = self.materialise(value);
                let t = self.load(Base::Reg(r), lay.object_type, Width::W64);
                self.guard(t, Operand::Imm(ty as i64), Cond::Ne, Width::W64, state);
            }
            InstKind::GuardTypeVersion {
                value,
                version,
                state,
            } => {
                let r = self.materialise(value);
                let t = self.load(Base::Reg(r), lay.object_type, Width::W64);
                let ver = self.load(Base::Reg(t), lay.type_version_tag, Width::W32);
                self.guard(
                    ver,
                    Operand::Imm(version as i64),
                    Cond::Ne,
                    Width::W32,
                    state,
                );
            }
            InstKind::HasTypeVersion { value, version } => {
                let r = self.materialise(value);
                let t = self.load(Base::Reg(r), lay.object_type, Width::W64);
                let ver = self.load(Base::Reg(t), lay.type_version_tag, Width::W32);
                let d = self.reg(v);
                self.emit(LInst::SetCmp {
                    dst: d,
                    a: ver,
                    b: Operand::Imm(version as i64),
                    cond: Cond::Eq,
                    width: Width::W32,
                });
            }
            InstKind::GuardCachedKeysVersion {
                value,
                version,
                state,
            } => {
                let r = self.materialise(value);
                let t = self.load(Base::Reg(r), lay.object_type, Width::W64);
                let keys = self.load(Base::Reg(t), lay.heaptype_cached_keys, Width::W64);
                let ver = self.load(Base::Reg(keys), lay.dictkeys_version, Width::W32);
                self.guard(
                    ver,
                    Operand::Imm(version as i64),
                    Cond::Ne,
                    Width::W32,
                    state,
                );
            }
            InstKind::SharedKeysAre { value, check } => {
                let r = self.materialise(value);
                let t = self.load(Base::Reg(r), lay.object_type, Width::W64);
                let keys = self.load(Base::Reg(t), lay.heaptype_cached_keys, Width::W64);
                let (field, expected, width) = match check {
                    KeysCheck::Version(v) => (lay.dictkeys_version, v, Width::W32),
                    KeysCheck::Entries(n) => (lay.dictkeys_nentries, n, Width::W64),
                };
                let seen = self.load(Base::Reg(keys), field, width);
                let d = self.reg(v);
                self.emit(LInst::SetCmp {
                    dst: d,
                    a: seen,
                    b: Operand::Imm(expected as i64),
                    cond: Cond::Eq,
                    width,
                });
            }
            InstKind::GuardNoDict { value, state } => {
                let r = self.materialise(value);
                let d = self.load(
                    Base::Reg(r),
                    crate::cpython::runtime_layout().object_managed_dict_pointer,
                    Width::W64,
                );
                self.guard(d, Operand::Imm(0), Cond::Ne, Width::W64, state);
            }
            InstKind::GuardInterpreterIdle { state } => {
                let cframe = self.load(Base::Tstate, lay.tstate_cframe, Width::W64);
                let tracing = self.load(Base::Reg(cframe), lay.cframe_use_tracing, Width::W8);
                self.guard(tracing, Operand::Imm(0), Cond::Ne, Width::W32, state);
                let addr = self.new_vreg();
                self.emit(LInst::Mov {
                    dst: addr,
                    src: Operand::Imm(self.cx.eval_breaker as i64),
                });
                let brk = self.load(Base::Reg(addr), 0, Width::W32);
                self.guard(brk, Operand::Imm(0), Cond::Ne, Width::W32, state);
            }
            InstKind::InstanceValues { obj } => {
                let r = self.materialise(obj);
                let d = self.reg(v);
                self.emit(LInst::Load {
                    dst: d,
                    base: Base::Reg(r),
                    offset: crate::cpython::runtime_layout().object_values_pointer as i32,
                    width: Width::W64,
                });
            }
            InstKind::LoadWord { base, index } => {
                let r = self.materialise(base);
                let d = self.reg(v);
                self.emit(LInst::Load {
                    dst: d,
                    base: Base::Reg(r),
                    offset: 8 * index as i32,
                    width: Width::W64,
                });
            }
            InstKind::LoadDictHint { obj, name, hint } => self.load_dict_hint(v, obj, name, hint),
            InstKind::SeqIterNext { iter } => self.seq_iter_next(v, iter),
            InstKind::FloatArith { a, b, op } => self.float_arith(v, a, b, op, inst.bc),
            InstKind::LoadModuleAttr {
                obj,
                version,
                index,
            } => self.load_module_attr(v, obj, version, index),
            InstKind::StoreWord { base, index, value } => {
                let r = self.materialise(base);
                let src = self.op(value);
                self.emit(LInst::Store {
                    base: Base::Reg(r),
                    offset: 8 * index as i32,
                    src,
                    width: Width::W64,
                });
            }
            InstKind::LoadModuleGlobal {
                version,
                index,
                entries,
                state,
            } => {
                let keys = self.dict_keys(lay.frame_globals, version, state);
                let d = self.reg(v);
                let offset = entries as i64
                    + lay.dict_unicode_entry_size * index as i64
                    + lay.dict_unicode_entry_value;
                self.emit(LInst::Load {
                    dst: d,
                    base: Base::Reg(keys),
                    offset: offset as i32,
                    width: Width::W64,
                });
                self.guard(d, Operand::Imm(0), Cond::Eq, Width::W64, state);
            }
            InstKind::LoadBuiltin {
                globals_version,
                builtins_version,
                index,
                entries,
                state,
            } => {
                self.dict_keys(lay.frame_globals, globals_version, state);
                let keys = self.dict_keys(lay.frame_builtins, builtins_version, state);
                let d = self.reg(v);
                let offset = entries as i64
                    + lay.dict_unicode_entry_size * index as i64
                    + lay.dict_unicode_entry_value;
                self.emit(LInst::Load {
                    dst: d,
                    base: Base::Reg(keys),
                    offset: offset as i32,
                    width: Width::W64,
                });
                self.guard(d, Operand::Imm(0), Cond::Eq, Width::W64, state);
            }
            InstKind::Is { a, b } => {
                let ra = self.materialise(a);
                let ob = self.op(b);
                let d = self.reg(v);
                self.emit(LInst::SetCmp {
                    dst: d,
                    a: ra,
                    b: ob,
                    cond: Cond::Eq,
                    width: Width::W64,
                });
            }
            InstKind::IsCompactInt { value } => {
                let r = self.materialise(value);
                let size = self.load(Base::Reg(r), lay.varobject_size, Width::W64);
                let high = self.new_vreg();
                self.emit(LInst::Alu {
                    op: AluOp::And,
                    dst: high,
                    a: size,
                    b: Operand::Imm(!1),
                });
                let d = self.reg(v);
                self.emit(LInst::SetCmp {
                    dst: d,
                    a: high,
                    b: Operand::Imm(0),
                    cond: Cond::Eq,
                    width: Width::W64,
                });
            }
            InstKind::CompactIntValue { value } => {
                let r = self.materialise(value);
                let size = self.load(Base::Reg(r), lay.varobject_size, Width::W64);
                let digit = self.load(Base::Reg(r), lay.long_digits, Width::W32);
                let d = self.reg(v);
                if self.cx.compact_int_multiply {
                    // IsCompactInt let through sizes 0 and 1 only: digit x size is the value.
                    self.emit(LInst::Alu {
                        op: AluOp::Mul,
                        dst: d,
                        a: digit,
                        b: Operand::Reg(size),
                    });
                } else {
                    self.mask_digit(d, digit, size);
                }
            }
            InstKind::ArithWords { a, b, op } => {
                let (ra, rb) = (self.materialise(a), self.materialise(b));
                let d = self.reg(v);
                let op = match op {
                    WordArith::Add => AluOp::Add,
                    WordArith::Sub => AluOp::Sub,
                    WordArith::Mul => AluOp::Mul,
                };
                self.emit(LInst::Alu {
                    op,
                    dst: d,
                    a: ra,
                    b: Operand::Reg(rb),
                });
            }
            InstKind::CompareWords { a, b, op } => {
                let (ra, rb) = (self.materialise(a), self.materialise(b));
                // Lt and Ge are the conditions LIR has: `<=` and `>` swap the operands.
                let (x, y, cond) = match op {
                    0 => (ra, rb, Cond::Lt),
                    1 => (rb, ra, Cond::Ge),
                    2 => (ra, rb, Cond::Eq),
                    3 => (ra, rb, Cond::Ne),
                    4 => (rb, ra, Cond::Lt),
                    _ => (ra, rb, Cond::Ge),
                };
                let d = self.reg(v);
                self.emit(LInst::SetCmp {
                    dst: d,
                    a: x,
                    b: Operand::Reg(y),
                    cond,
                    width: Width::W64,
                });
            }
            InstKind::CompareFloats { a, b, op } => self.compare_floats(v, a, b, op),
            InstKind::Truthy { value } => self.truthy(v, value, inst.bc),
            InstKind::BoolObject { value, negate } => {
                let c = self.materialise(value);
                let d = self.reg(v);
                let (t, f) = (self.cx.true_obj as i64, self.cx.false_obj as i64);
                let (if_true, if_false) = if negate { (f, t) } else { (t, f) };
                self.emit(LInst::Select {
                    dst: d,
                    c,
                    if_true,
                    if_false,
                });
            }
            InstKind::NonZero { value } => {
                let r = self.materialise(value);
                let d = self.reg(v);
                self.emit(LInst::SetCmp {
                    dst: d,
                    a: r,
                    b: Operand::Imm(0),
                    cond: Cond::Ne,
                    width: Width::W32,
                });
            }
            InstKind::NotNull { value } => {
                let r = self.materialise(value);
                let d = self.reg(v);
                self.emit(LInst::SetCmp {
                    dst: d,
                    a: r,
                    b: Operand::Imm(0),
                    cond: Cond::Ne,
                    width: Width::W64,
                });
            }
            InstKind::SuspendedAt { bc } => {
                let d = self.reg(v);
                let off = self.lay().frame_prev_instr;
                let at = self.load(Base::Frame, off, Width::W64);
                let addr = self.cx.first_instr as i64 + 2 * bc as i64;
                let k = self.new_vreg();
                self.emit(LInst::Mov {
                    dst: k,
                    src: Operand::Imm(addr),
                });
                self.emit(LInst::SetCmp {
                    dst: d,
                    a: at,
                    b: Operand::Reg(k),
                    cond: Cond::Eq,
                    width: Width::W64,
                });
            }
            InstKind::TakeFrameStack => self.set_stacktop(0),
            InstKind::IsExhausted { value } => {
                let r = self.reg(value);
                let d = self.reg(v);
                self.emit(LInst::SetCmp {
                    dst: d,
                    a: r,
                    b: Operand::Imm(1),
                    cond: Cond::Eq,
                    width: Width::W64,
                });
            }
        }
    }

    /// A register holding `v` (constants are moved into a fresh one).
    fn materialise(&mut self, v: ValueId) -> VReg {
        match self.op(v) {
            Operand::Reg(r) => r,
            Operand::Imm(i) => {
                let t = self.new_vreg();
                self.emit(LInst::Mov {
                    dst: t,
                    src: Operand::Imm(i),
                });
                t
            }
        }
    }

    /// Loads the keys of the dict at frame field `field` and guards their version.
    fn dict_keys(&mut self, field: i64, version: u32, state: hir::StateId) -> VReg {
        let lay = *self.lay();
        let dict = self.load(Base::Frame, field, Width::W64);
        let keys = self.load(Base::Reg(dict), lay.dict_keys, Width::W64);
        let ver = self.load(Base::Reg(keys), lay.dictkeys_version, Width::W32);
        self.guard(
            ver,
            Operand::Imm(version as i64),
            Cond::Ne,
            Width::W32,
            state,
        );
        keys
    }

    /// The start of str-keyed `keys`' entry array, less `dictkeys_indices` (which the caller
    /// folds into its offsets): `keys + (1 << dk_log2_index_bytes)`, as `DK_ENTRIES` computes.
    fn unicode_entries(&mut self, keys: VReg) -> VReg {
        let lay = *self.lay();
        let log2 = self.load(Base::Reg(keys), lay.dictkeys_log2_index_bytes, Width::W8);
        let one = self.new_vreg();
        self.emit(LInst::Mov {
            dst: one,
            src: Operand::Imm(1),
        });
        let bytes = self.new_vreg();
        self.emit(LInst::Alu {
            op: AluOp::Shl,
            dst: bytes,
            a: one,
            b: Operand::Reg(log2),
        });
        let base = self.new_vreg();
        self.emit(LInst::Alu {
            op: AluOp::Add,
            dst: base,
            a: bytes,
            b: Operand::Reg(keys),
        });
        base
    }

    /// Byte offset of `field` of str-keyed entry `index` from [`Self::unicode_entries`].
    fn unicode_entry_field(&self, index: u32, field: i64) -> i32 {
        let lay = self.lay();
        (lay.dictkeys_indices + lay.dict_unicode_entry_size * index as i64 + field) as i32
    }

    /// Goes to `target` when `a cond b` (64-bit).
    fn branch(&mut self, a: VReg, b: Operand, cond: Cond, width: Width, target: LBlock) {
        self.emit(LInst::BranchCmp {
            a,
            b,
            cond,
            width,
            target,
        });
    }

    /// `LOAD_ATTR_WITH_HINT`'s read: `v` is the value, or NULL for the slow path.
    fn load_dict_hint(&mut self, v: ValueId, obj: ValueId, name: ValueId, hint: u32) {
        let lay = *self.lay();
        let d = self.reg(v);
        let done = self.new_block_after();
        self.emit(LInst::Mov {
            dst: d,
            src: Operand::Imm(0),
        });
        let r = self.materialise(obj);
        let dict = self.load(
            Base::Reg(r),
            crate::cpython::runtime_layout().object_managed_dict_pointer,
            Width::W64,
        );
        self.branch(dict, Operand::Imm(0), Cond::Eq, Width::W64, done);
        let keys = self.load(Base::Reg(dict), lay.dict_keys, Width::W64);
        let n = self.load(Base::Reg(keys), lay.dictkeys_nentries, Width::W64);
        let past = Operand::Imm(hint as i64 + 1);
        self.branch(n, past, Cond::Lt, Width::W64, done);
        let kind = self.load(Base::Reg(keys), lay.dictkeys_kind, Width::W8);
        let general = Operand::Imm(DICT_KEYS_GENERAL);
        self.branch(kind, general, Cond::Eq, Width::W32, done);
        let entries = self.unicode_entries(keys);
        let at = self.unicode_entry_field(hint, lay.dict_unicode_entry_key);
        let key = self.load(Base::Reg(entries), at as i64, Width::W64);
        let name = self.op(name);
        self.branch(key, name, Cond::Ne, Width::W64, done);
        self.emit(LInst::Load {
            dst: d,
            base: Base::Reg(entries),
            offset: self.unicode_entry_field(hint, lay.dict_unicode_entry_value),
            width: Width::W64,
        });
        self.emit(LInst::Jump { target: done });
        self.cur = done.0 as usize;
    }

    /// `FOR_ITER` over a list or tuple iterator: `v` is a new reference to the item at the
    /// iterator's index (which advances), or NULL for the slow path (another iterator, or the
    /// end). One arm per sequence kind; they differ in where the items are.
    fn seq_iter_next(&mut self, v: ValueId, iter: ValueId) {
        let lay = *self.lay();
        let d = self.reg(v);
        let done = self.new_block_after();
        let list = self.new_block_after_named();
        self.emit(LInst::Mov {
            dst: d,
            src: Operand::Imm(0),
        });
        let it = self.materialise(iter);
        let ty = self.load(Base::Reg(it), lay.object_type, Width::W64);
        let list_iter = Operand::Imm(self.cx.list_iter_type as i64);
        self.branch(ty, list_iter, Cond::Eq, Width::W64, list);
        let range = (self.cx.range_iter_type != 0).then(|| self.new_block_after_named());
        if let Some(range) = range {
            let range_iter = Operand::Imm(self.cx.range_iter_type as i64);
            self.branch(ty, range_iter, Cond::Eq, Width::W64, range);
        }
        let tuple_iter = Operand::Imm(self.cx.tuple_iter_type as i64);
        self.branch(ty, tuple_iter, Cond::Ne, Width::W64, done);
        self.seq_iter_item(d, it, None, done);
        self.cur = list.0 as usize;
        self.seq_iter_item(d, it, Some(lay.list_items), done);
        if let Some(range) = range {
            self.cur = range.0 as usize;
            self.range_iter_item(d, it, done);
        }
        self.cur = done.0 as usize;
    }

    /// The range iterator's arm of [`Self::seq_iter_next`], as `rangeiter_next` does it: while
    /// `index < len`, advance the index and box `start + index * step` (wrapping, as its
    /// unsigned arithmetic does) with `PyLong_FromLongLong`. When boxing fails the item is NULL
    /// with the `MemoryError` set, and the slow path's `fj_for_iter` raises it. Ends with a
    /// jump to `done`.
    fn range_iter_item(&mut self, d: VReg, it: VReg, done: LBlock) {
        use crate::cpython::range_iter;
        let index = self.load(Base::Reg(it), range_iter::INDEX, Width::W64);
        let len = self.load(Base::Reg(it), range_iter::LEN, Width::W64);
        self.branch(index, Operand::Reg(len), Cond::Ge, Width::W64, done);
        let next = self.new_vreg();
        self.emit(LInst::Alu {
            op: AluOp::Add,
            dst: next,
            a: index,
            b: Operand::Imm(1),
        });
        self.emit(LInst::Store {
            base: Base::Reg(it),
            offset: range_iter::INDEX as i32,
            src: Operand::Reg(next),
            width: Width::W64,
        });
        let start = self.load(Base::Reg(it), range_iter::START, Width::W64);
        let step = self.load(Base::Reg(it), range_iter::STEP, Width::W64);
        let offset = self.new_vreg();
        self.emit(LInst::Alu {
            op: AluOp::Mul,
            dst: offset,
            a: index,
            b: Operand::Reg(step),
        });
        let value = self.new_vreg();
        self.emit(LInst::Alu {
            op: AluOp::Add,
            dst: value,
            a: offset,
            b: Operand::Reg(start),
        });
        self.emit(LInst::Call {
            target: (self.cx.helpers)(Helper::IntFromWord),
            via: None,
            name: Helper::IntFromWord.name(),
            args: vec![Operand::Reg(value)],
            dst: Some(d),
        });
        self.emit(LInst::Jump { target: done });
    }

    /// One arm of [`Self::seq_iter_next`]: `items_pointer` is the offset of the list's item
    /// pointer, None for a tuple's inline items. Ends with a jump to `done`.
    fn seq_iter_item(&mut self, d: VReg, it: VReg, items_pointer: Option<i64>, done: LBlock) {
        use crate::cpython::seq_iter;
        let lay = *self.lay();
        let seq = self.load(Base::Reg(it), seq_iter::SEQ, Width::W64);
        self.branch(seq, Operand::Imm(0), Cond::Eq, Width::W64, done);
        let index = self.load(Base::Reg(it), seq_iter::INDEX, Width::W64);
        let size = self.load(Base::Reg(seq), lay.varobject_size, Width::W64);
        self.branch(index, Operand::Reg(size), Cond::Ge, Width::W64, done);
        let (items, first) = match items_pointer {
            Some(offset) => (self.load(Base::Reg(seq), offset, Width::W64), 0),
            None => (seq, lay.tuple_items),
        };
        let scaled = self.new_vreg();
        self.emit(LInst::Alu {
            op: AluOp::Shl,
            dst: scaled,
            a: index,
            b: Operand::Imm(3),
        });
        let at = self.new_vreg();
        self.emit(LInst::Alu {
            op: AluOp::Add,
            dst: at,
            a: scaled,
            b: Operand::Reg(items),
        });
        self.emit(LInst::Load {
            dst: d,
            base: Base::Reg(at),
            offset: first as i32,
            width: Width::W64,
        });
        self.incref(d);
        let next = self.new_vreg();
        self.emit(LInst::Alu {
            op: AluOp::Add,
            dst: next,
            a: index,
            b: Operand::Imm(1),
        });
        self.emit(LInst::Store {
            base: Base::Reg(it),
            offset: seq_iter::INDEX as i32,
            src: Operand::Reg(next),
            width: Width::W64,
        });
        self.emit(LInst::Jump { target: done });
    }

    /// [`InstKind::FloatArith`]: the double computed from both operands' values; written into
    /// `a` or else `b` when that operand's only reference is the one taken here, else boxed.
    fn float_arith(&mut self, v: ValueId, a: ValueId, b: ValueId, op: WordArith, bc: u32) {
        let lay = *self.lay();
        let d = self.reg(v);
        let done = self.new_block_after();
        let reuse_b = self.new_block_after_named();
        let boxed = self.new_block_after_named();
        let ra = self.materialise(a);
        let rb = self.materialise(b);
        let x = self.load(Base::Reg(ra), lay.float_value, Width::W64);
        let y = self.load(Base::Reg(rb), lay.float_value, Width::W64);
        let r = self.new_vreg();
        let op = match op {
            WordArith::Add => AluOp::FAdd,
            WordArith::Sub => AluOp::FSub,
            WordArith::Mul => AluOp::FMul,
        };
        self.emit(LInst::Alu {
            op,
            dst: r,
            a: x,
            b: Operand::Reg(y),
        });
        for (mine, other, next) in [(ra, rb, reuse_b), (rb, ra, boxed)] {
            let refs = self.load(Base::Reg(mine), lay.object_refcnt, Width::W64);
            self.branch(refs, Operand::Imm(1), Cond::Ne, Width::W64, next);
            self.emit(LInst::Store {
                base: Base::Reg(mine),
                offset: lay.float_value as i32,
                src: Operand::Reg(r),
                width: Width::W64,
            });
            self.emit(LInst::Mov {
                dst: d,
                src: Operand::Reg(mine),
            });
            self.decref(other, false);
            self.emit(LInst::Jump { target: done });
            self.cur = next.0 as usize;
        }
        self.call(Helper::BoxFloat, vec![Operand::Reg(r)], Some(d), bc);
        for operand in [ra, rb] {
            self.decref(operand, false);
        }
        self.emit(LInst::Jump { target: done });
        self.cur = done.0 as usize;
    }

    /// [`InstKind::CompareFloats`]: both operands' doubles compared (`>` and `>=` as `<` and
    /// `<=` with the operands swapped, which keeps a NaN's answer false).
    fn compare_floats(&mut self, v: ValueId, a: ValueId, b: ValueId, op: u32) {
        let lay = *self.lay();
        let d = self.reg(v);
        let ra = self.materialise(a);
        let rb = self.materialise(b);
        let x = self.load(Base::Reg(ra), lay.float_value, Width::W64);
        let y = self.load(Base::Reg(rb), lay.float_value, Width::W64);
        let (first, second, op) = match op {
            0 => (x, y, AluOp::FLt),
            1 => (x, y, AluOp::FLe),
            2 => (x, y, AluOp::FEq),
            3 => (x, y, AluOp::FNe),
            4 => (y, x, AluOp::FLt),
            _ => (y, x, AluOp::FLe),
        };
        self.emit(LInst::Alu {
            op,
            dst: d,
            a: first,
            b: Operand::Reg(second),
        });
    }

    /// `LOAD_ATTR_MODULE`'s read: `v` is the value, or NULL for the slow path.
    fn load_module_attr(&mut self, v: ValueId, obj: ValueId, version: u32, index: u32) {
        let lay = *self.lay();
        let d = self.reg(v);
        let done = self.new_block_after();
        self.emit(LInst::Mov {
            dst: d,
            src: Operand::Imm(0),
        });
        let r = self.materialise(obj);
        let ty = self.load(Base::Reg(r), lay.object_type, Width::W64);
        let module_type = Operand::Imm(self.cx.module_type as i64);
        self.branch(ty, module_type, Cond::Ne, Width::W64, done);
        let dict = self.load(Base::Reg(r), lay.module_dict, Width::W64);
        let keys = self.load(Base::Reg(dict), lay.dict_keys, Width::W64);
        let ver = self.load(Base::Reg(keys), lay.dictkeys_version, Width::W32);
        let version = Operand::Imm(version as i64);
        self.branch(ver, version, Cond::Ne, Width::W32, done);
        let entries = self.unicode_entries(keys);
        self.emit(LInst::Load {
            dst: d,
            base: Base::Reg(entries),
            offset: self.unicode_entry_field(index, lay.dict_unicode_entry_value),
            width: Width::W64,
        });
        self.emit(LInst::Jump { target: done });
        self.cur = done.0 as usize;
    }

    /// `dst = 1 if value is True, 0 if False or None, else PyObject_IsTrue(value)`.
    fn truthy(&mut self, v: ValueId, value: ValueId, bc: u32) {
        let r = self.materialise(value);
        let d = self.reg(v);
        let done = self.new_block_after();
        let slow = self.new_block_after_named();
        self.emit(LInst::Mov {
            dst: d,
            src: Operand::Imm(1),
        });
        self.emit(LInst::BranchCmp {
            a: r,
            b: Operand::Imm(self.cx.true_obj as i64),
            cond: Cond::Eq,
            width: Width::W64,
            target: done,
        });
        self.emit(LInst::Mov {
            dst: d,
            src: Operand::Imm(0),
        });
        self.emit(LInst::BranchCmp {
            a: r,
            b: Operand::Imm(self.cx.false_obj as i64),
            cond: Cond::Eq,
            width: Width::W64,
            target: done,
        });
        self.emit(LInst::BranchCmp {
            a: r,
            b: Operand::Imm(self.cx.none_obj as i64),
            cond: Cond::Eq,
            width: Width::W64,
            target: done,
        });
        self.emit(LInst::Jump { target: slow });
        self.cur = slow.0 as usize;
        self.call(Helper::IsTrue, vec![Operand::Reg(r)], Some(d), bc);
        self.emit(LInst::Jump { target: done });
        self.cur = done.0 as usize;
    }

    /// A new block for the continuation of the current one. Blocks are laid out in creation
    /// order, and continuation blocks are only ever reached by explicit jumps, so their position
    /// does not matter for fall-through.
    fn new_block_after(&mut self) -> LBlock {
        self.new_block()
    }

    fn new_block_after_named(&mut self) -> LBlock {
        self.new_block()
    }

    /// Moves `args` into the parameters of `target` (through temporaries: a parallel copy).
    fn edge_moves(&mut self, target: hir::BlockId, args: &[ValueId]) {
        let params = self.hir.block(target).params.clone();
        let temps: Vec<(VReg, Operand)> = args
            .iter()
            .map(|a| {
                let t = self.new_vreg();
                let src = self.op(*a);
                (t, src)
            })
            .collect();
        for (t, src) in &temps {
            self.emit(LInst::Mov { dst: *t, src: *src });
        }
        for (p, (t, _)) in params.iter().zip(&temps) {
            let dst = self.reg(*p);
            self.emit(LInst::Mov {
                dst,
                src: Operand::Reg(*t),
            });
        }
    }

    fn lower_term(&mut self, term: &Terminator) {
        match term {
            Terminator::None => unreachable!("unterminated HIR block"),
            Terminator::Jump { target, args } => {
                self.edge_moves(*target, args);
                let t = self.block_of[target];
                self.emit(LInst::Jump { target: t });
            }
            Terminator::Branch {
                cond,
                then_to,
                then_args,
                else_to,
                else_args,
            } => {
                let c = self.materialise(*cond);
                let then_edge = self.new_block();
                let else_edge = self.new_block();
                self.emit(LInst::BranchCmp {
                    a: c,
                    b: Operand::Imm(0),
                    cond: Cond::Ne,
                    width: Width::W64,
                    target: then_edge,
                });
                self.emit(LInst::Jump { target: else_edge });
                for (edge, to, args) in [
                    (then_edge, then_to, then_args),
                    (else_edge, else_to, else_args),
                ] {
                    self.cur = edge.0 as usize;
                    self.edge_moves(*to, args);
                    let t = self.block_of[to];
                    self.emit(LInst::Jump { target: t });
                }
            }
            Terminator::Return { value, bc } => {
                let r = self.materialise(*value);
                self.set_prev_instr(*bc);
                self.emit(LInst::Return { value: r });
            }
            Terminator::Exit { state } => {
                let exit = self.exit(*state);
                self.emit(LInst::Exit { exit });
            }
            Terminator::Yield { value, stack, bc } => {
                let r = self.materialise(*value);
                for (k, v) in stack.iter().enumerate() {
                    let src = self.op(*v);
                    let offset = self.stack_slot(k as u32);
                    self.emit(LInst::Store {
                        base: Base::Frame,
                        offset,
                        src,
                        width: Width::W64,
                    });
                }
                self.set_stacktop(stack.len() as u32);
                self.set_prev_instr(*bc);
                // gi_frame_state, in the generator object the frame is embedded in.
                let lay = *self.lay();
                self.emit(LInst::Store {
                    base: Base::Frame,
                    offset: (lay.gen_frame_state - lay.gen_iframe) as i32,
                    src: Operand::Imm(lay.frame_state_suspended & 0xff),
                    width: Width::W8,
                });
                self.emit(LInst::Return { value: r });
            }
        }
    }
}
