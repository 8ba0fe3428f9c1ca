//! The x86-64 backend: register conventions (System V), instruction selection from allocated
//! LIR, out-of-line deallocation paths, side-exit stubs, prologue and epilogue.
//!
//! Pinned registers: r15 = frame, r14 = thread state. Scratch: r10, r11 (never allocated).
//! Native frame: r14, r15 and the callee-saved registers the allocator used pushed, padding to
//! keep rsp 16-byte aligned, then the spill slots at `[rsp + 8 * k]`.

use super::parallel_move::{self, Move, Src};
use super::{exit_slot, DeallocPath, Env, MachineCode, ReturnCopy};
use crate::lir::{self, Base, Cond, LInst, Operand, Width};
use crate::regalloc::{Allocation, Loc, RegisterSet};
use ferrojit_asm_x86_64::{Alu, Assembler, Cond as C, Label, Mem, Reg, Shift, SseCmp, SseOp};

/// The return register.
const RET: Reg = Reg::Rax;
const FRAME: Reg = Reg::R15;
const TSTATE: Reg = Reg::R14;
const SCRATCH0: Reg = Reg::R10;
const SCRATCH1: Reg = Reg::R11;
const ARGS: [Reg; 6] = [Reg::Rdi, Reg::Rsi, Reg::Rdx, Reg::Rcx, Reg::R8, Reg::R9];
const SAVED: [Reg; 6] = [Reg::Rbx, Reg::Rbp, Reg::R12, Reg::R13, Reg::R14, Reg::R15];
const CALLER_SAVED: [Reg; 7] = [
    Reg::Rax,
    Reg::Rcx,
    Reg::Rdx,
    Reg::Rsi,
    Reg::Rdi,
    Reg::R8,
    Reg::R9,
];

/// Registers the allocator may use.
pub fn registers() -> RegisterSet {
    RegisterSet {
        callee_saved: vec![
            Reg::Rbx.index(),
            Reg::R12.index(),
            Reg::R13.index(),
            Reg::Rbp.index(),
        ],
        caller_saved: CALLER_SAVED.iter().map(|r| r.index()).collect(),
        args: ARGS.iter().map(|r| r.index()).collect(),
        ret: Some(RET.index()),
    }
}

pub fn reg_name(r: u8) -> String {
    Reg::ALL[r as usize].to_string()
}

fn reg(r: u8) -> Reg {
    Reg::ALL[r as usize]
}

struct Emitter<'a> {
    asm: Assembler,
    f: &'a lir::Function,
    alloc: &'a Allocation,
    env: &'a Env,
    blocks: Vec<Label>,
    exits: Vec<Label>,
    epilogue: Label,
    /// Out-of-line `_Py_Dealloc` calls: (entry, return point, register holding the object).
    dealloc_paths: Vec<DeallocPath<Label, Reg>>,
    /// Callee-saved registers pushed by the prologue, in push order.
    saved: Vec<Reg>,
    frame_size: i32,
}

/// Generates the machine code of `f`. With `env.short_jumps`, twice: the second time, the
/// forward jumps the first found within rel8 reach take the two-byte form.
pub fn emit(f: &lir::Function, alloc: &Allocation, env: &Env) -> Result<MachineCode, String> {
    let mut asm = emit_into(Assembler::new(), f, alloc, env);
    if env.short_jumps {
        let near = asm.near_jumps();
        asm = emit_into(Assembler::with_near_jumps(near), f, alloc, env);
    }
    let points = asm.count_points().to_vec();
    let links = asm.call_links().to_vec();
    let (bytes, code_len) = asm.finish_code().map_err(|err| err.to_string())?;
    let counted = super::disasm::counted_stretches(super::Isa::X86_64, &bytes[..code_len], &points);
    Ok(MachineCode {
        bytes,
        code_len,
        counted,
        links,
    })
}

/// Emits `f` into `asm` (labels bound, references not yet resolved).
///
/// `env.literal_pool` is not used here: on x86-64 the pool's RIP-relative loads, calls and
/// compares measured slower than `movabs` and `call r11` (see `Optimisation::LiteralPool`).
fn emit_into(mut asm: Assembler, f: &lir::Function, alloc: &Allocation, env: &Env) -> Assembler {
    asm.set_counting(env.count_instructions);
    asm.count_point();
    let blocks = (0..f.blocks.len()).map(|_| asm.new_label()).collect();
    let exits = (0..f.exits.len()).map(|_| asm.new_label()).collect();
    let epilogue = asm.new_label();
    let saved: Vec<Reg> = SAVED
        .iter()
        .copied()
        .filter(|&r| r == FRAME || r == TSTATE || alloc.used_callee_saved.contains(&r.index()))
        .collect();
    // The return address, the pushes and the frame keep rsp 16-byte aligned in the body.
    let slots = alloc.num_slots as i32 * 8;
    let pushed = 8 + 8 * saved.len() as i32;
    let frame_size = if (pushed + slots) % 16 == 0 {
        slots
    } else {
        slots + 8
    };
    let mut e = Emitter {
        asm,
        f,
        alloc,
        env,
        blocks,
        exits,
        epilogue,
        dealloc_paths: Vec::new(),
        saved,
        frame_size,
    };
    e.prologue();
    let epilogue_at = super::epilogue_before(f, env);
    for b in 0..f.blocks.len() {
        if epilogue_at == Some(b) {
            e.hot_section_end(b);
        }
        e.asm.bind(e.blocks[b]);
        let mut copy = ReturnCopy::default();
        for inst in &f.blocks[b].insts {
            e.inst(inst, b, copy);
            copy = copy.after(inst, alloc, RET.index());
        }
    }
    if epilogue_at == Some(f.blocks.len()) {
        e.hot_section_end(f.blocks.len());
    }
    e.exit_stubs();
    e.dealloc_stubs();
    if epilogue_at.is_none() {
        e.epilogue();
    }
    e.asm
}

impl<'a> Emitter<'a> {
    fn prologue(&mut self) {
        for r in self.saved.clone() {
            self.asm.push(r);
        }
        if self.frame_size != 0 {
            self.asm.alu_ri(Alu::Sub, Reg::Rsp, self.frame_size);
        }
        self.asm.mov_rr(TSTATE, Reg::Rdi);
        self.asm.mov_rr(FRAME, Reg::Rsi);
    }

    /// Ends the hot section before block `b` (`cold-section`): the epilogue, after a jump
    /// over it when the block before runs on into `b`.
    fn hot_section_end(&mut self, b: usize) {
        if super::runs_on_into(self.f, b) {
            self.asm.jmp(self.blocks[b]);
        }
        self.epilogue();
    }

    fn epilogue(&mut self) {
        self.asm.bind(self.epilogue);
        if self.frame_size != 0 {
            self.asm.alu_ri(Alu::Add, Reg::Rsp, self.frame_size);
        }
        for r in self.saved.clone().into_iter().rev() {
            self.asm.pop(r);
        }
        self.asm.ret();
    }

    fn slot(&self, s: u32) -> Mem {
        Mem::new(Reg::Rsp, 8 * s as i32)
    }

    /// A register holding `v`: its own, or `scratch` loaded from its slot.
    fn read(&mut self, v: lir::VReg, scratch: Reg) -> Reg {
        match self.alloc.loc(v) {
            Loc::Reg(r) => reg(r),
            Loc::Slot(s) => {
                let m = self.slot(s);
                self.asm.load64(scratch, m);
                scratch
            }
        }
    }

    /// A register holding operand `o`.
    fn operand(&mut self, o: Operand, scratch: Reg) -> Reg {
        match o {
            Operand::Reg(v) => self.read(v, scratch),
            Operand::Imm(i) => {
                self.asm.mov_ri(scratch, i);
                scratch
            }
        }
    }

    /// The register to compute `v` into (its own or `scratch`); call [`Self::commit`] after.
    fn target(&self, v: lir::VReg, scratch: Reg) -> Reg {
        match self.alloc.loc(v) {
            Loc::Reg(r) => reg(r),
            Loc::Slot(_) => scratch,
        }
    }

    /// Stores `r` to `v`'s slot if `v` lives in one.
    fn commit(&mut self, v: lir::VReg, r: Reg) {
        match self.alloc.loc(v) {
            Loc::Reg(own) => {
                if reg(own) != r {
                    self.asm.mov_rr(reg(own), r);
                }
            }
            Loc::Slot(s) => {
                let m = self.slot(s);
                self.asm.store64(m, r);
            }
        }
    }

    fn base(&mut self, b: Base) -> Reg {
        match b {
            Base::Frame => FRAME,
            Base::Tstate => TSTATE,
            Base::Reg(v) => self.read(v, SCRATCH1),
        }
    }

    /// `cmp a, b` at `width`; against 0, `test a, a` (one byte shorter, the same flags for
    /// every condition LIR has: ZF and SF from `a`, CF and OF clear).
    fn compare(&mut self, a: lir::VReg, b: Operand, width: Width) {
        let ra = self.read(a, SCRATCH0);
        match (b, width) {
            (Operand::Imm(0), Width::W32) => self.asm.test32_rr(ra, ra),
            (Operand::Imm(0), _) => self.asm.test_rr(ra, ra),
            (Operand::Imm(i), Width::W32) => self.asm.cmp32_ri(ra, i as i32),
            (Operand::Imm(i), _) if i32::try_from(i).is_ok() => {
                self.asm.alu_ri(Alu::Cmp, ra, i as i32)
            }
            (b, _) => {
                let rb = self.operand(b, SCRATCH1);
                self.asm.alu_rr(Alu::Cmp, ra, rb)
            }
        }
    }

    /// `dst = a op b`, computed in SCRATCH0 (x86 operations overwrite their first operand, and
    /// a variable shift count must be in `cl`: rcx is saved around it on the stack, where no
    /// slot is addressed in between).
    fn alu(&mut self, op: lir::AluOp, dst: lir::VReg, a: lir::VReg, b: Operand) {
        if op.is_float() {
            return self.float_alu(op, dst, a, b);
        }
        // Computed in dst's own register unless that is where `b` lives (or rcx for a shift).
        let b_reg = match b {
            Operand::Reg(v) => match self.alloc.loc(v) {
                Loc::Reg(r) => Some(reg(r)),
                Loc::Slot(_) => None,
            },
            Operand::Imm(_) => None,
        };
        // dst's register holds `b`: a commutative operation takes `a` into it directly.
        let commutes = matches!(op, lir::AluOp::Add | lir::AluOp::And | lir::AluOp::Mul);
        if let (Loc::Reg(r), true) = (self.alloc.loc(dst), commutes) {
            if Some(reg(r)) == b_reg {
                let d = reg(r);
                let ra = self.read(a, SCRATCH0);
                match op {
                    lir::AluOp::Mul => self.asm.imul_rr(d, ra),
                    lir::AluOp::Add => self.asm.alu_rr(Alu::Add, d, ra),
                    _ => self.asm.alu_rr(Alu::And, d, ra),
                }
                return;
            }
        }
        let d = match self.alloc.loc(dst) {
            Loc::Reg(r)
                if Some(reg(r)) != b_reg && !(op == lir::AluOp::Shl && reg(r) == Reg::Rcx) =>
            {
                reg(r)
            }
            _ => SCRATCH0,
        };
        let ra = self.read(a, SCRATCH0);
        if ra != d {
            self.asm.mov_rr(d, ra);
        }
        let alu = match op {
            lir::AluOp::Add => Some(Alu::Add),
            lir::AluOp::Sub => Some(Alu::Sub),
            lir::AluOp::And => Some(Alu::And),
            _ => None,
        };
        match (alu, b) {
            (None, b) if op == lir::AluOp::Mul => {
                let rb = self.operand(b, SCRATCH1);
                self.asm.imul_rr(d, rb)
            }
            (Some(alu), Operand::Imm(i)) if i32::try_from(i).is_ok() => {
                self.asm.alu_ri(alu, d, i as i32)
            }
            (Some(alu), b) => {
                let rb = self.operand(b, SCRATCH1);
                self.asm.alu_rr(alu, d, rb)
            }
            (None, Operand::Imm(i)) => self.asm.shift_ri(Shift::Shl, d, (i & 63) as u8),
            (None, Operand::Reg(v)) => {
                let rb = self.read(v, SCRATCH1);
                if rb == Reg::Rcx {
                    self.asm.shift_cl(Shift::Shl, d);
                } else {
                    self.asm.push(Reg::Rcx);
                    self.asm.mov_rr(Reg::Rcx, rb);
                    self.asm.shift_cl(Shift::Shl, d);
                    self.asm.pop(Reg::Rcx);
                }
            }
        }
        self.commit(dst, d);
    }

    /// `dst = a op b` on doubles held as words: through xmm0 and xmm1, which nothing else uses
    /// (caller-saved, and generated code keeps no value in them).
    fn float_alu(&mut self, op: lir::AluOp, dst: lir::VReg, a: lir::VReg, b: Operand) {
        use lir::AluOp::*;
        let ra = self.read(a, SCRATCH0);
        self.asm.movq_xr(0, ra);
        let rb = self.operand(b, SCRATCH1);
        self.asm.movq_xr(1, rb);
        let d = match self.alloc.loc(dst) {
            Loc::Reg(r) => reg(r),
            Loc::Slot(_) => SCRATCH0,
        };
        match op {
            FAdd => self.double_arith(d, SseOp::Add),
            FSub => self.double_arith(d, SseOp::Sub),
            FMul => self.double_arith(d, SseOp::Mul),
            FLt => self.double_compare(d, SseCmp::Lt),
            FLe => self.double_compare(d, SseCmp::Le),
            FEq => self.double_compare(d, SseCmp::Eq),
            FNe => self.double_compare(d, SseCmp::Neq),
            _ => unreachable!("integer operations go through alu"),
        }
        self.commit(dst, d);
    }

    /// `d = xmm0 op xmm1` on doubles.
    fn double_arith(&mut self, d: Reg, op: SseOp) {
        self.asm.sse_sd(op, 0, 1);
        self.asm.movq_rx(d, 0);
    }

    /// `d = 1` if `xmm0 pred xmm1`, else 0.
    fn double_compare(&mut self, d: Reg, pred: SseCmp) {
        self.asm.cmpsd(pred, 0, 1);
        // The lane is all ones or zero: its low bit is the truth.
        self.asm.movq_rx(d, 0);
        self.asm.alu_ri(Alu::And, d, 1);
    }

    fn cond(c: Cond) -> C {
        match c {
            Cond::Eq => C::E,
            Cond::Ne => C::Ne,
            Cond::Lt => C::L,
            Cond::Ge => C::Ge,
        }
    }

    /// Emits `inst`; `copy` says where the return register's value also lives.
    fn inst(&mut self, inst: &LInst, block: usize, copy: ReturnCopy) {
        match inst {
            LInst::Mov { dst, src } => {
                // Into a slot from a register or a 32-bit immediate: one store.
                if let Loc::Slot(k) = self.alloc.loc(*dst) {
                    let m = self.slot(k);
                    match src {
                        Operand::Reg(s) => {
                            if let Loc::Reg(r) = self.alloc.loc(*s) {
                                self.asm.store64(m, reg(r));
                                return;
                            }
                        }
                        Operand::Imm(i) => {
                            if let Ok(i) = i32::try_from(*i) {
                                self.asm.store64_imm(m, i);
                                return;
                            }
                        }
                    }
                }
                let d = self.target(*dst, SCRATCH0);
                match src {
                    Operand::Imm(i) => self.asm.mov_ri(d, *i),
                    Operand::Reg(s) => match self.alloc.loc(*s) {
                        Loc::Reg(r) if reg(r) != d => self.asm.mov_rr(d, reg(r)),
                        Loc::Reg(_) => {}
                        Loc::Slot(k) => {
                            let m = self.slot(k);
                            self.asm.load64(d, m)
                        }
                    },
                }
                self.commit(*dst, d);
            }
            LInst::Alu { op, dst, a, b } => self.alu(*op, *dst, *a, *b),
            LInst::Load {
                dst,
                base,
                offset,
                width,
            } => {
                let b = self.base(*base);
                let d = self.target(*dst, SCRATCH0);
                let m = Mem::new(b, *offset);
                match width {
                    Width::W8 => self.asm.load8(d, m),
                    Width::W32 => self.asm.load32(d, m),
                    Width::W64 => self.asm.load64(d, m),
                }
                self.commit(*dst, d);
            }
            LInst::Store {
                base,
                offset,
                src,
                width,
            } => {
                let b = self.base(*base);
                let m = Mem::new(b, *offset);
                match (src, width) {
                    (Operand::Imm(i), Width::W64) if i32::try_from(*i).is_ok() => {
                        self.asm.store64_imm(m, *i as i32)
                    }
                    // The lower 32 bits of the immediate, whatever the upper ones.
                    (Operand::Imm(i), Width::W32) => self.asm.store32_imm(m, *i as i32),
                    _ => {
                        let s = self.operand(*src, SCRATCH0);
                        match width {
                            Width::W8 => self.asm.store8(m, s),
                            Width::W32 => self.asm.store32(m, s),
                            Width::W64 => self.asm.store64(m, s),
                        }
                    }
                }
            }
            LInst::Lea { dst, base, offset } => {
                let b = self.base(*base);
                let d = self.target(*dst, SCRATCH0);
                self.asm.lea(d, Mem::new(b, *offset));
                self.commit(*dst, d);
            }
            LInst::AddMem { base, offset, imm } => {
                let b = self.base(*base);
                self.asm.alu_mi(Alu::Add, Mem::new(b, *offset), *imm);
            }
            LInst::SetPrevInstr {
                addr,
                upper_half_set,
            } => {
                let m = Mem::new(FRAME, self.env.frame_prev_instr);
                if *upper_half_set {
                    // 8 bytes and no register, against a 10-byte movabs and a 4-byte store.
                    self.asm.store32_imm(m, *addr as i32);
                } else {
                    self.asm.mov_ri(SCRATCH0, *addr);
                    self.asm.store64(m, SCRATCH0);
                }
            }
            LInst::Decref {
                value,
                maybe_null,
                prev_instr,
            } => self.decref(*value, *maybe_null, *prev_instr),
            LInst::Call {
                target,
                via,
                args,
                dst,
                ..
            } => self.call(*target, *via, args, *dst, copy),
            LInst::SetCmp {
                dst,
                a,
                b,
                cond,
                width,
            } => {
                self.compare(*a, *b, *width);
                let d = self.target(*dst, SCRATCH0);
                self.asm.setcc(Self::cond(*cond), d);
                self.commit(*dst, d);
            }
            LInst::Select {
                dst,
                c,
                if_true,
                if_false,
            } => {
                let rc = self.read(*c, SCRATCH0);
                self.asm.test_rr(rc, rc);
                let d = self.target(*dst, SCRATCH0);
                self.asm.mov_ri(d, *if_false);
                self.asm.mov_ri(SCRATCH1, *if_true);
                self.asm.cmov(C::Ne, d, SCRATCH1);
                self.commit(*dst, d);
            }
            LInst::BranchCmp {
                a,
                b,
                cond,
                width,
                target,
            } => {
                self.compare(*a, *b, *width);
                let l = self.blocks[target.0 as usize];
                self.asm.jcc(Self::cond(*cond), l);
            }
            LInst::GuardCmp {
                a,
                b,
                cond,
                width,
                exit,
            } => {
                self.compare(*a, *b, *width);
                let l = self.exits[exit.0 as usize];
                self.asm.jcc(Self::cond(*cond), l);
            }
            LInst::Jump { target } => {
                if target.0 as usize != block + 1 {
                    let l = self.blocks[target.0 as usize];
                    self.asm.jmp(l);
                }
            }
            LInst::Return { value } if copy.holds(self.alloc.loc(*value)) => {
                self.asm.jmp(self.epilogue)
            }
            LInst::Return { value } => {
                let r = self.read(*value, SCRATCH0);
                if r != RET {
                    self.asm.mov_rr(RET, r);
                }
                self.asm.jmp(self.epilogue);
            }
            LInst::Exit { exit } => {
                let l = self.exits[exit.0 as usize];
                self.asm.jmp(l);
            }
        }
    }

    fn decref(&mut self, value: lir::VReg, maybe_null: bool, prev_instr: i64) {
        let r = self.read(value, SCRATCH1);
        let done = self.asm.new_label();
        let slow = self.asm.new_label();
        if maybe_null {
            self.asm.test_rr(r, r);
            self.asm.jcc(C::E, done);
        }
        self.count_ref(-1, SCRATCH0);
        self.asm
            .alu_mi(Alu::Sub, Mem::new(r, self.env.object_refcnt), 1);
        self.asm.jcc(C::E, slow);
        self.asm.bind(done);
        self.dealloc_paths.push(DeallocPath {
            slow,
            done,
            object: r,
            prev_instr,
        });
    }

    /// In a `Py_REF_DEBUG` interpreter, moves `_Py_RefTotal` by `delta` (through `scratch`,
    /// which must hold nothing live) as `Py_INCREF`/`Py_DECREF` do; nothing otherwise.
    fn count_ref(&mut self, delta: i32, scratch: Reg) {
        if self.env.ref_total != 0 {
            self.asm.mov_ri(scratch, self.env.ref_total as i64);
            self.asm.alu_mi(Alu::Add, Mem::new(scratch, 0), delta);
        }
    }

    fn src_of(&self, o: &Operand) -> Src {
        match o {
            Operand::Imm(i) => Src::Imm(*i),
            Operand::Reg(v) => match self.alloc.loc(*v) {
                Loc::Reg(r) => Src::Reg(r),
                Loc::Slot(s) => Src::Slot(s),
            },
        }
    }

    fn call(
        &mut self,
        target: usize,
        via: Option<lir::VReg>,
        args: &[Operand],
        dst: Option<lir::VReg>,
        copy: ReturnCopy,
    ) {
        // An address in a register goes to SCRATCH1 first: the argument moves may overwrite it.
        if let Some(v) = via {
            let r = self.read(v, SCRATCH1);
            if r != SCRATCH1 {
                self.asm.mov_rr(SCRATCH1, r);
            }
        }
        let mut moves: Vec<Move> = args
            .iter()
            .enumerate()
            .map(|(i, a)| Move {
                dst: ARGS[i].index(),
                src: self.src_of(a),
            })
            .collect();
        // A move into the return register of the value it still holds is no move at all.
        if !moves.iter().any(|m| m.src == Src::Reg(RET.index())) {
            moves.retain(|m| !(m.dst == RET.index() && copy.holds_src(m.src)));
        }
        for m in parallel_move::sequence(&moves, SCRATCH0.index()) {
            let d = reg(m.dst);
            match m.src {
                Src::Reg(r) => self.asm.mov_rr(d, reg(r)),
                Src::Slot(s) => {
                    let mem = self.slot(s);
                    self.asm.load64(d, mem)
                }
                Src::Imm(i) => self.asm.mov_ri(d, i),
            }
        }
        match via {
            Some(_) => self.asm.call_r(SCRATCH1),
            None => self.call_helper(target, SCRATCH1),
        }
        if let Some(d) = dst {
            self.commit(d, Reg::Rax);
        }
    }

    /// A call of the helper at `target`: one linked `call rel32` with `near_calls`, else through
    /// `scratch`.
    fn call_helper(&mut self, target: usize, scratch: Reg) {
        if self.env.links_call(super::Isa::X86_64, target) {
            self.asm.call_linked(target as u64);
        } else {
            self.asm.call_abs(target as u64, scratch);
        }
    }

    fn exit_stubs(&mut self) {
        for (i, exit) in self.f.exits.iter().enumerate() {
            self.asm.bind(self.exits[i]);
            for (k, v) in exit.stack.iter().enumerate() {
                let m = Mem::new(FRAME, exit_slot(self.env, exit, k));
                let incref = exit.increfs.contains(&k);
                match v {
                    Operand::Imm(imm) if i32::try_from(*imm).is_ok() && !incref => {
                        self.asm.store64_imm(m, *imm as i32)
                    }
                    _ => {
                        let r = self.operand(*v, SCRATCH0);
                        self.asm.store64(m, r);
                        if incref {
                            let refcnt = Mem::new(r, self.env.object_refcnt);
                            self.asm.alu_mi(Alu::Add, refcnt, 1);
                            self.count_ref(1, SCRATCH1);
                        }
                    }
                }
            }
            self.asm.mov_ri(SCRATCH0, exit.stacktop as i64);
            self.asm
                .store32(Mem::new(FRAME, self.env.frame_stacktop), SCRATCH0);
            self.asm.mov_ri(SCRATCH0, exit.prev_instr as i64);
            self.asm
                .store64(Mem::new(FRAME, self.env.frame_prev_instr), SCRATCH0);
            self.asm.mov_ri(Reg::Rax, exit.code);
            self.asm.jmp(self.epilogue);
        }
    }

    /// `_Py_Dealloc(obj)` with every caller-saved register preserved, out of line. Each site
    /// that reaches zero jumps to two instructions (`call` the shared body for its register,
    /// then back); one body per register pushes the seven caller-saved registers (with the
    /// return address that keeps the stack 16-byte aligned for the call), calls, pops, returns.
    fn dealloc_stubs(&mut self) {
        let mut bodies: Vec<(Reg, Label)> = Vec::new();
        for DeallocPath {
            slow,
            done,
            object: r,
            prev_instr,
        } in std::mem::take(&mut self.dealloc_paths)
        {
            let body = match bodies.iter().find(|(br, _)| *br == r) {
                Some((_, l)) => *l,
                None => {
                    let l = self.asm.new_label();
                    bodies.push((r, l));
                    l
                }
            };
            self.asm.bind(slow);
            // r10 is free here: the object is in its own register or r11, and the call
            // below clobbers r10 anyway.
            if prev_instr != 0 {
                self.asm.mov_ri(SCRATCH0, prev_instr);
                let at = Mem::new(FRAME, self.env.frame_prev_instr);
                self.asm.store64(at, SCRATCH0);
            }
            self.asm.call(body);
            self.asm.jmp(done);
        }
        for (r, body) in bodies {
            self.asm.bind(body);
            for s in CALLER_SAVED {
                self.asm.push(s);
            }
            self.asm.mov_rr(Reg::Rdi, r);
            self.call_helper(self.env.dealloc, SCRATCH1);
            for s in CALLER_SAVED.iter().rev() {
                self.asm.pop(*s);
            }
            self.asm.ret();
        }
    }
}
